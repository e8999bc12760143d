"""A large value in the state store does not weigh on every lookup beside it.

Found by ``bench.hostile load --memtrace``: a worker's store thread mapped 14 MB now and
then although it reads no large value; the campaign tracker's snapshot (14 MB after 15
minutes of mail) sat in ``store_values``, a WITHOUT ROWID table, where a lookup of any key
compared with it reads the whole row (5 ms of CPU, a 14 MB malloc).  ``store_values`` is a
rowid table now, and a file made before is rebuilt when opened.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from seawall.store.sqlite import SqliteStore

MIB = 2**20
BIG = 4 * MIB  # over SQLite's default 2 MB page cache, so that a read of it reaches the file

OLD_VALUES = (
    "CREATE TABLE store_values (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires REAL)"
    " WITHOUT ROWID;"
    "CREATE INDEX store_values_expires ON store_values (expires) WHERE expires IS NOT NULL;"
)


def bytes_read() -> int:
    """Bytes this process has read through read(2) and pread(2), every thread."""
    with open("/proc/self/io") as io:
        return int(next(line for line in io if line.startswith("rchar:")).split()[1])


def table_sql(path: Path) -> str:
    with sqlite3.connect(path) as db:
        row = db.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'store_values'"
        ).fetchone()
    return str(row[0])


async def test_a_lookup_beside_a_large_value_reads_only_its_own_row(tmp_path: Path) -> None:
    store = SqliteStore.open(tmp_path / "state.sqlite")
    try:
        await store.put("campaigns:snapshot", b"s" * BIG)
        await store.put("grey:0123", b"1", ttl_s=3600)
        await store.put("campaigns:other", b"2", ttl_s=3600)
        before = bytes_read()
        for _ in range(5):
            assert await store.get("grey:0123") == b"1"
            assert await store.get("grey:absent") is None
            assert await store.get("campaigns:other") == b"2"
        assert bytes_read() - before < BIG  # 15 lookups; each read 4 MiB before
        assert await store.get("campaigns:snapshot") == b"s" * BIG
    finally:
        await store.close()
    assert "WITHOUT ROWID" not in table_sql(tmp_path / "state.sqlite").upper()


async def test_a_store_made_without_rowid_is_rebuilt_with_its_values(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    expires = time.time() + 3600
    with sqlite3.connect(path) as db:
        db.executescript(OLD_VALUES)
        db.executemany(
            "INSERT INTO store_values VALUES (?, ?, ?)",
            [("campaigns:snapshot", b"s" * 1000, None), ("grey:0123", b"1", expires)],
        )
    store = SqliteStore.open(path)
    try:
        assert await store.get("campaigns:snapshot") == b"s" * 1000
        assert await store.get("grey:0123") == b"1"
        await store.put("grey:4567", b"2", ttl_s=3600)
    finally:
        await store.close()
    assert "WITHOUT ROWID" not in table_sql(path).upper()
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT key, expires FROM store_values ORDER BY key").fetchall()
        indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert rows == [("campaigns:snapshot", None), ("grey:0123", expires), ("grey:4567", rows[2][1])]
    assert "store_values_expires" in indexes
    assert not any("old" in name for name in indexes)
    await SqliteStore.open(path).close()  # opened again: nothing left to rebuild
    assert "WITHOUT ROWID" not in table_sql(path).upper()
