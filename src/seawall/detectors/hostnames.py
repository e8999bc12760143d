"""What host names give away: subscriber pools, IPs written into names, big providers' domains.

Shared by the headers, received and campaign detectors.
"""

from __future__ import annotations

import functools
import re

_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_FOUR_OCTETS = re.compile(r"(?<!\d)(\d{1,3})[.\-_](\d{1,3})[.\-_](\d{1,3})[.\-_](\d{1,3})(?!\d)")
_LETTERS = re.compile(r"[a-z]+")

# Each tuple is one provider's own domains: a HELO inside one must come from an rDNS inside it.
PROVIDERS = (
    ("gmail.com", "google.com", "googlemail.com"),
    ("yahoo.com", "yahoo.co.uk", "yahoo.fr", "yahoo.de", "yahoo.co.jp", "ymail.com",
     "yahoodns.net", "aol.com", "aol.net", "aim.com", "netscape.net", "netscape.com"),
    # phx.gbl: the domain of the Message-IDs Hotmail's servers wrote (Windows Live, to 2012).
    ("hotmail.com", "outlook.com", "live.com", "msn.com", "microsoft.com", "phx.gbl"),
    ("icloud.com", "me.com", "mac.com", "apple.com"),
    ("mail.ru", "bk.ru", "inbox.ru", "list.ru"),
    ("yandex.ru", "yandex.net", "yandex.com"),
    ("gmx.net", "gmx.de", "gmx.com", "web.de", "mail.com"),
    ("t-online.de",), ("comcast.net",), ("qq.com",), ("163.com", "126.com", "netease.com"),
    ("orange.fr", "wanadoo.fr"), ("amazon.com", "amazonses.com"), ("paypal.com",),
)  # fmt: skip
# Words ISPs put in the names of subscriber (dial-up, DSL, cable, mobile) addresses.  Only
# counted beside an IP written into the name: "client.example.com" alone is not dynamic.
DYNAMIC_WORDS = frozenset(
    {
        "dyn", "dynamic", "dynip", "dip", "pool", "pools", "dhcp", "dial", "dialup", "dialin",
        "ppp", "pppoe", "adsl", "dsl", "dslb", "xdsl", "vdsl", "sdsl", "cable", "catv", "cm",
        "cpe", "bb", "broadband", "client", "clients", "cust", "customer", "user", "users",
        "res", "residential", "home", "host", "static", "nat", "wifi", "wireless", "mobile",
        "gprs", "lte", "ftth", "fiber", "fibre", "ip", "unassigned", "reverse", "generic",
    }
)  # fmt: skip


class Providers:
    """Which big provider a host name belongs to, by its last 2, 3 or 4 labels.

    >>> Providers().of("mx.mail.yahoo.co.uk") == Providers().of("yahoo.com")
    True
    """

    def __init__(self, extra: tuple[tuple[str, ...], ...] = ()) -> None:
        self._family: dict[str, int] = {}
        for index, family in enumerate(PROVIDERS + extra):
            for domain in family:
                self._family[domain.lower().strip(".")] = index

    def of(self, host: str) -> int | None:
        """Index of the provider family ``host`` (lower-case) belongs to, None if none."""
        dot = host.rfind(".")
        for _ in range(3):
            dot = host.rfind(".", 0, dot)
            found = self._family.get(host[dot + 1 :])
            if found is not None or dot < 0:
                return found
        return None


def is_ipv4(text: str) -> bool:
    return bool(text[:1].isdigit() and _IPV4.fullmatch(text))


def ip_in_name(host: str, ip: str | None) -> bool:
    """The host name spells out an IPv4 address, dotted, dashed, zero-padded or in hex."""
    if host.count(".") + host.count("-") + host.count("_") >= 3:  # four numbers, three gaps
        for found in _FOUR_OCTETS.finditer(host):
            if all(int(octet) <= 255 for octet in found.groups()):
                return True
    return ip is not None and any(form in host for form in _ip_spellings(ip))


@functools.lru_cache(maxsize=1024)
def _ip_spellings(ip: str) -> tuple[str, ...]:
    """``"203.0.113.7"`` as ISPs write it into names without separators: hex, zero-padded."""
    if not _IPV4.fullmatch(ip):
        return ()
    octets = [int(o) for o in ip.split(".")]
    if any(o > 255 for o in octets):
        return ()
    return ("".join(f"{o:02x}" for o in octets), "".join(f"{o:03d}" for o in octets))


def pool_word(host: str) -> bool:
    """A word of a subscriber pool's naming (dialup, dsl, pool, ...) is in the name."""
    return any(word in DYNAMIC_WORDS for word in _LETTERS.findall(host))


def is_dynamic_name(host: str, ip: str | None) -> bool:
    """A subscriber-pool name: the client's IP written into it beside a pool word."""
    host = host.lower().rstrip(".")
    return ip_in_name(host, ip) and pool_word(host)
