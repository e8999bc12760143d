"""Received fields to hops, and the first hop from outside the trusted networks."""

from __future__ import annotations

import pytest

from seawall import corpus
from seawall.message import Envelope, Hop, ParseLimits, parse_message
from seawall.message.received import TrustedNetworks, parse_received


@pytest.mark.parametrize(
    ("value", "hop"),
    [
        pytest.param(
            "from helo.example (mail.example [192.0.2.1])\r\n\tby mx.test (Postfix) with ESMTPS"
            " id 4F2; Mon, 2 Sep 2002 11:26:44 -0400",
            Hop("helo.example", "mail.example", "192.0.2.1", "mx.test"),
            id="postfix",
        ),
        pytest.param(
            "from helo.example (unknown [192.0.2.9]) by mx.test (Postfix) with SMTP id 1",
            Hop("helo.example", None, "192.0.2.9", "mx.test"),
            id="postfix-unknown",
        ),
        pytest.param(
            "from [192.0.2.7] (unknown [198.51.100.7]) by mx.test (Postfix)",
            Hop("[192.0.2.7]", None, "198.51.100.7", "mx.test"),
            id="postfix-literal-helo",
        ),
        pytest.param(
            "from helo (root@host.example [192.0.2.2] (may be forged)) by mx.test"
            " (8.12.8/8.12.8) with ESMTP id g82",
            Hop("helo", "host.example", "192.0.2.2", "mx.test"),
            id="sendmail",
        ),
        pytest.param(
            "from helo.example ([192.0.2.3]) by mx.test (8.11.6/8.11.6) with SMTP id g8",
            Hop("helo.example", None, "192.0.2.3", "mx.test"),
            id="sendmail-no-rdns",
        ),
        pytest.param(
            "from host.example ([192.0.2.4]:4432 helo=client.example) by mx.test with esmtp"
            " (Exim 4.96)",
            Hop("client.example", "host.example", "192.0.2.4", "mx.test"),
            id="exim",
        ),
        pytest.param(
            "from [192.0.2.5] (helo=client.example) by mx.test with smtp (Exim 4.50)",
            Hop("client.example", None, "192.0.2.5", "mx.test"),
            id="exim-no-rdns",
        ),
        pytest.param(
            "from unknown (HELO client.example) (192.0.2.6) by mx.test with SMTP; 2 Sep 2002",
            Hop("client.example", None, "192.0.2.6", "mx.test"),
            id="qmail",
        ),
        pytest.param(
            "from host.example (HELO [10.0.0.1]) (user@192.0.2.8) by mx.test with SMTP",
            Hop("[10.0.0.1]", "host.example", "192.0.2.8", "mx.test"),
            id="qmail-literal-helo",
        ),
        pytest.param(
            "from EXCH01.corp.example (10.1.2.3) by EXCH02.corp.example (10.1.2.4) with"
            " Microsoft SMTP Server (version=TLS1_2) id 15.1.2507.9",
            Hop("EXCH01.corp.example", None, "10.1.2.3", "EXCH02.corp.example"),
            id="exchange",
        ),
        pytest.param(
            "from SN6PR04MB4000.namprd04.prod.outlook.com (2603:10b6:805:a7::42) by"
            " SN6PR04MB4001.namprd04.prod.outlook.com with HTTPS",
            Hop(
                "SN6PR04MB4000.namprd04.prod.outlook.com",
                None,
                "2603:10b6:805:a7::42",
                "SN6PR04MB4001.namprd04.prod.outlook.com",
            ),
            id="exchange-ipv6",
        ),
        pytest.param(
            "from mail.example (mail.example [IPv6:2001:DB8::1]) by mx.test (Postfix)",
            Hop("mail.example", "mail.example", "2001:db8::1", "mx.test"),
            id="ipv6-literal",
        ),
        pytest.param(
            "from h (h [IPv6:::ffff:192.0.2.10]) by mx.test",
            Hop("h", "h", "192.0.2.10", "mx.test"),
            id="ipv4-mapped",
        ),
        pytest.param(
            "from phobos [127.0.0.1] by localhost with IMAP (fetchmail-5.9.0)",
            Hop("phobos", None, "127.0.0.1", "localhost"),
            id="fetchmail",
        ),
        pytest.param(
            "by mx.test (Postfix, from userid 0) id 12; Mon, 2 Sep 2002",
            Hop(None, None, None, "mx.test"),
            id="local",
        ),
        pytest.param("(qmail 1234 invoked from network)", Hop(None, None, None, None), id="qmail"),
        pytest.param("garbage [999.1.1.1] (not an ip)", Hop(None, None, None, None), id="junk"),
    ],
)
def test_formats(value: str, hop: Hop) -> None:
    parsed = parse_received(value)
    assert (parsed.helo, parsed.rdns, parsed.ip, parsed.by) == (hop.helo, hop.rdns, hop.ip, hop.by)
    assert parsed.raw == value
    assert parsed.retrieved is ("fetchmail" in value)


@pytest.mark.parametrize(
    ("value", "retrieved"),
    [
        (
            "from mail.webnote.net [193.120.211.219]\n\tby localhost with POP3 (fetchmail-5.9.0)"
            "\n\tfor zzzz@localhost (single-drop); Thu, 22 Aug 2002 13:17:21 +0100 (IST)",
            True,
        ),
        (
            "from gmail-pop.l.google.com [209.85.201.109] by odin.local with POP3"
            " (fetchmail-6.3.8) for <v@localhost> (single-drop)",
            True,
        ),
        (
            "from imap.example (imap.example [192.0.2.7]) by pc.example with IMAP4"
            " (fetchmail-6.4.37)",
            True,
        ),
        ("from imap.example [192.0.2.7] by pc.example with imap (fetchmail-6.4.37)", True),
        ("from helo.example (mail.example [192.0.2.1]) by mx.test (Postfix) with ESMTPS", False),
        ("from pop.example [192.0.2.8] by mx.test with ESMTP id 123 (popular)", False),
        ("from IMAP.example (IMAP.example [192.0.2.9]) by mx.test with SMTP", False),
        ("by mx.test with LMTP id 17; Mon, 2 Sep 2002", False),
    ],
)
def test_a_readers_fetch_from_its_mailbox(value: str, retrieved: bool) -> None:
    """fetchmail's "with POP3" / "with IMAP" hop is a fetch, not SMTP; a server merely
    named like one is not."""
    assert parse_received(value).retrieved is retrieved


CHAIN = (
    b"Received: from mx.test (localhost [127.0.0.1]) by filter.test (Postfix)\n"
    b"Received: from relay.isp.test (relay.isp.test [10.0.0.5]) by mx.test (Postfix)\n"
    b"Received: from zombie.dyn.example (dsl-198-51-100-23.dyn.example [198.51.100.23])"
    b" by relay.isp.test (Postfix)\n"
    b"Received: from forged.example (forged.example [203.0.113.1]) by zombie.dyn.example\n"
    b"Subject: hi\n\nbody\n"
)


def test_chain_is_top_first_and_first_untrusted_skips_our_relays() -> None:
    msg = parse_message(CHAIN)
    assert [h.ip for h in msg.received] == ["127.0.0.1", "10.0.0.5", "198.51.100.23", "203.0.113.1"]
    assert msg.first_untrusted is not None
    assert msg.first_untrusted.ip == "198.51.100.23"
    assert msg.first_untrusted.rdns == "dsl-198-51-100-23.dyn.example"


def test_private_addresses_can_be_untrusted() -> None:
    msg = parse_message(CHAIN, limits=ParseLimits(private_is_trusted=False))
    assert msg.first_untrusted is not None
    assert msg.first_untrusted.ip == "10.0.0.5"


def test_configured_networks() -> None:
    limits = ParseLimits(trusted_networks=("127.0.0.0/8", "198.51.100.0/24"))
    msg = parse_message(CHAIN, limits=limits)
    assert msg.first_untrusted is not None
    assert msg.first_untrusted.ip == "203.0.113.1"


def test_all_trusted() -> None:
    msg = parse_message(b"Received: from a (a [127.0.0.1]) by b\n\nx")
    assert msg.first_untrusted is None


def test_envelope_stands_in_without_received() -> None:
    envelope = Envelope(client_ip="198.51.100.9", helo="pc.example", hostname="unknown")
    msg = parse_message(b"Subject: x\n\nbody", envelope)
    assert msg.received == ()
    assert msg.first_untrusted == Hop("pc.example", None, "198.51.100.9", None)
    assert (
        parse_message(b"Subject: x\n\nbody", Envelope(client_ip="127.0.0.1")).first_untrusted
        is None
    )
    assert parse_message(b"Subject: x\n\nbody").first_untrusted is None


def test_trusted_networks_contains() -> None:
    trusted = TrustedNetworks(("192.0.2.0/24", "2001:db8::/32"), private_is_trusted=True)
    assert trusted.contains("192.0.2.200")
    assert trusted.contains("2001:db8::5")
    assert trusted.contains("172.16.3.4")
    assert trusted.contains("fd00::1")
    assert not trusted.contains("100.64.1.1")  # carrier-grade NAT: subscribers, not relays
    assert not trusted.contains("198.51.100.1")
    assert not trusted.contains("not an address")


def test_corpus_received_chains() -> None:
    """Real chains: nearly every hop that names a client yields its address."""
    hops = with_ip = 0
    for item in corpus.items(corpus.SPAMASSASSIN)[:1500]:
        for hop in parse_message(item.path.read_bytes()).received:
            if hop.raw.lstrip().lower().startswith("from"):
                hops += 1
                with_ip += hop.ip is not None
    assert hops > 3000
    assert with_ip / hops > 0.97, (with_ip, hops)


FETCHED = (
    b"Received: from localhost (localhost [127.0.0.1]) by pc.example (Postfix)\n"
    b"Received: from pop.provider.example [203.0.113.110]\n"
    b"\tby localhost with POP3 (fetchmail-6.4.37)\n"
    b"\tfor reader@localhost (single-drop); Thu, 22 Aug 2002 13:17:21 +0100\n"
    b"Received: from dd_it7 ([198.51.100.167]) by mx.provider.example (8.9.3/8.9.3)"
    b" with ESMTP id NAA04623 for <reader@provider.example>\n"
    b"Subject: hi\n\nbody\n"
)


def test_first_untrusted_passes_over_a_fetch_from_the_readers_mailbox() -> None:
    """Mail a reader fetched from its provider's mailbox entered at the provider's MX: the
    client there is the sender, not the provider's POP server."""
    msg = parse_message(FETCHED)
    assert [h.retrieved for h in msg.received] == [False, True, False]
    assert msg.first_untrusted is not None
    assert (msg.first_untrusted.ip, msg.first_untrusted.helo) == ("198.51.100.167", "dd_it7")
    # Fetched, and nothing below the fetch names a client: no untrusted hop is known.
    only_fetch = b"".join(FETCHED.splitlines(keepends=True)[:4]) + b"Subject: x\n\nbody\n"
    assert parse_message(only_fetch).first_untrusted is None


def test_corpus_fetches() -> None:
    """The SpamAssassin corpus's spam trap was read by fetchmail from its provider's POP
    server: the first untrusted hop of that mail is the sender's, below the fetch."""
    fetched = 0
    for item in corpus.items(corpus.SPAMASSASSIN)[:3000]:
        msg = parse_message(item.path.read_bytes())
        fetches = [h for h in msg.received if h.retrieved]
        if not fetches or fetches[0].ip in (None, "127.0.0.1"):
            continue
        fetched += 1
        first = msg.first_untrusted
        assert first is None or (not first.retrieved and first.ip != fetches[0].ip), item.path
        below = msg.received[msg.received.index(fetches[0]) + 1 :]
        assert first is None or first in below, item.path
    assert fetched > 50
