"""``seawall scores show|fit``: the learned symbol scores beside the shipped ones."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from seawall.classifier.scores import Table, fit
from seawall.cli.common import config_from
from seawall.config import Config, describe_state
from seawall.errors import SeawallError
from seawall.message.defects import EMPTY, NOT_MAIL
from seawall.sources import iter_units


def add_scores_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    scores = sub.add_parser("scores", help="the symbol scores learned from labelled mail")
    scores_sub = scores.add_subparsers(dest="scores_command", required=True)
    show = scores_sub.add_parser("show", parents=[common], help="the learned table")
    show.add_argument("--all", action="store_true", help="also symbols never seen")
    show.set_defaults(func=cmd_scores_show)
    fitting = scores_sub.add_parser(
        "fit", parents=[common], help="scan labelled mail, record it and fit the scores again"
    )
    fitting.add_argument("--spam", nargs="+", metavar="PATH", default=[])
    fitting.add_argument("--ham", nargs="+", metavar="PATH", default=[])
    fitting.add_argument(
        "--dry-run",
        action="store_true",
        help="fit on this mail alone and print the table; record and save nothing",
    )
    fitting.add_argument("--all", action="store_true", help="also symbols never seen")
    fitting.set_defaults(func=cmd_scores_fit)


def print_table(table: Table | None, config: Config, *, everything: bool, out: Any) -> None:
    settings = config.detectors.classifier.scores
    if table is None:
        print(f"no learned scores yet in {describe_state(config)}: seawall learn", file=out)
        return
    active = settings.enabled and min(table.spam, table.ham) >= settings.min_messages
    state = "in force" if active else f"not in force: needs {settings.min_messages} of each"
    print(
        f"learned scores from {table.spam} spam and {table.ham} ham ({state});"
        f" log-loss {table.loss:.4f}",
        file=out,
    )
    print(f"{'symbol':<28} {'shipped':>8} {'learned':>8} {'change':>8} {'seen':>7}", file=out)
    for name in sorted(table.scores, key=lambda n: -abs(table.scores[n] - table.shipped[n])):
        seen = table.seen.get(name, 0)
        if not seen and not everything:
            continue
        shipped, learned = table.shipped[name], table.scores[name]
        print(
            f"{name:<28} {shipped:8.2f} {learned:8.2f} {learned - shipped:+8.2f} {seen:7d}",
            file=out,
        )
    for name, score in sorted(settings.pinned.items()):
        print(f"{name:<28} {'':>8} {score:8.2f} {'pinned':>8}", file=out)


def _open(config: Config) -> Any:
    from seawall.classifier import Classifier

    return Classifier.from_config(config)


def cmd_scores_show(args: argparse.Namespace) -> int:
    config = config_from(args)
    classifier = _open(config)
    try:
        print_table(classifier.table, config, everything=args.all, out=sys.stdout)
        print_calibration(classifier, config, out=sys.stdout)
    finally:
        classifier.close()
    return 0


def print_calibration(classifier: Any, config: Config, *, out: Any) -> None:
    """Where the classifier alone rejects (CLASSIFIER_CERTAIN), or why it does not yet."""
    settings = config.detectors.classifier
    spam, ham = classifier.calibration.scored
    reject = classifier.reject_margin
    if reject is not None:
        print(
            f"classifier: rejects alone at margin {reject.margin:.2f} and beyond (ham FPR <= "
            f"{reject.fpr * 100:g}% on {ham} unseen ham; largest {reject.largest_ham:.2f}, "
            f"fitted tail {reject.tail:.2f}; {spam} unseen spam scored)",
            file=out,
        )
    else:
        print(
            f"classifier: no calibrated reject margin yet ({ham} of "
            f"{settings.calibration_min_ham} unseen ham and {spam} of "
            f"{settings.calibration_min_spam} unseen spam scored): it never rejects alone "
            "until it has learned more mail it had not seen (seawall learn --spam/--ham NEW)",
            file=out,
        )


def _paths(paths: Sequence[str]) -> list[Any]:
    try:
        return list(iter_units(paths))
    except FileNotFoundError as exc:
        raise SeawallError(f"no such file or directory: {exc.args[0]}") from None


def cmd_scores_fit(args: argparse.Namespace) -> int:
    if not args.spam or not args.ham:
        raise SeawallError("give --spam PATH... and --ham PATH...")
    from seawall.learning import Recorder

    config = config_from(args)
    classifier = _open(config)
    recorder = Recorder(config, classifier)
    try:
        for spam, paths in ((True, args.spam), (False, args.ham)):
            for unit in _paths(paths):
                scan = recorder.scan(unit.read())
                if EMPTY not in scan.message.defects and NOT_MAIL not in scan.message.defects:
                    recorder.keep(scan, spam=spam)
        if args.dry_run:
            rows = [(spam, vector) for _, spam, vector in recorder.rows]
            table: Table | None = fit(rows, recorder.scores, config.detectors.classifier.scores)
        else:
            table = recorder.finish()
        print_table(table, config, everything=args.all, out=sys.stdout)
    finally:
        recorder.close()
        classifier.close()
    return 0
