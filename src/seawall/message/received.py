"""Received fields to hops, and the first hop that came from outside our own relays.

One reader covers the formats seen in the corpora, all of the shape
``from <first> <comments> by <host> ...``:

=========  =================================================  ===========================
Postfix    ``from helo (rdns [1.2.3.4])``, ``(unknown [..])``  helo, rdns, ip
Sendmail   ``from helo (ident@rdns [ip] (may be forged))``     helo, rdns, ip
Exim       ``from rdns ([ip]:port helo=helo)``                 rdns first, ``helo=`` later
qmail      ``from rdns (HELO helo) (ip)``, ``unknown (ip)``    rdns first, ``HELO`` later
Exchange   ``from helo (10.0.0.1)``, ``(2603:10b6::42)``        helo, ip (no rdns recorded)
fetchmail  ``from host [ip] by localhost with IMAP``           helo, ip
=========  =================================================  ===========================

IPv6 may be written ``[IPv6:2001:db8::1]``.  Names are kept as written; "unknown" and
address literals in a name position become None.  A fetch ("with POP3", "with IMAP") is
marked :attr:`Hop.retrieved`: a reader's download from its own mailbox, which the first
untrusted hop is never.
"""

from __future__ import annotations

import functools
import re
import socket

from seawall.addresses import Networks
from seawall.message.model import Hop

_MAX_CHARS = 2048  # of one Received field; real ones are under 500
_HELO_ARGUMENT = re.compile(r"\((?:HELO|EHLO)[ =]([^\s()]+)|\bhelo=([^\s()]+)", re.IGNORECASE)
_IPV4 = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}"
_IPV6 = r"[0-9A-Fa-f.]*:[0-9A-Fa-f:.]{1,44}"  # checked by inet_pton afterwards
_BRACKET_IP = re.compile(rf"\[(?:IPv6:)?({_IPV4}|{_IPV6})\]", re.IGNORECASE)
_PAREN_IP = re.compile(rf"\((?:[^\s()@]{{0,64}}@)?({_IPV4}|{_IPV6})(?: with [^()]{{0,40}})?\)")
_RDNS = re.compile(r"\((?:[^\s()@\[\]]{0,64}@)?([^\s()\[\]@]{1,255}) ?\[")
_BY = re.compile(r"(?:^|\s)by\s+([^\s;()\[\]]+)", re.IGNORECASE)
_LITERAL = re.compile(rf"\[?(?:IPv6:)?(?:{_IPV4}|{_IPV6})\]?\Z", re.IGNORECASE)
_IPV4_ONLY = re.compile(rf"{_IPV4}\Z")
# The shapes most mail has, read in one step: Postfix/Sendmail "from helo (rdns [ip])" and
# "from helo ([ip])", Exchange "from helo (ip)", fetchmail "from host [ip]".  Everything
# else takes the general path.
_COMMON = re.compile(
    rf"from (\S+) (?:\((?:(?:[^\s()@\[\]]{{0,64}}@)?([^\s()\[\]@]{{1,255}}) ?)?\[(?:IPv6:)?"
    rf"({_IPV4}|{_IPV6})\](?: \(may be forged\))?\)|\(({_IPV4}|{_IPV6})\)"
    rf"|\[({_IPV4}|{_IPV6})\]) by ([^\s;()\[\]]+)",
    re.IGNORECASE,
)

# A reader's fetch from its own mailbox: "by localhost with POP3 (fetchmail-6.4.37)",
# "with IMAP", and the other protocols fetchmail names after "with".
_FETCH_PROTOCOLS = ("POP2", "POP3", "APOP", "KPOP", "RPOP", "SDPS", "IMAP")


def _retrieved(s: str, start: int) -> bool:
    """``s`` (white space made single spaces) records a fetch from a mailbox after
    ``start``: its protocol, after " with ", is one a mail reader fetches with.  Sought
    with ``find``: a pattern starting with white space cost 4 us a field."""
    at = s.find(" with ", start)
    while at >= 0:
        if s[at + 6 : at + 10].upper() in _FETCH_PROTOCOLS:
            return True
        at = s.find(" with ", at + 6)
    return False


# RFC 1918 and RFC 4193 (ULA), plus link-local.  Not 100.64.0.0/10: behind carrier-grade
# NAT those are an ISP's own subscribers, the very hosts that turn into spam zombies.
_PRIVATE = (
    *("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"),
    *("fc00::/7", "fe80::/10"),
)


def parse_received(value: str) -> Hop:
    """One Received field as a :class:`Hop`.

    >>> parse_received("from helo.test (mail.test [192.0.2.1]) by mx.test with ESMTP")
    Hop(helo='helo.test', rdns='mail.test', ip='192.0.2.1', by='mx.test', retrieved=False)
    """
    s = " ".join(value[:_MAX_CHARS].split())
    common = _COMMON.match(s)
    if common is not None:
        helo, rdns, in_comment, in_parens, bare, by_host = common.groups()
        address = _address(in_comment or in_parens or bare)
        if address is not None:
            if rdns is not None:
                rdns = _name(rdns)
            elif in_comment and "(Exim " in s:
                rdns = helo  # Exim writes "rdns ([ip])" when the HELO matched the rdns
            return Hop(
                helo=helo if helo.lower() != "unknown" else None,
                rdns=rdns,
                ip=address,
                by=by_host,
                raw=value,
                retrieved=_retrieved(s, common.end()),
            )
    clause_end = 0
    helo = rdns = ip = None
    if s[:5].lower() == "from ":
        clause_end = s.lower().find(" by ", 5)
        if clause_end < 0:
            clause_end = len(s)
        clause = s[5:clause_end]
        first, _, rest = clause.partition(" ")
        argument = _HELO_ARGUMENT.search(rest)
        if argument is not None:
            helo = argument.group(1) or argument.group(2)
            rdns = _name(first)
            # "(HELO [192.0.2.1])" is what the client claimed, not its address.
            rest = rest[: argument.start()] + rest[argument.end() :]
        else:
            helo = first if first.lower() != "unknown" else None
            named = _RDNS.search(rest)
            if named is not None:
                rdns = _name(named.group(1))
            elif rest.startswith("([") and "(Exim " in s:
                rdns = helo  # Exim writes "rdns ([ip])" when the HELO matched the rdns
        ip = _client_ip(rest) or _client_ip(first)
    by = _BY.search(s, max(0, clause_end - 1))
    retrieved = by is not None and _retrieved(s, by.end())
    return Hop(
        helo=helo,
        rdns=rdns,
        ip=ip,
        by=by.group(1) if by else None,
        raw=value,
        retrieved=retrieved,
    )


def _name(token: str) -> str | None:
    if not token or token.lower() == "unknown" or _LITERAL.match(token):
        return None
    return token


def _client_ip(text: str) -> str | None:
    """The first address in ``[brackets]``, else in ``(parentheses)``, of ``text``."""
    for pattern in (_BRACKET_IP, _PAREN_IP):
        for match in pattern.finditer(text):
            address = _address(match.group(1))
            if address is not None:
                return address
    if _LITERAL.match(text):  # Exim's "from [192.0.2.1] (helo=...)" has no rdns
        return _address(text.strip("[]").removeprefix("IPv6:").removeprefix("ipv6:"))
    return None


def _address(text: str) -> str | None:
    """``text`` as a canonical address, or None; IPv4-mapped IPv6 becomes IPv4."""
    if ":" not in text:
        return text if _IPV4_ONLY.match(text) else None
    try:
        address = socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, text))
    except (OSError, ValueError):
        return None
    if address.startswith("::ffff:") and "." in address:
        return address[7:]
    return address


class TrustedNetworks(Networks):
    """Our own relays: configured networks, plus private ranges when they are trusted.

    >>> TrustedNetworks(("127.0.0.0/8",), private_is_trusted=True).contains("10.1.2.3")
    True
    """

    __slots__ = ()

    def __init__(self, networks: tuple[str, ...], *, private_is_trusted: bool) -> None:
        extra = _PRIVATE if private_is_trusted else ()
        super().__init__(networks + extra, where="trusted.networks")

    def first_untrusted(self, hops: tuple[Hop, ...]) -> Hop | None:
        """The first hop from the top whose client address is outside our networks.  A
        mail reader's fetch from its mailbox (:attr:`Hop.retrieved`) is passed over: the
        mailbox's server is the reader's own provider, and the hop below it is where the
        mail entered."""
        for hop in hops:
            if hop.ip is not None and not hop.retrieved and not self.contains(hop.ip):
                return hop
        return None


@functools.lru_cache(maxsize=16)
def trusted_networks(networks: tuple[str, ...], private_is_trusted: bool) -> TrustedNetworks:
    """A shared :class:`TrustedNetworks` per configuration."""
    return TrustedNetworks(networks, private_is_trusted=private_is_trusted)
