"""The cases in ``state.sqlite`` (embedded state), beside the Store's and the classifier's.

Tables, all prefixed ``zombie_``:

``zombie_rows``       one per subject (account, own or external address): the Row, packed,
                      with its case id and state (NULL: no case) and last evidence time
``zombie_evidence``   one per piece of evidence: id (its identity: once), subject, time,
                      the Evidence packed; at most ``max_evidence_per_case`` per subject
``zombie_raw``        the raw originals of reports, by digest (shared by duplicates)
``zombie_campaigns``  (campaign, subject): who sent which campaign
``zombie_inbox``      evidence pushed by the scanning workers for the desk
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from seawall.errors import StoreError
from seawall.zombies.model import Evidence
from seawall.zombies.rules import Row
from seawall.zombies.store import ENCODE, EVIDENCE, ROW

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS zombie_rows (
    key TEXT PRIMARY KEY, case_id TEXT, state TEXT, own INTEGER NOT NULL,
    last_seen REAL NOT NULL, body BLOB NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS zombie_rows_case ON zombie_rows (case_id) WHERE state IS NOT NULL;
CREATE INDEX IF NOT EXISTS zombie_rows_ext ON zombie_rows (last_seen) WHERE own = 0;
CREATE TABLE IF NOT EXISTS zombie_evidence (
    id TEXT PRIMARY KEY, key TEXT NOT NULL, at REAL NOT NULL, body BLOB NOT NULL)
    WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS zombie_evidence_key ON zombie_evidence (key, at);
CREATE INDEX IF NOT EXISTS zombie_evidence_at ON zombie_evidence (at);
CREATE TABLE IF NOT EXISTS zombie_raw (ref TEXT PRIMARY KEY, at REAL NOT NULL, data BLOB NOT NULL)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS zombie_campaigns (campaign TEXT NOT NULL, key TEXT NOT NULL,
    PRIMARY KEY (campaign, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS zombie_inbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL);
"""


class _SqliteTx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def row(self, key: str) -> Row | None:
        found = self.db.execute("SELECT body FROM zombie_rows WHERE key = ?", (key,)).fetchone()
        return None if found is None else ROW.decode(found[0])

    def has_evidence(self, evidence_id: str) -> bool:
        query = "SELECT 1 FROM zombie_evidence WHERE id = ?"
        return self.db.execute(query, (evidence_id,)).fetchone() is not None

    def put_row(self, row: Row) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO zombie_rows VALUES (?, ?, ?, ?, ?, ?)",
            (
                row.key,
                row.case_id if row.state is not None else None,
                row.state,
                int(row.own),
                row.last_seen,
                ENCODE.encode(row),
            ),
        )

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
    """The Backend on SQLite; one connection per process (none crosses a fork)."""

    def __init__(self, path: Path, *, timeout_s: float = 10.0) -> None:
        self.path = path
        self._timeout_s = timeout_s
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = self._db()
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
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
            result = fn(_SqliteTx(db))
            db.execute("COMMIT")
            return result
        except BaseException as exc:
            db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"cases in {self.path}: {exc}") from None
            raise

    def row(self, key: str) -> Row | None:
        found = self._read("SELECT body FROM zombie_rows WHERE key = ?", (key,))
        return ROW.decode(found[0][0]) if found else None  # type: ignore[arg-type]

    def case_key(self, case_id: str) -> str | None:
        found = self._read(
            "SELECT key FROM zombie_rows WHERE case_id = ? AND state IS NOT NULL", (case_id,)
        )
        return str(found[0][0]) if found else None

    def case_rows(self) -> list[Row]:
        found = self._read("SELECT body FROM zombie_rows WHERE state IS NOT NULL")
        return [ROW.decode(b) for (b,) in found]  # type: ignore[arg-type]

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
