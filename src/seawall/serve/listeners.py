"""Listening sockets: parsed from the config and bound once, before the workers fork.

Every worker inherits the same sockets and the kernel spreads connections
among them, so a crashed or reloading worker never leaves a port unbound.
"""

from __future__ import annotations

import contextlib
import grp
import ipaddress
import logging
import os
import socket
import stat
from pathlib import Path

from seawall.addresses import ListenAddress, Networks, parse_listen
from seawall.config import Config, ListenerSettings
from seawall.errors import ConfigError

log = logging.getLogger("seawall.serve")

FRONTENDS = ("http", "milter", "spamd", "policy")
BACKLOG = 1024


# Parsed on the floor, so that load_config checks the listen keys too.
Address = ListenAddress
__all__ = [
    "FRONTENDS",
    "Address",
    "addresses",
    "allowed",
    "bind",
    "bound_address",
    "exposed",
    "parse_listen",
    "settings_of",
]


def settings_of(config: Config, name: str) -> ListenerSettings:
    """The ``[serve.NAME]`` table of front end ``name``."""
    settings: ListenerSettings = getattr(config.serve, name)
    return settings


def allowed(config: Config, name: str) -> Networks | None:
    """The client networks front end ``name`` accepts; None for anyone."""
    settings = settings_of(config, name)
    if not settings.allow:
        return None
    return Networks(settings.allow, where=f"serve.{name}.allow")


def exposed(config: Config) -> list[str]:
    """A warning for each TCP listener bound beyond loopback with no ``allow`` list: anyone
    who can reach it may use it (scan, and fill its connection slots)."""
    warnings = []
    for name, address in addresses(config).items():
        if address.path or settings_of(config, name).allow:
            continue
        try:
            loopback = ipaddress.ip_address(address.host).is_loopback
        except ValueError:  # a host name: whatever it resolves to, it is not pinned down
            loopback = address.host == "localhost"
        if not loopback:
            warnings.append(
                f"serve.{name}.listen = {str(address)!r} is reachable beyond this host and "
                f"serve.{name}.allow is empty: ANY client that reaches the port may use it; "
                f"list the networks of your MTAs in serve.{name}.allow"
            )
    return warnings


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


def bind(address: Address, *, group: str = "") -> socket.socket:
    """A listening socket for ``address`` (a stale unix socket file is replaced).

    A unix socket is mode 0660, owned by ``group`` if given (the MTA's group, e.g.
    "postfix"): other local users can neither scan nor learn through it.
    """
    gid = _gid(group) if group and address.path else -1
    try:
        if address.path:
            path = Path(address.path)
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISSOCK(path.lstat().st_mode):
                    path.unlink()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            old = os.umask(0o117)  # no moment when the socket is open to every user
            try:
                sock.bind(address.path)
            finally:
                os.umask(old)
            os.chmod(address.path, 0o660)
            if gid >= 0:
                os.chown(address.path, -1, gid)
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


def _gid(group: str) -> int:
    try:
        return int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError:
        raise ConfigError(f"socket_group: no group named {group!r}") from None


def bound_address(sock: socket.socket) -> str:
    """The address a socket really listens on (port 0 becomes the kernel's choice)."""
    name = sock.getsockname()
    if isinstance(name, str):
        return f"unix:{name}"
    return str(Address(host=name[0], port=name[1]))
