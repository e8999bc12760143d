"""The names of a message a domain list is asked about: its links' and its sender's.

Links are asked by registrable domain (or host name too), the most linked first, up to a
cap.  Spamhaus asks DBL users to check the domains a message comes from as well as those
it links to: a spammer's own domain shows in its hosts' HELO and reverse DNS names and in
its addresses (MAIL FROM, From, Reply-To).  Each sender name is asked as its registrable
domain (``mx1.shop.example.co.uk`` as ``example.co.uk``); IP literals, single labels and
names under no known public suffix cannot be listed and are not asked.
"""

from __future__ import annotations

import functools
import re

from seawall.dnslists.lists import query_domain
from seawall.message.hosts import registrable_domain
from seawall.message.model import Message

_MAX_FIELD = 998  # RFC 5322 §2.1.1: a header line longer than this is cut before parsing
_MAX_NAME = 253
_ADDRESS_END = re.compile(r"[\s,;()<>\"'\[\]]")  # where a domain ends in an address
_CLIENT = frozenset({"helo", "rdns"})

# (what the name is, its registrable domain, the full name), both as the list is asked
SenderName = tuple[str, str, str]


def link_names(msg: Message, limit: int, *, hosts: bool) -> tuple[list[str], list[str]]:
    """Link domains, and (with ``hosts``) domains and host names, the most linked first."""
    domains: dict[str, int] = {}
    names: dict[str, int] = {}
    for url in msg.urls:
        if not url.is_ip:
            domain = url.domain
            domains[domain] = domains.get(domain, 0) + 1
            names[domain] = names.get(domain, 0) + 1
            if url.host != domain:
                names[url.host] = names.get(url.host, 0) + 1
    return _ranked(domains, limit), _ranked(names, limit) if hosts else []


def _ranked(counts: dict[str, int], limit: int) -> list[str]:
    """The names that can be asked, most frequent first (first seen first on a tie)."""
    ordered = (
        counts if len(counts) <= limit else sorted(counts, key=counts.__getitem__, reverse=True)
    )
    out: list[str] = []
    for name in ordered:
        ascii_name = query_domain(name)
        if ascii_name is not None:
            out.append(ascii_name)
            if len(out) >= limit:
                break
    return out


def sender_names(msg: Message, roles: frozenset[str], *, authenticated: bool) -> list[SenderName]:
    """The names of ``msg``'s sender for each of ``roles`` that gives one.

    The client's HELO and rDNS names are those the MTA reported, else the first untrusted
    Received hop's; an authenticated sender's are not asked (a subscriber's own PC).

    >>> from seawall.message import Envelope, parse_message
    >>> msg = parse_message(b"From: <a@news.example.com>\\n\\nhi", Envelope(helo="[192.0.2.1]"))
    >>> sender_names(msg, frozenset({"from", "helo"}), authenticated=False)
    [('from', 'example.com', 'news.example.com')]
    """
    out: list[SenderName] = []
    envelope = msg.envelope
    if "mail_from" in roles and envelope.mail_from:
        _add(out, "mail_from", _address_keys(envelope.mail_from))
    if "from" in roles and (values := msg.headers.get_all("From")):
        _add(out, "from", _address_keys(values[0]))
    if "reply_to" in roles and (values := msg.headers.get_all("Reply-To")):
        _add(out, "reply_to", _address_keys(values[0]))
    if not authenticated and not _CLIENT.isdisjoint(roles):
        if envelope.helo or envelope.hostname:
            helo, rdns = envelope.helo, envelope.hostname
        elif (hop := msg.first_untrusted) is not None:
            helo, rdns = hop.helo, hop.rdns
        else:
            helo = rdns = None
        if helo and "helo" in roles:
            _add(out, "helo", _name_keys(helo))
        if rdns and "rdns" in roles:
            _add(out, "rdns", _name_keys(rdns))
    return out


def _add(out: list[SenderName], role: str, keys: tuple[str, str] | None) -> None:
    if keys is not None:
        out.append((role, *keys))


@functools.lru_cache(maxsize=4096)
def _address_keys(value: str) -> tuple[str, str] | None:
    """The keys of the domain of the (last angle-bracketed, else only) address in ``value``."""
    value = value[:_MAX_FIELD]
    opening = value.rfind("<")
    if opening >= 0:
        closing = value.find(">", opening)
        value = value[opening + 1 : closing] if closing > 0 else value[opening + 1 :]
    at = value.rfind("@")
    if at < 0:
        return None
    domain = value[at + 1 :]
    end = _ADDRESS_END.search(domain)
    return _name_keys(domain[: end.start()] if end is not None else domain)


@functools.lru_cache(maxsize=8192)
def _name_keys(name: str) -> tuple[str, str] | None:
    """(registrable domain, full name) of a host name as a list is asked, or None when it
    cannot be listed: an IP literal, a single label, no public suffix, no DNS name."""
    if not name or len(name) > _MAX_NAME:
        return None
    name = name.strip().rstrip(".").lower()
    if "xn--" in name:  # the Public Suffix List is read in Unicode
        try:
            name = name.encode("ascii").decode("idna")
        except UnicodeError:
            return None
    domain = registrable_domain(name) if name else None
    ascii_domain = query_domain(domain) if domain is not None else None
    if ascii_domain is None:
        return None
    return ascii_domain, query_domain(name) or ascii_domain
