"""``bench.hostile input``: what hostile and ordinary input costs the parse and the scan.

The tests check that each hostile input is flagged and capped (the defect, the symbol, the
truncation, the archive budget); this measures how long each takes, in CPU seconds of this
process (``time.process_time``), best of ``--repeat`` runs:

- the parse of each of tests/message/test_bad_input.py's inputs (bad input, megabyte lines
  in four places, hostile HTML), the worst of each group and the worst overall;
- a verdict (``Engine.scan_sync``, the default engine) for each of tests/test_engine.py's
  hostile messages;
- the archive walk of tests/message/test_archives.py's 42.zip-style bomb;
- the DNS lists' sender names of a message with megabyte From, Reply-To, HELO and MAIL FROM
  (one call: the names' keys are cached);
- with ``--corpus``, the parse of every SpamAssassin corpus message, once each: mean, p99
  and the slowest.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from tests import test_engine as engine_cases
from tests.dnslists.test_senders import message as sender_message
from tests.message import test_archives as archives
from tests.message import test_bad_input as bad

from seawall import corpus
from seawall.config import load_config
from seawall.dnslists.names import sender_names
from seawall.engine import build_engine
from seawall.message import Envelope, parse_message

MS = 1000.0


def add_input_parser(sub: Any) -> None:
    mode = sub.add_parser("input", help="CPU cost of hostile input (parse, scan, archives)")
    mode.add_argument("--repeat", type=int, default=3)
    mode.add_argument("--corpus", action="store_true", help="also parse the SpamAssassin corpus")


def cpu_ms(run: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return round(best * MS, 3)


def _worst(rows: dict[str, float]) -> dict[str, Any]:
    name = max(rows, key=rows.__getitem__)
    return {"worst_ms": rows[name], "worst": name, "cases": rows}


def parse_rows(repeat: int) -> dict[str, Any]:
    cases = {name: make() for name, (make, _) in bad.CASES.items()}
    groups: dict[str, dict[str, float]] = {"bad_input": {}, "megabyte_lines": {}, "html": {}}
    for name, raw in cases.items():
        groups["bad_input"][name] = cpu_ms(partial(parse_message, raw), repeat)
    for name, line in bad.HOSTILE_LINES.items():
        for where, raw in {
            "body": b"Subject: x\n\n" + line + b"\n",
            "html": b"Content-Type: text/html\n\n<html><body>" + line + b"</body></html>\n",
            "subject": b"Subject: " + line + b"\n\nbody\n",
            "content_type": b"Content-Type: multipart/mixed; boundary=b" + line + b"\n\nbody\n",
        }.items():
            run = partial(parse_message, raw)
            groups["megabyte_lines"][f"{name} in {where}"] = cpu_ms(run, repeat)
    for name, (body, _) in bad.HOSTILE_HTML.items():
        raw = b"Content-Type: text/html; charset=utf-8\n\n" + body
        groups["html"][name] = cpu_ms(partial(parse_message, raw), repeat)
    return {group: _worst(rows) for group, rows in groups.items()}


def scan_rows(repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as state:
        engine = build_engine(load_config(None, state_dir=state))
        try:
            rows = {
                name: cpu_ms(partial(engine.scan_sync, Envelope(), raw), repeat)
                for name, (raw, _) in engine_cases.CASES.items()
            }
        finally:
            engine.close()
    return _worst(rows)


def zip_bomb_ms(repeat: int) -> float:
    level = archives.make_zip([("zeros.bin", bytes(20 * archives.MiB))])
    for depth in range(4):
        level = archives.make_zip([(f"lib{depth}_{i}.zip", level) for i in range(16)])

    def both() -> None:
        archives.walk(level, "42.zip")
        archives.walk(level, "42.zip", max_depth=10, max_members=300)

    return cpu_ms(both, repeat)


def sender_names_ms(repeat: int) -> float:
    raw = "From: " + "<a@" * 20_000 + "x.com>\nReply-To: " + "@" * 100_000 + "\n\nhi\n"
    msg = sender_message(raw, helo="x" * 100_000, mail_from="@" * 100_000)
    checks = frozenset({"mail_from", "from", "reply_to", "helo"})
    # Once: the names' keys are cached, so a repeat would measure the cache.
    return cpu_ms(lambda: sender_names(msg, checks, authenticated=False), 1)


def corpus_rows() -> dict[str, Any]:
    raws = [item.path.read_bytes() for item in corpus.items(corpus.SPAMASSASSIN)]
    parse_message(raws[0])  # the Public Suffix List loads outside the timing
    seconds = []
    for raw in raws:
        start = time.process_time()
        parse_message(raw)
        seconds.append(time.process_time() - start)
    seconds.sort()
    return {
        "messages": len(seconds),
        "mean_ms": round(statistics.fmean(seconds) * MS, 3),
        "p99_ms": round(seconds[int(len(seconds) * 0.99)] * MS, 3),
        "max_ms": round(seconds[-1] * MS, 2),
    }


def hostile_input(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"loadavg_start": list(os.getloadavg()), "repeat": args.repeat}
    result["parse"] = parse_rows(args.repeat)
    result["scan"] = scan_rows(args.repeat)
    result["zip_bomb_42_ms"] = zip_bomb_ms(args.repeat)
    result["sender_names_megabyte_headers_ms"] = sender_names_ms(args.repeat)
    if args.corpus:
        result["spamassassin_parse"] = corpus_rows()
    result["loadavg_end"] = list(os.getloadavg())
    summary = [
        f"parse, worst {group}: {row['worst_ms']} ms ({row['worst']})"
        for group, row in result["parse"].items()
    ]
    summary.append(f"scan, worst: {result['scan']['worst_ms']} ms ({result['scan']['worst']})")
    summary.append(f"42.zip walks: {result['zip_bomb_42_ms']} ms")
    summary.append(
        f"sender names, megabyte headers: {result['sender_names_megabyte_headers_ms']} ms"
    )
    if args.corpus:
        row = result["spamassassin_parse"]
        summary.append(
            f"SpamAssassin corpus parse: mean {row['mean_ms']} ms, p99 {row['p99_ms']} ms,"
            f" max {row['max_ms']} ms ({row['messages']} messages)"
        )
    print("\n".join(summary), file=sys.stderr)
    return result
