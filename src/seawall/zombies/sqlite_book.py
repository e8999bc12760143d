"""The cases in ``state.sqlite`` (embedded state), beside the Store's and the classifier's.

Tables, all prefixed ``zombie_``:

``zombie_rows``       one per subject (account, own or external address): the Row, packed,
                      with its case id and state (NULL: no case), last evidence time and
                      the case's updated_at (indexed by state and time: sqlite_index.py)
``zombie_case_terms`` (term, subject): the addresses and campaigns a case is found by
``zombie_evidence``   one per piece of evidence: id (its identity: once), subject, time,
                      the Evidence packed; at most ``max_evidence_per_case`` per subject
``zombie_raw``        the raw originals of reports, by digest (shared by duplicates)
``zombie_campaigns``  (campaign, subject): who sent which campaign
``zombie_inbox``      evidence pushed by the scanning workers for the desk
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from seawall.errors import StoreError
from seawall.store.rowid import rebuild_as_rowid, without_rowid
from seawall.zombies.model import Evidence
from seawall.zombies.rules import Row
from seawall.zombies.sqlite_index import (
    ROWS_BY_TIME,
    TERMS,
    add_case_index,
    has_updated_at,
    put_terms,
    where,
)
from seawall.zombies.store import ENCODE, EVIDENCE, ROW, CaseQuery, case_terms, newest_first

T = TypeVar("T")

log = logging.getLogger("seawall.zombies")

# The rows and the raw originals are large (a case row grows with its addresses, campaigns
# and notes; a raw message is up to the size kept, often tens or hundreds of kB): rowid
# tables, their keys in their own indexes, so that a lookup reads only the row it finds (in
# a WITHOUT ROWID table it also reads every large row its key is compared with; see
# store/rowid.py).  A file made before is rebuilt once, by the desk when it opens it (the
# process that owns the cases, before it works: not a worker's event loop); until then the
# others use the tables as they are (the same statements work on either shape).
_ROWS = """
CREATE TABLE IF NOT EXISTS zombie_rows (
    key TEXT PRIMARY KEY NOT NULL, case_id TEXT, state TEXT, own INTEGER NOT NULL,
    last_seen REAL NOT NULL, body BLOB NOT NULL, updated_at REAL NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS zombie_rows_case ON zombie_rows (case_id) WHERE state IS NOT NULL;
CREATE INDEX IF NOT EXISTS zombie_rows_ext ON zombie_rows (last_seen) WHERE own = 0;
"""
_EVIDENCE = """
CREATE TABLE IF NOT EXISTS zombie_evidence (
    id TEXT PRIMARY KEY NOT NULL, key TEXT NOT NULL, at REAL NOT NULL, body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS zombie_evidence_key ON zombie_evidence (key, at);
CREATE INDEX IF NOT EXISTS zombie_evidence_at ON zombie_evidence (at);
"""
_RAW = """
CREATE TABLE IF NOT EXISTS zombie_raw (
    ref TEXT PRIMARY KEY NOT NULL, at REAL NOT NULL, data BLOB NOT NULL);
"""
# For the prune; made with the rowid shape (a file made before gets it when rebuilt, so that
# opening one without rebuilding writes nothing).
_RAW_AT = "CREATE INDEX IF NOT EXISTS zombie_raw_at ON zombie_raw (at)"
_TABLES = {
    "zombie_rows": _ROWS + ROWS_BY_TIME,
    "zombie_evidence": _EVIDENCE,
    "zombie_raw": f"{_RAW};{_RAW_AT}",
}
_SCHEMA = (
    _ROWS
    + _EVIDENCE
    + _RAW
    + """
CREATE TABLE IF NOT EXISTS zombie_campaigns (campaign TEXT NOT NULL, key TEXT NOT NULL,
    PRIMARY KEY (campaign, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS zombie_inbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL);
"""
)


class _SqliteTx:
    def __init__(self, db: sqlite3.Connection, indexed: bool | None = None) -> None:
        self.db = db
        # whether the file has the case index (updated_at, the terms); None: look
        self.indexed = has_updated_at(db) if indexed is None else indexed
        self.seen: dict[str, Row | None] = {}  # rows as stored now, by this step's reads

    def row(self, key: str) -> Row | None:
        found = self.db.execute("SELECT body FROM zombie_rows WHERE key = ?", (key,)).fetchone()
        self.seen[key] = None if found is None else ROW.decode(found[0])
        return self.seen[key]

    def has_evidence(self, evidence_id: str) -> bool:
        query = "SELECT 1 FROM zombie_evidence WHERE id = ?"
        return self.db.execute(query, (evidence_id,)).fetchone() is not None

    def put_row(self, row: Row) -> None:
        values = (
            row.key,
            row.case_id if row.state is not None else None,
            row.state,
            int(row.own),
            row.last_seen,
            ENCODE.encode(row),
        )
        if not self.indexed:  # a file of an earlier release, not yet opened by the desk
            self.db.execute(
                "INSERT OR REPLACE INTO zombie_rows (key, case_id, state, own, last_seen, body)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                values,
            )
            return
        if row.state is not None and row.key not in self.seen:
            self.row(row.key)  # what it was: its terms are in the index
        self.db.execute(  # an update in place: the key's index is left as it is
            "INSERT INTO zombie_rows (key, case_id, state, own, last_seen, body, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
            " case_id = excluded.case_id, state = excluded.state,"
            " last_seen = excluded.last_seen, body = excluded.body,"
            " updated_at = excluded.updated_at",
            (*values, row.updated_at),
        )
        if row.state is not None:  # a subject's case never goes away: only cases have terms
            old = self.seen[row.key]
            put_terms(self.db, row, set() if old is None else case_terms(old))
        self.seen[row.key] = row

    def put_evidence(self, key: str, evidence: Evidence, raw: bytes | None, keep: int) -> None:
        db = self.db
        db.execute(
            "INSERT OR IGNORE INTO zombie_evidence VALUES (?, ?, ?, ?)",
            (evidence.id, key, evidence.at, ENCODE.encode(evidence)),
        )
        if raw is not None and evidence.raw_ref:
            db.execute(
                "INSERT OR IGNORE INTO zombie_raw VALUES (?, ?, ?)",
                (evidence.raw_ref, evidence.at, raw),
            )
        if evidence.campaign:
            db.execute(
                "INSERT OR IGNORE INTO zombie_campaigns VALUES (?, ?)", (evidence.campaign, key)
            )
        db.execute(
            "DELETE FROM zombie_evidence WHERE id IN (SELECT id FROM zombie_evidence "
            "WHERE key = ? ORDER BY at DESC LIMIT -1 OFFSET ?)",
            (key, keep),
        )


class SqliteBook:
    """The Backend on SQLite; one connection per process (none crosses a fork).

    ``rebuild``: turn tables made WITHOUT ROWID by earlier releases into rowid tables now
    (the desk: it holds the write lock for the copy, about a second per 100 MB of kept raw
    originals); other processes open the file as it is.
    """

    _indexed = False  # the file has the case index: once seen, kept (see _has_index)

    def __init__(self, path: Path, *, timeout_s: float = 10.0, rebuild: bool = False) -> None:
        self.path = path
        self._timeout_s = timeout_s
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = self._db()
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            indexed = add_case_index(db) if rebuild else -1
            if indexed >= 0:
                log.info("cases in %s: %d cases indexed by state and time", path, indexed)
            for table, schema in _TABLES.items() if rebuild else ():
                if rebuild_as_rowid(db, table, schema):
                    log.info("cases in %s: %s rebuilt as a rowid table", path, table)
            if not without_rowid(db, "zombie_raw"):
                db.execute(_RAW_AT)
            self._indexed = has_updated_at(db)
            if self._indexed:  # a new file, or one the desk has indexed
                db.executescript(TERMS + ROWS_BY_TIME)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the cases in {path}: {exc}") from None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            self._conn = sqlite3.connect(
                self.path, timeout=self._timeout_s, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._pid = os.getpid()
        return self._conn

    def _read(self, query: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        try:
            return self._db().execute(query, args).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cases in {self.path}: {exc}") from None

    def atomic(self, fn: Callable[[_SqliteTx], T]) -> T:
        db = self._db()
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"cases in {self.path}: {exc}") from None
        try:
            result = fn(_SqliteTx(db, self._has_index(db)))
            db.execute("COMMIT")
            return result
        except BaseException as exc:
            db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"cases in {self.path}: {exc}") from None
            raise

    def _has_index(self, db: sqlite3.Connection) -> bool:
        """Whether the file has the case index (once it has, it keeps it)."""
        if not self._indexed:
            self._indexed = has_updated_at(db)
        return self._indexed

    def row(self, key: str) -> Row | None:
        found = self._read("SELECT body FROM zombie_rows WHERE key = ?", (key,))
        return ROW.decode(found[0][0]) if found else None  # type: ignore[arg-type]

    def case_key(self, case_id: str) -> str | None:
        found = self._read(
            "SELECT key FROM zombie_rows WHERE case_id = ? AND state IS NOT NULL", (case_id,)
        )
        return str(found[0][0]) if found else None

    def _read_index(self) -> bool:
        try:
            return self._has_index(self._db())
        except sqlite3.Error as exc:
            raise StoreError(f"cases in {self.path}: {exc}") from None

    def case_rows(self) -> list[Row]:
        found = self._read("SELECT body FROM zombie_rows WHERE state IS NOT NULL")
        return [ROW.decode(b) for (b,) in found]  # type: ignore[arg-type]

    def case_page(self, query: CaseQuery, limit: int | None) -> list[Row]:
        if not self._read_index():
            return newest_first(r for r in self.case_rows() if query.matches(r))[:limit]
        clause, args = where(query)
        # The page's keys from the indexes alone (their entries hold state, time and key),
        # then its rows: a sort over several states never carries the rows' bodies.
        found = self._read(
            "SELECT z.body FROM zombie_rows z JOIN"
            f" (SELECT r.key AS key FROM zombie_rows r WHERE {clause}"
            "  ORDER BY r.updated_at DESC, r.key LIMIT ?) AS p ON z.key = p.key"
            " ORDER BY z.updated_at DESC, z.key",
            (*args, -1 if limit is None else limit),
        )
        return [ROW.decode(b) for (b,) in found]  # type: ignore[arg-type]

    def case_counts(self, query: CaseQuery) -> dict[str, int]:
        if not self._read_index():
            counts: dict[str, int] = {}
            for r in self.case_rows():
                if query.matches(r):
                    counts[str(r.state)] = counts.get(str(r.state), 0) + 1
            return counts
        clause, args = where(query)
        found = self._read(
            f"SELECT r.state, count(*) FROM zombie_rows r WHERE {clause} GROUP BY r.state",
            tuple(args),
        )
        return {str(state): int(n) for state, n in found}  # type: ignore[call-overload]

    def external_rows(self, since: float) -> list[Row]:
        found = self._read(
            "SELECT body FROM zombie_rows WHERE own = 0 AND last_seen >= ?", (since,)
        )
        return [ROW.decode(b) for (b,) in found]  # type: ignore[arg-type]

    def evidence(self, key: str, limit: int | None) -> list[Evidence]:
        found = self._read(
            "SELECT body FROM zombie_evidence WHERE key = ? ORDER BY at DESC LIMIT ?",
            (key, -1 if limit is None else limit),
        )
        return [EVIDENCE.decode(b) for (b,) in found]  # type: ignore[arg-type]

    def raw(self, ref: str) -> bytes | None:
        found = self._read("SELECT data FROM zombie_raw WHERE ref = ?", (ref,))
        return bytes(found[0][0]) if found else None  # type: ignore[call-overload]

    def campaign_subjects(self, campaign: str) -> list[str]:
        found = self._read("SELECT key FROM zombie_campaigns WHERE campaign = ?", (campaign,))
        return [str(k) for (k,) in found]

    def push(self, items: Sequence[bytes]) -> None:
        rows = [(i,) for i in items]

        def step(tx: _SqliteTx) -> None:  # one transaction for the batch
            tx.db.executemany("INSERT INTO zombie_inbox (body) VALUES (?)", rows)

        self.atomic(step)

    def take(self, n: int) -> list[bytes]:
        def step(tx: _SqliteTx) -> list[bytes]:
            rows = tx.db.execute(
                "SELECT seq, body FROM zombie_inbox ORDER BY seq LIMIT ?", (n,)
            ).fetchall()
            if rows:
                tx.db.execute("DELETE FROM zombie_inbox WHERE seq <= ?", (rows[-1][0],))
            return [bytes(body) for _, body in rows]

        return self.atomic(step)

    def prune(self, before: float) -> int:
        def step(tx: _SqliteTx) -> int:
            db = tx.db
            gone = db.execute("DELETE FROM zombie_evidence WHERE at < ?", (before,)).rowcount
            db.execute("DELETE FROM zombie_raw WHERE at < ?", (before,))
            old = [
                str(k)
                for (k,) in db.execute(
                    "SELECT key FROM zombie_rows WHERE own = 0 AND last_seen < ?", (before,)
                )
            ]
            for key in old:
                db.execute("DELETE FROM zombie_rows WHERE key = ?", (key,))
                db.execute("DELETE FROM zombie_campaigns WHERE key = ?", (key,))
            return int(gone)

        return self.atomic(step)

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None
