"""Host names: IPv4 in the forms browsers accept, IDNA, and the registrable domain.

The registrable domain comes from the Public Suffix List bundled in the
``publicsuffixlist`` wheel (no network), loaded on first use (~30 ms).
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import re

from publicsuffixlist import PublicSuffixList

_BAD_HOST = re.compile(r"[\s<>\"'`{}|\\^%@/:\[\]()*,;=!$&+]")
_NUMERIC_LABEL = re.compile(r"(?:0[xX][0-9a-fA-F]*+|[0-9]++)\Z")


@functools.cache
def _psl() -> PublicSuffixList:
    # The list bundled in the wheel; no network.  Hosts are IDNA-decoded before lookup, so
    # the punycode copy of every rule (3x the load time) is not needed.
    return PublicSuffixList(accept_encoded_idn=False)


@functools.lru_cache(maxsize=4096)
def domain_of(host: str) -> str:
    """The registrable domain of ``host`` by the Public Suffix List, else ``host`` itself:
    lenient, for grouping links by site (``Url.domain``).

    >>> domain_of("www.bbc.co.uk"), domain_of("localhost")
    ('bbc.co.uk', 'localhost')
    """
    return _psl().privatesuffix(host) or host


def registrable_domain(host: str) -> str | None:
    """The domain a registrant controls, strictly: None for IPs, single labels, bare public
    suffixes ("co.uk") and names under no known TLD ("setup.exe").

    >>> registrable_domain("a.b.example.co.uk"), registrable_domain("co.uk")
    ('example.co.uk', None)
    """
    host = host.lower().rstrip(".")
    if "." not in host or ":" in host or host[-1].isdigit():  # IP addresses end in digits
        return None
    if not known_tld(host.rpartition(".")[2]) or known_tld(host):
        return None
    return domain_of(host)


def same_site(a: str, b: str) -> bool:
    """``a`` and ``b`` belong to one registrant (cheap suffix test before the PSL)."""
    if a == b or a.endswith("." + b) or b.endswith("." + a):
        return True
    return registrable_domain(a) == registrable_domain(b) is not None


@functools.lru_cache(maxsize=2048)
def known_tld(label: str) -> bool:
    """``label`` is a top-level domain on the Public Suffix List (ICANN or private)."""
    return _psl().is_public(label.lower(), accept_unknown=False)


def check_host(host: str) -> tuple[str, str, bool] | None:
    """``(host, host as written in the URL, is_ip)``, or None for an impossible host."""
    if not host or len(host) > 253:
        return None
    if host.startswith("["):
        try:
            address = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return None
        return str(address), f"[{address}]", True
    if _BAD_HOST.search(host):
        return None
    last = host[host.rfind(".") + 1 :]
    if _NUMERIC_LABEL.match(last):
        # WHATWG URL: a host ending in a number is IPv4, in decimal, octal or hex parts.
        ipv4 = parse_ipv4(host)
        return None if ipv4 is None else (ipv4, ipv4, True)
    if "xn--" in host:
        with contextlib.suppress(UnicodeError):  # a broken label stays in its ACE form
            host = host.encode("ascii").decode("idna")
    return host, host, False


def parse_ipv4(host: str) -> str | None:
    """Dotted-quad form of an IPv4 host in any form browsers accept, else None.

    >>> parse_ipv4("0xC0.0250.1"), parse_ipv4("3232235777")
    ('192.168.0.1', '192.168.1.1')
    """
    labels = host.split(".")
    if len(labels) > 4:
        return None
    numbers: list[int] = []
    for label in labels:
        if not _NUMERIC_LABEL.match(label):
            return None
        if label[:2] in ("0x", "0X"):
            numbers.append(int(label[2:] or "0", 16))
        elif len(label) > 1 and label[0] == "0":
            if not label.isdigit() or "8" in label or "9" in label:
                return None
            numbers.append(int(label, 8))
        else:
            numbers.append(int(label, 10))
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        return None
    value = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        value += number << (8 * (3 - index))
    return str(ipaddress.IPv4Address(value))
