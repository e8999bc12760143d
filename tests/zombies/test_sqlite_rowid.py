"""The embedded case store: a lookup beside large rows reads only its own row.

Kept raw originals run to hundreds of kB and a case row grows with its notes.  In a WITHOUT
ROWID table a lookup of any key reads in whole every large row its key is compared with
(bench/zombie_rowid.py: 350 kB read per raw lookup or new report's raw beside 2,000 kept
messages); ``zombie_rows``, ``zombie_evidence`` and ``zombie_raw`` are rowid tables, and a
file made before is rebuilt by the desk process when it opens it, once, whichever of
several gets there first (one restarted beside one stopping); the other processes use the
file as it is until then.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import multiprocessing
import sqlite3
import time
from pathlib import Path

from seawall.config import Config, ZombiesSettings
from seawall.zombies.model import Evidence, Transition, case_id, evidence_id
from seawall.zombies.rules import Row
from seawall.zombies.sqlite_book import SqliteBook, _SqliteTx
from seawall.zombies.store import CaseBook, open_case_store

MIB = 2**20
T0 = 1_700_000_000.0
TABLES = ("zombie_rows", "zombie_evidence", "zombie_raw")

# The tables as releases before this one made them.
OLD_SCHEMA = """
CREATE TABLE zombie_rows (
    key TEXT PRIMARY KEY, case_id TEXT, state TEXT, own INTEGER NOT NULL,
    last_seen REAL NOT NULL, body BLOB NOT NULL) WITHOUT ROWID;
CREATE INDEX zombie_rows_case ON zombie_rows (case_id) WHERE state IS NOT NULL;
CREATE INDEX zombie_rows_ext ON zombie_rows (last_seen) WHERE own = 0;
CREATE TABLE zombie_evidence (
    id TEXT PRIMARY KEY, key TEXT NOT NULL, at REAL NOT NULL, body BLOB NOT NULL)
    WITHOUT ROWID;
CREATE INDEX zombie_evidence_key ON zombie_evidence (key, at);
CREATE INDEX zombie_evidence_at ON zombie_evidence (at);
CREATE TABLE zombie_raw (ref TEXT PRIMARY KEY, at REAL NOT NULL, data BLOB NOT NULL)
    WITHOUT ROWID;
CREATE TABLE zombie_campaigns (campaign TEXT NOT NULL, key TEXT NOT NULL,
    PRIMARY KEY (campaign, key)) WITHOUT ROWID;
CREATE TABLE zombie_inbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL);
"""


def bytes_read() -> int:
    """Bytes this process has read through read(2) and pread(2), every thread."""
    with open("/proc/self/io") as io:
        return int(next(line for line in io if line.startswith("rchar:")).split()[1])


def report(n: int, raw: bytes, account: str = "alice") -> Evidence:
    return Evidence(
        id=evidence_id("arf", n),
        source="arf",
        kind="spam",
        at=T0 + n,
        ip=f"198.18.0.{n}",
        account=account,
        campaign=f"c{n}",
        subject=f"report {n}",
        weight=2.0,
        raw_ref=hashlib.sha256(raw).hexdigest(),
    )


def noted(key: str, notes: int) -> Row:
    """A case row with ``notes`` notes of 1 kB (notes have no bound)."""
    note = Transition(at=T0, from_state="open", to_state="open", who="desk", why="n" * 1024)
    return Row(
        key=key, account=key[8:], ip=None, own=True, state="open", last_seen=T0,
        transitions=(note,) * notes,
    )  # fmt: skip


def schemas(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL")
        return {str(name): " ".join(str(sql).upper().split()) for name, sql in rows}


def make_old(path: Path, raws: list[bytes], rows: list[Row]) -> None:
    """A file with the old tables, holding ``raws`` (one report each on alice's case) and
    ``rows``."""
    with sqlite3.connect(path, isolation_level=None) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(OLD_SCHEMA)
        db.execute("BEGIN")
        tx = _SqliteTx(db, indexed=False)
        for n, raw in enumerate(raws):
            tx.put_evidence("account:alice", report(n, raw), raw, 500)
        tx.put_row(noted("account:alice", 1))
        for row in rows:
            tx.put_row(row)
        db.execute("COMMIT")
    assert all("WITHOUT ROWID" in schemas(path)[t] for t in TABLES)


async def test_a_raw_lookup_beside_large_raws_reads_only_its_own(tmp_path: Path) -> None:
    book = CaseBook(SqliteBook(tmp_path / "state.sqlite"), ZombiesSettings())
    try:
        # 8 MiB of kept originals: over SQLite's 2 MB page cache, so reads reach the file.
        large = [bytes([65 + n]) * MIB for n in range(8)]
        small = b"Subject: small\r\n\r\nspam\r\n"
        for n, raw in enumerate([*large[:4], small, *large[4:]]):
            assert (await book.add_evidence(report(n, raw), raw)).new
        before = bytes_read()
        for n in range(5):
            assert await book.raw(hashlib.sha256(small).hexdigest()) == small
            assert await book.raw(hashlib.sha256(b"absent %d" % n).hexdigest()) is None
        # ... and a new report's raw goes in beside them: its key is sought the same way.
        extra = b"Subject: another\r\n\r\nspam\r\n"
        assert (await book.add_evidence(report(99, extra), extra)).new
        assert bytes_read() - before < MIB  # 11 lookups; each read megabytes before
        assert await book.raw(hashlib.sha256(large[5]).hexdigest()) == large[5]
    finally:
        await book.close()
    assert all("WITHOUT ROWID" not in schemas(tmp_path / "state.sqlite")[t] for t in TABLES)


async def test_a_case_lookup_beside_large_case_rows_reads_only_its_own(tmp_path: Path) -> None:
    backend = SqliteBook(tmp_path / "state.sqlite")
    book = CaseBook(backend, ZombiesSettings())
    try:
        rows = [noted(f"account:noted{n}", 1024) for n in range(8)]  # 1 MiB of notes each
        for row in [*rows[:4], noted("account:bob", 1), *rows[4:]]:
            backend.atomic(functools.partial(_SqliteTx.put_row, row=row))
        before = bytes_read()
        for _ in range(5):
            case = await book.get(case_id("account", "bob"))
            assert case is not None
            assert case.account == "bob"
            assert await book.find(account="carol") is None
        assert bytes_read() - before < MIB  # 10 lookups (15 statements)
        case = await book.find(account="noted3")
        assert case is not None
        assert len(case.transitions) == 1024
    finally:
        await book.close()


async def use_old(book: CaseBook, raws: list[bytes]) -> None:
    """Everything the desk, the API and the CLI do with the cases, on ``make_old``'s."""
    alice = case_id("account", "alice")
    evidence = await book.evidence(alice)
    assert [e.id for e in evidence] == [report(n, raws[n]).id for n in reversed(range(6))]
    for n, raw in enumerate(raws):
        assert await book.raw(report(n, raw).raw_ref) == raw
    bob = await book.find(account="bob")
    assert bob is not None
    assert bob.transitions == noted("account:bob", 3).transitions
    assert {c.account for c in await book.list()} == {"alice", "bob"}
    assert await book.campaign_senders("c2") == (["alice"], 0)
    assert not (await book.add_evidence(report(1, raws[1]), raws[1])).new  # still known
    assert (await book.add_evidence(report(7, b"new"), b"new")).new
    assert (await book.note(alice, "desk", "called")).transitions[-1].why == "called"
    assert await book.prune(T0 + 3 + ZombiesSettings().evidence_ttl_s) == 3
    assert await book.raw(report(2, raws[2]).raw_ref) is None
    assert await book.raw(report(4, raws[4]).raw_ref) == raws[4]


async def test_an_old_file_is_rebuilt_by_the_desk_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    raws = [b"Subject: r%d\r\n\r\n" % n + b"x" * (n * 5000) for n in range(6)]
    make_old(path, raws, [noted("account:bob", 3)])
    book = open_case_store(Config(state_dir=str(tmp_path)), rebuild=True)
    try:
        await use_old(book, raws)
    finally:
        await book.close()
    shape = schemas(path)
    assert all("WITHOUT ROWID" not in shape[t] for t in TABLES)
    for index in ("zombie_rows_case", "zombie_rows_ext", "zombie_evidence_key",
                  "zombie_evidence_at", "zombie_raw_at"):  # fmt: skip
        assert index in shape
    assert not any("WITHOUT_ROWID" in name.upper() for name in shape)
    SqliteBook(path, rebuild=True).close()  # opened again: nothing left to rebuild
    assert schemas(path) == shape


async def test_the_other_processes_use_an_old_file_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    raws = [b"Subject: r%d\r\n\r\n" % n + b"x" * (n * 5000) for n in range(6)]
    make_old(path, raws, [noted("account:bob", 3)])
    before = schemas(path)
    book = open_case_store(Config(state_dir=str(tmp_path)))  # a worker's, the API's
    try:
        assert schemas(path) == before  # opening it wrote nothing
        await use_old(book, raws)
    finally:
        await book.close()
    assert schemas(path) == before


def _open(path: str, start: float) -> int:
    """Open the book at ``start`` (wall clock); the number of tables this process rebuilt."""
    rebuilt: list[logging.LogRecord] = []

    class Kept(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            rebuilt.append(record)

    logging.getLogger("seawall.zombies").addHandler(Kept())
    logging.getLogger("seawall.zombies").setLevel(logging.INFO)
    time.sleep(max(0.0, start - time.time()))
    SqliteBook(Path(path), timeout_s=60.0, rebuild=True).close()
    return sum("rebuilt" in r.getMessage() for r in rebuilt)


def test_processes_opening_an_old_file_at_once_rebuild_it_once(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    raws = [bytes([65 + n]) * (2 * MIB) for n in range(16)]  # a rebuild that takes a while
    make_old(path, raws, [noted(f"account:c{n}", 2) for n in range(50)])
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        start = time.time() + 3.0  # after the four have started
        rebuilt = pool.starmap(_open, [(str(path), start)] * 4, chunksize=1)
    assert sum(rebuilt) == len(TABLES)  # each table once, by whichever process came first
    assert all("WITHOUT ROWID" not in schemas(path)[t] for t in TABLES)
    with sqlite3.connect(path) as db:
        counts = [db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES]
        assert counts == [50 + 1, 16, 16]  # alice's row and the 50 noted ones
        total = db.execute("SELECT sum(length(data)) FROM zombie_raw").fetchone()[0]
        assert total == 16 * 2 * MIB
