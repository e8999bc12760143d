"""What campaign detection costs a scan: CPU per message of each step, and the scan on and off.

    .venv/bin/python -m bench.campaign_cost path [TREE ...] [--rounds 5]
    .venv/bin/python -m bench.campaign_cost scan --state DIR TREE [--rounds 3] [--workers 2]

``path`` replays mail (default: the SpamAssassin corpus) through every step a message's
campaign check takes, in one process and in order, and reports the CPU time of each per
message (the best of ``--rounds``, each over all the mail with a fresh tracker):

- worker: ``Fingerprint.of``, the observation, the request's encoding (``to_bytes`` and
  msgpack), the answer's decoding, and the judgement's encoding;
- tracker: the request's decoding (``Fingerprint.from_bytes``), ``Tracker.observe``, the
  answer's encoding, the judgement's decoding and ``Tracker.judge``.

The socket and the event loop's turns are not in it: ``scan`` measures them with the rest.

``scan`` runs ``seawall scan --json --feed-state --workers N`` over TREE with campaigns on
and off in alternating rounds, each on a fresh copy of the state dir ``--state`` (the scan
writes to it), and reports per round the wall time, messages per second and the CPU time
of the scan's processes (the parent, the workers and the tracker), and the medians.
"""

from __future__ import annotations

import argparse
import itertools
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from seawall import corpus
from seawall.addresses import IspNetworks
from seawall.campaigns.fingerprint import Fingerprint
from seawall.campaigns.protocol import Observe, decode_request, encode
from seawall.campaigns.registry import Judge, Observation
from seawall.campaigns.tracker import Reply, Tracker
from seawall.config import CampaignSettings, IspSettings
from seawall.message import Message, parse_message

_REPLY = msgspec.msgpack.Decoder(Reply | None)


def _messages(trees: list[Path]) -> list[Message]:
    if trees:
        paths = sorted(p for tree in trees for p in tree.rglob("*") if p.is_file())
    else:
        paths = [item.path for item in corpus.items(corpus.SPAMASSASSIN)]
    return [parse_message(p.read_bytes()) for p in paths]


def _observation(msg: Message, networks: IspNetworks) -> Observation:
    """What the campaign detector sends (``CampaignDetector.observation``, no rDNS rules)."""
    ip = msg.source_ip
    return Observation(
        ip=ip,
        hostname=None,
        dynamic=ip is not None and networks.dynamic.contains(ip),
        own=ip is not None and networks.own.contains(ip),
        subject=msg.subject,
        domains=tuple(sorted({u.domain for u in msg.urls if u.domain})),
        urls=tuple(u.url for u in msg.urls[:20]),
    )


def path_costs(msgs: list[Message], rounds: int) -> dict[str, float]:
    """Microseconds of CPU per message for each step (the best round of each)."""
    networks = IspNetworks.of(IspSettings())
    best: dict[str, float] = {}
    clock = time.process_time
    for _ in range(rounds):
        spent: dict[str, float] = dict.fromkeys(
            ("fingerprint", "observation", "request", "tracker decode", "observe", "answer")
            + ("reply decode", "judge (worker)", "judge (tracker)"),
            0.0,
        )
        tracker = Tracker(CampaignSettings())
        now = 1_700_000_000.0
        for msg in msgs:
            now += 1.0
            marks = [clock()]
            fp = Fingerprint.of(msg)
            marks.append(clock())
            obs = _observation(msg, networks)
            marks.append(clock())
            wire = encode(Observe(fp=fp.to_bytes(), obs=obs, now=now))
            marks.append(clock())
            request = decode_request(wire)
            assert isinstance(request, Observe)
            got = Fingerprint.from_bytes(request.fp)
            marks.append(clock())
            reply = tracker.observe(got, request.obs, request.now)
            marks.append(clock())
            answer = encode(reply)
            marks.append(clock())
            view = _REPLY.decode(answer)
            marks.append(clock())
            assert view is not None
            judged = encode(Judge(view.view.id, bool(obs.dynamic), obs.domains, now))
            marks.append(clock())
            judgement = decode_request(judged)
            assert isinstance(judgement, Judge)
            tracker.judge(judgement)
            marks.append(clock())
            for name, (start, end) in zip(spent, itertools.pairwise(marks), strict=True):
                spent[name] += end - start
        for name, total in spent.items():
            per = total / len(msgs) * 1e6
            best[name] = min(best.get(name, per), per)
    worker = ("fingerprint", "observation", "request", "reply decode", "judge (worker)")
    best["worker total"] = sum(best[k] for k in worker)
    best["tracker total"] = sum(
        best[k] for k in ("tracker decode", "observe", "answer", "judge (tracker)")
    )
    return best


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def scan_rounds(state: Path, trees: list[Path], rounds: int, workers: int) -> None:
    """Alternating rounds of the scan with campaigns on and off (see the module's doc)."""
    results: dict[str, list[tuple[float, float, float]]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory(prefix="seawall-cost-") as tmp:
        configs = {"on": Path(tmp) / "on.toml", "off": Path(tmp) / "off.toml"}
        configs["on"].write_text("")
        configs["off"].write_text("[detectors.campaigns]\nenabled = false\n")
        run_state = Path(tmp) / "state"
        for i in range(rounds):
            for mode in ("on", "off") if i % 2 == 0 else ("off", "on"):
                shutil.rmtree(run_state, ignore_errors=True)
                shutil.copytree(state, run_state)
                command = [sys.executable, "-m", "seawall", "scan", "--json", "--feed-state"]
                command += ["--workers", str(workers), "--state", str(run_state)]
                command += ["--config", str(configs[mode]), *map(str, trees)]
                cpu0, t0 = _children_cpu(), time.perf_counter()
                done = subprocess.run(
                    command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True
                )
                wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
                count = done.stdout.count(b"\n")
                results[mode].append((wall, count / wall, cpu))
                print(
                    f"round {i + 1} campaigns {mode:>3}: {count} messages in {wall:.2f} s "
                    f"({count / wall:.0f} msg/s), CPU {cpu:.2f} s "
                    f"({cpu / count * 1e3:.3f} ms/msg)",
                    flush=True,
                )
    medians = {
        mode: tuple(statistics.median(r[k] for r in rows) for k in range(3))
        for mode, rows in results.items()
    }
    for mode, (wall, rate, cpu) in medians.items():
        print(f"median campaigns {mode:>3}: {wall:.2f} s, {rate:.0f} msg/s, CPU {cpu:.2f} s")
    on, off = medians["on"], medians["off"]
    print(f"campaigns on / off: {on[1] / off[1]:.2f} of the rate, {on[2] - off[2]:+.2f} s CPU")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    path = sub.add_parser("path", help="CPU per message of each campaign step, in process")
    path.add_argument("trees", nargs="*", type=Path, help="mail (default: SpamAssassin)")
    path.add_argument("--rounds", type=int, default=5)
    scan = sub.add_parser("scan", help="seawall scan with campaigns on and off, alternating")
    scan.add_argument("trees", nargs="+", type=Path)
    scan.add_argument("--state", type=Path, required=True, help="a learned state dir")
    scan.add_argument("--rounds", type=int, default=3)
    scan.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.what == "scan":
        scan_rounds(args.state, args.trees, args.rounds, args.workers)
        return 0
    msgs = _messages(args.trees)
    costs = path_costs(msgs, args.rounds)
    print(f"campaign path over {len(msgs)} messages, CPU us per message (best of {args.rounds})")
    for name, value in costs.items():
        print(f"  {name:<16} {value:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
