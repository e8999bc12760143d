"""The cases on Redis, shared by every node: ``{zombies}`` keys beside the Store's.

Keys (``seawall:{zombies}:...``; the braces are a Cluster hash tag, so a step commits in
one MULTI/EXEC on one slot):

================  ======  ================================================================
``row:SUBJECT``   string  the subject's Row, packed (SUBJECT: ``account:NAME``, ``ip:ADDR``,
                          ``ext:ADDR``)
``cases``         hash    case id -> subject, for every subject with a case
``ext``           zset    external subjects by their last evidence time
``ev:SUBJECT``    zset    evidence ids of a subject by time (at most max_evidence_per_case)
``evat``          zset    "SUBJECT\\0ID" of all evidence by time (for pruning)
``evb``           hash    evidence id -> Evidence, packed (its identity: once)
``raw``           hash    raw original by digest; ``rawat`` zset: digest by time
``camp:CAMPAIGN`` set     the subjects that sent a campaign
``st:STATE``      zset    the subjects whose case is in STATE, by the case's updated_at
``term:TERM``     set     the subjects whose case is found by TERM (``ip:ADDR``,
                          ``campaign:NAME``: rules.case_terms)
``index``         string  "1" once ``st:`` and ``term:`` hold every case (a book written
                          before them gets them on the first open, in steps under
                          the lock)
``inbox``         list    evidence pushed by the scanning workers for the desk
``lock``          string  the writer's token, 10 s expiry: one atomic step at a time
================  ======  ================================================================

A case list reads the ``st:`` sets (newest first, a page's worth) and the rows of its page
only; its count by state is one ZCARD (or ZCOUNT) per state; a filter on an account, an
address or a campaign reads the rows of the subjects it names.  Every write of a row moves
its subject in ``st:`` and ``term:`` in the same MULTI.

Nothing here expires by itself: ``prune`` (run by the desk) drops evidence, raw originals
and external subjects older than ``evidence_ttl_s``.
"""

from __future__ import annotations

import functools
import os
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import redis

from seawall.config import redact_url
from seawall.errors import StoreError
from seawall.store.redis import sync_client
from seawall.zombies.model import STATES, Evidence
from seawall.zombies.rules import Row
from seawall.zombies.store import ENCODE, EVIDENCE, ROW, CaseQuery, case_terms, newest_first

T = TypeVar("T")

_FAILURES = (redis.RedisError, redis.exceptions.RedisClusterException, OSError)
_LOCK_MS = 10_000
_TIMEOUT_S = 5.0
_INDEX_STEP = 2_000  # cases indexed by one step of the one-time build
_PRUNE_MAX = 10_000  # evidence forgotten by one prune (the desk prunes every hour)
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class _RedisTx:
    """Reads go to Redis (seeing this step's own writes); writes wait for the commit."""

    def __init__(self, book: RedisBook) -> None:
        self.book = book
        self.rows: dict[str, Row] = {}
        self.before: dict[str, Row | None] = {}  # rows as this step found them
        self.ids: set[str] = set()
        self.writes: list[tuple[str, tuple[Any, ...]]] = []

    def row(self, key: str) -> Row | None:
        if key in self.rows:
            return self.rows[key]
        if key not in self.before:
            self.before[key] = self.book.row(key)
        return self.before[key]

    def has_evidence(self, evidence_id: str) -> bool:
        if evidence_id in self.ids:
            return True
        return bool(self.book.r.hexists(self.book.k("evb"), evidence_id))

    def put_row(self, row: Row) -> None:
        k = self.book.k
        old = self.row(row.key)
        self.rows[row.key] = row
        self.writes.append(("set", (k("row:" + row.key), ENCODE.encode(row))))
        if row.state is not None:
            self.writes.append(("hset", (k("cases"), row.case_id, row.key)))
            # The index holds the stored row: only what changed from it is written.
            was = None if old is None else old.state
            if was is not None and was != row.state:
                self.writes.append(("zrem", (k("st:" + was), row.key)))
            if old is None or was != row.state or old.updated_at != row.updated_at:
                self.writes.append(("zadd", (k("st:" + row.state), {row.key: row.updated_at})))
            have = set() if old is None else case_terms(old)
            want = case_terms(row)
            for term in have - want:
                self.writes.append(("srem", (k("term:" + term), row.key)))
            for term in want - have:
                self.writes.append(("sadd", (k("term:" + term), row.key)))
        if not row.own:
            self.writes.append(("zadd", (k("ext"), {row.key: row.last_seen})))

    def put_evidence(self, key: str, evidence: Evidence, raw: bytes | None, keep: int) -> None:
        k, r = self.book.k, self.book.r
        self.ids.add(evidence.id)
        w = self.writes
        w.append(("hset", (k("evb"), evidence.id, ENCODE.encode(evidence))))
        w.append(("zadd", (k("ev:" + key), {evidence.id: evidence.at})))
        w.append(("zadd", (k("evat"), {f"{key}\x00{evidence.id}": evidence.at})))
        if raw is not None and evidence.raw_ref:
            w.append(("hsetnx", (k("raw"), evidence.raw_ref, raw)))
            w.append(("zadd", (k("rawat"), {evidence.raw_ref: evidence.at})))
        if evidence.campaign:
            w.append(("sadd", (k("camp:" + evidence.campaign), key)))
        excess = int(r.zcard(k("ev:" + key))) + 1 - keep
        if excess > 0:
            old = [i.decode() for i in r.zrange(k("ev:" + key), 0, excess - 1)]
            if old:
                w.append(("zrem", (k("ev:" + key), *old)))
                w.append(("hdel", (k("evb"), *old)))
                w.append(("zrem", (k("evat"), *(f"{key}\x00{i}" for i in old))))


class RedisBook:
    """The Backend on Redis (a synchronous client, on the CaseBook's thread)."""

    def __init__(self, url: str, *, namespace: str = "seawall", client: Any = None) -> None:
        self.where = redact_url(url)
        self._url = url
        self._base = f"{namespace}:{{zombies}}:"
        self._client = client
        self._pid = os.getpid() if client is not None else 0
        self._release: Any = None
        self._call(lambda r: r.ping())
        self._index()

    def _index(self) -> int:
        """Fill ``st:`` and ``term:`` from the rows of a book written before them, then set
        ``index``; how many cases, or -1 if it was done.  In steps of ``_INDEX_STEP`` cases,
        each under the writers' lock (far shorter than its expiry, whatever the book's
        size) with its rows read under it; a writer between steps keeps its own row's
        entries, so none is left stale.  The process waits for it before it reads."""
        if self._call(lambda r: r.get(self.k("index"))) == b"1":
            return -1
        keys = sorted(bytes(k).decode() for k in self._call(lambda r: r.hvals(self.k("cases"))))
        n = 0
        for i in range(0, len(keys), _INDEX_STEP):
            done = self.atomic(functools.partial(self._index_step, keys[i : i + _INDEX_STEP]))
            if done < 0:
                return -1  # another process finished it
            n += done
        self.atomic(lambda tx: tx.writes.append(("set", (self.k("index"), "1"))))
        return n

    def _index_step(self, keys: Sequence[str], tx: _RedisTx) -> int:
        if self.r.get(self.k("index")) == b"1":
            return -1
        rows = [row for row in self._rows(keys) if row.state is not None]
        w = tx.writes
        for state in STATES:
            here = {row.key: row.updated_at for row in rows if row.state == state}
            if here:
                w.append(("zadd", (self.k("st:" + state), here)))
            if len(here) < len(rows):
                others = (row.key for row in rows if row.state != state)
                w.append(("zrem", (self.k("st:" + state), *others)))
        by_term: dict[str, list[str]] = {}
        for row in rows:
            for term in case_terms(row):
                by_term.setdefault(term, []).append(row.key)
        w += [("sadd", (self.k("term:" + t), *subjects)) for t, subjects in by_term.items()]
        return len(rows)

    def k(self, name: str) -> str:
        return self._base + name

    @property
    def r(self) -> Any:
        if self._client is None or self._pid != os.getpid():
            self._client = sync_client(self._url, timeout_s=_TIMEOUT_S)
            self._pid = os.getpid()
            self._release = None
        return self._client

    def _call(self, fn: Callable[[Any], T]) -> T:
        try:
            return fn(self.r)
        except _FAILURES as exc:
            raise StoreError(f"cases on {self.where}: {exc}") from None

    def atomic(self, fn: Callable[[_RedisTx], T]) -> T:
        token = uuid.uuid4().hex
        deadline = time.monotonic() + _TIMEOUT_S
        lock = self.k("lock")
        while not self._call(lambda r: r.set(lock, token, px=_LOCK_MS, nx=True)):
            if time.monotonic() > deadline:
                raise StoreError(f"cases on {self.where}: another writer holds the lock")
            time.sleep(0.005)
        try:
            tx = _RedisTx(self)

            def run(r: Any) -> T:
                result = fn(tx)
                if tx.writes:
                    pipe = r.pipeline(transaction=True)
                    for method, args in tx.writes:
                        getattr(pipe, method)(*args)
                    pipe.execute()
                return result

            return self._call(run)
        finally:
            try:
                if self._release is None:
                    self._release = self.r.register_script(_RELEASE)
                self._release(keys=[lock], args=[token])
            except _FAILURES:
                pass  # it expires by itself

    def row(self, key: str) -> Row | None:
        blob = self._call(lambda r: r.get(self.k("row:" + key)))
        return None if blob is None else ROW.decode(blob)

    def case_key(self, case_id: str) -> str | None:
        key = self._call(lambda r: r.hget(self.k("cases"), case_id))
        return None if key is None else bytes(key).decode()

    def _rows(self, keys: Sequence[str]) -> list[Row]:
        if not keys:
            return []
        blobs = self._call(lambda r: r.mget([self.k("row:" + key) for key in keys]))
        return [ROW.decode(b) for b in blobs if b is not None]

    def case_rows(self) -> list[Row]:
        keys = self._call(lambda r: r.hvals(self.k("cases")))
        return [row for row in self._rows([bytes(k).decode() for k in keys]) if row.state]

    def _named(self, query: CaseQuery) -> list[str] | None:
        """The subjects an account, address or campaign filter names (None: no such
        filter)."""
        keys: set[str] | None = None
        if query.account is not None:
            keys = {f"account:{query.account}"}
        for kind, value in (("ip", query.ip), ("campaign", query.campaign)):
            if value is not None:
                found = self._members(self.k(f"term:{kind}:{value}"))
                keys = found if keys is None else keys & found
        return None if keys is None else sorted(keys)

    def _members(self, name: str) -> set[str]:
        return {bytes(m).decode() for m in self._call(lambda r: r.smembers(name))}

    def case_page(self, query: CaseQuery, limit: int | None) -> list[Row]:
        named = self._named(query)
        if named is not None:
            return newest_first(r for r in self._rows(named) if query.matches(r))[:limit]
        low = "-inf" if query.since is None else query.since
        states = query.states or STATES

        def run(r: Any) -> list[list[tuple[bytes, float]]]:
            pipe = r.pipeline(transaction=True)
            for state in states:
                pipe.zrevrangebyscore(
                    self.k("st:" + state),
                    "+inf",
                    low,
                    start=None if limit is None else 0,
                    num=limit,
                    withscores=True,
                )
            return list(pipe.execute())

        found = [(-score, bytes(key).decode()) for got in self._call(run) for key, score in got]
        if limit is not None:
            found += self._ties(states, found, limit)
        keys = [key for _, key in sorted(set(found))[:limit]]
        return newest_first(r for r in self._rows(keys) if query.matches(r))

    def _ties(
        self, states: Sequence[str], found: list[tuple[float, str]], limit: int
    ) -> list[tuple[float, str]]:
        """The cases that share the page's oldest time with its last one (a state's first
        ``limit`` by time may cut between cases of one time, which go by key)."""
        if len(found) < limit or limit <= 0:
            return []
        last = sorted(found)[limit - 1][0]

        def run(r: Any) -> list[list[bytes]]:
            pipe = r.pipeline(transaction=True)
            for state in states:
                pipe.zrangebyscore(self.k("st:" + state), -last, -last)
            return list(pipe.execute())

        return [(last, bytes(key).decode()) for got in self._call(run) for key in got]

    def case_counts(self, query: CaseQuery) -> dict[str, int]:
        named = self._named(query)
        if named is not None:
            counts: dict[str, int] = {}
            for row in self._rows(named):
                if query.matches(row):
                    counts[str(row.state)] = counts.get(str(row.state), 0) + 1
            return counts
        states = query.states or STATES

        def run(r: Any) -> list[int]:
            pipe = r.pipeline(transaction=True)
            for state in states:
                if query.since is None:
                    pipe.zcard(self.k("st:" + state))
                else:
                    pipe.zcount(self.k("st:" + state), query.since, "+inf")
            return list(pipe.execute())

        return {s: int(n) for s, n in zip(states, self._call(run), strict=True) if n}

    def external_rows(self, since: float) -> list[Row]:
        keys = self._call(lambda r: r.zrangebyscore(self.k("ext"), since, "+inf"))
        return self._rows([bytes(k).decode() for k in keys])

    def evidence(self, key: str, limit: int | None) -> list[Evidence]:
        end = -1 if limit is None else limit - 1
        ids = self._call(lambda r: r.zrevrange(self.k("ev:" + key), 0, end))
        if not ids:
            return []
        blobs = self._call(lambda r: r.hmget(self.k("evb"), ids))
        return [EVIDENCE.decode(b) for b in blobs if b is not None]

    def raw(self, ref: str) -> bytes | None:
        data = self._call(lambda r: r.hget(self.k("raw"), ref))
        return None if data is None else bytes(data)

    def campaign_subjects(self, campaign: str) -> list[str]:
        keys = self._call(lambda r: r.smembers(self.k("camp:" + campaign)))
        return sorted(bytes(k).decode() for k in keys)

    def push(self, items: Sequence[bytes]) -> None:
        self._call(lambda r: r.rpush(self.k("inbox"), *items))

    def take(self, n: int) -> list[bytes]:
        def run(r: Any) -> list[bytes]:
            pipe = r.pipeline(transaction=True)
            pipe.lrange(self.k("inbox"), 0, n - 1)
            pipe.ltrim(self.k("inbox"), n, -1)
            items, _ = pipe.execute()
            return [bytes(i) for i in items]

        return self._call(run)

    def prune(self, before: float) -> int:
        def step(tx: _RedisTx) -> int:
            r, k = self.r, self.k
            refs = r.zrangebyscore(k("rawat"), "-inf", f"({before}")
            if refs:
                tx.writes.append(("hdel", (k("raw"), *refs)))
                tx.writes.append(("zrem", (k("rawat"), *refs)))
            old = [bytes(x).decode() for x in r.zrangebyscore(k("ext"), "-inf", f"({before}")]
            if old:
                tx.writes.append(("zrem", (k("ext"), *old)))
                tx.writes.append(("delete", tuple(k("row:" + key) for key in old)))
            for key in old:
                tx.writes.append(("delete", (k("ev:" + key),)))
            # Evidence by time, over every subject: "SUBJECT\0ID" in evat.
            members = r.zrangebyscore(k("evat"), "-inf", f"({before}", start=0, num=_PRUNE_MAX)
            by_key: dict[str, list[str]] = {}
            for member in members:
                key, _, ident = bytes(member).decode().partition("\x00")
                by_key.setdefault(key, []).append(ident)
            for key, ids in by_key.items():
                tx.writes.append(("zrem", (k("ev:" + key), *ids)))
                tx.writes.append(("hdel", (k("evb"), *ids)))
            if members:
                tx.writes.append(("zrem", (k("evat"), *members)))
            return len(members)

        return self.atomic(step)

    def close(self) -> None:
        if self._client is not None and self._pid == os.getpid():
            self._client.close()
        self._client = None
