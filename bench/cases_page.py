"""The case list's reads on a book of many cases: a dashboard page, the scrape's count, the
remedies' walled cases.

    nice -n 10 .venv/bin/python -m bench.cases_page [--cases 20000] [--repeat 20]
        [--backends sqlite,redis] [--seed 1]

A book of ``--cases`` cases (three in four accounts, the rest own addresses), seeded: each
with 1 to 4 addresses, 1 to 3 campaigns, 2 to 5 transitions and a state drawn as a botnet
wave leaves them (45% open, 25% notified, 15% walled, 5% released, 10% closed) at random
times over a week, written through the backend's own atomic steps (500 rows a step), on
the embedded SQLite file and on a redis-server of the bench's own (tests/redis_servers.py,
no persistence).  Then, ``--repeat`` times each, through the CaseStore as its readers call
it:

``page100``   ``page(limit=100)``: the dashboard's case list (its first page and counts)
``count``     ``page(limit=0)``: what each /metrics scrape asks (the count by state)
``walled``    ``list(states=("walled",))``: the remedies' pass, every walled case

``ingest``    ``add_evidence`` (100 times ``--repeat``): a piece of evidence on a case, from
              an address and of a campaign new to it (what the index adds to a write: its
              state, time and terms kept in the same step)

with the median wall time per call, this process's CPU per call and, on Redis, the
server's (``used_cpu_user + used_cpu_sys`` of INFO).  The same script measures a tree
before the case index: run it with that tree's ``src`` first on PYTHONPATH (it uses only
what both have).  Prints one JSON line per backend.

``--migrate`` (this tree only) times instead the one-time build of the index on a book of
``--cases`` written before it: SQLite, a file with the previous release's tables opened by
the desk (``rebuild=True``); Redis, the book with its ``st:``/``term:``/``index`` keys
deleted, opened again.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.redis_servers import RedisServer

import seawall
from seawall.config import Config
from seawall.zombies.model import Evidence, Transition, evidence_id
from seawall.zombies.rules import Row
from seawall.zombies.store import CaseBook, open_case_store

T0 = 1_790_000_000.0
STATES = (("open", 45), ("notified", 25), ("walled", 15), ("released", 5), ("closed", 10))


def rows(n: int, seed: int) -> list[Row]:
    rnd = random.Random(seed)
    states = [s for s, w in STATES for _ in range(w)]
    out = []
    for i in range(n):
        account = f"cust{i:06d}" if i % 4 else None
        ips = tuple(
            f"10.{rnd.randrange(64)}.{rnd.randrange(256)}.{rnd.randrange(256)}"
            for _ in range(rnd.randint(1, 4))
        )
        at = T0 + rnd.uniform(0, 7 * 86400)
        state = rnd.choice(states)
        moves = tuple(
            Transition(at=at - 60 * k, from_state="open", to_state=state, who="desk", why="x" * 40)
            for k in range(rnd.randint(2, 5))
        )
        out.append(
            Row(
                key=f"account:{account}" if account else f"ip:{ips[0]}",
                account=account,
                ip=None if account else ips[0],
                own=True,
                state=state,  # type: ignore[arg-type]
                opened_at=at - 3600,
                updated_at=at,
                score=12.0,
                score_at=at,
                evidence_count=rnd.randint(1, 40),
                kinds={"spam": 3, "report": 1},
                campaigns=tuple(f"camp{rnd.randrange(500)}" for _ in range(rnd.randint(1, 3))),
                ips=ips,
                first_seen=at - 7200,
                last_seen=at,
                transitions=moves,
            )
        )
    return out


def fill(book: CaseBook, book_rows: list[Row]) -> None:
    for i in range(0, len(book_rows), 500):
        chunk = book_rows[i : i + 500]

        def step(tx: Any, chunk: list[Row] = chunk) -> None:
            for row in chunk:
                tx.put_row(row)

        book.backend.atomic(step)


def server_cpu(book: CaseBook) -> float:
    info = book.backend.r.info("cpu")  # type: ignore[attr-defined]
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def measure(book: CaseBook, redis: bool, repeat: int) -> dict[str, Any]:
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "page100": lambda: book.page(limit=100),
        "count": lambda: book.page(limit=0),
        "walled": lambda: book.list(states=("walled",)),
    }
    rnd = random.Random(5)
    n = iter(range(10**9))

    def ingest() -> Awaitable[object]:
        i = next(n)
        evidence = Evidence(
            id=evidence_id("bench", i),
            source="verdict",
            kind="spam",
            at=T0 + i,
            ip=f"10.200.{i // 250 % 250}.{i % 250}",
            account=f"cust{rnd.randrange(1, 20_000):06d}",
            campaign=f"camp{rnd.randrange(500)}",
            weight=2.0,
        )
        return book.add_evidence(evidence)

    calls["ingest"] = ingest
    out: dict[str, Any] = {}
    for name, call in calls.items():
        await call()  # warm: the connection, SQLite's page cache
        walls = []
        cpu0, srv0 = time.process_time(), server_cpu(book) if redis else 0.0
        reps = repeat * 100 if name == "ingest" else repeat  # cheap: many more of them
        for _ in range(reps):
            t = time.perf_counter()
            await call()
            walls.append(time.perf_counter() - t)
        cpu, srv = time.process_time() - cpu0, (server_cpu(book) - srv0) if redis else 0.0
        out[name] = {
            "wall_ms": round(statistics.median(walls) * 1000, 2),
            "cpu_ms": round(cpu / reps * 1000, 2),
            **({"server_cpu_ms": round(srv / reps * 1000, 2)} if redis else {}),
        }
    page = await book.page(limit=0)
    out["cases"] = page.total
    out["walled_cases"] = page.by_state.get("walled", 0)
    return out


def tree() -> str:
    src = Path(seawall.__file__).resolve().parents[2]
    found = subprocess.run(
        ["git", "-C", str(src), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return f"{src} {found.stdout.strip()}"


async def run(backend: str, n: int, repeat: int, seed: int, tmp: Path) -> dict[str, Any]:
    book_rows = rows(n, seed)
    if backend == "redis":
        with RedisServer(tmp / "redis").running() as server:
            book = open_case_store(Config(state=server.url, state_dir=str(tmp)))
            return await _timed(book, book_rows, repeat, redis=True)
    book = open_case_store(Config(state_dir=str(tmp)), rebuild=True)
    return await _timed(book, book_rows, repeat, redis=False)


async def _timed(book: CaseBook, book_rows: list[Row], repeat: int, redis: bool) -> dict[str, Any]:
    try:
        t = time.perf_counter()
        fill(book, book_rows)
        filled = time.perf_counter() - t
        return {"fill_s": round(filled, 2), **await measure(book, redis, repeat)}
    finally:
        await book.close()


def migrate(backend: str, n: int, seed: int, tmp: Path) -> dict[str, Any]:
    from tests.zombies.test_case_index_migration import PREVIOUS

    from seawall.zombies.model import STATES as ALL
    from seawall.zombies.redis_book import RedisBook
    from seawall.zombies.sqlite_book import SqliteBook
    from seawall.zombies.store import case_terms

    book_rows = rows(n, seed)
    t0 = c0 = 0.0
    if backend == "sqlite":
        path = tmp / "state.sqlite"
        with sqlite3.connect(path) as db:
            db.executescript(PREVIOUS)
        old = CaseBook(SqliteBook(path), Config().zombies)  # no desk yet: the old columns
        fill(old, book_rows)
        old.backend.close()
        t0, c0 = time.perf_counter(), time.process_time()
        SqliteBook(path, rebuild=True).close()
    else:
        with RedisServer(tmp / "redis").running() as server:
            book = RedisBook(server.url)
            fill(CaseBook(book, Config().zombies), book_rows)
            names = {f"st:{s}" for s in ALL} | {"index"}
            names |= {f"term:{t}" for r in book_rows for t in case_terms(r)}
            book.r.delete(*(book.k(name) for name in names))
            t0, c0 = time.perf_counter(), time.process_time()
            RedisBook(server.url).close()
            book.close()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"migrate_s": round(wall, 2), "migrate_cpu_s": round(cpu, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--backends", default="sqlite,redis")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--migrate", action="store_true")
    args = ap.parse_args()
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory(prefix="seawall-cases-") as tmp:
            if args.migrate:
                result = migrate(backend, args.cases, args.seed, Path(tmp))
            else:
                result = asyncio.run(run(backend, args.cases, args.repeat, args.seed, Path(tmp)))
        line = {"backend": backend, "tree": tree(), "load": round(os.getloadavg()[0], 2)}
        print(json.dumps({**line, **result}), flush=True)


if __name__ == "__main__":
    main()
