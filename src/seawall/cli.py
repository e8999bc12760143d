"""The ``seawall`` command: scan | learn | eval | serve | config check | demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from seawall import __version__, evaluation
from seawall.batch import Record, scan_units
from seawall.config import Config, load_config
from seawall.engine import WAIT_STAGES, StageTimes
from seawall.errors import SeawallError
from seawall.evaluation import Labelled, Metrics, learn_all, state_or_temporary
from seawall.sources import Unit, iter_units

log = logging.getLogger("seawall")


def _config(args: argparse.Namespace) -> Config:
    return load_config(Path(args.config) if args.config else None, state_dir=args.state)


def _units(paths: Sequence[str]) -> list[Unit]:
    try:
        return list(iter_units(paths))
    except FileNotFoundError as exc:
        raise SeawallError(f"no such file or directory: {exc.args[0]}") from None


class _Progress:
    """A tqdm bar on stderr when stderr is a terminal; silent otherwise."""

    def __init__(self, total: int, desc: str) -> None:
        self.bar: Any = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="msg", file=sys.stderr, leave=False)

    def __call__(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _top_symbols(record: Record, n: int = 4) -> str:
    ranked = sorted(record.symbols.items(), key=lambda kv: -abs(kv[1]))[:n]
    return " ".join(f"{name}({score:+.1f})" for name, score in ranked if score)


def _print_table_row(record: Record, width: int) -> None:
    path = record.path if len(record.path) <= width else "…" + record.path[-(width - 1) :]
    lang = record.language or "-"
    print(
        f"{path:<{width}} {record.action:<12} {record.score:7.2f} {lang:<3} {_top_symbols(record)}"
    )


def _print_profile(times: StageTimes, out: Any) -> None:
    if not times.messages:
        return
    work = {k: v for k, v in times.seconds.items() if k not in WAIT_STAGES}
    total = sum(work.values())
    print(f"per-stage profile over {times.messages} messages (ms/msg):", file=out)
    for stage, seconds in sorted(work.items(), key=lambda kv: -kv[1]):
        ms = seconds * 1000 / times.messages
        print(f"  {stage:<12} {ms:8.3f}  {seconds / total * 100:5.1f}%", file=out)
    print(f"  {'total':<12} {total * 1000 / times.messages:8.3f}", file=out)
    waits = {k: v for k, v in times.seconds.items() if k in WAIT_STAGES}
    if waits:
        print("waits, other messages' work runs meanwhile (ms/msg):", file=out)
        for stage, seconds in sorted(waits.items(), key=lambda kv: -kv[1]):
            print(f"  {stage:<12} {seconds * 1000 / times.messages:8.3f}", file=out)


def cmd_scan(args: argparse.Namespace) -> int:
    config = _config(args)
    units = _units(args.paths)
    workers = args.workers or os.cpu_count() or 1
    times = StageTimes()
    progress = _Progress(len(units), "scan")
    counts: Counter[str] = Counter()
    encoder = msgspec.json.Encoder()
    out = sys.stdout.buffer
    width = 60
    if not args.json:
        print(f"{'path':<{width}} {'action':<12} {'score':>7} {'lng':<3} symbols")
    t0 = time.perf_counter()
    n = 0
    for record in scan_units(units, config, workers=workers, times=times):
        n += 1
        counts[record.action] += 1
        if args.json:
            out.write(encoder.encode(record) + b"\n")
        else:
            _print_table_row(record, width)
        progress(1)
    seconds = time.perf_counter() - t0
    progress.close()
    out.flush()
    summary_to = sys.stderr if args.json else sys.stdout
    rate = n / seconds if seconds > 0 else 0.0
    actions = ", ".join(f"{action}: {count}" for action, count in counts.most_common())
    print(
        f"scanned {n} messages in {seconds:.2f}s ({rate:.1f} msg/s, {workers} workers)"
        f"{'; ' + actions if actions else ''}",
        file=summary_to,
    )
    if args.profile:
        _print_profile(times, sys.stderr)
    return 0


def _labelled(spam: Sequence[str], ham: Sequence[str]) -> list[Labelled]:
    out = [Labelled(u, True) for u in _units(spam)]
    out += [Labelled(u, False) for u in _units(ham)]
    return out


def cmd_learn(args: argparse.Namespace) -> int:
    if not args.spam and not args.ham:
        raise SeawallError("give --spam PATH... and/or --ham PATH...")
    config = _config(args)
    items = _labelled(args.spam, args.ham)
    progress = _Progress(len(items), "learn")
    t0 = time.perf_counter()
    try:
        learned = learn_all(items, config, progress)
    finally:
        progress.close()
    seconds = time.perf_counter() - t0
    print(
        f"learned {learned.changed} of {len(items)} messages in {seconds:.1f}s "
        f"({len(items) - learned.changed} already known with that label); "
        f"the classifier now knows {learned.spam_total} spam and {learned.ham_total} ham "
        f"({config.state_dir})"
    )
    return 0


def _print_metrics(metrics: Metrics, title: str) -> None:
    print(title)
    print(f"  messages            {metrics.spam} spam, {metrics.ham} ham")
    print(f"  ROC AUC             {metrics.roc_auc:.6f}   (1-ROCA)% {metrics.one_minus_roca_pct}")
    print(f"  recall @ 0.1% FPR   {metrics.recall_at_fpr_01 * 100:.2f}%")
    print(f"  recall @ 1% FPR     {metrics.recall_at_fpr_1 * 100:.2f}%")
    print(
        f"  default action      recall {metrics.recall_at_action * 100:.2f}%, "
        f"FPR {metrics.fpr_at_action * 100:.3f}%"
    )
    print(f"  speed               {metrics.msgs_per_s} msg/s")


def cmd_eval(args: argparse.Namespace) -> int:
    items = _labelled(args.spam, args.ham)
    if not any(i.spam for i in items) or all(i.spam for i in items):
        raise SeawallError("eval needs both --spam and --ham messages")
    # Without --state the evaluation learns into a throw-away state dir.
    with state_or_temporary(args.state, "seawall-eval-") as state:
        config = load_config(Path(args.config) if args.config else None, state_dir=state)
        progress = _Progress(len(items), "eval")
        try:
            if args.online:
                outcome = evaluation.run_online(items, config, seed=args.seed, progress=progress)
            else:
                train, test = evaluation.split(items, args.train_fraction, args.seed)
                workers = args.workers or os.cpu_count() or 1
                outcome = evaluation.run_offline(
                    train, test, config, workers=workers, progress=progress
                )
        finally:
            progress.close()
    if args.json:
        doc = {
            "mode": "online" if args.online else "offline",
            "train_fraction": None if args.online else args.train_fraction,
            "seed": args.seed,
            **outcome.metrics.as_dict(),
            "learn_s": round(outcome.learn_s, 2),
        }
        sys.stdout.buffer.write(msgspec.json.encode(doc) + b"\n")
    else:
        mode = (
            "online (each message scored, then learned)"
            if args.online
            else (
                f"offline (learned {outcome.learned[0]} spam + {outcome.learned[1]} ham "
                f"in {outcome.learn_s:.1f}s, scored the rest)"
            )
        )
        _print_metrics(outcome.metrics, f"evaluation, {mode}")
    if args.profile:
        _print_profile(outcome.times, sys.stderr)
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from seawall.sim.model import SimSettings
    from seawall.sim.output import default_progress, run

    settings = SimSettings(
        seed=args.seed,
        campaigns=args.campaigns,
        zombies=args.zombies,
        hours=args.hours,
        peak_per_hour=args.peak_per_hour,
        ham_per_hour=args.ham_per_hour,
        newsletters=args.newsletters,
        worm_share=args.worm_share,
        speed=args.speed,
    )
    report = run(
        settings,
        out=args.out,
        to=args.to,
        truth=args.truth,
        radius=args.radius,
        workers=args.workers,
        progress=default_progress(),
    )
    print("\n".join(report.lines()))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from seawall.demo import run_demo

    return run_demo(state=args.state, workers=args.workers or os.cpu_count() or 1)


def cmd_serve(args: argparse.Namespace) -> int:
    from seawall.serve.supervisor import Supervisor

    logging.getLogger().setLevel(logging.DEBUG if args.verbose else logging.INFO)

    def load() -> Config:
        config = _config(args)
        if args.workers:
            serve = msgspec.structs.replace(config.serve, workers=args.workers)
            config = msgspec.structs.replace(config, serve=serve)
        return config

    return Supervisor(load).run()


def cmd_campaigns(args: argparse.Namespace) -> int:
    from seawall.campaigns import wire

    config = _config(args)
    live = wire.running(config)
    if args.action == "mark":
        if len(args.rest) != 2 or args.rest[1] not in ("spam", "ham"):
            raise SeawallError("usage: seawall campaigns mark ID spam|ham")
        cid, label = args.rest
        if live:
            sample = asyncio.run(wire.RemoteTracker(wire.address(config)).mark(cid, label))
        else:
            tracker = wire.load(config)
            campaign = tracker.mark(cid, label, time.time())
            sample = campaign.sample if campaign is not None else None
            if campaign is not None:
                wire.save(config, tracker)
        if sample is None:
            raise SeawallError(f"no campaign {cid}")
        if not sample:  # its first copy's verdict has not come back yet
            print(f"{cid} marked {label}; no sample message to learn yet")
            return 0
        learned = _learn_sample(config, sample, label == "spam")
        print(f"{cid} marked {label}; its sample message {'learned' if learned else 'was known'}")
        return 0
    if args.rest:
        raise SeawallError("usage: seawall campaigns [--json] | seawall campaigns mark ID spam|ham")
    if live:
        listing = asyncio.run(wire.RemoteTracker(wire.address(config)).listing(args.min_count))
    else:
        listing = wire.load(config).listing(time.time(), min_count=args.min_count)
    if args.json:
        for item in listing:
            sys.stdout.buffer.write(msgspec.json.encode(item) + b"\n")
        return 0
    print(
        f"{'campaign':<20} {'count':>7} {'/hour':>6} {'IPs':>5} {'/16s':>5} {'dyn':>4} "
        f"{'spam':>9} subject"
    )
    for item in listing:
        subjects: dict[str, int] = item["subjects"]
        subject = next(iter(subjects), "")
        judged = f"{item['spam']}/{int(item['spam']) + int(item['ham'])}"
        mark = item["mark"] or ("spam" if item["confirmed_spam"] else "")
        print(
            f"{item['id']:<20} {item['count']:>7} {item['per_hour']:>6} {item['ips']:>5} "
            f"{item['nets16']:>5} {float(item['dynamic_share']):>4.0%} {judged:>9} "
            f"{mark:<4} {subject[:50]}"
        )
    return 0


def _learn_sample(config: Config, raw: bytes, spam: bool) -> bool:
    from seawall.classifier import Classifier
    from seawall.message import Envelope, ParseLimits, parse_message

    classifier = Classifier.open(Path(config.state_dir), config.detectors.classifier)
    try:
        return classifier.learn(
            parse_message(raw, Envelope(), ParseLimits.from_config(config)), spam
        )
    finally:
        classifier.close()


def cmd_reputation(args: argparse.Namespace) -> int:
    from seawall.reputation import Reputation, keys_of
    from seawall.store import open_store
    from seawall.store.history import history_counts

    config = _config(args)
    if keys_of(args.ip) is None:
        raise SeawallError(f"not an IP address: {args.ip!r}")

    async def read() -> dict[str, object]:
        store = open_store(config)
        try:
            now = time.time()
            own, net = await Reputation(store, config.detectors.reputation).read(args.ip, now)
            window = config.serve.policy.history_window_s
            spam, ham = await history_counts(store, args.ip, now=now, window_s=window)
        finally:
            await store.close()
        out: dict[str, object] = {}
        for label, record in (("ip", own), ("network", net)):
            out[label] = (
                None
                if record is None
                else {
                    "key": record.key,
                    "spam": round(record.spam, 2),
                    "ham": round(record.ham, 2),
                    "volume": round(record.volume, 2),
                    "spam_share": round(record.spam_share, 3),
                    "first_seen": _iso(record.first),
                    "last_seen": _iso(record.last),
                }
            )
        out["policy_window"] = {"seconds": window, "spam": spam, "ham": ham}
        return out

    found = asyncio.run(read())
    if args.json:
        print(msgspec.json.encode({"query": args.ip, **found}).decode())
        return 0
    half = config.detectors.reputation.half_life_s / 3600
    print(f"{args.ip}  (counts decayed to now; half-life {half:g} h)")
    for label in ("ip", "network"):
        record = found[label]
        if not isinstance(record, dict):
            print(f"  {label:8} no recent history")
            continue
        print(
            f"  {label:8} {record['key']:20} spam {record['spam']:>8}  ham {record['ham']:>8}"
            f"  volume {record['volume']:>8}  spam share {record['spam_share']:.0%}"
            f"  seen {record['first_seen']} .. {record['last_seen']}"
        )
    policy = found["policy_window"]
    assert isinstance(policy, dict)
    print(f"  policy   last {policy['seconds']:g} s: {policy['spam']} spam, {policy['ham']} ham")
    return 0


def _iso(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def cmd_config_check(args: argparse.Namespace) -> int:
    from seawall.serve.supervisor import prepare

    config = load_config(Path(args.file), state_dir=args.state)
    prepare(config).close()
    print(f"{args.file}: ok")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seawall", description=__doc__)
    parser.add_argument("--version", action="version", version=f"seawall {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", help="a seawall.toml file")
    common.add_argument(
        "--state", metavar="DIR", help="state dir (default: $SEAWALL_STATE, else ./var)"
    )
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    scan = sub.add_parser("scan", parents=[common], help="score messages")
    scan.add_argument("paths", nargs="+", metavar="PATH", help="file, tree, Maildir or mbox")
    scan.add_argument("--json", action="store_true", help="one JSON object per message")
    scan.add_argument("--workers", type=int, default=0, help="processes (default: cores)")
    scan.add_argument("--profile", action="store_true", help="per-stage times on stderr")
    scan.set_defaults(func=cmd_scan)

    learn = sub.add_parser("learn", parents=[common], help="teach the classifier")
    learn.add_argument("--spam", nargs="+", metavar="PATH", default=[])
    learn.add_argument("--ham", nargs="+", metavar="PATH", default=[])
    learn.set_defaults(func=cmd_learn)

    ev = sub.add_parser("eval", parents=[common], help="measure accuracy on labelled mail")
    ev.add_argument("--spam", nargs="+", metavar="PATH", default=[])
    ev.add_argument("--ham", nargs="+", metavar="PATH", default=[])
    ev.add_argument("--train-fraction", type=float, default=0.5)
    ev.add_argument("--seed", type=int, default=0, help="split seed (0: SHA-1 of the basename)")
    ev.add_argument("--online", action="store_true", help="TREC-style: score, then learn")
    ev.add_argument("--json", action="store_true")
    ev.add_argument("--workers", type=int, default=0)
    ev.add_argument("--profile", action="store_true")
    ev.set_defaults(func=cmd_eval)

    serve = sub.add_parser("serve", parents=[common], help="milter, spamd, HTTP and policy")
    serve.add_argument("--workers", type=int, default=0, help="processes (default: config)")
    serve.set_defaults(func=cmd_serve)

    campaigns = sub.add_parser("campaigns", parents=[common], help="list or judge campaigns")
    campaigns.add_argument("action", nargs="?", choices=["list", "mark"], default="list")
    campaigns.add_argument("rest", nargs="*", metavar="ID spam|ham")
    campaigns.add_argument("--json", action="store_true", help="one JSON object per campaign")
    campaigns.add_argument("--min-count", type=int, default=2, help="smallest campaign shown")
    campaigns.set_defaults(func=cmd_campaigns)

    rep = sub.add_parser("reputation", parents=[common], help="an address's sender reputation")
    rep.add_argument("ip", help="IPv4 or IPv6 address")
    rep.add_argument("--json", action="store_true", help="one JSON object")
    rep.set_defaults(func=cmd_reputation)

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", parents=[common], help="validate a config file")
    check.add_argument("file", metavar="FILE")
    check.set_defaults(func=cmd_config_check)

    from seawall.dnslists.check import cmd_dnsbl_test

    dnsbl = sub.add_parser("dnsbl", help="DNS block list tools")
    dnsbl_sub = dnsbl.add_subparsers(dest="dnsbl_command", required=True)
    dnsbl_test = dnsbl_sub.add_parser(
        "test", parents=[common], help="ask each list for its RFC 5782 test entries"
    )
    dnsbl_test.set_defaults(func=cmd_dnsbl_test)

    from seawall.sim.model import SimSettings

    sim_defaults = SimSettings()
    sim = sub.add_parser("simulate", parents=[common], help="a seeded botnet spam run")
    sim.add_argument("--seed", type=int, default=sim_defaults.seed)
    sim.add_argument("--campaigns", type=int, default=sim_defaults.campaigns)
    sim.add_argument("--zombies", type=int, default=sim_defaults.zombies)
    sim.add_argument("--hours", type=float, default=sim_defaults.hours, help="simulated time")
    sim.add_argument("--peak-per-hour", type=int, default=sim_defaults.peak_per_hour)
    sim.add_argument("--ham-per-hour", type=int, default=sim_defaults.ham_per_hour)
    sim.add_argument("--newsletters", type=int, default=sim_defaults.newsletters)
    sim.add_argument("--worm-share", type=float, default=sim_defaults.worm_share)
    sim.add_argument(
        "--speed", type=float, default=sim_defaults.speed, help="simulated s per real s (--to)"
    )
    target = sim.add_mutually_exclusive_group()
    target.add_argument("--out", metavar="DIR", help="write N.eml files and envelopes.jsonl")
    target.add_argument("--to", metavar="URL", help="smtp://host:port or http://host:port")
    sim.add_argument("--truth", metavar="FILE", help="ground truth (and outcomes) as JSONL")
    sim.add_argument("--radius", metavar="FILE", help="FreeRADIUS detail file of the sessions")
    sim.add_argument("--workers", type=int, default=8, help="concurrent sends with --to")
    sim.set_defaults(func=cmd_simulate)

    demo = sub.add_parser("demo", parents=[common], help="learn and scan a public corpus")
    demo.add_argument("--workers", type=int, default=0)
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from seawall.errors import ConfigError

    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ConfigError as exc:
        print(f"seawall: configuration error: {exc}", file=sys.stderr)
        return 2
    except SeawallError as exc:
        print(f"seawall: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
