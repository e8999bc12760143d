"""Opening the SQLite verdict history while other processes hold its lock.

Every worker of a new ``seawall serve`` opens the same new file at once, and the dashboard
and the tools open it while the workers write: no open may fail on another's lock, and an
open of a history already set up writes nothing.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from seawall.config import HistorySettings
from seawall.errors import StoreError
from seawall.store.verdicts import Search
from seawall.store.verdicts_sqlite import _OBJECTS, _SCHEMA, SqliteVerdicts


def test_a_new_history_waits_for_another_writer_then_opens(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    # Another process in the middle of a write (e.g. creating the file): a switch to WAL
    # meeting it is refused by SQLite at once, without the busy timeout.
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE other (x)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO other VALUES (1)")
    release = threading.Timer(0.3, holder.execute, ("COMMIT",))
    release.start()
    try:
        history = SqliteVerdicts.open(path, HistorySettings(), busy_timeout_s=120)
    finally:
        release.join()
        holder.close()
    try:
        assert asyncio.run(_search(history)) == []
    finally:
        asyncio.run(history.close())
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()


async def _search(history: SqliteVerdicts) -> list[str]:
    return [r.queue_id for r in await history.search(Search())]


def test_a_lock_held_past_the_busy_timeout_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE other (x)")
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="database is locked"):
            SqliteVerdicts.open(path, HistorySettings(), busy_timeout_s=0.2)
    finally:
        holder.close()


def test_opening_a_history_set_up_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    asyncio.run(SqliteVerdicts.open(path, HistorySettings()).close())
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a worker's batch in progress, holding the lock
    writer.execute("INSERT INTO verdict_kept VALUES (1, 0, 1, x'00')")
    wal = path.with_name(path.name + "-wal")
    size = wal.stat().st_size
    try:
        # Any write would wait for the lock, then fail after the busy timeout.
        reader = SqliteVerdicts.open(path, HistorySettings(), busy_timeout_s=2)
        assert asyncio.run(_search(reader)) == []
        asyncio.run(reader.close())
        assert wal.stat().st_size == size
    finally:
        writer.execute("COMMIT")
        writer.close()


def test_the_schema_makes_the_objects_an_open_looks_for(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "s.sqlite")
    try:
        db.executescript(_SCHEMA)
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    finally:
        db.close()
    assert names - {n for n in names if n.startswith("sqlite_")} == _OBJECTS
