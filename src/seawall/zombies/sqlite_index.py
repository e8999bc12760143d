"""The case index of the embedded case store: what lets a case list read only its rows.

A case list reads only the rows it answers: the cases by state and time in two partial
indexes of ``zombie_rows`` (on its ``updated_at`` column; the count by state is one GROUP BY
over the state index, no row read), and what a case is found by besides, its addresses and
campaigns (``store.case_terms``), in ``zombie_case_terms``.  A file made before has neither:
the desk adds the column and fills both from the rows when it opens the file, once
(``add_case_index``, before the rowid rebuild); until then the others read it as before
(every case row, filtered in Python) and write the old columns.
"""

from __future__ import annotations

import logging
import sqlite3

import msgspec

from seawall.store.sqlite_tx import immediate, run_script
from seawall.zombies.rules import Row
from seawall.zombies.store import ROW, CaseQuery, case_terms

log = logging.getLogger("seawall.zombies")

ROWS_BY_TIME = """
CREATE INDEX IF NOT EXISTS zombie_rows_updated ON zombie_rows (updated_at DESC, key)
    WHERE state IS NOT NULL;
CREATE INDEX IF NOT EXISTS zombie_rows_state ON zombie_rows (state, updated_at DESC, key)
    WHERE state IS NOT NULL;
"""
TERMS = """
CREATE TABLE IF NOT EXISTS zombie_case_terms (term TEXT NOT NULL, key TEXT NOT NULL,
    PRIMARY KEY (term, key)) WITHOUT ROWID;
"""


def put_terms(db: sqlite3.Connection, row: Row, have: set[str]) -> None:
    """Bring ``row``'s entries in zombie_case_terms from ``have`` (the case_terms of the row
    it replaces: the entries there are) to its case_terms (inside a step)."""
    want = case_terms(row)
    if have - want:
        db.executemany(
            "DELETE FROM zombie_case_terms WHERE term = ? AND key = ?",
            [(t, row.key) for t in have - want],
        )
    if want - have:
        db.executemany(
            "INSERT OR IGNORE INTO zombie_case_terms VALUES (?, ?)",
            [(t, row.key) for t in want - have],
        )


def add_case_index(db: sqlite3.Connection) -> int:
    """Give zombie_rows made by earlier releases its updated_at column and fill it and
    zombie_case_terms from the rows with a case, in one write transaction (whichever process
    gets the lock first; the others find it done).  How many cases it indexed, or -1 when
    there was nothing to do."""
    if has_updated_at(db):
        return -1
    with immediate(db):
        if has_updated_at(db):
            return -1
        db.execute("ALTER TABLE zombie_rows ADD COLUMN updated_at REAL NOT NULL DEFAULT 0")
        run_script(db, TERMS)
        found = db.execute("SELECT key, body FROM zombie_rows WHERE state IS NOT NULL")
        n = 0
        for key, body in found.fetchall():
            try:
                row = ROW.decode(body)
            except msgspec.DecodeError:
                log.warning("cases: the row of %s cannot be read; left out of the index", key)
                continue
            db.execute("UPDATE zombie_rows SET updated_at = ? WHERE key = ?", (row.updated_at, key))
            put_terms(db, row, set())
            n += 1
    return n


def has_updated_at(db: sqlite3.Connection) -> bool:
    return any(r[1] == "updated_at" for r in db.execute("PRAGMA table_info(zombie_rows)"))


def where(query: CaseQuery) -> tuple[str, list[object]]:
    """The WHERE clause over ``zombie_rows r`` that ``query`` selects."""
    clauses, args = ["r.state IS NOT NULL"], list[object]()
    if query.states:
        clauses.append(f"r.state IN ({', '.join('?' * len(query.states))})")
        args += query.states
    if query.account is not None:
        clauses.append("r.key = ?")  # an account's row is its subject's: account:NAME
        args.append(f"account:{query.account}")
    for kind, value in (("ip", query.ip), ("campaign", query.campaign)):
        if value is not None:
            clauses.append("r.key IN (SELECT key FROM zombie_case_terms WHERE term = ?)")
            args.append(f"{kind}:{value}")
    if query.since is not None:
        clauses.append("r.updated_at >= ?")
        args.append(query.since)
    return " AND ".join(clauses), args


__all__ = ["ROWS_BY_TIME", "TERMS", "add_case_index", "has_updated_at", "put_terms", "where"]
