"""The full replay: a simulated 1-hour wave through a real Postfix with Seawall's milter.

    .venv/bin/python -m bench.replay [--seed 7] [--speed 12] [--trained]

Starts ``seawall serve`` (2 workers), a sink, and a Postfix whose smtpd_milters is
Seawall, then runs ``seawall simulate --to smtp://...`` at the given speed (12: an hour in
five minutes). Every message must end delivered (the sink got it), rejected with a reason,
or tempfailed and retried; the per-minute table (simulated minutes) counts what arrived,
what was blocked and by which symbol (the first one the reject reason names).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from tests.integration.conftest import Sink
from tests.integration.postfix import Postfix, free_port
from tests.integration.seawall_proc import Seawall

ROOT = Path(__file__).resolve().parents[1]
REASON = re.compile(r"\(([A-Z0-9_]+)")
GREYLIST_DELAY_S = 300.0  # serve.greylist_delay_s, the default


def per_minute(lines: Sequence[dict[str, Any]], start: float) -> list[dict[str, Any]]:
    rows: dict[int, dict[str, Any]] = defaultdict(
        lambda: {
            "arrived": 0,
            "spam": 0,
            "blocked": 0,
            "legit_blocked": 0,  # ham and newsletters rejected
            "delivered": 0,
            "tempfailed": 0,
            "by": Counter(),
        }
    )
    for line in lines:
        minute = int((line["at"] - start) // 60)
        row = rows[minute]
        row["arrived"] += 1
        row["spam"] += line["kind"] in ("spam", "worm")
        status = line["outcome"]["status"]
        if status == "rejected":
            row["blocked"] += 1
            row["legit_blocked"] += line["kind"] not in ("spam", "worm")
            found = REASON.search(line["outcome"]["text"])
            row["by"][found.group(1) if found else line["outcome"]["text"][:40]] += 1
        elif status in ("accepted", "partial"):
            row["delivered"] += 1
        else:
            row["tempfailed"] += 1
    return [
        {
            "minute": m,
            **{k: v for k, v in r.items() if k != "by"},
            "by": dict(r["by"].most_common(3)),
        }
        for m, r in sorted(rows.items())
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--speed", type=float, default=12.0)
    parser.add_argument("--out", type=Path, default=ROOT / ".cache" / "bench" / "replay.json")
    parser.add_argument("--trained", action="store_true")
    parser.add_argument("--workers", type=int, default=32, help="concurrent SMTP senders")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="seawall-replay-"))
    root.chmod(0o755)
    result: dict[str, Any] = {"seed": args.seed, "speed": args.speed}
    try:
        state = root / "state"
        if args.trained:
            from bench.serve import train

            train(state, root / "links")
        sw = Seawall(root=root / "sw", state=state, workers=2)
        # Time is compressed for the greylist too: a 300 s delay is 300 simulated seconds,
        # as the senders' retry schedule (sim.replay.RETRY_AFTER_S) is.
        sw.write_config(greylist_delay_s=GREYLIST_DELAY_S / args.speed)
        sink = Sink()
        sink_port = free_port()
        controller = Controller(sink, hostname="127.0.0.1", port=sink_port)
        postfix = Postfix(
            root=root / "postfix",
            sink_port=sink_port,
            milter=f"inet:127.0.0.1:{sw.ports['milter']}",
            extra={
                "relay_domains": "example.net, example.org, example.com",
                "message_size_limit": "0",
            },
        )
        controller.start()
        truth = root / "truth.jsonl"
        try:
            sw.start()
            postfix.start()
            started = time.perf_counter()
            sim = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "seawall",
                    "simulate",
                    "--seed",
                    str(args.seed),
                    "--speed",
                    str(args.speed),
                    "--to",
                    f"smtp://127.0.0.1:{postfix.smtp_port}",
                    "--truth",
                    str(truth),
                    "--workers",
                    str(args.workers),
                ],
                capture_output=True,
                text=True,
            )
            result["wall_seconds"] = round(time.perf_counter() - started, 1)
            result["simulate_output"] = sim.stdout[-3000:]
            if sim.returncode != 0:
                raise RuntimeError(f"simulate failed: {sim.stderr[-3000:]}")
            deadline = time.monotonic() + 120
            while postfix.queued() and time.monotonic() < deadline:
                postfix.flush()
                time.sleep(1)
            result["left_in_queue"] = postfix.queued()
            result["hold_queue"] = len(postfix.queue_files("hold"))
        finally:
            postfix.stop()
            controller.stop()
            result["seawall_exit"] = sw.stop()
        lines = [json.loads(x) for x in truth.read_text().splitlines() if x.strip()]
        start = min(line["at"] for line in lines)
        delivered_ids = {m.get("Message-ID", "").strip().strip("<>") for m in sink.messages}
        statuses = Counter(line["outcome"]["status"] for line in lines)
        accepted = [x for x in lines if x["outcome"]["status"] in ("accepted", "partial")]
        missing = [
            x["message_id"]
            for x in accepted
            if x["message_id"].strip().strip("<>") not in delivered_ids
        ]
        result.update(
            messages=len(lines),
            statuses=dict(statuses),
            delivered_to_sink=len(sink.messages),
            accepted_but_not_delivered=len(missing),
            missing_sample=missing[:5],
            table=per_minute(lines, start),
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "table"}, indent=2))
    for row in result.get("table", []):
        print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
