"""``SqliteSessions``: accounting sessions in the embedded state (``state.sqlite``).

One table, ``accounting_sessions``, one row per (NAS, Acct-Session-Id, address), indexed by
(address, start) for ``who`` and ``history``, by (account, start) for ``sessions_of``, by
NAS over the open sessions for Accounting-On/Off, and by ``touched`` (the wall-clock time
of the row's last write) for the purge.

Retention: a new session on an address drops that address's sessions that ended (or were
last heard of) ``retention_s`` before the new record; rows not written for ``retention_s``
of wall-clock time are purged in slices every minute.  Every process opens its own
connection on its own thread (one made before ``fork()`` is left alone), as the Store does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from seawall.accounting.merge import Stored, close_at, effective, merge
from seawall.accounting.records import Record, Session, Status, lookup_keys
from seawall.errors import StoreError
from seawall.store.sqlite_tx import immediate

log = logging.getLogger("seawall.accounting")

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounting_sessions (
    nas TEXT NOT NULL, session_id TEXT NOT NULL, ip TEXT NOT NULL, account TEXT NOT NULL,
    start REAL NOT NULL, start_exact INTEGER NOT NULL, stop REAL, stop_exact INTEGER NOT NULL,
    last REAL NOT NULL, touched REAL NOT NULL,
    PRIMARY KEY (nas, session_id, ip)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS accounting_by_ip ON accounting_sessions (ip, start);
CREATE INDEX IF NOT EXISTS accounting_by_account ON accounting_sessions (account, start);
CREATE INDEX IF NOT EXISTS accounting_open ON accounting_sessions (nas) WHERE stop IS NULL;
CREATE INDEX IF NOT EXISTS accounting_touched ON accounting_sessions (touched);
"""
_COLUMNS = "account, ip, nas, session_id, start, start_exact, stop, stop_exact, last"
_PURGE_ROWS = 5000
_INHERITED: list[sqlite3.Connection] = []


def _stored(row: tuple[object, ...]) -> Stored:
    account, ip, nas, session_id, start, start_exact, stop, stop_exact, last = row
    return Stored(
        str(account),
        str(ip),
        str(nas),
        str(session_id),
        float(start),  # type: ignore[arg-type]
        bool(start_exact),
        None if stop is None else float(stop),  # type: ignore[arg-type]
        bool(stop_exact),
        float(last),  # type: ignore[arg-type]
    )


class SqliteSessions:
    """Sessions in ``path`` (the state's SQLite file); see the module docstring."""

    def __init__(
        self, path: Path, *, retention_s: float, busy_timeout_s: float, purge_interval_s: float
    ) -> None:
        self.path = path
        self.retention_s = retention_s
        self._busy_timeout_s = busy_timeout_s
        self._purge_interval_s = purge_interval_s
        self._next_purge = time.monotonic() + purge_interval_s
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="seawall-accounting")
        self._closed = False

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        retention_s: float,
        busy_timeout_s: float = 5.0,
        purge_interval_s: float = 60.0,
    ) -> SqliteSessions:
        """Open (creating if needed) the sessions in ``path``; StoreError if it cannot."""
        sessions = cls(
            path,
            retention_s=retention_s,
            busy_timeout_s=busy_timeout_s,
            purge_interval_s=purge_interval_s,
        )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sessions._db()
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            sessions._close_db()
            sessions._executor.shutdown(wait=False)
            raise StoreError(f"cannot open the accounting sessions in {path}: {exc}") from None
        return sessions

    async def who(self, ip: str, at: float) -> Session | None:
        keys = _keys(ip)
        return await self._call(self._who, keys, float(at))

    async def history(self, ip: str, since: float, until: float) -> list[Session]:
        keys = _keys(ip)
        return await self._call(self._history, keys, float(since), float(until))

    async def sessions_of(self, account: str, since: float, until: float) -> list[Session]:
        return await self._call(self._sessions_of, account, float(since), float(until))

    async def add(self, records: Sequence[Record]) -> int:
        if not records:
            return 0
        return await self._call(self._add, list(records))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._pid == os.getpid():
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, self._close_db)
            self._executor.shutdown(wait=False)

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        if self._closed:
            raise StoreError("the accounting sessions are closed")
        if self._pid != os.getpid():
            if self._conn is not None:
                _INHERITED.append(self._conn)
            self._conn = None
            self._pid = os.getpid()
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="seawall-accounting")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._guarded, fn, args)

    def _guarded(self, fn: Callable[..., T], args: tuple[object, ...]) -> T:
        try:
            result = fn(*args)
        except sqlite3.Error as exc:
            raise StoreError(f"accounting sessions in {self.path}: {exc}") from None
        if time.monotonic() >= self._next_purge:
            self._purge()
        return result

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout_s,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA synchronous=NORMAL")
            self._conn = conn
        return self._conn

    def _close_db(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _who(self, keys: tuple[str, ...], at: float) -> Session | None:
        db = self._db()
        for key in keys:
            # The latest start at or before ``at`` (an index probe), then its rows: several
            # sessions may start in one second, and one of them may have stopped in it.
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM accounting_sessions WHERE ip = ? AND start ="
                " (SELECT max(start) FROM accounting_sessions WHERE ip = ? AND start <= ?)",
                (key, key, at),
            ).fetchall()
            if not rows:
                continue
            live = [s for s in map(_stored, rows) if s.stop is None or s.stop > at]
            if live:
                return max(live, key=lambda s: (s.stop is None, s.last)).session()
        return None

    def _history(self, keys: tuple[str, ...], since: float, until: float) -> list[Session]:
        db = self._db()
        out: list[Session] = []
        for key in keys:
            rows = [
                _stored(r)
                for r in db.execute(
                    f"SELECT {_COLUMNS} FROM accounting_sessions WHERE ip = ? AND start <= ?"
                    " AND (stop IS NULL OR stop >= ?) ORDER BY start",
                    (key, until, since),
                )
            ]
            # An open session is ended by the next one on its address, which may have
            # stopped before ``since``: one index probe for each open session.
            nexts: list[Stored] = []
            for stored in rows:
                if stored.stop is None:
                    row = db.execute(
                        f"SELECT {_COLUMNS} FROM accounting_sessions WHERE ip = ? AND start > ?"
                        " ORDER BY start LIMIT 1",
                        (key, stored.start),
                    ).fetchone()
                    if row is not None:
                        nexts.append(_stored(row))
            sessions = effective(list({(s.nas, s.session_id): s for s in rows + nexts}.values()))
            out += [s for s in sessions if s.start <= until and (s.stop is None or s.stop > since)]
        return sorted(out, key=lambda s: s.start)

    def _sessions_of(self, account: str, since: float, until: float) -> list[Session]:
        rows = self._db().execute(
            f"SELECT {_COLUMNS} FROM accounting_sessions WHERE account = ? AND start <= ?"
            " AND (stop IS NULL OR stop > ?) ORDER BY start",
            (account, until, since),
        )
        return [_stored(r).session() for r in rows]

    def _add(self, records: list[Record]) -> int:
        db = self._db()
        changed = 0
        now = time.time()
        with immediate(db):
            run: list[Record] = []
            for record in records:
                if record.status in (Status.ON, Status.OFF):
                    changed += self._add_run(db, run, now)
                    run = []
                    changed += self._close_nas(db, record, now)
                else:
                    run.append(record)
            changed += self._add_run(db, run, now)
        return changed

    def _add_run(self, db: sqlite3.Connection, records: list[Record], now: float) -> int:
        """A run of session records (no Accounting-On/Off among them): each session read
        once, merged with all its records in order, written once."""
        ops: dict[tuple[str, str, str], list[Record]] = {}
        seen: dict[tuple[str, str], tuple[str, ...]] = {}  # addresses named in this run
        for record in records:
            key = (record.nas, record.session_id)
            if record.ips:
                seen[key] = record.ips
            ips = record.ips or seen.get(key) or self._open_ips(db, record)
            for ip in ips:
                ops.setdefault((record.nas, record.session_id, ip), []).append(record)
        changed = 0
        for (nas, session_id, ip), mine in ops.items():
            row = db.execute(
                f"SELECT {_COLUMNS} FROM accounting_sessions"
                " WHERE nas = ? AND session_id = ? AND ip = ?",
                (nas, session_id, ip),
            ).fetchone()
            old = None if row is None else _stored(row)
            new = old
            for record in mine:
                new = merge(new, record, ip)
            if new is not None and new != old:
                _write_row(db, new, now)
                changed += 1
            if old is None:
                self._trim(db, ip, max(r.time for r in mine) - self.retention_s)
        return changed

    def _open_ips(self, db: sqlite3.Connection, record: Record) -> tuple[str, ...]:
        """The addresses of a session a record names no address for (a Stop, usually)."""
        ips = tuple(
            r[0]
            for r in db.execute(
                "SELECT ip FROM accounting_sessions WHERE nas = ? AND session_id = ?",
                (record.nas, record.session_id),
            )
        )
        if not ips:
            log.debug(
                "%s of %s on %s: no address, and no session known to take it from",
                record.status.value,
                record.session_id,
                record.nas,
            )
        return ips

    def _close_nas(self, db: sqlite3.Connection, record: Record, now: float) -> int:
        rows = db.execute(
            f"SELECT {_COLUMNS} FROM accounting_sessions WHERE nas = ? AND stop IS NULL",
            (record.nas,),
        ).fetchall()
        changed = 0
        for old in map(_stored, rows):
            new = close_at(old, record.time)
            if new is not None:
                _write_row(db, new, now)
                changed += 1
        return changed

    def _trim(self, db: sqlite3.Connection, ip: str, horizon: float) -> None:
        db.execute(
            "DELETE FROM accounting_sessions WHERE ip = ? AND start < ?"
            " AND coalesce(stop, last) < ?",
            (ip, horizon, horizon),
        )

    def _purge(self) -> None:
        more = False
        try:
            cursor = self._db().execute(
                "DELETE FROM accounting_sessions WHERE (nas, session_id, ip) IN"
                " (SELECT nas, session_id, ip FROM accounting_sessions WHERE touched < ?"
                " LIMIT ?)",
                (time.time() - self.retention_s, _PURGE_ROWS),
            )
            more = cursor.rowcount >= _PURGE_ROWS
        except sqlite3.Error as exc:
            log.warning("accounting sessions in %s: purge failed: %s", self.path, exc)
        delay = 1.0 if more else self._purge_interval_s
        self._next_purge = time.monotonic() + delay


def _keys(ip: str) -> tuple[str, ...]:
    try:
        return lookup_keys(ip)
    except ValueError:
        raise ValueError(f"{ip!r} is not an IP address") from None


def _write_row(db: sqlite3.Connection, s: Stored, now: float) -> None:
    db.execute(
        "INSERT OR REPLACE INTO accounting_sessions (nas, session_id, ip, account, start,"
        " start_exact, stop, stop_exact, last, touched) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            s.nas,
            s.session_id,
            s.ip,
            s.account,
            s.start,
            int(s.start_exact),
            s.stop,
            int(s.stop_exact),
            s.last,
            now,
        ),
    )
