"""The ``seawall`` parser in process: each command reaches its module; nothing imports the CLI."""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

import pytest

import seawall
from seawall.cli import _LAZY_FAMILIES, _parser

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


def test_a_family_listed_by_name_says_what_its_own_parser_says() -> None:
    # The families whose modules load only when named: the listing's help must be theirs.
    full = _parser()
    light = _parser(["scan", "m.eml"])

    def helps(parser: argparse.ArgumentParser) -> dict[str, str | None]:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return {choice.dest: choice.help for choice in sub._choices_actions}

    assert helps(light) == helps(full)
    assert set(_LAZY_FAMILIES) <= set(helps(full))


@pytest.mark.parametrize(("argv", "target"), COMMANDS, ids=lambda v: " ".join(v)[:20])
def test_each_command_reaches_its_module_when_only_it_is_loaded(
    argv: list[str], target: str
) -> None:
    args = _parser(argv).parse_args([*argv, "--state", "var"])
    assert f"{args.func.__module__}.{args.func.__name__}" == target


def test_scanning_does_not_load_the_desk_or_the_simulator() -> None:
    code = (
        "import sys\n"
        "from seawall.cli import _parser\n"
        "_parser(['scan', 'm.eml']).parse_args(['scan', 'm.eml'])\n"
        "print(sorted(m for m in sys.modules if m.startswith(('seawall.zombies', 'seawall.sim',"
        " 'seawall.accounting', 'seawall.cli.'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['seawall.cli.common']"
