"""``CaseBook``: the CaseStore over the state every other part uses.

Embedded it is four tables in ``state.sqlite`` (``sqlite_book.py``); with ``state`` a Redis
URL, ``{zombies}`` keys on that Redis (``redis_book.py``).  Both backends are synchronous
and run on one thread of the process; an atomic step (evidence plus its subject's row, or
a transition) is one SQLite ``BEGIN IMMEDIATE`` or one Redis ``MULTI`` under a short lock.

The *inbox* is how a scanning worker hands evidence to the desk without waiting for it:
``push`` appends encoded Evidence (one INSERT or RPUSH), the desk ``take``s batches,
resolves the account and ingests them (``engine.py``).
"""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, TypeVar

import msgspec

from seawall.config import Config, ZombiesSettings, state_url
from seawall.zombies.model import (
    ACTIVE_STATES,
    Case,
    CaseError,
    CasePage,
    Evidence,
    Ingested,
    State,
    Transition,
    Zombie,
)
from seawall.zombies.rules import Row, apply_evidence, apply_transition, subject_key, to_case

T = TypeVar("T")

ROW = msgspec.msgpack.Decoder(Row)
EVIDENCE = msgspec.msgpack.Decoder(Evidence)
ENCODE = msgspec.msgpack.Encoder()


class CaseQuery(msgspec.Struct, frozen=True, kw_only=True):
    """The filters of a case list; a backend answers it from its indexes (``case_page``:
    the matching rows newest ``updated_at`` first, then by subject key; ``case_counts``:
    how many match, by state) and ``matches`` is what the answer must equal."""

    states: tuple[str, ...] = ()
    account: str | None = None
    ip: str | None = None
    campaign: str | None = None
    since: float | None = None

    def matches(self, r: Row) -> bool:
        return (
            r.state is not None
            and (not self.states or r.state in self.states)
            and (self.account is None or r.account == self.account)
            and (self.ip is None or self.ip in r.ips or r.ip == self.ip)
            and (self.campaign is None or self.campaign in r.campaigns)
            and (self.since is None or r.updated_at >= self.since)
        )


def newest_first(rows: Iterable[Row]) -> list[Row]:
    """``rows`` in a case list's order: newest ``updated_at`` first, then by key."""
    return sorted(rows, key=lambda r: (-r.updated_at, r.key))


def case_terms(row: Row) -> set[str]:
    """What a case is found by besides its state and time: ``ip:ADDR`` for each address
    it has (or is), ``campaign:NAME`` for each campaign it sent; none for a subject
    without a case."""
    if row.state is None:
        return set()
    ips = {*row.ips, *((row.ip,) if row.ip else ())}
    return {f"ip:{a}" for a in ips} | {f"campaign:{c}" for c in row.campaigns}


class Tx(Protocol):
    """Reads and writes of one atomic step (writes are seen by the step's own reads)."""

    def row(self, key: str) -> Row | None: ...
    def has_evidence(self, evidence_id: str) -> bool: ...
    def put_row(self, row: Row) -> None: ...
    def put_evidence(self, key: str, evidence: Evidence, raw: bytes | None, keep: int) -> None: ...


class Backend(Protocol):
    """What a CaseBook needs of a storage backend (synchronous, one thread)."""

    def atomic(self, fn: Callable[[Tx], T]) -> T: ...
    def row(self, key: str) -> Row | None: ...
    def case_key(self, case_id: str) -> str | None: ...
    def case_rows(self) -> list[Row]: ...
    def case_page(self, query: CaseQuery, limit: int | None) -> list[Row]: ...
    def case_counts(self, query: CaseQuery) -> dict[str, int]: ...
    def external_rows(self, since: float) -> list[Row]: ...
    def evidence(self, key: str, limit: int | None) -> list[Evidence]: ...
    def raw(self, ref: str) -> bytes | None: ...
    def campaign_subjects(self, campaign: str) -> list[str]: ...
    def push(self, items: Sequence[bytes]) -> None: ...
    def take(self, n: int) -> list[bytes]: ...
    def prune(self, before: float) -> int: ...
    def close(self) -> None: ...


class CaseBook:
    """The :class:`~seawall.zombies.model.CaseStore` over a Backend."""

    def __init__(self, backend: Backend, settings: ZombiesSettings) -> None:
        self.backend = backend
        self.settings = settings
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="seawall-cases")

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    # -- evidence ------------------------------------------------------------------------
    async def add_evidence(self, evidence: Evidence, raw: bytes | None = None) -> Ingested:
        return await self._run(self._add, evidence, raw, time.time())

    def _add(self, evidence: Evidence, raw: bytes | None, now: float) -> Ingested:
        key = subject_key(evidence)
        keep = self.settings.max_evidence_per_case

        def step(tx: Tx) -> Ingested:
            row = tx.row(key)
            if tx.has_evidence(evidence.id):
                case = to_case(row) if row is not None and row.state is not None else None
                return Ingested(new=False, case=case)
            if evidence.kind == "clean":
                # Clean mail is counted on a subject with evidence, never kept one by one.
                if row is None:
                    return Ingested(new=False, case=None)
                after, moved = apply_evidence(row, evidence, self.settings, now)
                tx.put_row(after)
            else:
                after, moved = apply_evidence(row, evidence, self.settings, now)
                tx.put_evidence(key, evidence, raw, keep)
                tx.put_row(after)
            case = to_case(after) if after.state is not None else None
            return Ingested(new=True, case=case, moved=moved)

        return self.backend.atomic(step)

    async def push(self, evidence: Sequence[Evidence]) -> None:
        """Hand evidence to the desk (the workers' path: one append)."""
        if evidence:
            await self._run(self.backend.push, [ENCODE.encode(e) for e in evidence])

    async def take(self, n: int) -> list[Evidence]:
        """Up to ``n`` pushed pieces of evidence, oldest first, removed from the inbox;
        an undecodable item is dropped."""
        items = await self._run(self.backend.take, n)
        out = []
        for item in items:
            try:
                out.append(EVIDENCE.decode(item))
            except msgspec.DecodeError:
                continue
        return out

    async def evidence(self, case_id: str, *, limit: int | None = None) -> list[Evidence]:
        key = await self._run(self.backend.case_key, case_id)
        if key is None:
            raise CaseError(f"no case {case_id}")
        return await self._run(self.backend.evidence, key, limit)

    async def raw(self, ref: str) -> bytes | None:
        return await self._run(self.backend.raw, ref)

    async def external_evidence(self, ip: str, *, limit: int | None = None) -> list[Evidence]:
        """The evidence against the external address ``ip`` (no case), newest first."""
        return await self._run(self.backend.evidence, f"ext:{ip}", limit)

    # -- cases ---------------------------------------------------------------------------
    async def get(self, case_id: str) -> Case | None:
        key = await self._run(self.backend.case_key, case_id)
        row = None if key is None else await self._run(self.backend.row, key)
        return to_case(row) if row is not None and row.state is not None else None

    async def find(self, *, account: str | None = None, ip: str | None = None) -> Case | None:
        for key in ([f"account:{account}"] if account else []) + ([f"ip:{ip}"] if ip else []):
            row = await self._run(self.backend.row, key)
            if row is not None and row.state is not None:
                return to_case(row)
        return None

    async def list(
        self,
        *,
        states: Sequence[State] = (),
        account: str | None = None,
        ip: str | None = None,
        campaign: str | None = None,
        since: float | None = None,
        limit: int | None = None,
    ) -> builtins.list[Case]:
        query = CaseQuery(
            states=tuple(states), account=account, ip=ip, campaign=campaign, since=since
        )
        rows = await self._run(self.backend.case_page, query, limit)
        return [to_case(r) for r in rows]

    async def page(
        self,
        *,
        states: Sequence[State] = (),
        account: str | None = None,
        ip: str | None = None,
        campaign: str | None = None,
        since: float | None = None,
        limit: int = 100,
    ) -> CasePage:
        query = CaseQuery(
            states=tuple(states), account=account, ip=ip, campaign=campaign, since=since
        )

        def read() -> tuple[dict[str, int], builtins.list[Row]]:  # one hop to the thread
            page = self.backend.case_page(query, limit) if limit > 0 else []
            return self.backend.case_counts(query), page

        by_state, rows = await self._run(read)
        return CasePage(
            cases=tuple(to_case(r) for r in rows), total=sum(by_state.values()), by_state=by_state
        )

    async def transition(
        self, case_id: str, new_state: State, who: str, why: str, *, at: float | None = None
    ) -> Case:
        return await self._run(self._transition, case_id, new_state, who, why, at or time.time())

    async def note(self, case_id: str, who: str, why: str, *, at: float | None = None) -> Case:
        return await self._run(self._transition, case_id, None, who, why, at or time.time())

    def _transition(
        self, case_id: str, new_state: State | None, who: str, why: str, at: float
    ) -> Case:
        key = self.backend.case_key(case_id)
        if key is None:
            raise CaseError(f"no case {case_id}")

        def step(tx: Tx) -> Case:
            row = tx.row(key)
            if row is None or row.state is None:
                raise CaseError(f"no case {case_id}")
            after = apply_transition(row, new_state or row.state, who, why, at)
            tx.put_row(after)
            return to_case(after)

        return self.backend.atomic(step)

    # -- sharing -------------------------------------------------------------------------
    async def active_zombies(self, now: float) -> builtins.list[Zombie]:
        ttl = self.settings.external_ttl_s
        own = await self._run(self.backend.case_page, CaseQuery(states=ACTIVE_STATES), None)
        external = await self._run(self.backend.external_rows, now - ttl)
        out = [
            Zombie(
                ip=ip,
                cls="own",
                expires=now + ttl,
                case_id=r.case_id,
                last_seen=r.last_seen,
                campaigns=r.campaigns,
            )
            for r in own
            for ip in (r.ips[-1:] if r.account else (r.ip,) if r.ip else ())
        ]
        out += [
            Zombie(
                ip=r.ip,
                cls="malware" if r.malware else "botnet",
                expires=r.last_seen + ttl,
                last_seen=r.last_seen,
                campaigns=r.campaigns,
            )
            for r in external
            if r.ip and r.last_seen + ttl > now
        ]
        return out

    async def campaign_senders(self, campaign: str) -> tuple[builtins.list[str], int]:
        keys = await self._run(self.backend.campaign_subjects, campaign)
        own = sorted(k.partition(":")[2] for k in keys if not k.startswith("ext:"))
        return own, sum(1 for k in keys if k.startswith("ext:"))

    async def prune(self, now: float) -> int:
        """Forget evidence older than ``evidence_ttl_s`` and external addresses past it."""
        return await self._run(self.backend.prune, now - self.settings.evidence_ttl_s)

    async def close(self) -> None:
        await self._run(self.backend.close)
        self._executor.shutdown(wait=False)


def open_case_store(config: Config, *, rebuild: bool = False) -> CaseBook:
    """The cases on the configured state: Redis when ``state`` is a Redis URL, else the
    tables in ``<state_dir>/state.sqlite`` (``rebuild``: the desk's open, which brings
    tables made by earlier releases to the current shape; see sqlite_book.py).  Raises
    StoreError when it cannot be opened."""
    url = state_url(config)
    backend: Backend
    if url is not None:
        from seawall.zombies.redis_book import RedisBook

        backend = RedisBook(url)
    else:
        from seawall.zombies.sqlite_book import SqliteBook

        backend = SqliteBook(Path(config.state_dir) / "state.sqlite", rebuild=rebuild)
    return CaseBook(backend, config.zombies)


__all__ = [
    "Backend",
    "CaseBook",
    "CaseQuery",
    "case_terms",
    "newest_first",
    "Transition",
    "Tx",
    "open_case_store",
]
