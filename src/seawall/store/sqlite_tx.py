"""Write transactions and schema scripts on an SQLite connection in autocommit mode
(``isolation_level=None``), shared by every SQLite file Seawall keeps."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[None]:
    """A write transaction, committed when the block ends (a ``return`` too), rolled back
    when it raises.  IMMEDIATE takes the write lock up front (waiting up to the busy
    timeout) instead of failing at the first write when another process got there first."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if db.in_transaction:  # SQLite may have rolled back already (disk full, I/O error)
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def run_script(db: sqlite3.Connection, script: str) -> None:
    """Each ``;``-separated statement of ``script`` in turn, inside the caller's transaction
    (``executescript`` would commit it first)."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)
