"""CPU a message of ``Service.check`` in process, at a fixed number of messages in flight.

    .venv/bin/python -m bench.service_cpu [--messages N] [--concurrency 1 4 16 64]

What one serve worker spends on the scan itself, without the HTTP front end, the load
client or the campaign tracker process competing for the cores: the engine of a frozen batch
scan (the state is read, nothing is learned, so every pass sees the same state) on a copy of
``--state`` (e.g. the SpamAssassin train half learned) or a new state dir; the SpamAssassin
test half; ``concurrency`` calls to ``Service.check`` kept in flight on one event loop.
Prints, for each concurrency, process CPU microseconds a message (the best of ``--repeat``
passes) and the wall-clock messages a second.  To compare two trees, run it from each
(``PYTHONPATH=TREE/src``), alternating.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence

from seawall import corpus
from seawall.batch import _frozen_engine
from seawall.config import load_config
from seawall.message import Envelope
from seawall.serve.service import Service

ENV = Envelope(client_ip="198.51.100.7", mail_from="a@example.org", rcpts=("b@example.org",))


async def one_pass(service: Service, raws: Sequence[bytes], concurrency: int) -> None:
    queue = iter(raws)

    async def client() -> None:
        for raw in queue:
            await service.check(ENV, raw)

    await asyncio.gather(*(client() for _ in range(concurrency)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--state", help="a learned state dir, copied first (default: a new one)")
    args = parser.parse_args(argv)
    items = list(corpus.iter_split(corpus.items(corpus.SPAMASSASSIN), train=False))
    step = max(1, len(items) // args.messages)
    raws = [item.path.read_bytes() for item in items[::step][: args.messages]]
    with tempfile.TemporaryDirectory(prefix="seawall-bench-service-") as tmp:
        state = os.path.join(tmp, "state")
        if args.state:
            shutil.copytree(args.state, state)
        config = load_config(None, state_dir=state)
        engine = _frozen_engine(config)
        service = Service(engine, config)  # no store: no greylist or history writes
        loop = engine.event_loop()
        loop.run_until_complete(one_pass(service, raws[:200], 16))  # warm-up
        out: dict[str, object] = {"loadavg": os.getloadavg()[0], "messages": len(raws)}
        for level in args.concurrency:
            best_cpu = best_wall = float("inf")
            for _ in range(args.repeat):
                cpu0, wall0 = time.process_time(), time.perf_counter()
                loop.run_until_complete(one_pass(service, raws, level))
                best_cpu = min(best_cpu, time.process_time() - cpu0)
                best_wall = min(best_wall, time.perf_counter() - wall0)
            out[f"c{level}"] = {
                "cpu_us_per_msg": round(best_cpu * 1e6 / len(raws), 1),
                "msgs_per_s": round(len(raws) / best_wall, 1),
            }
        engine.close()
    json.dump(out, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
