"""``seawall serve``, ``seawall config check`` and ``seawall config show``: run the daemons,
check what they would run, or print the configuration they would run with."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import msgspec

from seawall.cli.common import config_from
from seawall.config import PATH_KEYS, Config, load_config, redact_url


def cmd_serve(args: argparse.Namespace) -> int:
    from seawall.serve.supervisor import Supervisor

    logging.getLogger().setLevel(logging.DEBUG if args.verbose else logging.INFO)

    def load() -> Config:
        config = config_from(args)
        if args.workers:
            serve = msgspec.structs.replace(config.serve, workers=args.workers)
            config = msgspec.structs.replace(config, serve=serve)
        return config

    return Supervisor(load).run()


def cmd_config_check(args: argparse.Namespace) -> int:
    from seawall.serve.supervisor import prepare

    config = load_config(Path(args.file), state_dir=args.state)
    prepare(config).close()
    print(f"{args.file}: ok")
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    """Print the effective configuration (file, environment, ``--state``), or the defaults,
    as TOML with every key: what ``seawall serve`` would run with."""
    if args.defaults:
        print(config_toml(Config(), "the defaults"), end="")
        return 0
    # Not config_from: showing the configuration creates no state dir.
    config = load_config(Path(args.config) if args.config else None, state_dir=args.state)
    # Relative paths from the environment or --state are from the working directory.
    paths = {
        key: os.path.abspath(value)
        for key in PATH_KEYS
        if isinstance(value := getattr(config, key), str) and value and "://" not in value
    }
    config = msgspec.structs.replace(config, **paths)
    where = args.config or "no file"
    print(config_toml(config, f"the effective configuration ({where}, the environment)"), end="")
    return 0


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def config_toml(config: Config, what: str) -> str:
    """``config`` as a TOML document listing every key; a key without a value (None) is a
    comment.  The state's password is not shown."""
    data = msgspec.to_builtins(config)
    if data.get("state"):
        data["state"] = redact_url(data["state"])
    lines = [f"# seawall config show: {what}"]
    _table(data, [], lines)
    return "\n".join(lines) + "\n"


def _table(table: dict[str, Any], path: list[str], lines: list[str]) -> None:
    nested = []
    for key, value in table.items():
        if _is_table(value):
            nested.append((key, value))
        elif value is None:
            lines.append(f"# {_key(key)} =   (not set)")
        else:
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in nested:
        name = ".".join(_key(k) for k in [*path, key])
        if isinstance(value, dict):
            if not all(_is_table(v) for v in value.values()):  # [detectors] has only tables
                lines += ["", f"[{name}]"]
            _table(value, [*path, key], lines)
            continue
        for item in value:
            lines += ["", f"[[{name}]]"]
            _table(item, [*path, key], lines)


def _is_table(value: object) -> bool:
    """A [table] (a non-empty one: an empty one is written {}), or an array of them."""
    items = value if isinstance(value, list | tuple) else [value]
    return bool(value) and all(isinstance(v, dict) for v in items)


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an empty one: non-empty tables are [sections]
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML for {value!r}")
