"""Bytes read and CPU per lookup of the zombie case store, WITHOUT ROWID tables vs rowid.

    nice -n 10 .venv/bin/python -m bench.zombie_rowid [--raw 2000] [--rows 5000]
        [--lookups 300]

Two files with the same contents: one made with the tables' earlier shape (``zombie_rows``,
``zombie_evidence`` and ``zombie_raw`` WITHOUT ROWID), one by ``SqliteBook`` as it is now
(rowid tables).  The contents: ``--raw`` kept raw originals, the spam of the shared Phishing
Pot corpus between 20 and 200 kB (in a report's evidence, ten pieces per subject); ``--rows``
subjects, one in ten a case with 64 addresses, 64 campaigns and 40 notes (the most a row
keeps of the first two; notes have no bound).  Then, side by side in rounds, the access
paths the desk, the cases API and the dashboard use: ``raw(ref)``, ``evidence(key, 50)``,
``row(key)``, the ingest's ``has_evidence(id)`` and its seek of a new raw's ref, each on
random keys, ``case_rows()`` (the cases page, all open cases) and a prune with nothing to
delete (the desk's, every few minutes), with the bytes
the process read (``rchar`` of /proc/self/io: SQLite's reads of the file, its page cache
being 2 MB) and the thread's CPU time per lookup.  Prints one JSON line per table shape,
the old one with the time a copy of its file took to be rebuilt when opened.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.zombies.test_sqlite_rowid import OLD_SCHEMA  # the tables as earlier releases made them

from seawall.zombies.model import Evidence, Transition
from seawall.zombies.rules import MAX_CAMPAIGNS, MAX_IPS, Row
from seawall.zombies.sqlite_book import SqliteBook, _SqliteTx
from seawall.zombies.store import ENCODE

CORPUS = Path(".cache/corpora/phishing_pot_2019-2025/email")


class _AsIs(SqliteBook):
    """A book on a file as it is (no schema made, nothing rebuilt): the old shape's reads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._timeout_s = 10.0
        self._conn = None
        self._pid = 0


def bytes_read() -> int:
    with open("/proc/self/io") as io:
        return int(next(line for line in io if line.startswith("rchar:")).split()[1])


def raw_messages(n: int) -> list[bytes]:
    files = sorted(CORPUS.glob("*.eml"))
    out = [b for f in files if 20_000 <= f.stat().st_size <= 200_000 for b in [f.read_bytes()]]
    if len(out) < n:
        raise SystemExit(f"{len(out)} messages of 20-200 kB in {CORPUS}, {n} asked")
    return out[:n]


def contents(
    raws: list[bytes], n_rows: int, rng: random.Random
) -> tuple[list[tuple[str, Evidence, bytes | None]], list[Row]]:
    """(subject key, evidence, raw) to add and the rows to put."""
    now = time.time()
    items: list[tuple[str, Evidence, bytes | None]] = []
    keys = [f"account:customer{i:06d}" for i in range(n_rows)]
    for i, raw in enumerate(raws):
        key = keys[(i // 10) % n_rows]
        ref = hashlib.sha256(raw).hexdigest()
        subject = next(
            (
                ln[9:200].decode("utf-8", "replace")
                for ln in raw.split(b"\n")
                if ln[:9] == b"Subject: "
            ),
            "",
        )
        ev = Evidence(
            id=f"arf:{ref[:32]}",
            source="arf",
            kind="spam",
            at=now - i,
            ip=f"198.18.{i % 250}.{i % 200}",
            account=key.partition(":")[2],
            campaign=f"c{rng.getrandbits(64):016x}",
            symbols=("ARF", "SPAMCOP"),
            subject=subject,
            weight=3.0,
            raw_ref=ref,
        )
        items.append((key, ev, raw))
    for i in range(len(raws), len(raws) + 8 * n_rows):  # verdict evidence, no raw
        key = keys[i % n_rows]
        ev = Evidence(
            id=f"verdict:{i:012d}",
            source="verdict",
            kind="spam",
            at=now - i,
            ip=f"198.18.{i % 250}.1",
            account=key.partition(":")[2],
            queue_id=f"4Q{i:010X}",
            message_id=f"<{i}@x.example>",
            campaign=f"c{rng.getrandbits(64):016x}",
            symbols=("SEAWALL_CAMPAIGN", "RBL_OWN"),
            weight=1.0,
        )
        items.append((key, ev, None))
    rows = []
    for i, key in enumerate(keys):
        big = i % 10 == 0
        rows.append(
            Row(
                key=key,
                account=key.partition(":")[2],
                ip=None,
                own=True,
                state="open" if big else None,
                updated_at=now,
                last_seen=now,
                evidence_count=9,
                kinds={"spam": 9},
                ips=tuple(f"198.18.{j}.{i % 250}" for j in range(MAX_IPS if big else 2)),
                campaigns=tuple(
                    f"c{rng.getrandbits(64):016x}" for _ in range(MAX_CAMPAIGNS if big else 2)
                ),
                transitions=tuple(
                    Transition(
                        at=now,
                        from_state="open",
                        to_state="open",
                        who="abuse-desk",
                        why=f"called the customer, ticket {j}: no answer, try again",
                    )
                    for j in range(40 if big else 0)
                ),
            )
        )
    return items, rows


def fill(
    db: sqlite3.Connection, items: list[tuple[str, Evidence, bytes | None]], rows: list[Row]
) -> None:
    db.execute("BEGIN")
    tx = _SqliteTx(db)
    for key, ev, raw in items:
        tx.put_evidence(key, ev, raw, 500)
    for row in rows:
        tx.put_row(row)
    db.execute("COMMIT")


def measure(fn: Callable[[str], object], keys: list[str]) -> tuple[float, float]:
    """(bytes read, CPU microseconds) per call of ``fn`` over ``keys``."""
    rchar, cpu = bytes_read(), time.thread_time()
    for k in keys:
        fn(k)
    return (bytes_read() - rchar) / len(keys), (time.thread_time() - cpu) * 1e6 / len(keys)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--raw", type=int, default=2000)
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--lookups", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    rng = random.Random(7)
    items, rows = contents(raw_messages(args.raw), args.rows, rng)
    with tempfile.TemporaryDirectory(prefix="zombie-rowid-") as tmp:
        old_path, new_path = Path(tmp) / "old.sqlite", Path(tmp) / "new.sqlite"
        with sqlite3.connect(old_path, isolation_level=None) as db:
            db.executescript(OLD_SCHEMA)
            fill(db, items, rows)
        SqliteBook(new_path).close()
        with sqlite3.connect(new_path, isolation_level=None) as db:
            fill(db, items, rows)
        books = {"without_rowid": _AsIs(old_path), "rowid": SqliteBook(new_path)}
        refs = [ev.raw_ref for _, ev, raw in items if raw is not None]
        ids = [ev.id for _, ev, _ in items]
        subjects = [r.key for r in rows]
        paths: dict[str, Callable[[SqliteBook], Callable[[str], object]]] = {
            "raw_by_ref": lambda b: b.raw,
            "evidence_by_key": lambda b: lambda k: b.evidence(k, 50),
            "row_by_key": lambda b: b.row,
            "has_evidence_by_id": lambda b: lambda k: b.atomic(lambda tx: tx.has_evidence(k)),
            "raw_absent": lambda b: b.raw,  # the seek of the ingest's INSERT OR IGNORE
            "case_rows": lambda b: lambda _: b.case_rows(),  # the cases page, all open cases
            "prune_nothing": lambda b: lambda _: b.prune(0.0),  # the desk's, between expiries
        }
        pools = {
            "raw_by_ref": refs,
            "evidence_by_key": subjects,
            "row_by_key": subjects,
            "has_evidence_by_id": ids,
            "raw_absent": [hashlib.sha256(b"%d" % i).hexdigest() for i in range(args.lookups)],
            "case_rows": [""] * 10,
            "prune_nothing": [""] * 10,
        }
        totals: dict[str, dict[str, list[float]]] = {s: {} for s in books}
        for _ in range(args.rounds):
            for name, make in paths.items():
                keys = rng.sample(pools[name], min(args.lookups, len(pools[name])))
                for shape, book in books.items():
                    read, cpu = measure(make(book), keys)
                    totals[shape].setdefault(name, []).extend([read, cpu])
        rebuilt = Path(tmp) / "rebuilt.sqlite"
        shutil.copyfile(old_path, rebuilt)
        wall, cpu = time.monotonic(), time.process_time()
        SqliteBook(rebuilt, rebuild=True).close()  # the desk opening an old file
        rebuild = {
            "rebuild_s": round(time.monotonic() - wall, 2),
            "rebuild_cpu_s": round(time.process_time() - cpu, 2),
        }
        sizes = {
            shape: os.path.getsize(p)
            for shape, p in (("without_rowid", old_path), ("rowid", new_path))
        }
        for shape, book in books.items():
            out: dict[str, object] = {
                "row_body_bytes_case": len(ENCODE.encode(rows[0])),
                "evidence_body_bytes_max": max(len(ENCODE.encode(e)) for _, e, _ in items),
                "shape": shape,
                "file_bytes": sizes[shape],
                "load": os.getloadavg()[0],
                **(rebuild if shape == "without_rowid" else {}),
            }
            for name, values in totals[shape].items():
                reads, cpus = values[0::2], values[1::2]
                out[name] = {
                    "bytes_read": round(sum(reads) / len(reads)),
                    "cpu_us": round(sum(cpus) / len(cpus), 1),
                }
            print(json.dumps(out))
            book.close()


if __name__ == "__main__":
    main()
