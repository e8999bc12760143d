"""Holding a copy's answer until its campaign's earlier copies are judged (sans I/O).

A campaign is judged by the verdicts of its first ``min_judged`` copies.  When a wave's
copies arrive together (neighbours in a scan, or a botnet's run on several connections
within milliseconds), they are all observed before any of them is judged, and none gets
``CAMPAIGN_SPAM``: what a copy is told depends on how the copies interleave.  So the
tracker holds a copy's answer back, bounded, when waiting can change it:

- the campaign has fewer than ``min_judged`` judgements and no admin mark, and
- its judgements plus its earlier copies observed in the last ``hold_s`` and not judged
  yet reach ``min_judged``.

The first ``min_judged`` copies never wait (nothing earlier could judge the campaign for
them), so holds do not chain.  A campaign in that state is about to be judged, and a spam
judgement puts the domains in half its copies on the local URI list: a message of another
cluster (or of none) that links to one of them waits for that judgement too.

A held answer goes out when the campaign it waits for reaches ``min_judged`` judgements
or an admin marks it, and at the latest ``hold_s`` after the copy was observed; a copy
whose judgement never comes (a worker died) counts as earlier only for ``hold_s``.  Who
waits (a future, a timer) is the caller's: :class:`Held`'s ``release`` is called once,
with the answer as it is then.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

# How many recent waits are kept for the percentiles in ``Holds.stats``.
WAITS_KEPT = 10_000
log = logging.getLogger("seawall.campaigns.hold")


@dataclass(eq=False, slots=True)
class Held:
    """One observe answer held back: the copy's campaign, when it was observed, and the
    links to look up on the blocklist again when it is released."""

    campaign: str  # the copy's own campaign ("" for none), whose view it gets
    since: float  # the copy's time (the message's ``now``)
    domains: tuple[str, ...]
    key: str = ""  # the campaign whose judgement it waits for (its own, or a listing one)
    reply: object = None  # the answer when it was observed (the tracker's Reply)
    release: Callable[[float], None] | None = None  # set by the waiter: called once
    done: bool = False
    started: float = field(default_factory=time.monotonic)  # for the waits' statistics


@dataclass(slots=True)
class HoldStats:
    held: int = 0  # answers held back
    judged: int = 0  # released by the campaign's judgement (or an admin's mark)
    timed_out: int = 0  # released at hold_s
    waits: deque[float] = field(default_factory=lambda: deque(maxlen=WAITS_KEPT))

    def summary(self) -> dict[str, float]:
        waits = sorted(self.waits)

        def at(q: float) -> float:
            return waits[min(len(waits) - 1, int(q * len(waits)))] if waits else 0.0

        return {
            "held": self.held,
            "judged": self.judged,
            "timed_out": self.timed_out,
            "wait_p50_s": round(at(0.5), 6),
            "wait_p99_s": round(at(0.99), 6),
            "wait_max_s": round(waits[-1], 6) if waits else 0.0,
        }


class Holds:
    """The copies in flight (observed, not judged) per campaign, and the answers held."""

    def __init__(self, *, min_judged: int, hold_s: float) -> None:
        self.min_judged = min_judged
        self.hold_s = hold_s
        self.inflight: dict[str, deque[float]] = {}  # campaign -> times of unjudged copies
        self.waiting: dict[str, list[Held]] = {}
        # Campaigns about to be judged: the time of their latest copy and the domains their
        # spam judgement would list; and those domains, to the campaigns.
        self.listing: dict[str, tuple[float, tuple[str, ...]]] = {}
        self.by_domain: dict[str, set[str]] = {}
        self.stats = HoldStats()

    @property
    def enabled(self) -> bool:
        return self.hold_s > 0

    def observed(
        self,
        campaign: str,
        now: float,
        *,
        judged: int,
        marked: bool,
        domains: tuple[str, ...],
        may_hold: bool = True,
        listable: Callable[[], tuple[str, ...]] | None = None,
    ) -> Held | None:
        """Count one copy of ``campaign`` in flight; a :class:`Held` when its answer should
        wait (see the module) and ``may_hold``, else None.  ``listable`` gives the domains
        the campaign's spam judgement would list (asked only when it is about to be
        judged)."""
        if not self.enabled or not campaign:
            return None
        times = self.inflight.get(campaign)
        if times is None:
            times = self.inflight[campaign] = deque()
        horizon = now - self.hold_s
        while times and times[0] < horizon:
            times.popleft()  # judgements lost, or far behind: they hold nobody any more
        earlier = len(times)
        times.append(now)
        if marked or judged >= self.min_judged:
            return None
        if listable is not None and judged + earlier + 1 >= self.min_judged:
            self._listing(campaign, now, listable())
        if not may_hold or judged + earlier < self.min_judged:
            return None
        return self._hold(Held(campaign, now, domains, key=campaign))

    def for_links(
        self, campaign: str, now: float, domains: tuple[str, ...], blocked: tuple[str, ...]
    ) -> Held | None:
        """A :class:`Held` when the message (of ``campaign``, or of none) links to a domain
        that another campaign about to be judged would list, and that is not listed yet."""
        if not self.by_domain or not self.enabled:
            return None
        horizon = now - self.hold_s
        for domain in domains:
            if domain in blocked:
                continue
            for other in self.by_domain.get(domain, ()):
                if other != campaign and self.listing[other][0] >= horizon:
                    return self._hold(Held(campaign, now, domains, key=other))
        return None

    def _hold(self, held: Held) -> Held:
        self.waiting.setdefault(held.key, []).append(held)
        self.stats.held += 1
        return held

    def _listing(self, campaign: str, now: float, domains: tuple[str, ...]) -> None:
        self._unlist(campaign)
        if domains:
            self.listing[campaign] = (now, domains)
            for domain in domains:
                self.by_domain.setdefault(domain, set()).add(campaign)

    def _unlist(self, campaign: str) -> None:
        entry = self.listing.pop(campaign, None)
        if entry is None:
            return
        for domain in entry[1]:
            others = self.by_domain.get(domain)
            if others is not None:
                others.discard(campaign)
                if not others:
                    del self.by_domain[domain]

    def judged(self, campaign: str) -> None:
        """One copy of ``campaign`` was judged: it is no longer in flight."""
        times = self.inflight.get(campaign)
        if times is None:
            return
        if times:
            times.popleft()
        if not times:
            del self.inflight[campaign]

    def settled(self, campaign: str, now: float) -> list[Held]:
        """The campaign has its judgement (or a mark): every answer held for it is due."""
        self._unlist(campaign)
        due = self.waiting.pop(campaign, [])
        for held in due:
            self.stats.judged += 1
            self._release(held, now)
        return due

    def expire(self, held: Held, now: float) -> None:
        """``hold_s`` passed for ``held`` (a no-op when it was released already)."""
        if held.done:
            return
        waiting = self.waiting.get(held.key)
        if waiting is not None and held in waiting:
            waiting.remove(held)
            if not waiting:
                del self.waiting[held.key]
        self.stats.timed_out += 1
        self._release(held, now)

    def moved(self, gone: str, keep: str) -> None:
        """Campaign ``gone`` was merged into ``keep``: its copies in flight and held
        answers are ``keep``'s."""
        times = self.inflight.pop(gone, None)
        if times:
            into = self.inflight.setdefault(keep, deque())
            into.extend(times)
            if len(into) > 1:
                self.inflight[keep] = deque(sorted(into))
        self._unlist(gone)  # ``keep`` lists again with its next copy
        held = self.waiting.pop(gone, None)
        if held:
            for h in held:
                h.key = keep
            self.waiting.setdefault(keep, []).extend(held)

    def sweep(self, now: float) -> None:
        """Forget copies in flight for longer than ``hold_s`` (their judgement was lost)."""
        horizon = now - self.hold_s
        for campaign in [c for c, t in self.inflight.items() if not t or t[-1] < horizon]:
            del self.inflight[campaign]
        for campaign in [c for c, (at, _) in self.listing.items() if at < horizon]:
            self._unlist(campaign)

    def log_stats(self) -> None:
        """The holds so far, at debug (a worker's connection closed, a scan ended)."""
        if self.stats.held and log.isEnabledFor(logging.DEBUG):
            log.debug("campaign holds: %s", self.stats.summary())

    def _release(self, held: Held, now: float) -> None:
        held.done = True
        self.stats.waits.append(time.monotonic() - held.started)
        if held.release is not None:
            held.release(now)
