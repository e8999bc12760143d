"""The ``seawall`` command: scan | learn | eval | serve | config check | config show |
campaigns | reputation | dnsbl test | simulate | user | demo.

Each command family has its module here (scan.py, serve.py, campaigns.py, ...); this one
builds the parser and dispatches.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from seawall import __version__
from seawall.cli.abuse import add_abuse_parser
from seawall.cli.accounting import add_accounting_parser
from seawall.cli.campaigns import cmd_campaigns
from seawall.cli.cases import add_cases_parser
from seawall.cli.common import common_arguments
from seawall.cli.demo import add_demo_parser
from seawall.cli.dnsbl import cmd_dnsbl_test
from seawall.cli.feeds import add_feeds_parser
from seawall.cli.reputation import cmd_reputation
from seawall.cli.scan import cmd_eval, cmd_learn, cmd_scan
from seawall.cli.scores import add_scores_parser
from seawall.cli.serve import cmd_config_check, cmd_config_show, cmd_serve
from seawall.cli.simulate import add_simulate_parser
from seawall.cli.users import add_user_parser
from seawall.errors import SeawallError


def _parser() -> argparse.ArgumentParser:
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
    campaigns.set_defaults(func=cmd_campaigns)

    rep = sub.add_parser(
        "reputation", parents=[common], help="an address's or a network's sender reputation"
    )
    rep.add_argument(
        "ip",
        metavar="IP|NET|DOMAIN",
        help="an IPv4 or IPv6 address, a /24 (IPv6 /64) network, or a sender domain",
    )
    rep.add_argument("--json", action="store_true", help="one JSON object")
    rep.set_defaults(func=cmd_reputation)

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", parents=[common], help="validate a config file")
    check.add_argument("file", metavar="FILE")
    check.set_defaults(func=cmd_config_check)
    show = config_sub.add_parser(
        "show", parents=[common], help="print the effective configuration as TOML"
    )
    show.add_argument("--defaults", action="store_true", help="the defaults, not the file")
    show.set_defaults(func=cmd_config_show)

    dnsbl = sub.add_parser("dnsbl", help="DNS block list tools")
    dnsbl_sub = dnsbl.add_subparsers(dest="dnsbl_command", required=True)
    dnsbl_test = dnsbl_sub.add_parser(
        "test", parents=[common], help="ask each list for its RFC 5782 test entries"
    )
    dnsbl_test.set_defaults(func=cmd_dnsbl_test)

    add_simulate_parser(sub, common)
    add_user_parser(sub, common)
    add_accounting_parser(sub, common)
    add_cases_parser(sub, common)
    add_abuse_parser(sub, common)
    add_feeds_parser(sub, common)
    add_scores_parser(sub, common)

    add_demo_parser(sub, common)
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
