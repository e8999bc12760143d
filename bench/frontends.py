"""What the front ends cost outside the engine, in CPU time, in one process.

    .venv/bin/python -m bench.frontends [--rounds 8]

On a machine shared with other work, throughput moves by tens of percent from run to run;
the CPU time of one process moves much less.  Two measurements, each in interleaved rounds:

1. ``http``: process CPU per request of ``POST /checkv2`` (answered before Starlette's
   router) against ``POST /api/v1/scan`` (through it), the same message and envelope, on
   the real Service and Engine, called as uvicorn calls the app.  The difference is what
   the router, its middleware, a Request and a Response cost per message.
2. ``milter``: process CPU per message spent outside ``Service.check``: the milter server
   on loopback TCP (uvloop) and an MTA client sending each test-half message as Postfix
   does (macros, header fields one per packet, body, end of message).  The client's share
   is the same for every tree, so compare trees with ``PYTHONPATH=<tree>/src``.

Writes .cache/bench/frontends.json and prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import uvloop

from bench.load import corpus_samples
from seawall.config import load_config
from seawall.engine import build_engine
from seawall.message import Envelope
from seawall.policy.model import Verdict
from seawall.serve.service import Service
from seawall.store.memory import MemoryStore

ROOT = Path(__file__).resolve().parents[1]
RAW = (
    b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: lunch\r\n"
    b"Message-ID: <f1@example.org>\r\n\r\nShall we meet at noon by the old station today?\r\n"
)


def _service() -> Service:
    config = load_config(state_dir=tempfile.mkdtemp(prefix="seawall-bench-fe-"))
    engine = build_engine(config)
    service = Service(engine, config, classifier=engine.classifier, store=MemoryStore())
    service._log_messages = False  # the log line is not the front end's
    return service


def http(rounds: int, per_round: int = 1000) -> dict[str, Any]:
    from seawall.frontends.http import build_app

    app = build_app(_service(), allow_learn=False)
    paths = {"/checkv2": b"", "/api/v1/scan": b"ip=198.51.100.7"}

    async def one(path: str) -> None:
        scope = {
            "type": "http",
            "method": "POST",
            "path": path,
            "raw_path": path.encode(),
            "query_string": paths[path],
            "headers": [(b"content-length", b"%d" % len(RAW)), (b"ip", b"198.51.100.7")],
            "http_version": "1.1",
            "scheme": "http",
            "root_path": "",
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 11333),
        }
        pending = [{"type": "http.request", "body": RAW, "more_body": False}]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return pending.pop() if pending else {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(dict(message))

        await app(scope, receive, send)
        if sent[0]["status"] != 200:
            raise RuntimeError(f"{path}: {sent}")

    async def timed(path: str, n: int) -> float:
        started = time.process_time()
        for _ in range(n):
            await one(path)
        return (time.process_time() - started) * 1e6 / n

    async def main() -> dict[str, list[float]]:
        for path in paths:
            await timed(path, 200)  # warm-up
        us: dict[str, list[float]] = {path: [] for path in paths}
        for r in range(rounds):
            for path in list(paths)[:: 1 if r % 2 == 0 else -1]:
                us[path].append(await timed(path, per_round))
        return us

    us = uvloop.run(main())
    fast, routed = (statistics.median(us[p]) for p in paths)
    return {
        "requests_per_round": per_round,
        "us_per_request": {p: [round(v, 1) for v in us[p]] for p in paths},
        "median_checkv2_us": round(fast, 1),
        "median_routed_us": round(routed, 1),
        "saved_us": round(routed - fast, 1),
    }


def _split(raw: bytes) -> tuple[list[tuple[str, str]], list[bytes]]:
    """A message as Postfix hands it to a milter: unfolded-name fields (folds as bare LF),
    and the body in chunks of at most 65,535 bytes."""
    raw = raw.replace(b"\r\n", b"\n")
    head, _, body = raw.partition(b"\n\n")
    fields: list[list[str]] = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1][1] += "\n" + line.decode("latin-1")
        elif b":" in line:
            name, _, value = line.partition(b":")
            fields.append([name.decode("latin-1"), value.decode("latin-1").lstrip()])
    crlf = body.replace(b"\n", b"\r\n")
    chunks = [crlf[i : i + 65535] for i in range(0, len(crlf), 65535)] or [b""]
    return [(n, v) for n, v in fields if n.strip() and " " not in n], chunks


def milter(rounds: int, per_round: int = 600) -> dict[str, Any]:
    from tests.frontends.test_milter_server import POSTFIX_PROTOCOL, Mta

    from seawall.frontends.milter.server import serve_milter_connection

    messages = [_split(s.body) for s in corpus_samples(train=False, limit=300)]
    service = _service()
    inside = [0.0]
    check = service.check

    async def timed_check(envelope: Envelope, raw: bytes) -> Verdict:
        started = time.process_time()
        try:
            return await check(envelope, raw)
        finally:
            inside[0] += time.process_time() - started

    service.check = timed_check  # type: ignore[method-assign]

    async def main() -> list[tuple[float, float]]:
        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await serve_milter_connection(r, w, service, service.config.serve.milter)

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]

        async def send(n: int) -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            mta = Mta(reader, writer)
            await mta.session(offer=POSTFIX_PROTOCOL)
            for i in range(n):
                fields, body = messages[i % len(messages)]
                await mta.message(fields, body, queue_id=f"Q{i}")
            await mta.close()

        await send(100)  # warm-up
        out = []
        for _ in range(rounds):
            inside[0] = 0.0
            started = time.process_time()
            await send(per_round)
            total = time.process_time() - started
            out.append(((total - inside[0]) * 1e6 / per_round, total * 1e6 / per_round))
        server.close()
        return out

    out = uvloop.run(main())
    return {
        "messages_per_round": per_round,
        "outside_check_us_per_msg": [round(o, 1) for o, _ in out],
        "median_outside_check_us": round(statistics.median(o for o, _ in out), 1),
        "median_total_us": round(statistics.median(t for _, t in out), 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--only", choices=("http", "milter"))
    args = parser.parse_args(argv)
    runs: dict[str, Callable[[int], dict[str, Any]]] = {"http": http, "milter": milter}
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    for name, run in runs.items():
        if args.only in (None, name):
            print(f"{name}...", file=sys.stderr)
            results[name] = run(args.rounds)
    out = ROOT / ".cache" / "bench" / "frontends.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
