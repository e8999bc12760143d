"""CPU per message of the scan's own stages, one at a time, in this process: listing the
files, parsing, language identification and the phishing detector.

Each stage runs over all the messages ``--repeat`` times; the best pass counts (the others
lost time to other processes).  Unlike ``seawall scan --profile``, the stages do not run
interleaved with other messages' work, so the figures are lower than in a scan, but they
are steady enough to compare two trees on a busy machine:

    for tree in /work/wt-base /work/wt-new /work/wt-base /work/wt-new; do
        PYTHONPATH=$tree/src:. python -m bench.stage_cpu /tmp/sa-test; done

Prints one JSON object: us per message for each stage, the messages and the load average.

With ``--state`` (a learned state, read and never written), it also times the whole engine
(frozen: nothing learned, as ``seawall scan --frozen``) on every message, alternating
``--repeat`` times between one message at a time (``Engine.scan_message``) and cohorts of
``batch.COHORT`` scanned stage by stage (``Engine.scan_many``, what batch scans do), and
checks that both give the same verdicts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Sequence

from seawall.config import Config
from seawall.detectors.base import Context
from seawall.detectors.phishing import PhishingDetector, load_lexicon
from seawall.language import identify, preload
from seawall.message.model import Message
from seawall.message.parse import ParseLimits, parse_message
from seawall.sources import iter_units


def best_us(run: Callable[[], object], count: int, repeat: int) -> float:
    """The best of ``repeat`` passes of ``run``, in us of CPU per message."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return round(best * 1e6 / max(count, 1), 1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--state", help="a learned state: time the whole engine too")
    args = parser.parse_args(argv)
    units = list(iter_units(args.paths))
    raws = [unit.read() for unit in units]
    config = Config()
    limits = ParseLimits.from_config(config)
    messages: list[Message] = [parse_message(raw, limits=limits) for raw in raws]
    preload()
    sample = config.detectors.language.sample_chars
    phishing = PhishingDetector(config.detectors.phishing, load_lexicon(), limits)
    context = Context(now=time.time())
    loop = asyncio.new_event_loop()

    def check_all() -> None:
        for msg in messages:
            loop.run_until_complete(phishing.check(msg, context))

    def identify_all() -> None:
        # the answers are cached per sample: cleared, so that each pass reads every text
        import seawall.language as language

        cached = getattr(language, "_predict", None)
        if cached is not None:
            cached.cache_clear()
        for msg in messages:
            identify(msg.text, sample_chars=sample)

    count = len(raws)
    result: dict[str, object] = {
        "messages": count,
        "listing_us": best_us(lambda: list(iter_units(args.paths)), count, args.repeat),
        "parse_us": best_us(
            lambda: [parse_message(raw, limits=limits) for raw in raws], count, args.repeat
        ),
        "language_us": best_us(identify_all, count, args.repeat),
        "phishing_us": best_us(check_all, count, args.repeat),
    }
    loop.close()
    if args.state:
        result.update(engine_us(args.state, raws, args.repeat))
    result["load"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result))
    return 0


def engine_us(state: str, raws: Sequence[bytes], repeat: int) -> dict[str, float]:
    """The frozen engine over ``raws``: one at a time and in cohorts, alternated; the best
    pass of each, in us of CPU per message.  Raises if their verdicts differ."""
    from seawall.batch import COHORT, WINDOW, _for_batch, _frozen_engine
    from seawall.config import load_config
    from seawall.engine import Scan
    from seawall.message import Envelope

    # A batch scan's engine: its I/O budget is a batch's, so a busy host times nothing out.
    engine = _frozen_engine(_for_batch(load_config(None, state_dir=state)))
    loop = engine.event_loop()
    envelope = Envelope()

    async def one_by_one() -> list[Scan]:  # a window's worth in flight, as scans had
        out: list[Scan] = []
        for at in range(0, len(raws), WINDOW):
            window = raws[at : at + WINDOW]
            tasks = [asyncio.ensure_future(engine.scan_message(envelope, raw)) for raw in window]
            out.extend([await task for task in tasks])
        return out

    async def cohorts() -> list[Scan]:
        out: list[Scan] = []
        for at in range(0, len(raws), COHORT):
            for scan in await engine.scan_many(raws[at : at + COHORT]):
                if isinstance(scan, BaseException):
                    raise scan
                out.append(scan)
        return out

    best = {"engine_one_us": float("inf"), "engine_cohort_us": float("inf")}
    seen: dict[str, list[tuple[object, ...]]] = {}
    try:
        for _ in range(repeat):
            for name, run in (("engine_one_us", one_by_one), ("engine_cohort_us", cohorts)):
                start = time.process_time()
                scans = loop.run_until_complete(run())
                best[name] = min(best[name], time.process_time() - start)
                seen[name] = [
                    (s.verdict.action, s.verdict.score, tuple(s.verdict.symbols.items()))
                    for s in scans
                ]
    finally:
        engine.close()
    if seen["engine_one_us"] != seen["engine_cohort_us"]:
        raise SystemExit("the cohorts' verdicts differ from one-by-one scans")
    return {name: round(value * 1e6 / max(len(raws), 1), 1) for name, value in best.items()}


if __name__ == "__main__":
    sys.exit(main())
