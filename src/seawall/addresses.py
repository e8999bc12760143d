"""Client addresses and the networks they belong to: the floor every layer stands on.

Three questions are asked of an address all over Seawall, and each has one answer here:

- what address a piece of text names (``parse_ip``: MTA macros, policy requests, store keys);
- which network it was handed out from (``network_of``: the /24 or IPv6 /64 a dial-up or
  cable pool gives its customers, or any other prefix length);
- whether it lies in a configured set of networks (``Networks``: ``[isp] networks`` and
  ``dynamic``, ``trusted_networks``), answered from integer ranges and a small cache since it
  is asked of every message.

And one of the addresses Seawall itself listens on (``parse_listen``: the front ends'
``listen`` keys and the campaign tracker's), so the configuration checks them when it loads.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from seawall.errors import ConfigError

if TYPE_CHECKING:
    from seawall.config import IspSettings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_CACHE_SIZE = 4096  # answers remembered per Networks


def parse_ip(text: str) -> Address | None:
    """The address ``text`` names, IPv4-mapped IPv6 as IPv4; None for "unknown" and the like.

    >>> parse_ip("IPv6:::ffff:192.0.2.1"), parse_ip("unknown")
    (IPv4Address('192.0.2.1'), None)
    """
    try:
        address = ipaddress.ip_address(text.strip().removeprefix("IPv6:"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def network_of(address: Address | str, v4: int = 24, v6: int = 64) -> str:
    """The network of ``address`` with prefix length ``v4`` (IPv6: ``v6``), as CIDR text.

    The defaults are the /24 (IPv6 /64) that a dial-up or cable pool hands its customers
    from.  A string is parsed first; one that is not an address comes back unchanged.

    >>> network_of("198.51.100.7"), network_of("198.51.100.7", 16), network_of("2001:db8::1")
    ('198.51.100.0/24', '198.51.0.0/16', '2001:db8::/64')
    """
    if isinstance(address, str):
        if v4 in (8, 16, 24) and address.count(".") == 3 and ":" not in address:
            # The common case without ipaddress objects: the campaign registry asks this
            # twice for every message.
            parts = address.split(".")
            if all(p.isdigit() and len(p) <= 3 and int(p) <= 255 for p in parts):
                kept = v4 // 8
                return ".".join(parts[:kept] + ["0"] * (4 - kept)) + f"/{v4}"
        parsed = parse_ip(address)
        if parsed is None:
            return address
        address = parsed
    prefix = v4 if address.version == 4 else v6
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


class Networks:
    """A set of networks that answers "is this address inside?" from integer ranges.

    >>> Networks(("192.0.2.0/24", "2001:db8::/32")).contains("192.0.2.9")
    True

    Raises ConfigError, naming ``where``, for text that is not a network.
    """

    __slots__ = ("_cache", "_v4", "_v6")

    def __init__(self, networks: Iterable[str], *, where: str = "networks") -> None:
        v4: list[tuple[int, int]] = []
        v6: list[tuple[int, int]] = []
        for text in networks:
            try:
                net = ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise ConfigError(f"{where}: {text!r} is not a network") from None
            ranges = v4 if net.version == 4 else v6
            ranges.append((int(net.network_address), int(net.broadcast_address)))
        self._v4 = tuple(v4)
        self._v6 = tuple(v6)
        self._cache: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self._v4 or self._v6)

    def contains(self, ip: str) -> bool:
        """``ip`` is inside one of the networks; False for anything that is not an address."""
        known = self._cache.get(ip)
        if known is not None:
            return known
        text = ip.removeprefix("IPv6:")
        try:
            if ":" in text:
                value, ranges = socket.inet_pton(socket.AF_INET6, text), self._v6
            else:
                value, ranges = socket.inet_pton(socket.AF_INET, text), self._v4
        except (OSError, ValueError):
            return False
        number = int.from_bytes(value, "big")
        inside = any(low <= number <= high for low, high in ranges)
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()
        self._cache[ip] = inside
        return inside


class IspNetworks:
    """The ISP's own address space (``[isp] networks``) and its dynamic pools (``dynamic``),
    parsed once per configuration and shared by everything that asks.

    Raises ConfigError for a value that is not a network.
    """

    __slots__ = ("dynamic", "own")

    def __init__(self, networks: Iterable[str], dynamic: Iterable[str]) -> None:
        self.own = Networks(networks, where="isp.networks")
        self.dynamic = Networks(dynamic, where="isp.dynamic")

    @classmethod
    def of(cls, isp: IspSettings) -> IspNetworks:
        """The shared instance for these ``[isp]`` settings."""
        return _isp_networks(tuple(isp.networks), tuple(isp.dynamic))


@functools.lru_cache(maxsize=16)
def _isp_networks(networks: tuple[str, ...], dynamic: tuple[str, ...]) -> IspNetworks:
    return IspNetworks(networks, dynamic)


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """Where a server listens: TCP (host, port) or a unix socket path."""

    host: str = ""
    port: int = 0
    path: str = ""

    def __str__(self) -> str:
        if self.path:
            return f"unix:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_listen(text: str, where: str) -> ListenAddress:
    """``"127.0.0.1:7381"``, ``"[::1]:7381"``, ``"inet:127.0.0.1:7381"`` or ``"unix:/path"``.

    Raises ConfigError, naming ``where``, for anything else.

    >>> str(parse_listen("[::1]:7381", "x")), parse_listen("unix:/run/seawall.sock", "x").path
    ('[::1]:7381', '/run/seawall.sock')
    """
    if text.startswith("unix:"):
        path = text[5:]
        if not path.startswith("/"):
            raise ConfigError(f"{where}: a unix socket needs an absolute path, got {text!r}")
        return ListenAddress(path=path)
    text = text.removeprefix("inet:")
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]")
    try:
        port = int(port_text)
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(
            f"{where}: expected host:port with a numeric IP, or unix:/path; got {text!r}"
        ) from None
    if not sep or not 0 <= port <= 65535:
        raise ConfigError(f"{where}: bad port in {text!r}")
    return ListenAddress(host=host, port=port)
