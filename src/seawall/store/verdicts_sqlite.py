"""``SqliteVerdicts``: the verdict history in ``<state_dir>/verdicts.sqlite`` (embedded mode).

A file of its own beside ``state.sqlite``, so the history's batched writes never hold the
write lock that the Store's counters (reputation, greylisting, the policy service) wait
for.  Tables:

``verdicts``       one row per record: the searchable fields (case-folded where a search
                   matches a part), ``symbols`` as ``\\nNAME\\n...`` for the symbol search,
                   and the whole record as JSON
``verdict_counts`` (kind, bucket, name) -> count, expiring ``counters_s`` after the bucket
``verdict_kept``   the raw messages kept (``keep_messages``), with their time and size

Every process opens its own connection after ``fork()``; every call runs on one thread per
process, as the Store's do, so the event loop never waits on another worker's lock.  That
thread waits up to ``BUSY_TIMEOUT_S`` for another process's write lock (a worker's batch,
a trim), so a loaded host delays a batch rather than failing it.

Opening writes nothing to a history that is already set up (WAL, every table): the
dashboard and the tools that read it never take the write lock the workers need.  Setting
up a new file (journal mode, schema) is retried while another process holds the lock, as
the workers of a new ``seawall serve`` all open it at once and SQLite answers a journal
mode switch that meets another connection with "database is locked" at once, without
waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from seawall.errors import StoreError
from seawall.store.base import ERRORS
from seawall.store.sqlite_tx import immediate, run_script
from seawall.store.verdicts import (
    DomainStats,
    Search,
    Side,
    VerdictRecord,
    bare_message_id,
    counter_updates,
    decode_record,
    domain_stats,
    encode_record,
    hour_range,
    minute_range,
    top,
)

if TYPE_CHECKING:
    from seawall.config import HistorySettings

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
    id INTEGER PRIMARY KEY, time REAL NOT NULL, action TEXT NOT NULL, queue_id TEXT NOT NULL,
    message_id TEXT NOT NULL, client_ip TEXT NOT NULL, sender TEXT NOT NULL,
    recipients TEXT NOT NULL, subject TEXT NOT NULL, symbols TEXT NOT NULL,
    record BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS verdicts_time ON verdicts (time);
CREATE TABLE IF NOT EXISTS verdict_counts (
    kind TEXT NOT NULL, bucket INTEGER NOT NULL, name TEXT NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (kind, bucket, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS verdict_kept (
    id INTEGER PRIMARY KEY, time REAL NOT NULL, size INTEGER NOT NULL, raw BLOB NOT NULL);
"""

_INSERT = (
    "INSERT INTO verdicts (id, time, action, queue_id, message_id, client_ip, sender,"
    " recipients, subject, symbols, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_COUNT = (
    "INSERT INTO verdict_counts (kind, bucket, name, count) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (kind, bucket, name) DO UPDATE SET count = count + excluded.count"
)
_TRIM_INTERVAL_S = 30.0
BUSY_TIMEOUT_S = 30.0  # a wait for another process's lock, on the history's own thread
# What _SCHEMA makes: present, the file is set up and an open writes nothing.
_OBJECTS = frozenset({"verdicts", "verdicts_time", "verdict_counts", "verdict_kept"})

_INHERITED: list[sqlite3.Connection] = []


class SqliteVerdicts:
    """The history in one SQLite file; see the module docstring."""

    def __init__(
        self, path: Path, settings: HistorySettings, busy_timeout_s: float = BUSY_TIMEOUT_S
    ) -> None:
        self.path = path
        self.settings = settings
        self.busy_timeout_s = busy_timeout_s
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._executor = _executor()
        self._next_trim = 0.0
        self._closed = False

    @classmethod
    def open(
        cls, path: Path, settings: HistorySettings, *, busy_timeout_s: float = BUSY_TIMEOUT_S
    ) -> SqliteVerdicts:
        """Open (creating) the history at ``path``; raises :class:`StoreError`.

        ``busy_timeout_s`` bounds each wait for another process's lock."""
        history = cls(path, settings, busy_timeout_s)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            history._set_up(history._db())
        except (OSError, sqlite3.Error) as exc:
            history._close_db()
            history._executor.shutdown(wait=False)
            raise StoreError(f"cannot open the verdict history {path}: {exc}") from None
        return history

    async def record(self, record: VerdictRecord, raw: bytes | None = None) -> int:
        return (await self.record_many([(record, raw)]))[0]

    async def assign_ids(self, records: Sequence[VerdictRecord]) -> list[VerdictRecord]:
        """``records`` as they are: a write here is one transaction, so one that failed left
        nothing behind, and the ids are given as it commits (any given before are not used)."""
        return list(records)

    async def record_many(self, items: Sequence[tuple[VerdictRecord, bytes | None]]) -> list[int]:
        if not items:
            return []
        return await self._call(self._record_many, list(items))

    async def minutes(self, start: float, end: float) -> list[tuple[int, dict[str, int]]]:
        span = minute_range(start, end)
        rows = await self._call(self._counts, "a", span.start, span.stop)
        out: dict[int, dict[str, int]] = {m: {} for m in span}
        for bucket, name, count in rows:
            out[bucket][name] = out[bucket].get(name, 0) + count
        return list(out.items())

    async def infected(self, start: float, end: float) -> list[tuple[int, int]]:
        span = minute_range(start, end)
        rows = await self._call(self._counts, "i", span.start, span.stop)
        out = dict.fromkeys(span, 0)
        for bucket, _, count in rows:
            out[bucket] += count
        return list(out.items())

    async def top_symbols(self, start: float, end: float, limit: int = 20) -> list[tuple[str, int]]:
        return top(await self._summed("s", start, end), limit)

    async def domains(
        self, start: float, end: float, side: Side, limit: int = 50
    ) -> list[DomainStats]:
        kind = "r" if side == "recipient" else "f"
        return domain_stats(await self._summed(kind, start, end), limit)

    async def search(self, query: Search, limit: int = 100) -> list[VerdictRecord]:
        return await self._call(self._search, query, max(0, limit))

    async def get(self, record_id: int) -> VerdictRecord | None:
        return await self._call(self._get, record_id)

    async def kept_message(self, record_id: int) -> bytes | None:
        return await self._call(self._kept, record_id)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._pid == os.getpid():
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, self._close_db)
            self._executor.shutdown(wait=False)

    async def _summed(self, kind: str, start: float, end: float) -> dict[str, int]:
        span = hour_range(start, end)
        rows = await self._call(self._counts, kind, span.start, span.stop)
        out: dict[str, int] = {}
        for _, name, count in rows:
            out[name] = out.get(name, 0) + count
        return out

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        if self._closed:
            raise StoreError("the verdict history is closed")
        if self._pid != os.getpid():
            if self._conn is not None:
                _INHERITED.append(self._conn)  # the parent's: never used or closed here
            self._conn = None
            self._pid = os.getpid()
            self._executor = _executor()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._guarded, fn, args)

    def _guarded(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        try:
            return fn(*args)
        except sqlite3.Error as exc:
            ERRORS["sqlite"] += 1
            raise StoreError(f"verdict history {self.path}: {exc}") from None

    def _set_up(self, db: sqlite3.Connection) -> None:
        """WAL and the schema where either is missing; retried while another process
        holds the lock (see the module docstring), for up to ``busy_timeout_s``."""
        deadline = time.monotonic() + self.busy_timeout_s
        pause = 0.01
        while True:
            try:
                if str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                    mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                    if str(mode).lower() != "wal":
                        raise sqlite3.OperationalError(f"journal mode {mode}, not WAL")
                found = {
                    str(row[0])
                    for row in db.execute(
                        "SELECT name FROM sqlite_master WHERE type IN ('table', 'index')"
                    )
                }
                if _OBJECTS - found:
                    with immediate(db):  # waits for the lock, unlike the switch
                        run_script(db, _SCHEMA)
                return
            except sqlite3.OperationalError as exc:
                if not _locked(exc) or time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                pause = min(0.2, pause * 2)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout_s,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA synchronous=NORMAL")
            self._conn = conn
        return self._conn

    def _close_db(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    def _record_many(self, items: list[tuple[VerdictRecord, bytes | None]]) -> list[int]:
        settings = self.settings
        db = self._db()
        ids: list[int] = []
        counts: dict[tuple[str, int, str], int] = {}
        with immediate(db):
            last = db.execute("SELECT MAX(id) FROM verdicts").fetchone()[0]
            record_id = int(last or 0)
            for record, raw in items:
                keep = (
                    raw is not None
                    and settings.keep_messages
                    and len(raw) <= settings.keep_message_max_bytes
                )
                record_id += 1
                stored = msgspec.structs.replace(record, id=record_id, kept=keep)
                db.execute(_INSERT, (record_id, *_columns(record), encode_record(stored)))
                if keep and raw is not None:
                    db.execute(
                        "INSERT INTO verdict_kept (id, time, size, raw) VALUES (?, ?, ?, ?)",
                        (record_id, record.time, len(raw), raw),
                    )
                ids.append(record_id)
                for key in counter_updates(record):
                    counts[key] = counts.get(key, 0) + 1
            db.executemany(_COUNT, [(*key, n) for key, n in counts.items()])
            # The oldest records beyond max_verdicts go with every batch (a range of the
            # primary key); expired counters and kept messages every _TRIM_INTERVAL_S.
            db.execute("DELETE FROM verdicts WHERE id <= ?", (record_id - settings.max_verdicts,))
            if time.monotonic() >= self._next_trim:
                self._trim(db)
        return ids

    def _trim(self, db: sqlite3.Connection) -> None:
        """Drop expired counters, and kept messages beyond their age or total size."""
        settings = self.settings
        self._next_trim = time.monotonic() + _TRIM_INTERVAL_S
        now = time.time()
        db.execute(
            "DELETE FROM verdict_counts WHERE kind IN ('a', 'i') AND bucket < ?",
            (now - settings.counters_s,),
        )
        db.execute(
            "DELETE FROM verdict_counts WHERE kind IN ('s', 'r', 'f') AND bucket < ?",
            (now - settings.counters_s - 3600,),
        )
        db.execute("DELETE FROM verdict_kept WHERE time < ?", (now - settings.keep_messages_s,))
        total = db.execute("SELECT COALESCE(SUM(size), 0) FROM verdict_kept").fetchone()[0]
        excess = int(total) - settings.keep_messages_max_bytes
        if excess > 0:
            cutoff = 0
            for kept_id, size in db.execute("SELECT id, size FROM verdict_kept ORDER BY id"):
                cutoff = kept_id
                excess -= size
                if excess <= 0:
                    break
            db.execute("DELETE FROM verdict_kept WHERE id <= ?", (cutoff,))

    def _counts(self, kind: str, start: int, stop: int) -> list[tuple[int, str, int]]:
        rows = self._db().execute(
            "SELECT bucket, name, count FROM verdict_counts"
            " WHERE kind = ? AND bucket >= ? AND bucket < ?",
            (kind, start, stop),
        )
        return [(int(b), str(n), int(c)) for b, n, c in rows]

    def _search(self, query: Search, limit: int) -> list[VerdictRecord]:
        where: list[str] = []
        args: list[object] = []
        for column, value in (
            ("queue_id", query.queue_id),
            ("client_ip", query.client_ip),
            ("action", query.action),
        ):
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        if query.message_id:
            where.append("message_id = ?")
            args.append(bare_message_id(query.message_id))
        for column, value in (
            ("sender", query.sender),
            ("recipients", query.recipient),
            ("subject", query.subject),
        ):
            if value:
                where.append(f"instr({column}, ?) > 0")
                args.append(value.casefold())
        if query.symbol:
            where.append("instr(symbols, ?) > 0")
            args.append(f"\n{query.symbol}\n")
        if query.start is not None:
            where.append("time >= ?")
            args.append(query.start)
        if query.end is not None:
            where.append("time <= ?")
            args.append(query.end)
        if query.older_than is not None:
            where.append("(time < ? OR (time = ? AND id < ?))")
            args.extend((query.older_than[0], *query.older_than))
        if query.hide_no_action:
            where.append("action != 'no action'")
        sql = "SELECT record FROM verdicts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY time DESC, id DESC LIMIT ?"
        rows = self._db().execute(sql, (*args, limit))
        return [decode_record(bytes(r[0])) for r in rows]

    def _get(self, record_id: int) -> VerdictRecord | None:
        row = (
            self._db().execute("SELECT record FROM verdicts WHERE id = ?", (record_id,)).fetchone()
        )
        return None if row is None else decode_record(bytes(row[0]))

    def _kept(self, record_id: int) -> bytes | None:
        row = (
            self._db()
            .execute(
                "SELECT raw FROM verdict_kept WHERE id = ? AND time >= ?",
                (record_id, time.time() - self.settings.keep_messages_s),
            )
            .fetchone()
        )
        return None if row is None else bytes(row[0])


def _columns(record: VerdictRecord) -> tuple[object, ...]:
    """The searchable columns of ``record``, in ``_INSERT``'s order (without ``record``)."""
    return (
        record.time,
        record.action,
        record.queue_id,
        bare_message_id(record.message_id),
        record.client_ip,
        record.sender.casefold(),
        "\n".join(record.recipients).casefold(),
        record.subject.casefold(),
        "\n" + "\n".join(record.symbol_names) + "\n",
    )


def _locked(exc: sqlite3.OperationalError) -> bool:
    """True for SQLITE_BUSY and SQLITE_LOCKED: another connection holds the lock."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return int(code) & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="seawall-verdicts")
