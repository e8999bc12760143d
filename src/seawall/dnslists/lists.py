"""The configured lists, checked once at start: the names they are asked, what answers mean.

A list answers a listed name with addresses in 127.0.0.0/8 (RFC 5782 §2.1).  ``codes``
maps an exact address to a symbol; ``bits`` reads the last octet as a bitmask (SURBL
multi); ``sender_codes`` say what a domain list's answer about a sender's name means.
Answers in 127.255.255.0/24 are not listings but the list refusing to answer: Spamhaus
uses .252 for a typo in the zone, .254 for a query through a public resolver and .255 for
too many queries.  An answer outside 127/8 is no list's code either (a resolver rewriting
NXDOMAIN to an advertising page answers like that).
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
SENDER_CHECKS = ("mail_from", "from", "reply_to", "helo", "rdns")
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
    ipv6: bool = False
    links: bool = True  # domain lists: asked for the links' domains
    senders: frozenset[str] = frozenset()  # domain lists: the sender's names asked
    sender_codes: tuple[tuple[str, str], ...] = ()
    by_code: dict[str, str] = field(default_factory=dict, compare=False, hash=False, repr=False)
    by_sender_code: dict[str, str] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    def __post_init__(self) -> None:
        self.by_code.update(self.codes)
        self.by_sender_code.update(self.sender_codes)

    @property
    def symbols(self) -> tuple[str, ...]:
        """Every symbol this list can give, in configuration order, once each."""
        found = [s for _, s in self.codes] + [s for _, s in self.bits]
        return tuple(dict.fromkeys(found + [s for _, s in self.sender_codes]))

    def query_name(self, key: str) -> str | None:
        """``key`` (a reversed address or an ASCII domain) under the zone, if it fits."""
        name = f"{key}.{self.zone}"
        return name if len(name) <= _MAX_NAME else None

    def meaning(self, address: str, *, direct: bool = True, sender: bool = False) -> Meaning:
        """What the return address means; ``direct`` is False for a hop behind the client,
        ``sender`` is True for a domain list's answer about a sender's name.

        >>> zen = compile_lists(DnsblSettings())[0]
        >>> zen.meaning("127.0.0.4").symbols, zen.meaning("127.255.255.254").kind.name
        (('RBL_SPAMHAUS_XBL',), 'ERROR')
        """
        symbol = (self.by_sender_code if sender else self.by_code).get(address)
        if symbol is not None:  # codes never lie in 127.255.255.0/24: compile_lists checks
            if not direct and address in self.direct_only:
                return Meaning(Kind.IGNORED)
            return Meaning(Kind.LISTED, (symbol,))
        if not address.startswith("127."):
            return Meaning(Kind.ERROR, reason="not a list code (a resolver rewriting NXDOMAIN?)")
        if address.startswith("127.255.255."):
            return Meaning(Kind.ERROR, reason=REFUSALS.get(address, "an error code of the list"))
        if self.bits and not sender:
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
    if item.kind == "ip" and (item.checks or item.sender_codes):
        raise ConfigError(f"{where}: checks and sender_codes are for domain lists")
    if item.kind == "domain" and (item.link_ips or item.ipv6 or item.direct_only):
        raise ConfigError(f"{where}: link_ips, ipv6 and direct_only are for ip lists")
    if item.hosts and item.kind != "domain":
        raise ConfigError(f"{where}: hosts is for domain lists")
    checks = frozenset(item.checks or ("links",))
    senders = checks.intersection(SENDER_CHECKS)
    if senders and not item.sender_codes:
        named = ", ".join(sorted(senders))
        raise ConfigError(f"{where}: checks name the sender ({named}): give sender_codes")
    if item.sender_codes and not senders:
        raise ConfigError(f"{where}: sender_codes without a sender name in checks")
    codes = _codes(where, item.codes)
    bits = []
    for bit, symbol in item.bits.items():
        if not bit.isdigit() or not 0 < int(bit) < 256:
            raise ConfigError(f"{where}: bit {bit!r} is not a value from 1 to 255")
        _check_symbol(where, symbol)
        bits.append((int(bit), symbol))
    if not codes and not bits and "links" in checks:
        raise ConfigError(f"{where}: give codes or bits, or every answer is unknown")
    for code in item.direct_only:
        if code not in item.codes:
            raise ConfigError(f"{where}: direct_only code {code} is not in codes")
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
        ipv6=item.ipv6,
        links="links" in checks,
        senders=senders,
        sender_codes=tuple(_codes(where, item.sender_codes)),
    )


def _codes(where: str, table: dict[str, str]) -> list[tuple[str, str]]:
    for code, symbol in table.items():
        _check_code(where, code)
        _check_symbol(where, symbol)
    return list(table.items())


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
    return _nibbles(address)


def reverse_ipv6(ip: str) -> str | None:
    """The nibble key of an IPv6 address, an IPv4-mapped one too: RFC 5782 §5's IPv6 test
    entries are ::FFFF:7F00:2 and ::FFFF:7F00:1, asked as such of an IPv6 list.

    >>> reverse_ipv6("::ffff:7f00:2")[:24]
    '2.0.0.0.0.0.f.7.f.f.f.f.'
    """
    try:
        return _nibbles(ipaddress.IPv6Address(ip))
    except ValueError:
        return None


def _nibbles(address: ipaddress.IPv6Address) -> str:
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
