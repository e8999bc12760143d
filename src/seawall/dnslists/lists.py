"""The configured lists, checked once at start: the names they are asked, what answers mean.

A list answers a listed name with addresses in 127.0.0.0/8 (RFC 5782 §2.1).  ``codes``
maps an exact address to a symbol; ``bits`` reads the last octet as a bitmask (SURBL
multi).  Answers in 127.255.255.0/24 are not listings but the list refusing to answer:
Spamhaus uses .252 for a typo in the zone, .254 for a query through a public resolver and
.255 for too many queries.  An answer outside 127/8 is no list's code either (a resolver
rewriting NXDOMAIN to an advertising page answers like that).
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import re
from dataclasses import dataclass, field

from seawall.config import DnsblSettings, DnsListSettings
from seawall.errors import ConfigError

_SYMBOL = re.compile(r"[A-Z][A-Z0-9_]{1,63}")
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_MAX_NAME = 253  # RFC 1035 §2.3.4 (255 bytes on the wire)
REFUSALS = {
    "127.255.255.252": "the zone name is mistyped",
    "127.255.255.254": "queries through a public resolver are refused",
    "127.255.255.255": "too many queries from this resolver",
}


class Kind(enum.Enum):
    LISTED = "listed"
    IGNORED = "ignored"  # a code that does not count here (PBL for a Received hop)
    UNKNOWN = "unknown"  # a 127/8 code the configuration does not name
    ERROR = "error"  # the list refused to answer, or the answer is no list code


@dataclass(frozen=True, slots=True)
class Meaning:
    kind: Kind
    symbols: tuple[str, ...] = ()
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DnsList:
    """One list, validated: see :class:`~seawall.config.DnsListSettings` for the fields."""

    name: str
    zone: str
    kind: str  # "ip" | "domain"
    weight: float
    timeout_s: float
    hosts: bool
    link_ips: bool
    codes: tuple[tuple[str, str], ...]
    bits: tuple[tuple[int, str], ...]
    direct_only: frozenset[str]
    test_entry: str
    by_code: dict[str, str] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        self.by_code.update(self.codes)

    @property
    def symbols(self) -> tuple[str, ...]:
        """Every symbol this list can give, in configuration order, once each."""
        return tuple(dict.fromkeys([s for _, s in self.codes] + [s for _, s in self.bits]))

    def query_name(self, key: str) -> str | None:
        """``key`` (a reversed address or an ASCII domain) under the zone, if it fits."""
        name = f"{key}.{self.zone}"
        return name if len(name) <= _MAX_NAME else None

    def meaning(self, address: str, *, direct: bool = True) -> Meaning:
        """What the return address means; ``direct`` is False for a hop behind the client.

        >>> zen = compile_lists(DnsblSettings())[0]
        >>> zen.meaning("127.0.0.4").symbols, zen.meaning("127.255.255.254").kind.name
        (('RBL_SPAMHAUS_XBL',), 'ERROR')
        """
        symbol = self.by_code.get(address)
        if symbol is not None:  # codes never lie in 127.255.255.0/24: compile_lists checks
            if not direct and address in self.direct_only:
                return Meaning(Kind.IGNORED)
            return Meaning(Kind.LISTED, (symbol,))
        if not address.startswith("127."):
            return Meaning(Kind.ERROR, reason="not a list code (a resolver rewriting NXDOMAIN?)")
        if address.startswith("127.255.255."):
            return Meaning(Kind.ERROR, reason=REFUSALS.get(address, "an error code of the list"))
        if self.bits:
            last = address.rpartition(".")[2]
            if last.isdigit():
                value = int(last)
                found = tuple(dict.fromkeys(sym for bit, sym in self.bits if value & bit))
                if found:
                    return Meaning(Kind.LISTED, found)
        return Meaning(Kind.UNKNOWN, reason="a return code the configuration does not name")


def compile_lists(settings: DnsblSettings) -> tuple[DnsList, ...]:
    """The configured lists, or ConfigError naming what cannot work."""
    seen: set[str] = set()
    out = []
    for item in settings.lists:
        if not item.name or item.name in seen:
            raise ConfigError(f"dnsbl: list names must be unique and not empty: {item.name!r}")
        seen.add(item.name)
        out.append(_compile(item))
    return tuple(out)


def _compile(item: DnsListSettings) -> DnsList:
    where = f"dnsbl list {item.name!r}"
    zone = item.zone.strip().strip(".").lower()
    if not zone or query_domain(zone) != zone:
        raise ConfigError(f"{where}: zone {item.zone!r} is not a DNS name")
    codes = []
    for code, symbol in item.codes.items():
        _check_code(where, code)
        _check_symbol(where, symbol)
        codes.append((code, symbol))
    bits = []
    for bit, symbol in item.bits.items():
        if not bit.isdigit() or not 0 < int(bit) < 256:
            raise ConfigError(f"{where}: bit {bit!r} is not a value from 1 to 255")
        _check_symbol(where, symbol)
        bits.append((int(bit), symbol))
    if not codes and not bits:
        raise ConfigError(f"{where}: give codes or bits, or every answer is unknown")
    for code in item.direct_only:
        if code not in item.codes:
            raise ConfigError(f"{where}: direct_only code {code} is not in codes")
    if item.link_ips and item.kind != "ip":
        raise ConfigError(f"{where}: link_ips is for ip lists")
    if item.hosts and item.kind != "domain":
        raise ConfigError(f"{where}: hosts is for domain lists")
    test = item.test_entry or ("127.0.0.2" if item.kind == "ip" else "test")
    if item.kind == "ip":
        key = reverse_ip(test)
    else:  # RFC 5782's "test" is a single label, which no link domain is
        key = query_domain(test) or (test if _LABEL.fullmatch(test) else None)
    if key is None:
        raise ConfigError(f"{where}: test_entry {test!r} is not a {item.kind} entry")
    return DnsList(
        name=item.name,
        zone=zone,
        kind=item.kind,
        weight=item.weight,
        timeout_s=item.timeout_s,
        hosts=item.hosts,
        link_ips=item.link_ips,
        codes=tuple(codes),
        bits=tuple(bits),
        direct_only=frozenset(item.direct_only),
        test_entry=test,
    )


def _check_code(where: str, code: str) -> None:
    try:
        address = ipaddress.IPv4Address(code)
    except ValueError:
        raise ConfigError(f"{where}: code {code!r} is not an IPv4 address") from None
    if address not in _LOOPBACK or code.startswith("127.255.255."):
        raise ConfigError(f"{where}: code {code} is not a listing code (127.0.0.0/8 only)")


def _check_symbol(where: str, symbol: str) -> None:
    if not _SYMBOL.fullmatch(symbol):
        raise ConfigError(f"{where}: symbol {symbol!r} is not UPPER_SNAKE_CASE")


_LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")


@functools.lru_cache(maxsize=8192)
def reverse_ip(ip: str) -> str | None:
    """The list key of an address: IPv4 octets or IPv6 nibbles reversed (RFC 5782 §2.1, §2.4).

    >>> reverse_ip("192.0.2.99"), reverse_ip("2001:db8::1")[:12]
    ('99.2.0.192', '1.0.0.0.0.0.')
    """
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if isinstance(address, ipaddress.IPv4Address):
        return ".".join(reversed(str(address).split(".")))
    return ".".join(reversed(address.exploded.replace(":", "")))


@functools.lru_cache(maxsize=8192)
def listable_ip(ip: str) -> bool:
    """A public unicast address: private, loopback, link-local, shared (CGNAT), reserved,
    documentation and benchmarking ranges are in no public list and are not asked."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


@functools.lru_cache(maxsize=8192)
def query_domain(host: str) -> str | None:
    """``host`` as the ASCII name a list is asked for, or None when it cannot be a DNS name.

    >>> query_domain("Bücher.example"), query_domain("a..b"), query_domain("localhost")
    ('xn--bcher-kva.example', None, None)
    """
    host = host.strip().rstrip(".").lower()
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    if len(host) > _MAX_NAME or "." not in host:
        return None
    if not all(_LABEL.fullmatch(label) for label in host.split(".")):
        return None
    return host
