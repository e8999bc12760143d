"""A table made WITHOUT ROWID rebuilt as a rowid table, for tables that hold large rows.

In a WITHOUT ROWID table the rows are the entries of the key's b-tree: a lookup compares
its key with the rows on its way down, and SQLite reads a row that overflows its page (over
about 1 kB with 4 kB pages) in whole, into a buffer of its size, for each such comparison.
Beside rows of hundreds of kB (a kept raw message) or megabytes (the campaign tracker's
snapshot) every lookup of any key reads some of them.  A rowid table keeps the rows in the
rowid's b-tree and the key in its own index, so a lookup reads only the row it finds.

``rebuild_as_rowid`` turns a table made before into the new shape, once, keeping its rows
and making its indexes anew; several processes may open the file at once: the first takes
the write lock and rebuilds, the others find it done when they get the lock.
"""

from __future__ import annotations

import sqlite3

from seawall.store.sqlite_tx import immediate, run_script


def without_rowid(db: sqlite3.Connection, table: str) -> bool:
    """Whether ``table`` exists and was made WITHOUT ROWID (as this connection sees it)."""
    row = db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    return row is not None and "WITHOUT ROWID" in " ".join(str(row[0]).upper().split())


def rebuild_as_rowid(db: sqlite3.Connection, table: str, schema: str) -> bool:
    """Rebuild ``table`` as ``schema`` makes it (its CREATE TABLE, without WITHOUT ROWID,
    and its CREATE INDEX statements, separated by ``;``) if it was made WITHOUT ROWID.

    The rows are copied (the columns both shapes have), the old indexes dropped and the
    schema's made; one IMMEDIATE transaction, so it waits for the write lock up to the
    connection's busy timeout, and a crash leaves the old table whole.  ``db`` must be in
    autocommit mode (``isolation_level=None``), outside a transaction.  True when this call
    rebuilt it; False when there was nothing to do (or another process had done it).
    """
    if not without_rowid(db, table):
        return False
    old = f"{table}_without_rowid"
    with immediate(db):
        if not without_rowid(db, table):  # another process did it while this one waited
            return False
        before = _columns(db, table)
        db.execute(f'ALTER TABLE "{table}" RENAME TO "{old}"')
        indexes = db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?"
            " AND sql IS NOT NULL",
            (old,),
        ).fetchall()
        for (name,) in indexes:  # their names are the new table's to take
            db.execute(f'DROP INDEX "{name}"')
        run_script(db, schema)
        if without_rowid(db, table):
            raise sqlite3.OperationalError(f"the new shape of {table} is WITHOUT ROWID")
        columns = ", ".join(f'"{c}"' for c in _columns(db, table) if c in before)
        db.execute(f'INSERT INTO "{table}" ({columns}) SELECT {columns} FROM "{old}"')
        db.execute(f'DROP TABLE "{old}"')
    return True


def _columns(db: sqlite3.Connection, table: str) -> list[str]:
    return [str(r[1]) for r in db.execute(f'PRAGMA table_info("{table}")')]


__all__ = ["rebuild_as_rowid", "without_rowid"]
