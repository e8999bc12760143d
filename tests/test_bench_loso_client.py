"""bench.loso: Rspamd is told the client an MTA would tell it, read as Seawall reads it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench.load import Sample, post_all
from bench.loso import LIMITS, client_headers, fold_config, table

from seawall.message import parse_message

FETCHED = (
    b"Received: from localhost (localhost [127.0.0.1]) by pc.example (Postfix)\n"
    b"Received: from pop.provider.example [203.0.113.110]\n"
    b"\tby localhost with POP3 (fetchmail-6.4.37)\n"
    b"\tfor reader@localhost (single-drop); Thu, 22 Aug 2002 13:17:21 +0100\n"
    b"Received: from dd_it7 (unknown [198.51.100.167]) by mx.provider.example (Postfix)\n"
    b"Subject: hi\n\nbody\n"
)


def test_the_client_below_the_readers_fetch() -> None:
    assert client_headers(FETCHED) == ("IP: 198.51.100.167", "Helo: dd_it7")


# A mailbox at Exchange Online, as Phishing Pot's: the sender's client handed the mail to
# Microsoft's border, then relays inside Microsoft's datacentres passed it on.
AT_EXCHANGE_ONLINE = (
    b"Received: from MN2PR19MB3966.namprd19.prod.outlook.com (::1) by\n"
    b" MN0PR19MB6312.namprd19.prod.outlook.com with HTTPS; Thu, 3 Nov 2022 04:56:17 +0000\n"
    b"Received: from AM7PR02CA0005.eurprd02.prod.outlook.com (2603:10a6:20b:100::15)\n"
    b" by MN2PR19MB3966.namprd19.prod.outlook.com (2603:10b6:208:1e8::10) with\n"
    b" Microsoft SMTP Server; Thu, 3 Nov 2022 04:56:16 +0000\n"
    b"Received: from VI1EUR05FT048.eop-eur05.prod.protection.outlook.com\n"
    b" (2603:10a6:20b:100::4) by AM7PR02CA0005.outlook.office365.com\n"
    b" (2603:10a6:20b:100::15) with Microsoft SMTP Server; Thu, 3 Nov 2022 04:56:16 +0000\n"
    b"Received: from dturm.example (198.51.100.202) by\n"
    b" VI1EUR05FT048.mail.protection.outlook.com (10.233.243.188) with Microsoft\n"
    b" SMTP Server id 15.20.5791.20 via Frontend Transport; Thu, 3 Nov 2022 04:56:15 +0000\n"
    b"Subject: hi\n\nbody\n"
)


def test_the_client_that_reached_the_sites_border() -> None:
    """Microsoft's own relays are the receiving site's: the client is the one below them."""
    assert client_headers(AT_EXCHANGE_ONLINE) == ("IP: 198.51.100.202", "Helo: dturm.example")
    # Without the site's relays trusted, the first untrusted hop is Microsoft's relay.
    relay = parse_message(AT_EXCHANGE_ONLINE).first_untrusted
    assert relay is not None
    assert relay.ip == "2603:10a6:20b:100::15"


# A SpamAssassin message: the collector's own hosts passed it on before the fetch.
COLLECTED = (
    b"Received: from localhost (localhost [127.0.0.1])\n"
    b"\tby phobos.labs.netnoteinc.com (Postfix) with ESMTP id 1A2B3C4D5E\n"
    b"Received: from mail.webnote.net [193.120.211.219]\n"
    b"\tby localhost with POP3 (fetchmail-5.9.0)\n"
    b"Received: from mandark.labs.netnoteinc.com ([213.105.180.140]) by\n"
    b"    dogma.slashnull.org (8.11.6/8.11.6) with ESMTP id g4D3kCe15097\n"
    b"Received: from mail.webnote.net (mail.webnote.net [193.120.211.219]) by\n"
    b"    mandark.labs.netnoteinc.com (8.11.2/8.11.2) with ESMTP id g4D3k2D12605\n"
    b"Received: from dd_it7 ([198.51.100.167]) by webnote.net (8.9.3/8.9.3)\n"
    b"    with ESMTP id EAA04212\n"
    b"Subject: hi\n\nbody\n"
)


def test_the_client_that_reached_the_collectors_hosts() -> None:
    assert client_headers(COLLECTED) == ("IP: 198.51.100.167", "Helo: dd_it7")
    relay = parse_message(COLLECTED).first_untrusted
    assert relay is not None
    assert relay.ip == "213.105.180.140"


def test_a_relay_is_trusted_by_its_address_not_its_name() -> None:
    """A spammer's HELO that names the collector's host is still the sender."""
    forged = b"Received: from mail.webnote.net ([203.0.113.9]) by webnote.net (8.9.3)\n\nx\n"
    assert client_headers(forged) == ("IP: 203.0.113.9", "Helo: mail.webnote.net")


def test_a_fold_trusts_what_the_harness_trusts(tmp_path: Path) -> None:
    """Seawall's folds read the path as the harness tells Rspamd it: the same relays."""
    config = fold_config(str(tmp_path))
    assert set(LIMITS.trusted_networks) <= set(config.trusted.networks)
    assert config.trusted.private_is_trusted == LIMITS.private_is_trusted
    hop = parse_message(AT_EXCHANGE_ONLINE, limits=LIMITS).first_untrusted
    assert hop is not None
    assert hop.ip == "198.51.100.202"


def test_the_name_the_receiver_recorded() -> None:
    raw = b"Received: from helo.example (mail.example [192.0.2.1]) by mx.test\n\nx\n"
    assert client_headers(raw) == ("IP: 192.0.2.1", "Hostname: mail.example", "Helo: helo.example")


def test_nothing_when_no_hop_names_a_client() -> None:
    assert client_headers(b"Subject: no trace\n\nx\n") == ()
    assert client_headers(b"Received: from a (a [127.0.0.1]) by b\n\nx\n") == ()


def test_a_helo_unfit_for_a_header_line_is_left_out() -> None:
    raw = "Received: from h\u00e9lo (mail.example [192.0.2.1]) by mx.test\n\nx\n".encode()
    assert client_headers(raw) == ("IP: 192.0.2.1", "Hostname: mail.example")


async def _post_recording(samples: list[Sample]) -> list[bytes]:
    """POST ``samples`` to an HTTP server on loopback that records each request's head."""
    heads: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                heads.append(head)
                body = b'{"action": "no action"}'
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        result = await post_all(
            f"http://127.0.0.1:{port}/checkv2", samples, 1, headers=("Pass: all",)
        )
    assert result.errors == 0
    return heads


def test_each_sample_sends_its_own_headers() -> None:
    """Samples of one length share a cached request head only when their headers match."""
    samples = [
        Sample("a", "spam", b"same length", ("IP: 192.0.2.1",)),
        Sample("b", "spam", b"same length", ("IP: 192.0.2.2",)),
        Sample("c", "spam", b"same length"),
    ]
    heads = asyncio.run(_post_recording(samples))
    assert len(heads) == 3
    assert [b"IP: 192.0.2.1" in h for h in heads] == [True, False, False]
    assert [b"IP: 192.0.2.2" in h for h in heads] == [False, True, False]
    assert all(b"Pass: all" in h for h in heads)


def test_the_table_names_the_relays_a_run_trusted() -> None:
    run = {"date": "d", "argv": "", "max_train": 1, "max_test": 1, "loadavg": [0.0], "folds": {}}
    assert "trusted" not in table(run)
    assert "the sites' own relays trusted: 2603:1000::/24" in table(
        {**run, "site_relays": ["2603:1000::/24"]}
    )
