"""Listening sockets: parsed from the config and bound once, before the workers fork.

Every worker inherits the same sockets and the kernel spreads connections
among them, so a crashed or reloading worker never leaves a port unbound.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from pathlib import Path

from seawall.addresses import ListenAddress, parse_listen
from seawall.config import Config
from seawall.errors import ConfigError

FRONTENDS = ("http", "milter", "spamd", "policy")
BACKLOG = 1024


# Parsed on the floor, so that load_config checks the listen keys too.
Address = ListenAddress
__all__ = ["FRONTENDS", "Address", "addresses", "bind", "bound_address", "parse_listen"]


def addresses(config: Config) -> dict[str, Address]:
    """The enabled front ends and their addresses; ConfigError on a bad or repeated one."""
    found: dict[str, Address] = {}
    for name in FRONTENDS:
        text: str = getattr(config.serve, name).listen
        if not text:
            continue
        address = parse_listen(text, f"serve.{name}.listen")
        if address in found.values() and (address.path or address.port):
            raise ConfigError(f"serve.{name}.listen: {address} is already used")
        found[name] = address
    if not found:
        raise ConfigError("serve: every front end is turned off; nothing to listen on")
    return found


def bind(address: Address) -> socket.socket:
    """A listening socket for ``address`` (a stale unix socket file is replaced)."""
    try:
        if address.path:
            path = Path(address.path)
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISSOCK(path.lstat().st_mode):
                    path.unlink()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(address.path)
            os.chmod(address.path, 0o666)  # the MTA runs as its own user
        else:
            family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address.host, address.port))
        sock.listen(BACKLOG)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {address}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


def bound_address(sock: socket.socket) -> str:
    """The address a socket really listens on (port 0 becomes the kernel's choice)."""
    name = sock.getsockname()
    if isinstance(name, str):
        return f"unix:{name}"
    return str(Address(host=name[0], port=name[1]))
