"""A book written before the case index gets it once, keeps every case, and keeps it right.

SQLite: a file of the previous release (rowid tables, no ``updated_at`` column, no
``zombie_case_terms``) is read as it is by the workers, the API and the CLI (every case
row, filtered in Python; their writes use the old columns) until the desk opens it and
adds the column, the indexes and the terms from the rows, in one transaction.  A process
that opened the file before keeps the index right from its next write.

Redis: a book written before has no ``st:``/``term:``/``index`` keys; the first open
builds them under the writers' lock, the next finds them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from tests.zombies.test_case_index import (
    check_filters,
    ev,
    every_row,
    generate,
    reference,
)

from seawall.config import Config, ZombiesSettings
from seawall.zombies import redis_book
from seawall.zombies.model import STATES
from seawall.zombies.redis_book import RedisBook
from seawall.zombies.rules import Row
from seawall.zombies.sqlite_book import SqliteBook
from seawall.zombies.store import CaseBook, case_terms, open_case_store

T = TypeVar("T")
T0 = 1_700_000_000.0

# The tables as the previous release made them (before the case index).
PREVIOUS = """
CREATE TABLE zombie_rows (
    key TEXT PRIMARY KEY NOT NULL, case_id TEXT, state TEXT, own INTEGER NOT NULL,
    last_seen REAL NOT NULL, body BLOB NOT NULL);
CREATE INDEX zombie_rows_case ON zombie_rows (case_id) WHERE state IS NOT NULL;
CREATE INDEX zombie_rows_ext ON zombie_rows (last_seen) WHERE own = 0;
CREATE TABLE zombie_evidence (
    id TEXT PRIMARY KEY NOT NULL, key TEXT NOT NULL, at REAL NOT NULL, body BLOB NOT NULL);
CREATE INDEX zombie_evidence_key ON zombie_evidence (key, at);
CREATE INDEX zombie_evidence_at ON zombie_evidence (at);
CREATE TABLE zombie_raw (ref TEXT PRIMARY KEY NOT NULL, at REAL NOT NULL, data BLOB NOT NULL);
CREATE INDEX zombie_raw_at ON zombie_raw (at);
CREATE TABLE zombie_campaigns (campaign TEXT NOT NULL, key TEXT NOT NULL,
    PRIMARY KEY (campaign, key)) WITHOUT ROWID;
CREATE TABLE zombie_inbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL);
"""


def schema(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL")
        return {str(name): str(sql) for name, sql in rows}


def by_key(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: r.key)


def sqlite_book(path: Path, *, rebuild: bool = False) -> CaseBook:
    return CaseBook(SqliteBook(path, rebuild=rebuild), ZombiesSettings())


async def test_an_old_file_is_read_as_it_is_then_indexed_by_the_desk(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(PREVIOUS)
    before = schema(path)
    worker = sqlite_book(path)  # a worker's, the API's: opens the file as it is
    try:
        await generate(worker, seed=21, subjects=120)  # written with the old columns
        assert schema(path) == before, "a process other than the desk changed the tables"
        rows = await every_row(worker)
        assert len(rows) == 121
        assert await worker.list() == reference(rows)
        assert (await worker.page(limit=0)).by_state == (await worker.page(limit=5)).by_state

        desk = sqlite_book(path, rebuild=True)
        try:
            after = schema(path)
            assert "updated_at" in after["zombie_rows"]
            assert {"zombie_case_terms", "zombie_rows_updated", "zombie_rows_state"} <= set(after)
            assert by_key(await every_row(desk)) == by_key(rows), "a case was lost or changed"
            await check_filters(desk, rows)

            # The worker opened the file before: its next writes keep the index right.
            moved = (await worker.list(states=("open",)))[:5]
            for case in moved:
                await worker.transition(case.id, "walled", "desk", "after the index")
            await worker.add_evidence(ev(9_999, account=moved[0].account, ip="10.6.6.6"))
            rows = await every_row(desk)
            await check_filters(desk, rows)
            assert [c.id for c in await desk.list(ip="10.6.6.6")] == [moved[0].id]
            assert schema(path) == after
        finally:
            await desk.close()
        again = SqliteBook(path, rebuild=True)  # opened again: nothing left to do
        again.close()
        assert schema(path) == after
    finally:
        await worker.close()


async def test_an_old_redis_book_is_indexed_on_open(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _old_redis_book(redis_url, tmp_path, monkeypatch)


async def test_an_old_cluster_book_is_indexed_on_open(
    redis_cluster_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _old_redis_book(redis_cluster_url, tmp_path, monkeypatch)


async def _old_redis_book(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_book, "_INDEX_STEP", 16)  # several steps, writes between them
    config = Config(state=url, state_dir=str(tmp_path))
    book, writer = open_case_store(config), open_case_store(config)
    try:
        await generate(book, seed=22, subjects=120)
        rows = await every_row(book)
        backend = book.backend
        assert isinstance(backend, RedisBook)
        # What the previous release did not write: the book as it left it.
        names = {f"st:{s}" for s in STATES} | {"index"}
        names |= {f"term:{t}" for r in rows for t in case_terms(r)}
        assert backend.r.delete(*(backend.k(n) for n in sorted(names)))

        # Another process moves cases between the build's steps: one the build has
        # indexed already, one it has not reached.
        order = sorted(r.key for r in rows)
        moves = iter([(order[0], order[-1])] + [None] * 100)
        atomic = backend.atomic

        def between(fn: Callable[[Any], T]) -> T:
            result = atomic(fn)
            move = next(moves)
            for key in move or ():
                row = next(r for r in rows if r.key == key)
                state = "closed" if row.state != "closed" else "open"
                writer._transition(row.case_id, state, "desk", "during the build", T0 + 50_000)
            return result

        monkeypatch.setattr(backend, "atomic", between)
        assert backend._index() == len(rows)
        monkeypatch.undo()
        assert backend._index() == -1  # found done
    finally:
        await book.close()
        await writer.close()
    reopened = open_case_store(config)
    try:
        assert isinstance(reopened.backend, RedisBook)
        assert reopened.backend._index() == -1
        rows = await every_row(reopened)
        assert len(rows) == 121
        assert sum(r.updated_at == T0 + 50_000 for r in rows) == 2
        await check_filters(reopened, rows)
    finally:
        await reopened.close()
