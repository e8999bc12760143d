"""The ``seawall`` command: scan | learn | eval | serve | config check | config show |
campaigns | reputation | dnsbl test | simulate | user | demo.

Each command family has its module here (scan.py, serve.py, campaigns.py, ...); this one
builds the parser and dispatches.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from seawall import __version__
from seawall.cli.common import common_arguments
from seawall.errors import SeawallError

Command = Callable[[argparse.Namespace], int]

# Commands whose modules import much (the zombie desk, the simulator, the classifier's
# fitting): their parsers are built only when the command line names them, so that
# ``seawall scan`` does not start up through them.  The help is what the module's own parser
# says (tests/cli/test_parser.py checks that they agree).
_LAZY_FAMILIES: dict[str, tuple[str, str, str]] = {
    "simulate": ("seawall.cli.simulate", "add_simulate_parser", "a seeded botnet spam run"),
    "user": ("seawall.cli.users", "add_user_parser", "users of the dashboard and the learning API"),
    "accounting": (
        "seawall.cli.accounting",
        "add_accounting_parser",
        "RADIUS accounting: who held an address when",
    ),
    "cases": (
        "seawall.cli.cases",
        "add_cases_parser",
        "the own zombies: cases, their evidence and state",
    ),
    "abuse": (
        "seawall.cli.abuse",
        "add_abuse_parser",
        "abuse reports from other networks (ARF, X-ARF)",
    ),
    "feeds": (
        "seawall.cli.feeds",
        "add_feeds_parser",
        "report feeds in the Shadowserver CSV layout",
    ),
    "scores": (
        "seawall.cli.scores",
        "add_scores_parser",
        "the symbol scores learned from labelled mail",
    ),
    "demo": (
        "seawall.cli.demo",
        "add_demo_parser",
        "a botnet wave through a live seawall serve, with its dashboard",
    ),
}


def _lazy(module: str, name: str) -> Command:
    """``module.name``, imported when the command runs."""

    def run(args: argparse.Namespace) -> int:
        func: Command = getattr(importlib.import_module(module), name)
        return func(args)

    run.__module__, run.__name__, run.__qualname__ = module, name, name  # what it stands for
    return run


def _named_command(argv: Sequence[str]) -> str | None:
    """The command word of ``argv`` (its first word that is not an option)."""
    return next((word for word in argv if not word.startswith("-")), None)


def _parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``argv``, the families of :data:`_LAZY_FAMILIES` that it does
    not name are listed by name and help only."""
    parser = argparse.ArgumentParser(
        prog="seawall",
        description="Seawall: score mail, see the campaigns of a spam run, and serve the MTA.",
    )
    parser.add_argument("--version", action="version", version=f"seawall {__version__}")
    common = common_arguments()
    sub = parser.add_subparsers(dest="command", required=True)

    scan = sub.add_parser("scan", parents=[common], help="score messages")
    scan.add_argument("paths", nargs="+", metavar="PATH", help="file, tree, Maildir or mbox")
    scan.add_argument("--json", action="store_true", help="one JSON object per message")
    scan.add_argument("--workers", type=int, default=0, help="processes (default: cores)")
    scan.add_argument("--profile", action="store_true", help="per-stage times on stderr")
    scan.add_argument(
        "--feed-state",
        action="store_true",
        help="let what the scan sees feed the state's campaigns and reputation, as serve does"
        " (default: the state is read, nothing is written back)",
    )
    scan.add_argument(
        "--frozen",
        action="store_true",
        help="learn nothing from the scan, not even within the run: every message is scored"
        " against the state as saved, so the verdicts do not depend on the order or the"
        " number of workers (reproducible audits)",
    )
    scan.set_defaults(func=_lazy("seawall.cli.scan", "cmd_scan"))

    learn = sub.add_parser("learn", parents=[common], help="teach the classifier")
    learn.add_argument("--spam", nargs="+", metavar="PATH", default=[])
    learn.add_argument("--ham", nargs="+", metavar="PATH", default=[])
    learn.set_defaults(func=_lazy("seawall.cli.scan", "cmd_learn"))

    ev = sub.add_parser("eval", parents=[common], help="measure accuracy on labelled mail")
    ev.add_argument("--spam", nargs="+", metavar="PATH", default=[])
    ev.add_argument("--ham", nargs="+", metavar="PATH", default=[])
    ev.add_argument("--train-fraction", type=float, default=0.5)
    ev.add_argument("--seed", type=int, default=0, help="split seed (0: SHA-1 of the basename)")
    ev.add_argument("--online", action="store_true", help="TREC-style: score, then learn")
    ev.add_argument("--json", action="store_true")
    ev.add_argument("--workers", type=int, default=0)
    ev.add_argument("--profile", action="store_true")
    ev.set_defaults(func=_lazy("seawall.cli.scan", "cmd_eval"))

    serve = sub.add_parser("serve", parents=[common], help="milter, spamd, HTTP and policy")
    serve.add_argument("--workers", type=int, default=0, help="processes (default: config)")
    serve.set_defaults(func=_lazy("seawall.cli.serve", "cmd_serve"))

    campaigns = sub.add_parser("campaigns", parents=[common], help="list, show or judge campaigns")
    campaigns.add_argument("action", nargs="?", choices=["list", "show", "mark"], default="list")
    campaigns.add_argument("rest", nargs="*", metavar="ID [spam|ham]")
    campaigns.add_argument("--json", action="store_true", help="one JSON object per campaign")
    campaigns.add_argument("--min-count", type=int, default=2, help="smallest campaign shown")
    campaigns.add_argument(
        "--max-ips",
        type=int,
        default=1000,
        metavar="N",
        help="show: at most N source addresses and N own ones (default: 1000)",
    )
    campaigns.set_defaults(func=_lazy("seawall.cli.campaigns", "cmd_campaigns"))

    rep = sub.add_parser(
        "reputation", parents=[common], help="an address's or a network's sender reputation"
    )
    rep.add_argument(
        "ip",
        metavar="IP|NET|DOMAIN",
        help="an IPv4 or IPv6 address, a /24 (IPv6 /64) network, or a sender domain",
    )
    rep.add_argument("--json", action="store_true", help="one JSON object")
    rep.set_defaults(func=_lazy("seawall.cli.reputation", "cmd_reputation"))

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", parents=[common], help="validate a config file")
    check.add_argument("file", metavar="FILE")
    check.set_defaults(func=_lazy("seawall.cli.serve", "cmd_config_check"))
    show = config_sub.add_parser(
        "show", parents=[common], help="print the effective configuration as TOML"
    )
    show.add_argument("--defaults", action="store_true", help="the defaults, not the file")
    show.set_defaults(func=_lazy("seawall.cli.serve", "cmd_config_show"))

    dnsbl = sub.add_parser("dnsbl", help="DNS block list tools")
    dnsbl_sub = dnsbl.add_subparsers(dest="dnsbl_command", required=True)
    dnsbl_test = dnsbl_sub.add_parser(
        "test", parents=[common], help="ask each list for its RFC 5782 test entries"
    )
    dnsbl_test.set_defaults(func=_lazy("seawall.cli.dnsbl", "cmd_dnsbl_test"))

    named = None if argv is None else _named_command(argv)
    for family, (module, adder, help_text) in _LAZY_FAMILIES.items():
        if argv is None or family == named:
            getattr(importlib.import_module(module), adder)(sub, common)
        else:
            sub.add_parser(family, help=help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser(sys.argv[1:] if argv is None else argv).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from seawall.errors import ConfigError

    func: Command = args.func
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
