"""``SqliteStore``: the default Store, one SQLite file in WAL mode shared by every worker.

Tables, both prefixed ``store_``:

``store_counters``  one row per (key, bucket): the count added in that bucket and the
                    time at which the bucket has left every window (see ``store.base``)
``store_values``    key, value and the wall-clock expiry (NULL: none)
``store_decay``     key, its decaying counters (packed doubles) as of ``since``, when it
                    was first and last added to, and its wall-clock expiry

Every process opens its own connection (a connection must not cross ``fork()``), and
every call runs on one dedicated thread per process, so the event loop never waits on
a lock that another worker holds: only that thread does, up to ``busy_timeout_s``.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from seawall.errors import StoreError
from seawall.store.base import ERRORS, Decayed, bucket_expiry, bucket_range, decayed
from seawall.store.rowid import rebuild_as_rowid
from seawall.store.sqlite_tx import immediate

log = logging.getLogger("seawall.store")

T = TypeVar("T")

FILENAME = "state.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS store_counters (
    key TEXT NOT NULL, bucket INTEGER NOT NULL, count INTEGER NOT NULL, expires REAL NOT NULL,
    PRIMARY KEY (key, bucket)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS store_counters_expires ON store_counters (expires);
CREATE TABLE IF NOT EXISTS store_values (
    key TEXT PRIMARY KEY, value BLOB NOT NULL, expires REAL);
CREATE INDEX IF NOT EXISTS store_values_expires ON store_values (expires)
    WHERE expires IS NOT NULL;
CREATE TABLE IF NOT EXISTS store_decay (
    key TEXT PRIMARY KEY, counters BLOB NOT NULL, since REAL NOT NULL, first REAL NOT NULL,
    last REAL NOT NULL, expires REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS store_decay_expires ON store_decay (expires);
"""

# store_values holds a few large values (the campaign tracker's snapshot, megabytes).  In a
# WITHOUT ROWID table a lookup whose key is compared with such a row's reads the whole row
# (a 14 MB snapshot: 5 ms of CPU and a 14 MB malloc for each lookup of a greylist triplet
# beside it), so it is a rowid table, the keys in their own index; a file made before is
# rebuilt once (_rowid_values, store/rowid.py).
_VALUES = """
CREATE TABLE store_values (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires REAL);
CREATE INDEX IF NOT EXISTS store_values_expires ON store_values (expires)
    WHERE expires IS NOT NULL;
"""

# Rows deleted per table by one purge: a purge holds the write lock, and a flood from
# many addresses can leave hundreds of thousands of buckets to drop, so it goes in slices.
_PURGE_ROWS = 5000

# Connections inherited across fork() are never used or closed in the child: closing one
# would run SQLite's close path on the parent's file locks. They are only kept alive here.
_INHERITED: list[sqlite3.Connection] = []


_IN_CHUNK = 256  # keys a store_decay read asks for in one statement


def _decay_rows(db: sqlite3.Connection, keys: list[str]) -> dict[str, tuple[Any, ...]]:
    """The store_decay rows of ``keys``: (counters, since, first, last, expires) by key.

    One statement for up to ``_IN_CHUNK`` keys: a reputation flush or a cohort's reads
    ask for a hundred or more, and a statement a key cost 9 us of the store thread's CPU a
    key against 3 us."""
    rows: dict[str, tuple[Any, ...]] = {}
    for at in range(0, len(keys), _IN_CHUNK):
        chunk = keys[at : at + _IN_CHUNK]
        marks = ",".join("?" * len(chunk))
        for key, *row in db.execute(
            "SELECT key, counters, since, first, last, expires FROM store_decay"
            f" WHERE key IN ({marks})",
            chunk,
        ):
            rows[key] = tuple(row)
    return rows


class SqliteStore:
    """The Store in ``<state_dir>/state.sqlite``; see the module docstring for the layout.

    Open it with ``SqliteStore.open(Path(state_dir) / FILENAME)`` or
    :func:`seawall.store.open_store`; one instance per process, or one opened before
    ``fork()`` and used by the children (each reconnects on first use).
    """

    def __init__(self, path: Path, *, busy_timeout_s: float, purge_interval_s: float) -> None:
        self.path = path
        self._busy_timeout_s = busy_timeout_s
        self._purge_interval_s = purge_interval_s
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._executor = self._new_executor()
        self._next_purge = time.monotonic() + purge_interval_s
        self._now = 0.0  # the callers' clock at the last incr, for purging counters
        self._closed = False

    @classmethod
    def open(
        cls, path: Path, *, busy_timeout_s: float = 5.0, purge_interval_s: float = 60.0
    ) -> SqliteStore:
        """Open (creating if needed) the store at ``path``; raises :class:`StoreError`.

        ``busy_timeout_s`` bounds the wait for another process's write; ``purge_interval_s``
        is how often this process deletes expired buckets and values.
        """
        store = cls(path, busy_timeout_s=busy_timeout_s, purge_interval_s=purge_interval_s)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = store._db()
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            if _rowid_values(db):
                log.info("state store %s: store_values rebuilt as a rowid table", path)
        except (OSError, sqlite3.Error) as exc:
            with contextlib.suppress(sqlite3.Error):
                store._close_db()
            store._executor.shutdown(wait=False)
            raise StoreError(f"cannot open the state store {path}: {exc}") from None
        return store

    async def incr(self, key: str, *, window_s: float, now: float, amount: int = 1) -> int:
        first, last = bucket_range(now, window_s)
        expires = bucket_expiry(last, window_s)
        return await self._call(self._incr, key, first, last, amount, expires, now)

    async def get(self, key: str) -> bytes | None:
        return await self._call(self._get, key)

    async def put(self, key: str, value: bytes, *, ttl_s: float | None = None) -> None:
        expires = None if ttl_s is None else time.time() + ttl_s
        await self._call(self._put, key, bytes(value), expires)

    async def claim(self, key: str, value: bytes, *, ttl_s: float) -> bytes:
        return await self._call(self._claim, key, bytes(value), ttl_s)

    async def decay(
        self,
        updates: Mapping[str, Sequence[float]],
        *,
        half_life_s: float,
        now: float,
        ttl_s: float,
    ) -> dict[str, Decayed]:
        decayed((), now, now, half_life_s)  # validates half_life_s in the caller
        items = [(key, tuple(map(float, amounts))) for key, amounts in updates.items()]
        return await self._call(self._decay, items, half_life_s, now, ttl_s)

    async def delete(self, key: str) -> None:
        await self._call(self._delete, key)

    async def close(self) -> None:
        if self._closed:
            return
        if self._pid == os.getpid():
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, self._close_db)
            self._executor.shutdown(wait=False)
        self._closed = True

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        if self._closed:
            raise StoreError("the state store is closed")
        if self._pid != os.getpid():
            self._after_fork()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._guarded, fn, args)

    def _after_fork(self) -> None:
        # The parent's thread does not exist in this process and its connection must not
        # be touched: start afresh, and connect lazily on the new thread.
        if self._conn is not None:
            _INHERITED.append(self._conn)
        self._conn = None
        self._pid = os.getpid()
        self._executor = self._new_executor()

    @staticmethod
    def _new_executor() -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="seawall-store")

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout_s,  # sets SQLite's busy_timeout
                isolation_level=None,  # transactions are explicit: BEGIN IMMEDIATE below
                check_same_thread=False,  # opened by open() or the store thread, used by one
            )
            # In WAL mode NORMAL skips the fsync per commit: a power cut may lose the last
            # counts, never the file, and counts are worth less than the latency.
            conn.execute("PRAGMA synchronous=NORMAL")
            self._conn = conn
        return self._conn

    def _close_db(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _guarded(self, fn: Callable[..., T], args: tuple[object, ...]) -> T:
        """Run ``fn`` on the store thread; SQLite errors become :class:`StoreError`."""
        try:
            result = fn(*args)
        except sqlite3.Error as exc:
            ERRORS["sqlite"] += 1
            raise StoreError(f"state store {self.path}: {exc}") from None
        if time.monotonic() >= self._next_purge:
            self._purge()
        return result

    def _incr(
        self, key: str, first: int, last: int, amount: int, expires: float, now: float
    ) -> int:
        db = self._db()
        self._now = now
        total_sql = (
            "SELECT COALESCE(SUM(count), 0) FROM store_counters"
            " WHERE key = ? AND bucket BETWEEN ? AND ?"
        )
        if not amount:
            return int(db.execute(total_sql, (key, first, last)).fetchone()[0])
        with immediate(db):  # one transaction: the sum includes this add and no later one
            db.execute(
                "INSERT INTO store_counters (key, bucket, count, expires) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (key, bucket) DO UPDATE SET count = count + excluded.count",
                (key, last, amount, expires),
            )
            return int(db.execute(total_sql, (key, first, last)).fetchone()[0])

    def _get(self, key: str) -> bytes | None:
        row = (
            self._db()
            .execute("SELECT value, expires FROM store_values WHERE key = ?", (key,))
            .fetchone()
        )
        if row is None or (row[1] is not None and row[1] <= time.time()):
            return None
        return bytes(row[0])

    def _claim(self, key: str, value: bytes, ttl_s: float) -> bytes:
        db = self._db()
        with immediate(db):
            now = time.time()
            row = db.execute(
                "SELECT value, expires FROM store_values WHERE key = ?", (key,)
            ).fetchone()
            if row is not None and bytes(row[0]) != value and (row[1] is None or row[1] > now):
                return bytes(row[0])
            db.execute(
                "INSERT OR REPLACE INTO store_values (key, value, expires) VALUES (?, ?, ?)",
                (key, value, now + ttl_s),
            )
            return value

    def _put(self, key: str, value: bytes, expires: float | None) -> None:
        self._db().execute(
            "INSERT OR REPLACE INTO store_values (key, value, expires) VALUES (?, ?, ?)",
            (key, value, expires),
        )

    def _decay(
        self,
        items: list[tuple[str, tuple[float, ...]]],
        half_life_s: float,
        now: float,
        ttl_s: float,
    ) -> dict[str, Decayed]:
        db = self._db()
        wall = time.time()
        out: dict[str, Decayed] = {}
        if not any(any(amounts) for _, amounts in items):  # reads only: no write lock
            rows = _decay_rows(db, [key for key, _ in items])
            for key, amounts in items:
                row = rows.get(key)
                if row is None or row[4] <= wall:
                    continue
                counters = array.array("d", row[0])
                if len(counters) == len(amounts):
                    current = decayed(counters, row[1], now, half_life_s)
                    out[key] = Decayed(tuple(current), row[2], row[3])
            return out
        with immediate(db):
            rows = _decay_rows(db, [key for key, _ in items])
            writes: list[tuple[str, bytes, float, float, float, float]] = []
            for key, amounts in items:
                row = rows.get(key)
                stored = array.array("d", row[0]) if row is not None else None
                if row is None or row[4] <= wall or len(stored or ()) != len(amounts):
                    if not any(amounts):
                        continue
                    values: list[float] = [0.0] * len(amounts)
                    since, first, last = now, now, now
                else:
                    values = decayed(stored or (), row[1], now, half_life_s)
                    since, first, last = max(now, row[1]), row[2], row[3]
                if not any(amounts):
                    out[key] = Decayed(tuple(values), first, last)
                    continue
                values = [v + a for v, a in zip(values, amounts, strict=True)]
                last = max(last, now)
                blob = array.array("d", values).tobytes()
                writes.append((key, blob, since, first, last, wall + ttl_s))
                rows[key] = (blob, since, first, last, wall + ttl_s)  # a key given twice
                out[key] = Decayed(tuple(values), first, last)
            db.executemany(
                "INSERT OR REPLACE INTO store_decay (key, counters, since, first, last, expires)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                writes,
            )
        return out

    def _delete(self, key: str) -> None:
        db = self._db()
        with immediate(db):
            db.execute("DELETE FROM store_values WHERE key = ?", (key,))
            db.execute("DELETE FROM store_counters WHERE key = ?", (key,))
            db.execute("DELETE FROM store_decay WHERE key = ?", (key,))

    def _purge(self) -> None:
        """Delete a slice of expired buckets and values; come back soon if more are left."""
        more = False
        try:
            db = self._db()
            counters = db.execute(
                "DELETE FROM store_counters WHERE (key, bucket) IN"
                " (SELECT key, bucket FROM store_counters WHERE expires <= ? LIMIT ?)",
                (self._now, _PURGE_ROWS),
            )
            values = db.execute(
                "DELETE FROM store_values WHERE key IN"
                " (SELECT key FROM store_values WHERE expires <= ? LIMIT ?)",
                (time.time(), _PURGE_ROWS),
            )
            decaying = db.execute(
                "DELETE FROM store_decay WHERE key IN"
                " (SELECT key FROM store_decay WHERE expires <= ? LIMIT ?)",
                (time.time(), _PURGE_ROWS),
            )
            more = max(counters.rowcount, values.rowcount, decaying.rowcount) >= _PURGE_ROWS
        except sqlite3.Error as exc:
            # Not the caller's failure: its own statement already succeeded.
            log.warning("state store %s: purge failed: %s", self.path, exc)
        delay = 1.0 if more else self._purge_interval_s
        self._next_purge = time.monotonic() + delay


def _rowid_values(db: sqlite3.Connection) -> bool:
    """Rebuild a store_values made WITHOUT ROWID as a rowid table, its rows kept; once, by
    the first process to open the file (True when this one did)."""
    return rebuild_as_rowid(db, "store_values", _VALUES)
