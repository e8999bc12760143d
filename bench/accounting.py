"""RADIUS accounting: import speed, lookup time and memory per million sessions.

    .venv/bin/python -m bench.accounting [--sizes 100000,1000000] [--lookups 20000]
        [--backends sqlite,redis] [--seed 1]

For each size, a seeded synthetic FreeRADIUS detail file in rlm_detail's format (the
format ``seawall simulate`` writes): dynamic pools of one address per 20 sessions, so
every address passes from account to account about 20 times; sessions of 5 minutes to 6
hours back to back on each address (handed out again within two minutes), half of them
with an Interim-Update, one in twenty known only from an Interim-Update and its Stop (no
Start), and the last session of one address in seven still open.  Then, on each backend
(the embedded SQLite file, and a redis-server of the bench's own: tests/redis_servers.py,
no persistence):

1. **Import**: ``seawall accounting import FILE`` in this process (``seawall.cli.main``),
   timed: records/s, parsing and storing.  The parser alone is timed on the same file.
2. **Lookups**: ``who(ip, t)`` at random moments of random addresses, one at a time
   (latency percentiles) and 64 in flight (lookups/s); every answer checked against the
   generator's own truth.
3. **Memory**: Redis ``used_memory`` above the empty server; SQLite's file (pages in use
   after a checkpoint), each per million sessions.

Prints a report and writes the JSON to .cache/bench/accounting.json.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
from contextlib import redirect_stdout
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any

from seawall.accounting import Sessions
from seawall.accounting.detail import Problem, read_detail
from seawall.accounting.redis import RedisSessions
from seawall.accounting.sqlite import SqliteSessions
from seawall.cli import main as seawall_main

T0 = 1_795_000_000
SESSIONS_PER_ADDRESS = 20
RETENTION_S = 30 * 86400.0  # the default: nothing is dropped during the bench


@dataclass(frozen=True, slots=True)
class Truth:
    ip: str
    starts: list[float]
    stops: list[float | None]  # None: open at the end
    accounts: list[str]

    def at(self, t: float) -> str | None:
        i = bisect.bisect_right(self.starts, t) - 1
        if i < 0:
            return None
        stop = self.stops[i]
        return self.accounts[i] if stop is None or t < stop else None


def _stamp(t: int) -> str:
    return time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(t))


def _record(
    t: int, status: str, sid: str, user: str, nas: str, ip: str, up: int | None = None
) -> str:
    lines = [
        f'Acct-Session-Id = "{sid}"',
        f"Acct-Status-Type = {status}",
        f'User-Name = "{user}"',
        f"NAS-IP-Address = {nas}",
        "Service-Type = Framed-User",
        "Framed-Protocol = PPP",
        f"Framed-IP-Address = {ip}",
        "Acct-Delay-Time = 0",
    ]
    if up is not None:
        lines.append(f"Acct-Session-Time = {up}")
    lines.append(f"Timestamp = {t}")
    return _stamp(t) + "\n" + "".join(f"\t{line}\n" for line in lines) + "\n"


def generate(path: Path, sessions: int, seed: int) -> tuple[int, dict[str, Truth], int]:
    """Write the detail file; (records, truth by address, the last time)."""
    rng = random.Random(seed)
    addresses = max(1, sessions // SESSIONS_PER_ADDRESS)
    accounts = max(1, sessions // 8)
    events: list[tuple[int, str]] = []
    truth: dict[str, Truth] = {}
    end = 0
    for a in range(addresses):
        ip = f"10.{a >> 16 & 255}.{a >> 8 & 255}.{a & 255}"
        nas = f"192.0.2.{1 + a % 200}"
        t = T0 + rng.randrange(3600)
        starts: list[float] = []
        stops: list[float | None] = []
        users: list[str] = []
        for n in range(SESSIONS_PER_ADDRESS):
            user = f"user{rng.randrange(accounts):07d}@example.net"
            length = rng.randrange(300, 6 * 3600)
            sid = f"{a:06X}{n:02X}"
            no_start = rng.random() < 0.05
            if not no_start:
                events.append((t, _record(t, "Start", sid, user, nas, ip)))
            if no_start or rng.random() < 0.5:
                mid = rng.randrange(1, length)
                events.append(
                    (t + mid, _record(t + mid, "Interim-Update", sid, user, nas, ip, mid))
                )
            last = n == SESSIONS_PER_ADDRESS - 1 and a % 7 == 0  # left open
            if not last:
                events.append((t + length, _record(t + length, "Stop", sid, user, nas, ip, length)))
            starts.append(float(t))
            stops.append(None if last else float(t + length))
            users.append(user)
            end = max(end, t + length)
            t += length + rng.randrange(0, 120)  # handed out again within two minutes
        truth[ip] = Truth(ip, starts, stops, users)
    events.sort(key=lambda e: e[0])
    with path.open("w", encoding="ascii") as f:
        for _, text in events:
            f.write(text)
    return len(events), truth, end


def parse_only(path: Path) -> tuple[int, float, float]:
    """(records, wall seconds, CPU seconds) of the parser alone."""
    started, cpu = time.perf_counter(), time.process_time()
    count = 0
    with path.open("rb") as f:
        for item in read_detail(iter(lambda: f.read(1 << 20), b""), str(path)):
            assert not isinstance(item, Problem), item
            count += 1
    return count, time.perf_counter() - started, time.process_time() - cpu


def timed_import(path: Path, state: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of ``seawall accounting import``."""
    out = StringIO()
    started, cpu = time.perf_counter(), time.process_time()
    with redirect_stdout(out):
        code = seawall_main(["accounting", "import", "--state", state, str(path)])
    elapsed, used = time.perf_counter() - started, time.process_time() - cpu
    if code != 0:
        raise SystemExit(f"import failed: {out.getvalue()}")
    return elapsed, used


async def lookups(
    sessions: Sessions, truth: dict[str, Truth], count: int, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    ips = list(truth)
    queries = []
    for _ in range(count):
        t = truth[rng.choice(ips)]
        first, last = t.starts[0], (t.stops[-1] or t.starts[-1] + 3600)
        queries.append((t.ip, rng.uniform(first - 600, last + 600)))
    wrong = 0
    latencies = []
    for ip, at in queries:
        started = time.perf_counter()
        found = await sessions.who(ip, at)
        latencies.append(time.perf_counter() - started)
        if (found.account if found else None) != truth[ip].at(at):
            wrong += 1
    sem = asyncio.Semaphore(64)

    async def one(ip: str, at: float) -> None:
        async with sem:
            await sessions.who(ip, at)

    started = time.perf_counter()
    await asyncio.gather(*(one(ip, at) for ip, at in queries))
    concurrent = time.perf_counter() - started
    latencies.sort()
    return {
        "lookups": count,
        "wrong": wrong,
        "p50_us": latencies[len(latencies) // 2] * 1e6,
        "p99_us": latencies[int(len(latencies) * 0.99)] * 1e6,
        "sequential_per_s": count / sum(latencies),
        "concurrent_per_s": count / concurrent,
    }


def redis_memory(url: str) -> int:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return int(client.info("memory")["used_memory"])
    finally:
        client.close()


def redis_cpu(url: str) -> float:
    """The server's CPU seconds so far (user + system, main thread and children)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        info = client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    finally:
        client.close()


def sqlite_bytes(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        size = db.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)
    finally:
        db.close()


def run_backend(
    backend: str, path: Path, truth: dict[str, Truth], size: int, args: argparse.Namespace
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-acct-") as tmp:
        state_dir = Path(tmp) / "state"
        if backend == "sqlite":
            elapsed, cpu = timed_import(path, str(state_dir))
            memory = sqlite_bytes(state_dir / "state.sqlite")
            sessions: Sessions = SqliteSessions.open(
                state_dir / "state.sqlite", retention_s=RETENTION_S
            )
            result = _measure(sessions, truth, args)
            return {"import_s": elapsed, "import_cpu_s": cpu, "bytes": memory, **result}
        from tests.redis_servers import RedisServer

        with RedisServer(Path(tmp) / "redis").running() as server:
            server.flush()
            before, server_cpu = redis_memory(server.url), redis_cpu(server.url)
            elapsed, cpu = timed_import(path, server.url)
            memory = redis_memory(server.url) - before
            server_cpu = redis_cpu(server.url) - server_cpu
            sessions = RedisSessions.from_url(server.url, retention_s=RETENTION_S, timeout_s=5)
            result = _measure(sessions, truth, args)
            return {
                "import_s": elapsed,
                "import_cpu_s": cpu,
                "redis_cpu_s": server_cpu,
                "bytes": memory,
                **result,
            }


def _measure(sessions: Sessions, truth: dict[str, Truth], args: argparse.Namespace) -> Any:
    async def go() -> dict[str, Any]:
        try:
            return await lookups(sessions, truth, args.lookups, args.seed)
        finally:
            await sessions.close()

    return asyncio.run(go())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="sessions per run")
    parser.add_argument("--lookups", type=int, default=20000)
    parser.add_argument("--backends", default="sqlite,redis")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    report: dict[str, Any] = {"runs": []}
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="bench-acct-detail-") as tmp:
            path = Path(tmp) / "detail"
            records, truth, _ = generate(path, size, args.seed)
            parsed, parse_s, parse_cpu = parse_only(path)
            assert parsed == records
            line = (
                f"{size:,} sessions, {records:,} records, {path.stat().st_size / 2**20:.0f} MiB;"
                f" parser alone {records / parse_s:,.0f} records/s"
                f" ({records / parse_cpu:,.0f} per CPU second)"
            )
            print(line, flush=True)
            run: dict[str, Any] = {
                "sessions": size,
                "records": records,
                "parse_per_s": records / parse_s,
                "parse_per_cpu_s": records / parse_cpu,
                "load_average": os.getloadavg(),
            }
            for backend in args.backends.split(","):
                r = run_backend(backend, path, truth, size, args)
                r["import_per_s"] = records / r["import_s"]
                r["import_per_cpu_s"] = records / (r["import_cpu_s"] + r.get("redis_cpu_s", 0))
                r["bytes_per_million"] = r["bytes"] / size * 1e6
                run[backend] = r
                print(
                    f"  {backend:6} import {r['import_per_s']:,.0f} records/s"
                    f" ({r['import_s']:.1f} s; {r['import_per_cpu_s']:,.0f} per CPU second,"
                    f" Redis's included); who p50 {r['p50_us']:.0f} us"
                    f" p99 {r['p99_us']:.0f} us, {r['sequential_per_s']:,.0f}/s one at a"
                    f" time, {r['concurrent_per_s']:,.0f}/s 64 in flight; wrong"
                    f" {r['wrong']}/{r['lookups']}; {r['bytes_per_million'] / 2**20:.0f} MiB"
                    " per million sessions",
                    flush=True,
                )
            report["runs"].append(run)
    out = Path(".cache/bench/accounting.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
