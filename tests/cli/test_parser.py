"""The ``seawall`` parser in process: each command reaches its module; nothing imports the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import seawall
from seawall.cli import _parser

COMMANDS = [
    (["scan", "m.eml"], "seawall.cli.scan.cmd_scan"),
    (["learn", "--spam", "s"], "seawall.cli.scan.cmd_learn"),
    (["eval", "--spam", "s", "--ham", "h"], "seawall.cli.scan.cmd_eval"),
    (["serve"], "seawall.cli.serve.cmd_serve"),
    (["config", "check", "seawall.toml"], "seawall.cli.serve.cmd_config_check"),
    (["campaigns", "mark", "c1", "spam"], "seawall.cli.campaigns.cmd_campaigns"),
    (["reputation", "192.0.2.1"], "seawall.cli.reputation.cmd_reputation"),
    (["dnsbl", "test"], "seawall.cli.dnsbl.cmd_dnsbl_test"),
    (["simulate", "--hours", "1"], "seawall.cli.simulate.cmd_simulate"),
    (["demo"], "seawall.cli.demo.cmd_demo"),
]


@pytest.mark.parametrize(("argv", "target"), COMMANDS, ids=lambda v: " ".join(v)[:20])
def test_each_command_reaches_its_module(argv: list[str], target: str) -> None:
    args = _parser().parse_args([*argv, "--state", "var"])
    assert f"{args.func.__module__}.{args.func.__name__}" == target
    assert args.state == "var"


def _cli_imports(path: Path) -> list[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return sorted(n for n in names if n == "seawall.cli" or n.startswith("seawall.cli."))


def test_only_the_entry_point_imports_the_cli() -> None:
    root = Path(seawall.__file__).parent
    upward = {
        str(path.relative_to(root)): found
        for path in root.rglob("*.py")
        if root / "cli" not in path.parents
        and path != root / "__main__.py"
        and (found := _cli_imports(path))
    }
    assert not upward
