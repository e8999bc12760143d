"""CPU per message of the scan's own stages, one at a time, in this process: listing the
files, parsing, language identification and the phishing detector.

Each stage runs over all the messages ``--repeat`` times; the best pass counts (the others
lost time to other processes).  Unlike ``seawall scan --profile``, the stages do not run
interleaved with other messages' work, so the figures are lower than in a scan, but they
are steady enough to compare two trees on a busy machine:

    for tree in /work/wt-base /work/wt-new /work/wt-base /work/wt-new; do
        PYTHONPATH=$tree/src:. python -m bench.stage_cpu /tmp/sa-test; done

Prints one JSON object: us per message for each stage, the messages and the load average.
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
    result = {
        "messages": count,
        "listing_us": best_us(lambda: list(iter_units(args.paths)), count, args.repeat),
        "parse_us": best_us(
            lambda: [parse_message(raw, limits=limits) for raw in raws], count, args.repeat
        ),
        "language_us": best_us(identify_all, count, args.repeat),
        "phishing_us": best_us(check_all, count, args.repeat),
        "load": [round(x, 2) for x in os.getloadavg()],
    }
    loop.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
