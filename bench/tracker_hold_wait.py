"""How long an unrelated request waits behind an answer the campaign tracker holds.

    .venv/bin/python -m bench.tracker_hold_wait [--rounds 20] [--judge-after-ms 20]
        [--hold-s 1.0] [--json]

One process: a real :class:`~seawall.campaigns.server.TrackerServer` on a unix socket and
one :class:`~seawall.campaigns.remote.RemoteTracker` connection, as a worker has.  Each
round observes three copies of a new campaign (answered at once: they are its first), then
a fourth copy (held: its campaign waits for the three judgements, ``hold_s``) and, in the
same write right after it, an unrelated message.  The figure is how long the unrelated
message's observe takes, median and maximum over the rounds, in two cases: the three
judgements come ``--judge-after-ms`` later (as the other messages' verdicts would), and
they never come (the hold runs out at ``hold_s``).  With answers matched by request id
the unrelated answer does not wait for the held one; when answers went out in request
order it waited for the hold's end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time
from typing import Any

import msgspec

from seawall.campaigns.fingerprint import Fingerprint
from seawall.campaigns.registry import Judge, Observation
from seawall.campaigns.remote import RemoteTracker
from seawall.campaigns.server import TrackerServer
from seawall.campaigns.tracker import Tracker
from seawall.config import CampaignSettings

_RNG = random.Random(3)
_WORDS = ["".join(_RNG.choice("bcdfghjklmnpqrstvwz") for _ in range(7)) for _ in range(5000)]


def _text() -> str:
    """Forty random words: a campaign text no other round shares."""
    return " ".join(_RNG.sample(_WORDS, 40))


def _copy(i: int) -> Observation:
    return Observation(ip=f"{20 + i}.{i}.0.9", dynamic=True, subject="Parcel", domains=())


async def _round(client: RemoteTracker, judge_after_s: float | None) -> float:
    """One round; returns the unrelated observe's wait in seconds."""
    fp = Fingerprint.from_text(_text(), "Parcel")
    other = Fingerprint.from_text(_text(), "Other")
    now = time.time()
    first = [await client.observe(fp, _copy(i), now) for i in range(3)]
    loop = asyncio.get_running_loop()
    held = loop.create_task(client.observe(fp, _copy(3), now))
    await asyncio.sleep(0)  # the held copy's request is queued first: both go in one write

    async def judgements(delay: float) -> None:
        await asyncio.sleep(delay)
        for reply in first:
            await client.judge(Judge(reply.view.id, True, (), now))

    judging = loop.create_task(judgements(judge_after_s)) if judge_after_s is not None else None
    start = time.perf_counter()
    await client.observe(other, Observation(ip="192.0.2.1", subject="Other"), now)
    waited = time.perf_counter() - start
    await held
    if judging is not None:
        await judging
    return waited


async def _case(judge_after_s: float | None, rounds: int, hold_s: float) -> list[float]:
    tracker = Tracker(msgspec.structs.replace(CampaignSettings(), hold_s=hold_s))
    name = f"\0seawall-bench-hold-{os.getpid()}"
    server = await asyncio.start_unix_server(TrackerServer(tracker).connection, path=name)
    client = RemoteTracker(name, judge_delay_s=0.001)
    try:
        return [await _round(client, judge_after_s) for _ in range(rounds)]
    finally:
        client.close()
        server.close()
        await server.wait_closed()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--judge-after-ms", type=float, default=20.0)
    parser.add_argument("--hold-s", type=float, default=1.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cases = (
        (f"judged after {args.judge_after_ms:g} ms", args.judge_after_ms / 1000, args.rounds),
        ("never judged (the hold runs out)", None, max(1, args.rounds // 4)),
    )
    result: dict[str, Any] = {"hold_s": args.hold_s, "loadavg": os.getloadavg(), "cases": {}}
    for label, judge_after_s, rounds in cases:
        waits = asyncio.run(_case(judge_after_s, rounds, args.hold_s))
        result["cases"][label] = {
            "rounds": rounds,
            "median_ms": round(statistics.median(waits) * 1000, 2),
            "max_ms": round(max(waits) * 1000, 2),
        }
    if args.json:
        print(json.dumps(result, indent=1))
        return
    for label, figures in result["cases"].items():
        print(
            f"{label}: the unrelated observe waited {figures['median_ms']} ms at the median, "
            f"{figures['max_ms']} ms at most ({figures['rounds']} rounds)"
        )


if __name__ == "__main__":
    main()
