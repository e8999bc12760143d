"""The first external hop: the sending client's HELO, reverse DNS, pool and path to us.

A spam zombie on a subscriber line talks straight to our MX, from a pool address whose
name spells its IP ("ppp-203-0-113-7.dialup.example.net"), often with a HELO that is a
bare IP, a PC name or a big provider's domain it does not belong to.  The facts come
from the MTA's envelope when it gives them (milter, /checkv2), else from the Received
field where mail entered from outside the trusted networks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import ClassVar

from seawall.addresses import IspNetworks
from seawall.config import IspSettings, ReceivedSettings
from seawall.detectors.base import Context, Hit, Parts
from seawall.detectors.hostnames import Providers, ip_in_name, is_ipv4, pool_word
from seawall.message.headers import addresses_of
from seawall.message.model import Hop, Message

_RAW_HELO_ARGUMENT = re.compile(r"\((?:HELO|EHLO)[ =]([^\s()]+)|\bhelo=([^\s()]+)", re.I)
_RAW_FROM = re.compile(r"\s*from\s+([^\s()]+)", re.IGNORECASE)
_ONE_ADDRESS = 998  # characters: a field of one address fits on one line (RFC 5322 2.1.1)
# The signs of a subscriber machine; any of them on a one-hop delivery is a zombie's mark.
_ZOMBIE_SIGNS = frozenset(
    {
        "RCVD_HELO_BARE_IP", "RCVD_HELO_IP_LITERAL", "RCVD_HELO_NOT_FQDN", "RCVD_HELO_DYNAMIC",
        "RCVD_NO_RDNS", "RCVD_RDNS_DYNAMIC", "RCVD_RDNS_GENERIC", "RCVD_OWN_DYNAMIC",
    }
)  # fmt: skip


class ReceivedDetector:
    """HELO, rDNS and delivery path of the client that handed the message to us."""

    name: ClassVar[str] = "received"
    io: ClassVar[bool] = False
    symbols: ClassVar[Mapping[str, str]] = {
        "RCVD_HELO_BARE_IP": "HELO is a bare IP address, not a name or [literal]",
        "RCVD_HELO_IP_LITERAL": "HELO is an address literal [192.0.2.1]",
        "RCVD_HELO_NOT_FQDN": "HELO is not a fully-qualified name",
        "RCVD_HELO_DYNAMIC": "HELO looks like a subscriber-pool host name",
        "RCVD_HELO_FORGED_PROVIDER": "HELO claims a big provider; the client's rDNS disagrees",
        "RCVD_NO_RDNS": "The first external client has no reverse DNS",
        "RCVD_RDNS_DYNAMIC": "rDNS of a dial-up / DSL / cable pool (IP and pool word in name)",
        "RCVD_RDNS_GENERIC": "rDNS with the IP written into it (generic, unnamed host)",
        "RCVD_OWN_DYNAMIC": "The client is in one of our own dynamic pools ([isp] dynamic)",
        "RCVD_DIRECT_TO_MX": "Sent straight to our border from the client (one hop, no auth)",
        "RCVD_DIRECT_TO_MX_DYNAMIC": "Sent in one hop by a dynamic, nameless or bare-IP client",
        "RCVD_DIRECT_TO_MX_SELF": "Sent straight to our border from the recipient's own "
        "address to itself: a bot forging the reader as the sender",
    }

    @classmethod
    def build(cls, parts: Parts) -> ReceivedDetector:
        return cls(parts.config.detectors.received, parts.config.isp, parts.providers)

    def __init__(
        self, settings: ReceivedSettings, isp: IspSettings, providers: Providers | None = None
    ) -> None:
        self.settings = settings
        self.providers = providers or Providers()
        self._dynamic = IspNetworks.of(isp).dynamic

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]:
        if ctx.authenticated:  # our own user, submitting: the path is ours
            return ()
        hits: list[Hit] = []
        envelope = msg.envelope
        first = msg.first_untrusted
        if envelope.helo or envelope.hostname:
            # The MTA told us about its client: that is the first hop, whatever the headers say.
            helo, rdns, ip = envelope.helo, envelope.hostname, envelope.client_ip
            unknown = rdns is not None and rdns.lower() in ("unknown", "[unknown]")
            rdns = None if unknown else rdns
        elif first is not None:
            helo, rdns, ip = first.helo or _literal_helo(first.raw), first.rdns, first.ip
            # Only a receiver that says "unknown" looked and found nothing: Sendmail and
            # Exchange often record no name at all even when there is one.
            unknown = rdns is None and _says_unknown(first.raw)
        else:
            # Nothing is known of the path; only where the client is.
            ip = envelope.client_ip
            if ip and self._dynamic.contains(ip):
                return (Hit("RCVD_OWN_DYNAMIC", options=(ip,)),)
            return ()
        if helo:
            self._helo(helo.strip().lower().rstrip("."), rdns, ip, unknown, hits)
        if rdns:
            rdns = rdns.lower().rstrip(".")
            if ip_in_name(rdns, ip):
                symbol = "RCVD_RDNS_DYNAMIC" if pool_word(rdns) else "RCVD_RDNS_GENERIC"
                hits.append(Hit(symbol, options=(rdns,)))
        elif unknown and ip:
            hits.append(Hit("RCVD_NO_RDNS", options=(ip,)))
        client = envelope.client_ip or ip  # the MTA's own client, else the first hop's
        if client and self._dynamic.contains(client):
            hits.append(Hit("RCVD_OWN_DYNAMIC", options=(client,)))
        if _direct(msg.received, first, envelope.client_ip):
            # Servers that write their own mail (newsletters, web shops) also send in one
            # hop; a subscriber-looking client doing it is what a spam zombie looks like.
            hits.append(Hit("RCVD_DIRECT_TO_MX"))
            if any(hit.symbol in _ZOMBIE_SIGNS for hit in hits):
                hits.append(Hit("RCVD_DIRECT_TO_MX_DYNAMIC"))
            itself = _to_itself(msg)
            if itself is not None:
                hits.append(Hit("RCVD_DIRECT_TO_MX_SELF", options=(itself[:100],)))
        return hits

    def _helo(
        self, helo: str, rdns: str | None, ip: str | None, unknown: bool, hits: list[Hit]
    ) -> None:
        if is_ipv4(helo) or (":" in helo and "[" not in helo):
            hits.append(Hit("RCVD_HELO_BARE_IP", options=(helo,)))
            return
        if helo.startswith("["):
            hits.append(Hit("RCVD_HELO_IP_LITERAL", options=(helo,)))
            return
        if "." not in helo:
            hits.append(Hit("RCVD_HELO_NOT_FQDN", options=(helo,)))
            return
        if ip_in_name(helo, ip):
            hits.append(Hit("RCVD_HELO_DYNAMIC", options=(helo,)))
        claimed = self.providers.of(helo)
        if claimed is not None and (rdns or unknown):
            real = self.providers.of(rdns.lower().rstrip(".")) if rdns else None
            if real != claimed:
                hits.append(Hit("RCVD_HELO_FORGED_PROVIDER", options=(helo, rdns or "unknown")))


def _says_unknown(received: str) -> bool:
    """The receiver wrote "unknown" for the client's name (Postfix, qmail)."""
    end = received.find(" by ")
    return "unknown" in received[: end if end >= 0 else 300].lower()


def _literal_helo(received: str) -> str | None:
    """The HELO of a Received field when it was an IP, which the hop parser drops as a name."""
    found = _RAW_HELO_ARGUMENT.search(received[:500])
    helo = (found.group(1) or found.group(2)) if found else None
    if helo is None:
        found = _RAW_FROM.match(received)
        helo = found.group(1) if found else None
    if helo and (helo.startswith("[") or is_ipv4(helo) or ":" in helo):
        return helo
    return None


def _to_itself(msg: Message) -> str | None:
    """The address of a message from one address to itself alone (and, when the MTA says
    who it is for, to that recipient).  A person who writes to themselves does it through
    their own provider; sent in one hop from outside, it is a bot that took the reader's
    address as its sender (shared corpora: 0 of 22,175 ham, 244 spam)."""
    froms, tos = msg.headers.get_all("From"), msg.headers.get_all("To")
    if (
        len(froms) != 1
        or len(tos) != 1
        or len(froms[0]) > _ONE_ADDRESS
        or len(tos[0]) > _ONE_ADDRESS
    ):
        return None  # a field longer than a line holds more than one address, or junk
    sender, recipients = addresses_of(froms[0]), addresses_of(tos[0])
    if len(sender) != 1 or len(recipients) != 1:
        return None
    address = sender[0].strip().lower()
    if "@" not in address or address != recipients[0].strip().lower():
        return None
    rcpts = msg.envelope.rcpts
    if rcpts and address not in {rcpt.strip().strip("<>").lower() for rcpt in rcpts}:
        return None
    return address


def _direct(hops: tuple[Hop, ...], first: Hop | None, client_ip: str | None) -> bool:
    """The sender's client talked straight to our border: no relay of its own below it."""
    if client_ip and (not hops or hops[0].ip != client_ip):
        # A milter sees the headers before its MTA writes its own Received: every field
        # there is a relay on the sender's side.
        return not hops
    return first is not None and hops[-1] is first
