"""The first external hop: HELO, reverse DNS, our own pools, one-hop delivery."""

from __future__ import annotations

import pytest

from seawall.config import IspSettings, ReceivedSettings
from seawall.detectors.base import Context
from seawall.detectors.received import ReceivedDetector
from seawall.message import Envelope

from .conftest import msg, scan
from .test_headers import HOPS, NOW, RELAY, inline

DETECTOR = ReceivedDetector(ReceivedSettings(), IspSettings())


async def symbols(raw: bytes, envelope: Envelope | None = RELAY) -> set[str]:
    return set(await scan(DETECTOR, msg(raw, envelope), NOW))


IP = "203.0.113.7"


@pytest.mark.parametrize(
    ("symbol", "helo", "rdns"),
    [
        ("RCVD_HELO_BARE_IP", IP, None),
        ("RCVD_HELO_IP_LITERAL", f"[{IP}]", None),
        ("RCVD_HELO_NOT_FQDN", "DESKTOP-7F3K2", None),
        ("RCVD_HELO_DYNAMIC", "ppp-203-0-113-7.dialup.example.net", None),
        ("RCVD_HELO_FORGED_PROVIDER", "mail.gmail.com", "ppp7.example.net"),
        ("RCVD_HELO_FORGED_PROVIDER", "yahoo.com", "unknown"),
        ("RCVD_NO_RDNS", "mail.example.org", "unknown"),
        ("RCVD_RDNS_DYNAMIC", "x.example.org", "ppp-203-0-113-7.dialup.example.net"),
        ("RCVD_RDNS_DYNAMIC", "x.example.org", "c-7.113.0.203.cable.example.net"),
        ("RCVD_RDNS_DYNAMIC", "x.example.org", "dslb-203-000-113-007.pools.example.de"),
        ("RCVD_RDNS_DYNAMIC", "x.example.org", "pCB007107.dip0.example.de"),
        ("RCVD_RDNS_GENERIC", "x.example.org", "203-0-113-7.example.net"),
    ],
)
async def test_first_hop_symbol_fires(symbol: str, helo: str | None, rdns: str | None) -> None:
    envelope = Envelope(client_ip=IP, helo=helo, hostname=rdns)
    assert symbol in await symbols(inline(), envelope)


@pytest.mark.parametrize(
    ("hops", "expected"),
    [
        (
            "Received: from DESKTOP-7F3K2 (ppp-203-0-113-7.dialup.example.net [203.0.113.7])\n"
            "\tby mx.example.net (Postfix) with SMTP id 1A; Tue, 01 Jul 2003 10:52:40 +0200\n",
            {
                "RCVD_DIRECT_TO_MX",
                "RCVD_DIRECT_TO_MX_DYNAMIC",
                "RCVD_HELO_NOT_FQDN",
                "RCVD_RDNS_DYNAMIC",
            },
        ),
        (
            "Received: from filter.example.net (localhost [127.0.0.1]) by mx.example.net;"
            " Tue, 01 Jul 2003 10:52:41 +0200\n"
            "Received: from 203.0.113.7 (unknown [203.0.113.7]) by mx.example.net;"
            " Tue, 01 Jul 2003 10:52:40 +0200\n",
            {"RCVD_DIRECT_TO_MX", "RCVD_DIRECT_TO_MX_DYNAMIC", "RCVD_HELO_BARE_IP", "RCVD_NO_RDNS"},
        ),
        (
            "Received: from unknown (HELO yahoo.com) (203.0.113.7) by mx.example.net;"
            " Tue, 01 Jul 2003 10:52:40 +0200\n",
            {
                "RCVD_DIRECT_TO_MX",
                "RCVD_DIRECT_TO_MX_DYNAMIC",
                "RCVD_HELO_FORGED_PROVIDER",
                "RCVD_NO_RDNS",
            },
        ),
        ("", set()),  # no Received and no envelope: nothing is known about the first hop
    ],
)
async def test_first_hop_from_received_headers(hops: str, expected: set[str]) -> None:
    hits = await symbols(inline(hops), Envelope())
    assert {s for s in hits if s.startswith("RCVD_")} == expected


async def test_direct_to_mx_from_the_envelope() -> None:
    envelope = Envelope(client_ip=IP, helo="mail.example.org", hostname="mail.example.org")
    assert await symbols(inline(""), envelope) == {"RCVD_DIRECT_TO_MX"}


@pytest.mark.parametrize(
    ("hops", "sender", "to", "rcpts", "fires"),
    [
        ("", "Sawada Le <hibody@csmining.example>", "hibody@csmining.example", (), True),
        ("", "BOB@Example.NET", "Bob <bob@example.net>", ("<bob@example.net>",), True),
        # written to oneself through one's own provider: the path is a relay's
        (HOPS, "Bob <bob@example.net>", "bob@example.net", (), False),
        # another recipient, or more than one
        ("", "bob@example.net", "alice@example.net", (), False),
        ("", "bob@example.net", "bob@example.net, alice@example.net", (), False),
        ("", "bob@example.net", "bob@example.net" + ", x@example.org" * 5000, (), False),
        # the MTA delivers it to someone else than the To says
        ("", "bob@example.net", "bob@example.net", ("carol@example.net",), False),
    ],
)
async def test_direct_to_mx_from_the_reader_to_the_reader(
    hops: str, sender: str, to: str, rcpts: tuple[str, ...], fires: bool
) -> None:
    envelope = Envelope(
        client_ip=IP if not hops else "198.51.100.7",
        helo="DESKTOP-7F3K2" if not hops else "mail.example.org",
        hostname="unknown" if not hops else "mail.example.org",
        rcpts=rcpts,
    )
    hits = await scan(DETECTOR, msg(inline(hops, From=sender, To=to), envelope), NOW)
    assert ("RCVD_DIRECT_TO_MX_SELF" in hits) is fires
    if fires:
        assert hits["RCVD_DIRECT_TO_MX_SELF"].options == (
            sender.rpartition("<")[2].strip(">").lower(),
        )


async def test_milter_sees_the_senders_relay_before_our_received() -> None:
    # Our MTA has not written its Received yet; the one field is the sender's own server.
    relay = HOPS.split("Received: ")[2]
    envelope = Envelope(
        client_ip="198.51.100.7", helo="mail.example.org", hostname="mail.example.org"
    )
    assert await symbols(inline("Received: " + relay), envelope) == set()


@pytest.mark.parametrize(
    ("ip", "helo", "rdns"),
    [
        ("209.85.128.54", "mail-wm1-f54.google.com", "mail-wm1-f54.google.com"),
        (IP, "gmail.com", "mail-wm1-f54.google.com"),
        (IP, "mx2.example.org", "mx2.example.org"),
        (IP, "mail.example.org", "mail2013.example.org"),
        (IP, "client.example.org", "dynamic.example.org"),
    ],
)
async def test_honest_first_hops_are_clean(ip: str, helo: str, rdns: str) -> None:
    envelope = Envelope(client_ip=ip, helo=helo, hostname=rdns)
    hits = await symbols(inline(), envelope)
    assert not {s for s in hits if s.startswith("RCVD_") and s != "RCVD_DIRECT_TO_MX"}, hits


async def test_authenticated_senders_skip_the_first_hop_checks() -> None:
    envelope = Envelope(client_ip="203.0.113.7", helo="DESKTOP-7F3K2", user="alice")
    hits = await scan(DETECTOR, msg(inline(), envelope), Context(now=NOW.now, authenticated=True))
    assert not hits


@pytest.mark.parametrize("helo", [".", "[", "[]", ":", "-", "...", "1.2.3.4.5", "[IPv6:::1]"])
async def test_odd_helos_never_raise(helo: str) -> None:
    envelope = Envelope(client_ip=IP, helo=helo, hostname=".")
    await symbols(inline(""), envelope)
    raw = inline(f"Received: from {helo} (unknown [{IP}]) by mx.example.net\n")
    await symbols(raw, Envelope())


OWN = ReceivedDetector(
    ReceivedSettings(), IspSettings(networks=("203.0.113.0/24",), dynamic=("203.0.113.0/25",))
)


async def test_own_dynamic_pool_direct_to_mx() -> None:
    # A named client (its rDNS says nothing dynamic) on one of our own dial-up lines.
    envelope = Envelope(client_ip=IP, helo="pc.example.org", hostname="pc.example.org")
    hits = set(await scan(OWN, msg(inline(""), envelope), NOW))
    assert hits == {"RCVD_OWN_DYNAMIC", "RCVD_DIRECT_TO_MX", "RCVD_DIRECT_TO_MX_DYNAMIC"}
    # The static half of our network is not a pool; without [isp] dynamic nothing is known.
    static = Envelope(client_ip="203.0.113.200", helo="pc.example.org", hostname="pc.example.org")
    assert set(await scan(OWN, msg(inline(""), static), NOW)) == {"RCVD_DIRECT_TO_MX"}
    assert await symbols(inline(""), envelope) == {"RCVD_DIRECT_TO_MX"}


async def test_own_dynamic_pool_with_only_the_client_address() -> None:
    # No Received field: the envelope's client is the first hop, and it came straight here.
    hits = await scan(OWN, msg(inline(""), Envelope(client_ip=IP)), NOW)
    assert set(hits) == {"RCVD_OWN_DYNAMIC", "RCVD_DIRECT_TO_MX", "RCVD_DIRECT_TO_MX_DYNAMIC"}
    assert hits["RCVD_OWN_DYNAMIC"].options == (IP,)
    # Behind a relay of the sender's, only the address is known: no path symbols.
    relayed = await scan(OWN, msg(inline(HOPS), Envelope(client_ip=IP)), NOW)
    assert "RCVD_OWN_DYNAMIC" in relayed
    assert "RCVD_DIRECT_TO_MX" not in relayed
    assert "RCVD_OWN_DYNAMIC" not in await scan(OWN, msg(inline(""), Envelope(client_ip="x")), NOW)
