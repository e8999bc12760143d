"""Reputation of mail read from a mailbox: the mailbox server it was downloaded from is not
its sender (SpamAssassin's corpus was fetched with fetchmail: two such servers carry a third
of its test half, ham and spam, and their record judged each message by the others in
whatever order the scan took them)."""

from __future__ import annotations

from pathlib import Path

import msgspec

from seawall.config import Config
from seawall.detectors.base import Context
from seawall.detectors.reputation import ReputationDetector
from seawall.message import Envelope, parse_message
from seawall.store import MemoryStore

from .verdicts import verdict

T0 = 1_800_000_000.0
MAILBOX = "193.0.2.219"  # the user's mailbox server, at its provider


def fetched(sender: str, body: str) -> bytes:
    return (
        "Received: from localhost (localhost [127.0.0.1])\n"
        "\tby home.example.net (Postfix) with ESMTP id 6086044117\n"
        "\tfor <jm@localhost>; Tue,  6 Aug 2002 05:53:36 -0400 (EDT)\n"
        f"Received: from mail.example.com [{MAILBOX}]\n"
        "\tby localhost with POP3 (fetchmail-5.9.0)\n"
        "\tfor jm@localhost (single-drop); Tue, 06 Aug 2002 10:53:36 +0100 (IST)\n"
        f"Received: from sender.example.org (sender.example.org [{sender}])\n"
        "\tby mail.example.com (8.9.3/8.9.3) with SMTP id FAA07076\n"
        "\tfor <jm@example.com>; Sat, 3 Aug 2002 05:04:03 +0100\n"
        f"Subject: x\n\n{body}\n"
    ).encode()


def detector(tmp_path: Path) -> ReputationDetector:
    config = msgspec.convert(
        {"state_dir": str(tmp_path), "detectors": {"reputation": {"flush_s": 0}}}, Config
    )
    store = MemoryStore()
    return ReputationDetector(config, lambda: store, spam_threshold=6.0)


async def test_the_mailbox_server_is_not_the_sender(tmp_path: Path) -> None:
    det = detector(tmp_path)
    ctx = Context(now=T0)
    # Spam from many senders, downloaded from the same mailbox, scanned first ...
    for n in range(20):
        spam = parse_message(fetched(f"203.0.113.{n + 1}", "buy"), Envelope())
        assert det.source(spam, ctx) == f"203.0.113.{n + 1}"
        await det.after_verdict(spam, verdict(20.0), T0)
    # ... says nothing of the ham that waited in the same mailbox.
    ham = parse_message(fetched("198.51.100.80", "lunch?"), Envelope())
    assert not await det.check(ham, ctx)
    rep = det.reputation
    assert rep is not None
    assert await rep.lookup(MAILBOX, T0) == (None, None)
    # A sender that spammed through the mailbox is still judged by its own record.
    again = parse_message(fetched("203.0.113.1", "buy"), Envelope())
    for _ in range(10):
        await det.after_verdict(again, verdict(20.0), T0)
    assert "REP_IP_SPAM" in {h.symbol for h in await det.check(again, ctx)}


async def test_a_download_with_nothing_below_is_not_counted(tmp_path: Path) -> None:
    det = detector(tmp_path)
    raw = b"Received: from pop.example.com [193.0.2.219] by localhost with IMAP\n\nbuy\n"
    msg = parse_message(raw, Envelope())
    assert det.source(msg, Context(now=T0)) is None
    # The MTA's client, when there is one, is the sender whatever the fields say.
    live = parse_message(raw, Envelope(client_ip="203.0.113.9"))
    assert det.source(live, Context(now=T0)) == "203.0.113.9"


def relayed(relay_rdns: str, by_below: str, sender: str = "203.0.113.7") -> bytes:
    return (
        "Received: from dogma.example.org [212.0.2.15]\n"
        "\tby localhost with IMAP (fetchmail-5.9.0)\n"
        "\tfor jm@localhost (single-drop); Mon, 22 Jul 2002 19:28:47 +0100 (IST)\n"
        f"Received: from webnote.example.com ({relay_rdns} [193.0.2.219]) by\n"
        "    dogma.example.org (8.11.6/8.11.6) with ESMTP id g6MHQp403724 for\n"
        "    <jm-meerkat@example.org>; Mon, 22 Jul 2002 18:26:51 +0100\n"
        f"Received: from ora.example.net (ora.example.net [{sender}]) by\n"
        f"    {by_below} (8.9.3/8.9.3) with ESMTP id FAA22316 for\n"
        "    <jm-meerkat@example.org>; Sat, 20 Jul 2002 05:46:51 +0100\n"
        "Subject: x\n\nnews\n"
    ).encode()


def test_a_forwarding_server_is_looked_past_to_its_client(tmp_path: Path) -> None:
    det = detector(tmp_path)
    ctx = Context(now=T0)
    # Downloaded from dogma, which got it from the recipient's forwarding address at
    # webnote, which recorded the sender: the sender is judged.
    msg = parse_message(relayed("mail.webnote.example.com", "webnote.example.com"), Envelope())
    assert det.source(msg, ctx) == "203.0.113.7"
    # The field below was not written by the server: it is the sender.
    other = parse_message(relayed("mail.webnote.example.com", "mx.elsewhere.example"), Envelope())
    assert det.source(other, ctx) == "193.0.2.219"
    # A subscriber pool's address does not relay: its "history" is what a zombie wrote.
    pool = "dsl-193-0-2-219.dyn.webnote.example.com"
    zombie = parse_message(relayed(pool, "webnote.example.com"), Envelope())
    assert det.source(zombie, ctx) == "193.0.2.219"
