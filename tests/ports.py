"""Loopback ports for the servers the tests start (Postfix, Redis, ``seawall serve`` ...).

A port is free when it is handed out, and the server binds it a moment later.  One taken
with ``bind(("127.0.0.1", 0))`` comes from the kernel's ephemeral range
(``net.ipv4.ip_local_port_range``), the very range every outgoing connection takes its
local port from: any test's client connecting to anything in between could take it.  So
these come from below that range, where the kernel never picks one by itself, at random
(other test runs on the host pick too), each checked free by a bind, and never the same
one twice in a process.
"""

from __future__ import annotations

import contextlib
import random
import socket
from pathlib import Path

_FLOOR = 10_000  # below: the well-known services' ports
_given: set[int] = set()  # handed out by this process: never again


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


_KINDS = {"tcp": (socket.SOCK_STREAM,), "udp": (socket.SOCK_DGRAM,)}
_KINDS["both"] = _KINDS["tcp"] + _KINDS["udp"]


def _bindable(port: int, kind: str) -> bool:
    for type_ in _KINDS[kind]:
        with socket.socket(socket.AF_INET, type_) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_ports(count: int, kind: str = "tcp") -> list[int]:
    """``count`` distinct loopback ports free now for ``kind`` ("tcp", "udp" or "both"),
    never handed out before in this process."""
    top = _ephemeral_start()
    found: list[int] = []
    if top - _FLOOR >= 2000:
        for _ in range(100 * count):
            if len(found) == count:
                break
            port = random.randrange(_FLOOR, top)
            if port not in _given and port not in found and _bindable(port, kind):
                found.append(port)
    for _ in range(100 * count):  # no room below the ephemeral range: the kernel's choice
        if len(found) == count:
            break
        with contextlib.closing(socket.socket(socket.AF_INET, _KINDS[kind][0])) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _given and port not in found and _bindable(port, kind):
            found.append(port)
    if len(found) < count:
        raise RuntimeError(f"no {count} free {kind} ports on 127.0.0.1")
    _given.update(found)
    return found


def free_port(kind: str = "tcp") -> int:
    """One port, as :func:`free_ports`."""
    return free_ports(1, kind)[0]
