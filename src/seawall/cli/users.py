"""``seawall user add|list``: the users of the dashboard and the learning API (seawall.users)."""

from __future__ import annotations

import argparse
import getpass
import sys
import tomllib
from pathlib import Path
from typing import Any, get_args

from seawall.config import Role, load_config
from seawall.errors import SeawallError
from seawall.users import hash_password


def add_user_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    user = sub.add_parser("user", help="users of the dashboard and the learning API")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    add = user_sub.add_parser(
        "add",
        parents=[common],
        help="hash a password and add [users.NAME] to the --config file (else print it)",
    )
    add.add_argument("name", metavar="NAME")
    add.add_argument(
        "--role",
        action="append",
        choices=get_args(Role),
        dest="roles",
        help="view (default), learn or admin; repeat for several",
    )
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin's first line"
    )
    add.set_defaults(func=cmd_user_add)
    listing = user_sub.add_parser("list", parents=[common], help="the configured users")
    listing.set_defaults(func=cmd_user_list)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise SeawallError("the passwords differ")
    if len(password) < 8:
        raise SeawallError("a password needs at least 8 characters")
    return password


def _table(name: str, digest: str, roles: list[str]) -> str:
    quoted = ", ".join(f'"{r}"' for r in roles)
    return f'\n[users."{name}"]\npassword = "{digest}"\nroles = [{quoted}]\n'


def cmd_user_add(args: argparse.Namespace) -> int:
    name: str = args.name
    if (
        not name
        or len(name) > 64
        or not all(c.isascii() and (c.isalnum() or c in "_.@-") for c in name)
    ):
        raise SeawallError(f"{name!r}: a user name is 1-64 of A-Z a-z 0-9 _ . @ -")
    roles: list[str] = list(dict.fromkeys(args.roles or ["view"]))
    path = Path(args.config) if args.config else None
    if path is not None:
        try:
            existing = tomllib.loads(path.read_text("utf-8")) if path.exists() else {}
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise SeawallError(f"{path}: {exc}") from None
        if name in existing.get("users", {}):
            raise SeawallError(f"{path}: user {name!r} exists; remove its table to replace it")
    table = _table(name, hash_password(_password(args.password_stdin)), roles)
    if path is None:
        sys.stdout.write(table.lstrip("\n"))
        return 0
    before = path.read_bytes() if path.exists() else b""
    with path.open("a", encoding="utf-8") as out:
        out.write(table)
    try:
        load_config(path)
    except SeawallError:
        path.write_bytes(before)  # leave the file as it was
        raise
    print(f"seawall: added user {name} ({', '.join(roles)}) to {path}", file=sys.stderr)
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    config = load_config(Path(args.config) if args.config else None, state_dir=args.state)
    for name, user in sorted(config.users.items()):
        print(f"{name}\t{','.join(user.roles)}")
    return 0
