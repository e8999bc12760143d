"""Sender reputation learned from verdicts: decaying spam, ham and volume per IP and per /24,
and per authenticated sender domain.

Every scanned message from an outside source adds to two records in the store, its
address's and its network's (IPv4 /24, IPv6 /64): 1 to ``spam`` when its content scored
at the spam threshold, 1 to ``ham`` when it scored below the ham threshold, and 1 to
``volume`` either way. The counts halve every ``half_life_s``, so a dial-up address that
sent a spam run this morning and went to an innocent subscriber by evening is soon clean.

Writes are buffered in the process and flushed at most ``flush_s`` after the first count
that waits (a timer: a quiet worker does not hold a count until its next message), or
sooner when many are pending; each count is written at the time of its message, to the
second, not at the time of the flush.  Reads are cached for ``cache_s``.  Several workers
thus share one picture, at most a second or two behind, for a few store calls per second
instead of four per message.  The reads that messages scanned together ask for in one turn
of the event loop (a batch scan's cohort, or concurrent requests in ``seawall serve``) go
to the store in one call: a call costs about 110 us of CPU for one or two records (a
thread's round trip, twice through a scan's overlay) and 16 us a record for sixteen.

A sender domain has a record of its own beside the addresses' (``rep:dom:``), fed only with
mail that authenticated as that domain (a DKIM signature's d=, or SPF for a MAIL FROM aligned
with From: detectors/auth.py), so a forger cannot spend a domain's good name or spoil it.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from seawall.addresses import network_of, parse_ip
from seawall.config import ReputationSettings
from seawall.errors import StoreError
from seawall.quietlog import QuietLog
from seawall.store import Store
from seawall.store.base import Decayed, decayed

log = logging.getLogger("seawall.reputation")
_quiet = QuietLog(log)

_ZEROS = (0.0, 0.0, 0.0)
_MAX_PENDING = 512  # keys waiting to be written before a flush is forced
_MAX_CACHED = 100_000  # records cached per process; the oldest go first


@dataclass(slots=True)
class _Reads:
    """The keys to read in one store call, as of ``now``, and the future its callers wait on."""

    now: float
    done: asyncio.Future[None]
    keys: dict[str, None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Record:
    """One source's history as it stands now (counts decayed to the time of reading)."""

    key: str  # "198.51.100.7" or "198.51.100.0/24"
    spam: float
    ham: float
    volume: float
    first: float  # unix time of the first message counted (since the record last expired)
    last: float  # ... and of the latest

    @property
    def spam_share(self) -> float:
        """Spam among the messages judged either way; 0 when none was."""
        judged = self.spam + self.ham
        return self.spam / judged if judged else 0.0

    def cautious_share(self, prior: float) -> float:
        """The spam share as if ``prior`` more messages had been ham, and likewise for
        :meth:`cautious_ham_share`: a few messages of one kind prove little."""
        return self.spam / (self.spam + self.ham + prior)

    def cautious_ham_share(self, prior: float) -> float:
        return self.ham / (self.spam + self.ham + prior)

    def describe(self) -> str:
        return f"spam={self.spam:.1f} ham={self.ham:.1f} volume={self.volume:.1f}"


@functools.lru_cache(maxsize=65536)
def keys_of(ip: str) -> tuple[str, str] | None:
    """The store keys of ``ip``'s record and its network's; None when it is no address."""
    address = parse_ip(ip)
    if address is None:
        return None
    return f"rep:ip:{address}", f"rep:net:{network_of(address)}"


def network_key(network: str) -> str | None:
    """The store key of a network's record: ``network`` must be a /24 (IPv6: a /64), the
    networks records are kept for ("198.51.100.0/24"; host bits are dropped); else None.

    >>> network_key("198.51.100.7/24"), network_key("198.51.0.0/16")
    ('rep:net:198.51.100.0/24', None)
    """
    try:
        net = ipaddress.ip_network(network.strip(), strict=False)
    except ValueError:
        return None
    if net.prefixlen != (24 if net.version == 4 else 64):
        return None
    return f"rep:net:{net}"


_DOMAIN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-._")


def domain_key(domain: str) -> str | None:
    """The store key of a sender domain's record; None when ``domain`` is no host name.

    >>> domain_key("Example.COM."), domain_key("localhost")
    ('rep:dom:example.com', None)
    """
    name = domain.strip().lower().rstrip(".")
    if "." not in name or len(name) > 253 or not _DOMAIN_CHARS.issuperset(name):
        return None
    return f"rep:dom:{name}"


class Reputation:
    """Reads and feeds the reputation records of one process (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        settings: ReputationSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.settings = settings
        self._clock = clock
        # key -> (counters as of `at`, at (caller's clock), first, last); None: no record
        # An OrderedDict: evicting its oldest entry is O(1), where next(iter(dict)) after
        # many deletions walks every hole they left (75 us an eviction at 100,000 entries).
        self._cache: OrderedDict[str, tuple[tuple[float, ...], float, float, float] | None] = (
            OrderedDict()
        )
        self._fetched: dict[str, float] = {}  # key -> when it was read (monotonic)
        self._pending: dict[str, list[float]] = {}
        self._pending_times: dict[str, tuple[float, float]] = {}  # key -> (first, last) added
        self._flushed = clock()
        self._timer: asyncio.TimerHandle | None = None  # the flush due flush_s after a count
        self._flushing: set[asyncio.Task[None]] = set()
        self._reads: _Reads | None = None  # the reads asked for in this turn of the loop
        self._reading: set[asyncio.Task[None]] = set()
        self.store_errors = 0

    async def lookup(self, ip: str, now: float) -> tuple[Record | None, Record | None]:
        """``ip``'s record and its network's, as of ``now``; None for no history."""
        keys = keys_of(ip)
        if keys is None:
            return None, None
        stale = [k for k in keys if self._clock() - self._fetched.get(k, -1e18) > self._ttl]
        if stale:
            await self._fetch(stale, now)
        ip_key, net_key = keys
        return self._current(ip_key, now), self._current(net_key, now)

    def cached(self, ip: str, now: float) -> tuple[Record | None, Record | None] | None:
        """What :meth:`lookup` would answer, when it needs no store call; else None."""
        keys = keys_of(ip)
        if keys is None:
            return None, None
        fresh = self._clock() - self._ttl
        if any(self._fetched.get(k, -1e18) < fresh for k in keys):
            return None
        return self._current(keys[0], now), self._current(keys[1], now)

    async def lookup_domain(self, domain: str, now: float) -> Record | None:
        """An authenticated sender domain's record, as of ``now``; None for no history."""
        key = domain_key(domain)
        if key is None:
            return None
        if self._clock() - self._fetched.get(key, -1e18) > self._ttl:
            await self._fetch([key], now)
        return self._current(key, now)

    def cached_domains(self, domains: Sequence[str], now: float) -> list[Record | None] | None:
        """What :meth:`lookup_domain` would answer for each of ``domains``, when none of
        them needs a store call; else None."""
        fresh = self._clock() - self._ttl
        out: list[Record | None] = []
        for domain in domains:
            key = domain_key(domain)
            if key is None:
                out.append(None)
            elif self._fetched.get(key, -1e18) < fresh:
                return None
            else:
                out.append(self._current(key, now))
        return out

    async def lookup_domains(self, domains: Sequence[str], now: float) -> list[Record | None]:
        """:meth:`lookup_domain` for each of ``domains``, those not fresh in the cache read
        in one store call."""
        keys = [domain_key(d) for d in domains]
        fresh = self._clock() - self._ttl
        stale = [k for k in dict.fromkeys(keys) if k and self._fetched.get(k, -1e18) < fresh]
        if stale:
            await self._fetch(stale, now)
        return [self._current(k, now) if k else None for k in keys]

    async def record_domain(self, domain: str, *, spam: bool, ham: bool, now: float) -> None:
        """Count one message that authenticated as ``domain``; written with the next flush."""
        key = domain_key(domain)
        if key is not None:
            await self._count((key,), spam=spam, ham=ham, now=now)

    async def read_domain(self, domain: str, now: float) -> Record | None:
        """Like :meth:`lookup_domain` but straight from the store, for the CLI."""
        key = domain_key(domain)
        if key is None:
            return None
        await self._fetch([key], now)
        return self._current(key, now)

    async def record(self, ip: str, *, spam: bool, ham: bool, now: float) -> None:
        """Count one message from ``ip``; written with the next flush."""
        keys = keys_of(ip)
        if keys is None:
            return
        await self._count(keys, spam=spam, ham=ham, now=now)

    async def _count(self, keys: Sequence[str], *, spam: bool, ham: bool, now: float) -> None:
        add = (float(spam), float(ham), 1.0)
        for key in keys:
            pending = self._pending.setdefault(key, [0.0, 0.0, 0.0])
            for i, amount in enumerate(add):
                pending[i] += amount
            first, _ = self._pending_times.get(key, (now, now))
            self._pending_times[key] = (min(first, now), now)
        if (
            self._clock() - self._flushed >= self.settings.flush_s
            or len(self._pending) >= _MAX_PENDING
        ):
            await self.flush()
        elif self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.settings.flush_s, self._flush_due, loop)

    def _flush_due(self, loop: asyncio.AbstractEventLoop) -> None:
        """The timer: flush what waits, from the loop (the task is kept until it ends)."""
        self._timer = None
        if self._pending:
            task = loop.create_task(self.flush())
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)

    async def flush(self, now: float | None = None) -> None:
        """Write what is pending; on a store error it is dropped, logged.

        Each key is written at the time of its latest message, so ``first`` and ``last``
        are when the messages came, not when they were written: one store call per second
        that the pending counts span (one or two, with a flush every ``flush_s``).
        ``now`` is not used (each count has its own time); it stays for callers.
        """
        del now
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._flushed = self._clock()
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        times, self._pending_times = self._pending_times, {}
        by_second: dict[int, dict[str, list[float]]] = {}
        for key, amounts in pending.items():
            by_second.setdefault(int(times[key][1]), {})[key] = amounts
        for second in sorted(by_second):
            batch = by_second[second]
            at = max(times[key][1] for key in batch)
            got = await self._decay(batch, at)
            if got is not None:
                self._remember(got, at)

    async def read(self, ip: str, now: float) -> tuple[Record | None, Record | None]:
        """Like :meth:`lookup` but straight from the store, for the CLI."""
        keys = keys_of(ip)
        if keys is None:
            return None, None
        await self._fetch(list(keys), now)
        return self._current(keys[0], now), self._current(keys[1], now)

    async def read_network(self, network: str, now: float) -> Record | None:
        """The record of a /24 (IPv6 /64) straight from the store, for the CLI; None when it
        has none, or ``network`` is no such network (:func:`network_key`)."""
        key = network_key(network)
        if key is None:
            return None
        await self._fetch([key], now)
        return self._current(key, now)

    @property
    def _ttl(self) -> float:
        return self.settings.cache_s

    async def _decay(
        self, updates: Mapping[str, Sequence[float]], now: float
    ) -> dict[str, Decayed] | None:
        """``updates`` added in the store (all zeros: only read); None when it failed."""
        try:
            return await self.store.decay(
                updates, half_life_s=self.settings.half_life_s, now=now, ttl_s=self.settings.ttl_s
            )
        except StoreError as exc:
            self._store_failed(exc)
            return None

    async def _fetch(self, keys: list[str], now: float) -> None:
        """Read ``keys`` into the cache, with the other reads asked for in this turn of the
        loop: one store call for all, made once the callers ready in this turn have run.

        The records are read as of the earliest ``now`` among them; each caller's
        :meth:`_current` decays them on to its own, as it does any cached record.
        """
        reads = self._reads
        loop = asyncio.get_running_loop()
        if reads is None or reads.done.get_loop() is not loop:  # (a loop stopped early)
            reads = self._reads = _Reads(now, loop.create_future())
            loop.call_soon(self._read_soon, reads, loop)
        reads.keys.update(dict.fromkeys(keys))
        reads.now = min(reads.now, now)
        # Shielded: a caller cancelled while waiting does not cancel the others' read.
        await asyncio.shield(reads.done)

    def _read_soon(self, reads: _Reads, loop: asyncio.AbstractEventLoop) -> None:
        if self._reads is reads:
            self._reads = None  # what is asked from now on is the next call's
        task = loop.create_task(self._read(reads))
        self._reading.add(task)
        task.add_done_callback(self._reading.discard)

    async def _read(self, reads: _Reads) -> None:
        try:
            keys = list(reads.keys)
            got = await self._decay(dict.fromkeys(keys, _ZEROS), reads.now)
            if got is not None:
                for key in keys:
                    if key not in got:
                        self._cache[key] = None
                        self._fetched[key] = self._clock()
                self._remember(got, reads.now)
        except asyncio.CancelledError:
            reads.done.cancel()
            raise
        except Exception as exc:  # not a store error (those _decay logs): the callers' to see
            if not reads.done.done():
                reads.done.set_exception(exc)
            return
        if not reads.done.done():
            reads.done.set_result(None)

    def _remember(self, got: dict[str, Decayed], now: float) -> None:
        fetched = self._clock()
        for key, value in got.items():
            self._cache[key] = (value.values, now, value.first, value.last)
            self._fetched[key] = fetched
        while len(self._cache) > _MAX_CACHED:
            oldest, _ = self._cache.popitem(last=False)
            self._fetched.pop(oldest, None)

    def _current(self, key: str, now: float) -> Record | None:
        cached = self._cache.get(key)
        pending = self._pending.get(key)
        if cached is None and pending is None:
            return None
        values = [0.0, 0.0, 0.0]
        first = last = now
        if cached is not None:
            counters, at, first, last = cached
            values = decayed(counters, at, now, self.settings.half_life_s)
        if pending is not None:
            values = [v + p for v, p in zip(values, pending, strict=True)]
            added_first, added_last = self._pending_times[key]
            first = min(first, added_first) if cached is not None else added_first
            last = max(last, added_last) if cached is not None else added_last
        name = key.split(":", 2)[2]
        return Record(name, values[0], values[1], values[2], first, last)

    def _store_failed(self, exc: StoreError) -> None:
        self.store_errors += 1
        _quiet.warning("store", "reputation: %s (%d store errors so far)", exc, self.store_errors)
