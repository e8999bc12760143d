from __future__ import annotations

import re

import pytest

from seawall import corpus
from seawall.config import HeadersSettings
from seawall.detectors.base import Context
from seawall.detectors.headers import _PADDED_TAIL, HeadersDetector
from seawall.message import Envelope
from seawall.message.dates import parse_date

from .conftest import corpus_messages, msg, scan

DETECTOR = HeadersDetector(HeadersSettings())
SENT = "Tue, 01 Jul 2003 10:52:37 +0200"
NOW = Context(now=(parse_date(SENT) or 0.0) + 60)
CLEAN = {
    "From": "Alice Example <alice@example.org>",
    "To": "bob@example.net",
    "Date": SENT,
    "Message-ID": "<20030701085237.GA1234@mail.example.org>",
    "Subject": "lunch",
}
# The sender's own server relayed the mail (second hop: its user's submission).
HOPS = (
    "Received: from mail.example.org (mail.example.org [198.51.100.7])\n"
    "\tby mx.example.net (Postfix) with ESMTPS id 4F2A1; Tue, 01 Jul 2003 10:52:40 +0200\n"
    "Received: from [192.168.1.20] (pc7.example.org [192.0.2.50])\n"
    "\tby mail.example.org (Postfix) with ESMTPSA id 9C3D2; Tue, 01 Jul 2003 10:52:38 +0200\n"
)
OE_MID = "<000801c5c9f2$8d3e0380$6400a8c0@ivory.example.org>"
OUTLOOK_2007_MID = "<008801cad7e1$00327280$00975780$@example.org>"
OUTLOOK_STORE_MID = "<!&!AAAAAAAAAAAYAAAAAAAAANgZQ03M4XJFtKmiKKICjALCgAAAEAAAAHBF==@example.org>"
# What an MTA passes for a well-run sending server.
RELAY = Envelope(client_ip="198.51.100.7", helo="mail.example.org", hostname="mail.example.org")
_DOLLAR_MID = re.compile(rb"^Message-ID:[ \t]*<[0-9a-f]{12}\$", re.IGNORECASE | re.MULTILINE)


def inline(hops: str = HOPS, **fields: str | None) -> bytes:
    """The clean message with some fields replaced (``None`` drops one)."""
    headers = {**CLEAN, **fields}
    lines = [f"{name}: {value}" for name, value in headers.items() if value is not None]
    return (hops + "\n".join(lines) + "\n\nSee you at noon.\n").encode()


# What the detector finds in a message scanned without an envelope, by its bytes: the
# corpus-wide tests below read the same corpora, and each message is scanned once.
_FOUND: dict[bytes, frozenset[str]] = {}


async def symbols(raw: bytes, envelope: Envelope | None = RELAY) -> set[str]:
    if envelope is None and (found := _FOUND.get(raw)) is not None:
        return set(found)
    hits = set(await scan(DETECTOR, msg(raw, envelope), NOW))
    if envelope is None:
        _FOUND[raw] = frozenset(hits)
    return hits


async def test_clean_message_has_no_hits() -> None:
    assert await symbols(inline()) == set()


@pytest.mark.parametrize(
    ("symbol", "field", "value"),
    [
        ("HDR_DATE_MISSING", "Date", None),
        ("HDR_DATE_INVALID", "Date", "yesterday at noon"),
        ("HDR_DATE_INVALID", "Date", "Tue, 01 Jul 2003 25:61:00 +0200"),
        ("HDR_DATE_FUTURE", "Date", "Wed, 02 Jul 2003 10:52:37 +0200"),
        ("HDR_DATE_PAST", "Date", "Wed, 01 Jan 2003 10:52:37 +0200"),
        ("HDR_DATE_NO_ZONE", "Date", "Tue, 01 Jul 2003 08:52:37"),
        ("HDR_DATE_NO_ZONE", "Date", "Tue Jul  1 08:52:37 2003"),
        ("HDR_DATE_NO_ZONE", "Date", "01 Jul 03 8:52:37 AM"),
        ("HDR_DATE_NO_ZONE", "Date", "Tue, 01 Jul 2003 10:52:37 +-0200"),
        ("HDR_DATE_NO_ZONE", "Date", "Tue, 01 Jul 2003 14:22:37 0530"),
        ("HDR_MID_MISSING", "Message-ID", None),
        ("HDR_MID_MALFORMED", "Message-ID", "20030701.GA1234@example.org"),
        ("HDR_MID_MALFORMED", "Message-ID", "<a b@example.org>"),
        ("HDR_MID_NO_DOMAIN", "Message-ID", "<20030701085237.GA1234>"),
        ("HDR_MID_RHS_NOT_FQDN", "Message-ID", "<123.456@DESKTOP-7F3K2>"),
        ("HDR_MID_RHS_IP", "Message-ID", "<123.456@[203.0.113.7]>"),
        ("HDR_MID_RHS_IP", "Message-ID", "<123.456@203.0.113.7>"),
        ("HDR_MID_RHS_MATCH_TO", "Message-ID", "<abc123@example.net>"),
        ("HDR_MID_FORGED_OUTLOOK", "Message-ID", "<000801c5c9f2$8d3e0380$6400a8c0@ivory.org>"),
        ("HDR_FROM_MISSING", "From", None),
        ("HDR_FROM_NO_ADDR", "From", "Alice Example"),
        ("HDR_FROM_NO_ADDR", "From", "Alice <>"),
        ("HDR_FROM_MULTIPLE", "From", "alice@example.org, carol@example.org"),
        ("HDR_FROM_NAME_ADDR", "From", '"service@paypal.com" <alice@example.org>'),
        ("HDR_FROM_NAME_DOMAIN", "From", "PayPal.com Security <alice@example.org>"),
        ("HDR_TO_MISSING", "To", None),
        ("HDR_TO_UNDISCLOSED", "To", "undisclosed-recipients:;"),
        ("HDR_TO_UNDISCLOSED", "To", "Recipients <correo@example.org>"),
        ("HDR_TO_UNDISCLOSED", "To", '"Recipients" <>'),
        ("HDR_XMAILER_BULK", "X-Mailer", "Advanced Mass Sender v 3.21b"),
        ("HDR_XMAILER_BULK", "X-Mailer", "QuickSender 1.05"),
        ("HDR_XMAILER_BULK", "X-Mailer", "Envex Developments"),
        ("HDR_XMAILER_BULK", "X-Mailer", "ZuckMail [version 1.00]"),
        ("HDR_XMAILER_BULK", "X-Mailer", "Flicks Softwares OCXMail 2.2f"),
        ("HDR_XMAILER_BULK", "X-Mailer", "Easy DM free"),
        ("HDR_XMAILER_BULK", "X-Mailer", "Smart_Send_3_1_6"),
        ("HDR_XMAILER_PHP", "X-Mailer", "PHP/5.2.17"),
        ("HDR_XMAILER_CDO", "X-Mailer", "Microsoft CDO for Windows 2000"),
        ("HDR_XMAILER_FORGED_OUTLOOK", "X-Mailer", "Microsoft Outlook Express 6.00.2900.2180"),
        ("HDR_XMAILER_FORGED_OUTLOOK", "X-Mailer", "Microsoft Outlook Build 10.0.2627"),
        ("HDR_PRECEDENCE_BULK", "Precedence", "bulk"),
        ("HDR_BULK_NO_UNSUB", "Precedence", "junk"),
    ],
)
async def test_header_symbol_fires(symbol: str, field: str, value: str | None) -> None:
    assert symbol in await symbols(inline(**{field: value}))


async def test_outlook_express_after_it_was_discontinued() -> None:
    raw = inline(
        **{
            "X-Mailer": "Microsoft Outlook Express 6.00.2900.2180",
            "Message-ID": OE_MID,
            "X-MimeOLE": "Produced By Microsoft MimeOLE V6.00.2900.2180",
        }
    )
    assert await symbols(raw) == set()
    later = Context(now=parse_date("Mon, 03 Mar 2025 09:00:00 +0000") or 0.0)
    raw = raw.replace(b"Jul 2003", b"Mar 2025").replace(b"Tue, 01", b"Mon, 03")
    assert set(await scan(DETECTOR, msg(raw, RELAY), later)) == {"HDR_XMAILER_OUTDATED"}


@pytest.mark.parametrize(
    ("mailer", "mid"),
    [
        ("Microsoft Outlook Express 6.00.2800.1158", OE_MID),
        ("Microsoft Outlook Express 5.50.4133.2400", OE_MID),
        ("Microsoft Outlook IMO, Build 9.0.2416 (9.0.2910.0)", OE_MID),
        ("Microsoft Outlook, Build 10.0.2627", OE_MID),
        ("Microsoft Office Outlook, Build 11.0.5510", OE_MID),
    ],
)
async def test_windows_outlook_without_its_mimeole(mailer: str, mid: str) -> None:
    mimeole = "Produced By Microsoft MimeOLE V6.00.2800.1165"
    raw = inline(**{"X-Mailer": mailer, "Message-ID": mid, "X-MimeOLE": mimeole})
    assert await symbols(raw) == set()
    raw = inline(**{"X-Mailer": mailer, "Message-ID": mid})
    assert await symbols(raw) == {"HDR_XMAILER_NO_MIMEOLE"}


@pytest.mark.parametrize(
    "mailer",
    [
        # Outlook for the Macintosh and Outlook 2007 and later never wrote the field.
        "Microsoft Outlook Express Macintosh Edition - 5.01 (1630)",
        "Microsoft-Outlook-Express-Macintosh-Edition/5.02.2022",
        "Microsoft Office Outlook 12.0",
        "Microsoft Outlook 14.0",
    ],
)
async def test_outlooks_that_never_wrote_mimeole(mailer: str) -> None:
    assert "HDR_XMAILER_NO_MIMEOLE" not in await symbols(inline(**{"X-Mailer": mailer}))


HTML = (
    'Content-Type: multipart/alternative; boundary="b"\n\n--b\n'
    "Content-Type: text/plain\n\nSee you at noon.\n--b\n"
    "Content-Type: text/html\n\n<p>See you at <b>noon</b>.</p>\n--b--\n"
)


@pytest.mark.parametrize(
    "mailer", ["Microsoft Outlook Express 6.00.2800.1158", "Microsoft Outlook 16.0"]
)
async def test_outlook_on_html_alone(mailer: str) -> None:
    mimeole = "Produced By Microsoft MimeOLE V6.00.2800.1165"
    fields = {"X-Mailer": mailer, "Message-ID": OE_MID, "X-MimeOLE": mimeole, "MIME-Version": "1.0"}
    alternative = inline(**fields).replace(b"\n\nSee you at noon.\n", b"\n" + HTML.encode())
    assert await symbols(alternative) == set()
    html_only = inline(**fields, **{"Content-Type": "text/html"}).replace(
        b"See you at noon.", b"<p>See you at <b>noon</b>.</p>"
    )
    assert await symbols(html_only) == {"HDR_XMAILER_OUTLOOK_HTML_ONLY"}
    mutt = {"User-Agent": "Mutt/1.4i", "Content-Type": "text/html", "MIME-Version": "1.0"}
    plain_mutt = inline(**mutt)
    assert await symbols(plain_mutt) == set()


@pytest.mark.parametrize(
    ("fields", "fires"),
    [
        ({"Content-Type": "text/html"}, True),
        ({"Content-Type": 'multipart/alternative; boundary="b"'}, True),
        ({"Content-Type": "text/plain", "Content-Transfer-Encoding": "base64"}, True),
        ({"Content-Transfer-Encoding": "Quoted-Printable"}, True),
        ({"Content-Type": "text/html", "MIME-Version": "1.0"}, False),
        ({"Content-Type": "text/plain; charset=us-ascii"}, False),
        ({"Content-Transfer-Encoding": "7bit"}, False),
        ({}, False),
    ],
)
async def test_mime_content_without_mime_version(fields: dict[str, str], fires: bool) -> None:
    found = "HDR_MIME_NO_VERSION" in await symbols(inline(**fields))
    assert found is fires


@pytest.mark.parametrize(
    ("mailer", "mid"),
    [
        ("Microsoft Outlook 16.0", "<20030701085237.GA1234@mail.example.org>"),
        ("Microsoft Office Outlook 12.0", "<4a1b2c3d.1234@example.org>"),
        # The forms of Outlook 2007 and later under an older Outlook's name.
        ("Microsoft Office Outlook, Build 11.0.5510", OUTLOOK_2007_MID),
        ("Microsoft Outlook Express 6.00.2900.2180", OUTLOOK_STORE_MID),
    ],
)
async def test_outlook_with_a_message_id_it_never_writes(mailer: str, mid: str) -> None:
    mimeole = "Produced By Microsoft MimeOLE V6.00.2900.2180"
    raw = inline(**{"X-Mailer": mailer, "Message-ID": mid, "X-MimeOLE": mimeole})
    hits = await scan(DETECTOR, msg(raw, RELAY), NOW)
    assert set(hits) == {"HDR_XMAILER_FORGED_OUTLOOK"}
    assert hits["HDR_XMAILER_FORGED_OUTLOOK"].options == (mailer, "message-id")


# Every ham of the shared corpora under Outlook 2007-2016 (CSDMC's, mail of 2010) carries
# one of the Message-ID forms those versions write, or its webmail provider's.
async def test_outlook_2007_and_later_on_real_mail() -> None:
    later = re.compile(rb"^X-Mailer: Microsoft (?:Office Outlook 12|Outlook 1[4-6])", re.M)
    ham = [raw for raw in corpus_messages(corpus.CSDMC, "ham") if later.search(raw)]
    assert len(ham) >= 5
    fired = [raw for raw in ham if "HDR_XMAILER_FORGED_OUTLOOK" in await symbols(raw, None)]
    assert fired == [], [raw[:300] for raw in fired]


async def test_a_forged_outlook_spelling_is_not_also_missing_mimeole() -> None:
    raw = inline(**{"X-Mailer": "Microsoft Outlook Express 6.00.2600.0000 DM"})
    assert await symbols(raw) == {"HDR_XMAILER_FORGED_OUTLOOK"}


@pytest.mark.parametrize(
    "fields",
    [
        {"From": '"Smith, Alice" <alice@example.org>'},
        {"From": "alice@example.org (Alice Example)"},
        {"From": '"alice@example.org" <alice@lists.example.org>'},
        {"From": "Amazon.com <store-news@amazon.com>"},
        {"From": "Dr. J. R. Smith <alice@example.org>"},
        {"Date": "1 Jul 2003 10:52:37 +0200"},
        {"Date": "Tue, 1 Jul 03 04:52:37 EDT"},
        {"Date": "Tue, 1 Jul 2003 8:52:37 GMT"},
        {"Date": "Tue, 1 Jul 2003 8:52 UT"},
        {"Date": "Tue, 01 Jul 2003 10:52:37 +0200 (CEST)"},
        {"Date": "Tue, 01 Jul 2003 08:52:37 (GMT)"},
        {"Date": "Tue, 01 Jul 2003 04:52:37 Eastern Daylight Time"},
        {"Message-ID": "<20030701.GA1234@example.org> (added by mx)"},
        {"Message-ID": "<abc@mail.gmail.com>", "To": "bob@gmail.com"},
        {
            "X-Mailer": "Microsoft Outlook, Build 10.0.2627",
            "X-MimeOLE": "Produced By Microsoft MimeOLE V6.00.2600.0000",
        },
        {
            "X-Mailer": "Microsoft Outlook 16.0",
            "Message-ID": "<000001d5a1b2$c3d4e5f6$a7b8c9d0@x.org>",
        },
        # Outlook 2007 and later over SMTP: a "$" before the "@", or "!&!" and a store key.
        {"X-Mailer": "Microsoft Office Outlook 12.0", "Message-ID": OUTLOOK_2007_MID},
        {"X-Mailer": "Microsoft Outlook 16.0", "Message-ID": OUTLOOK_2007_MID},
        {"X-Mailer": "Microsoft Outlook 14.0", "Message-ID": OUTLOOK_STORE_MID},
        {"User-Agent": "Mutt/1.4i"},
        {"User-Agent": "Microsoft-Outlook-Express-Macintosh-Edition/5.02.2106"},
        {
            "X-Mailer": "Microsoft Outlook Express 5.00.2615.200",
            "Message-ID": OE_MID,
            "X-MimeOLE": "Produced By Microsoft MimeOLE V6.00.2600.0000",
        },
        {
            "X-Mailer": "Microsoft Outlook Express 6.00.2600.0000",
            "Message-ID": "<OE17Bc@hotmail.com>",
            "X-MimeOLE": "Produced By Microsoft MimeOLE V6.00.2600.0000",
        },
        {"Precedence": "list"},
        {"To": "Recipients of the award <awards@example.net>"},
        {"To": "recipients-list@example.net"},
        {"Precedence": "bulk", "List-Id": "<talk.lists.example.org>"},
    ],
)
async def test_honest_variants_are_clean(fields: dict[str, str]) -> None:
    hits = await symbols(inline(**fields))
    assert hits <= {"HDR_PRECEDENCE_BULK"}, hits


@pytest.mark.parametrize(
    "fields",
    [
        {"Message-ID": "<a@.>"},
        {"Message-ID": "<@>"},
        {"Message-ID": "<>"},
        {"From": "<@>"},
        {"From": '"unterminated <a@example.org>'},
        {"From": "a@"},
        {"From": ",,,@,,,"},
        {"Date": "Tue, 99 Foo 2003 10:52:37 +9999"},
        {"Date": "Mon, 1 Jan 99999 00:00:00 +0000"},
        {"To": ""},
        {"X-Mailer": "Microsoft Outlook"},
    ],
)
async def test_odd_values_never_raise(fields: dict[str, str]) -> None:
    await symbols(inline(**fields))


def test_mid_added_by_receiving_relay_is_not_forged() -> None:
    from seawall.config import HeadersSettings
    from seawall.detectors.base import Context
    from seawall.detectors.headers import HeadersDetector
    from seawall.message import parse_message

    raw = (
        b"Received: from pebble.sender.example (pebble.sender.example [206.15.104.27])\n"
        b"\tby lerami.rcpt.example (8.12.2/8.12.2) with ESMTP id g86GT2X2013854\n"
        b"\tfor <user@rcpt.example>; Fri, 6 Sep 2002 11:29:02 -0500 (CDT)\n"
        b"Message-Id: <200209061629.g86GT2X2013854@lerami.rcpt.example>\n"
        b"From: News <news@mailings.sender.example>\nTo: user@rcpt.example\n"
        b"Date: Fri, 6 Sep 2002 11:29:00 -0500\nSubject: news\n\nbody\n"
    )
    forged = raw.replace(b"@lerami.rcpt.example>", b"@rcpt.example>")
    detector = HeadersDetector(HeadersSettings())
    import asyncio

    def symbols(data: bytes) -> set[str]:
        hits = asyncio.run(detector.check(parse_message(data), Context(now=1031329742.0)))
        return {h.symbol for h in hits}

    assert "HDR_MID_RHS_MATCH_TO" not in symbols(raw)
    assert "HDR_MID_RHS_MATCH_TO" in symbols(forged)


@pytest.mark.parametrize(
    ("subject", "tag"),
    [
        ("Lowest life insurance rates available!                     moode", "moode"),
        ("Join the Fastest Growing Singles Community\t\t\t\t\t\t\t14.51   ", "14.51"),
        ("lunch", None),
        ("lunch      ", None),  # trailing white space is no tag
        ("lunch   at   noon", None),  # a short run
        ("      lunch", None),  # nothing before the run
    ],
)
async def test_padded_subject(subject: str, tag: str | None) -> None:
    raw = inline(Subject=subject)
    hit = (await scan(DETECTOR, msg(raw, RELAY), NOW)).get("HDR_SUBJ_PADDED")
    assert (hit.options if hit is not None else None) == (None if tag is None else (tag,))


async def test_a_folded_subject_is_not_padding() -> None:
    # A mail program folds a long subject; unfolded, the next line's indent is a long run.
    folded = "FW: OASIS Posting - FINAL PLAN FOR NO TAG/NO FLOW\n              POLICY"
    raw = inline(Subject=folded)
    assert "HDR_SUBJ_PADDED" not in await symbols(raw)
    crlf = inline(Subject="Lowest rates!              qxbt").replace(b"\n", b"\r\n")
    assert "HDR_SUBJ_PADDED" in await symbols(crlf)


# Measured on all 22,175 ham of the shared corpora: one (an Enron forward whose subject
# kept a wide gap inside a line, "NO FLOW              POLICY"); here the ham whose Subject
# unfolds to a padded tail (most of them folded) and a sample of the rest.
@pytest.mark.parametrize("source", [corpus.ENRON_HAM, corpus.SPAMASSASSIN])
async def test_padded_subject_on_real_mail(source: str) -> None:
    ham = corpus_messages(source, "ham")
    looks_padded = [raw for raw in ham if _PADDED_TAIL.search(msg(raw).subject)]
    assert looks_padded  # the folded subjects the rule must tell apart
    fired = [
        raw for raw in looks_padded + ham[::8] if "HDR_SUBJ_PADDED" in await symbols(raw, None)
    ]
    assert len(fired) <= (1 if source == corpus.ENRON_HAM else 0), [raw[:300] for raw in fired]
    if source == corpus.SPAMASSASSIN:
        spam = corpus_messages(source, "spam")
        padded = [raw for raw in spam[::2] if "HDR_SUBJ_PADDED" in await symbols(raw, None)]
        assert len(padded) > 100


@pytest.mark.parametrize(
    ("subject", "to", "greeted"),
    [
        ("Enter now, hibody, 75% off", "hibody@example.net", "hibody"),
        ("Special offer for hibody, 80% better price", "hibody@example.net", "hibody"),
        ("Atencao, wbks4! Seus pontos estao prestes a expirar", "<wbks4@example.net>", "wbks4"),
        ("ZZZZ: claim the money you never knew you had", "zzzz@example.net", "zzzz"),
        ("hibody's offer", "hibody@example.net", None),  # not a salutation
        ("Re: [hibody] minutes", "hibody@example.net", None),  # a list tag
        ("mail for hibody.smith, today", "hibody@example.net", None),  # a longer name
        ("Bob, lunch?", "bob@example.net", None),  # a local part under 4 characters
        ("Lunch, everyone!", "hibody@example.net", None),
    ],
)
async def test_subject_greets_the_mailbox(subject: str, to: str, greeted: str | None) -> None:
    hit = (await scan(DETECTOR, msg(inline(Subject=subject, To=to), RELAY), NOW)).get(
        "HDR_SUBJ_GREETS_MAILBOX"
    )
    assert (hit.options if hit is not None else None) == (None if greeted is None else (greeted,))


async def test_the_envelope_recipient_is_greeted_too() -> None:
    raw = inline(Subject="hibody, your card is approved", To="Undisclosed recipients:;")
    envelope = Envelope(client_ip="198.51.100.7", rcpts=("hibody@example.net",))
    hits = await scan(DETECTOR, msg(raw, envelope), NOW)
    assert hits["HDR_SUBJ_GREETS_MAILBOX"].options == ("hibody",)


async def test_list_mail_is_not_greeted() -> None:
    raw = inline(
        Subject="ilug, meeting on Tuesday!",
        To="ilug@linux.example",
        **{"List-Id": "<ilug.linux.example>"},
    )
    assert "HDR_SUBJ_GREETS_MAILBOX" not in await symbols(raw)


# On none of the 22,175 ham of the shared corpora (measured on all; here a sample): the
# greeting (133 spam) and the CDO mailer (130 spam).
@pytest.mark.parametrize("source", [corpus.ENRON_HAM, corpus.CSDMC, corpus.SPAMASSASSIN])
async def test_greets_mailbox_on_real_mail(source: str) -> None:
    ham = corpus_messages(source, "ham")
    for raw in ham[::4]:
        found = await symbols(raw, None)
        assert not found & {"HDR_SUBJ_GREETS_MAILBOX", "HDR_XMAILER_CDO"}, raw[:300]
    if source == corpus.CSDMC:
        spam = corpus_messages(source, "spam")
        greeted = [raw for raw in spam if "HDR_SUBJ_GREETS_MAILBOX" in await symbols(raw, None)]
        assert len(greeted) > 50


@pytest.mark.parametrize(
    "mailer",
    [
        "The Bat! (v1.52f) Business",
        "AOL 7.0 for Windows US sub 118",
        "QUALCOMM Windows Eudora Version 5.1",
        "Internet Mail Service (5.5.2650.21)",
        ": MIME-tools 5.503 (Entity 5.501)",
    ],
)
async def test_outlook_message_id_under_another_mailer(mailer: str) -> None:
    raw = inline(**{"X-Mailer": mailer, "Message-ID": OE_MID})
    hits = await scan(DETECTOR, msg(raw, RELAY), NOW)
    assert set(hits) == {"HDR_MID_FORGED_OUTLOOK"}
    assert hits["HDR_MID_FORGED_OUTLOOK"].options == (mailer[:60],)
    # Microsoft's MIME engine wrote the mail: a gateway may have changed the X-Mailer.
    mimeole = "Produced By Microsoft MimeOLE V6.00.2800.1165"
    raw = inline(**{"X-Mailer": mailer, "Message-ID": OE_MID, "X-MimeOLE": mimeole})
    assert await symbols(raw) == set()
    # Its own Message-ID form is the program's to write.
    assert await symbols(inline(**{"X-Mailer": mailer})) == set()


async def test_outlook_message_id_under_other_microsoft_programs() -> None:
    raw = inline(**{"X-Mailer": "Microsoft CDO for Windows 2000", "Message-ID": OE_MID})
    assert await symbols(raw) == {"HDR_XMAILER_CDO"}
    raw = inline(**{"X-Mailer": "Microsoft Windows Mail 6.0.6000.16386", "Message-ID": OE_MID})
    assert await symbols(raw) == set()


# Measured on all 22,175 ham of the shared corpora: the Outlook Message-ID form is on 303,
# each with a Microsoft X-Mailer and X-MimeOLE; on spam, 128 name another program.
async def test_outlook_message_id_under_another_mailer_on_real_mail() -> None:
    def with_mailer(raw: bytes) -> bool:
        return _DOLLAR_MID.search(raw) is not None and b"\nX-Mailer:" in raw

    ham = [raw for raw in corpus_messages(corpus.SPAMASSASSIN, "ham") if with_mailer(raw)]
    assert len(ham) > 100
    fired = [raw for raw in ham if "HDR_MID_FORGED_OUTLOOK" in await symbols(raw, None)]
    assert fired == []
    spam = [raw for raw in corpus_messages(corpus.SPAMASSASSIN, "spam") if with_mailer(raw)]
    mailers = set()
    for raw in spam:
        hits = await scan(DETECTOR, msg(raw), NOW)
        if "HDR_MID_FORGED_OUTLOOK" in hits:
            mailers.update(hits["HDR_MID_FORGED_OUTLOOK"].options)
    assert {"The Bat! (v1.52f) Business", "AOL 7.0 for Windows US sub 118"} <= mailers


@pytest.mark.parametrize(
    ("sender", "fires"),
    [
        ('"Nils O. Sel\xe5sdal" <nils@example.org>', True),
        ("Magisches Schlankheitssystem \u2705 <news@example.org>", True),
        ("=?iso-8859-1?q?Nils_O=2E_Sel=E5sdal?= <nils@example.org>", False),
        ("=?utf-8?b?TWFnaXNjaGVzIOKchQ==?= <news@example.org>", False),
        ("Alice Example <alice@example.org>", False),
    ],
)
async def test_raw_8bit_from(sender: str, fires: bool) -> None:
    for charset in ("latin-1", "utf-8"):
        try:
            sent = sender.encode(charset)  # the bytes a program in that charset writes
        except UnicodeEncodeError:
            continue
        raw = inline().replace(CLEAN["From"].encode(), sent)
        assert ("HDR_FROM_8BIT" in await symbols(raw)) is fires, (charset, raw[:400])


# Measured on all 22,175 ham of the shared corpora: 2 (one Norwegian sender of 2002, whose
# program wrote Latin-1 as it was); 636 spam, 579 of them Phishing Pot's.
async def test_raw_8bit_from_on_real_mail() -> None:
    ham = corpus_messages(corpus.SPAMASSASSIN, "ham")
    fired = [raw for raw in ham if "HDR_FROM_8BIT" in await symbols(raw, None)]
    assert len(fired) == 2
    assert all(b"Sel\xe5sdal" in raw for raw in fired)
    spam = corpus_messages(corpus.PHISHING_POT, "spam", step=4)
    assert sum(["HDR_FROM_8BIT" in await symbols(raw, None) for raw in spam]) > 100


@pytest.mark.parametrize(
    ("date", "problem"),
    [
        ("Fri, 23 Aug 2002 19:27:52", "no zone"),
        ("Sat Sep 21 08:18:08 2002", "no zone"),
        ("27 Jun 01 3:36:25 AM", "12-hour clock"),
        ("Wed, 27 Jun 2001 3:36:25 PM -0400", "12-hour clock"),
        ("Tue, 17 Sep 2002 11:59:30 +-0500", "broken offset"),
        ("Fri, 02 Aug 2002 23:37:59 0530 (IST)", "broken offset"),
    ],
)
async def test_date_without_a_usable_zone(date: str, problem: str) -> None:
    hits = await scan(DETECTOR, msg(inline(Date=date), RELAY), Context(now=1.1e9))
    assert hits["HDR_DATE_NO_ZONE"].options == (problem,)


# Measured on all 22,175 ham of the shared corpora: none; 157 spam.
async def test_date_without_a_zone_on_real_mail() -> None:
    ham = corpus_messages(corpus.SPAMASSASSIN, "ham")
    assert not [raw for raw in ham if "HDR_DATE_NO_ZONE" in await symbols(raw, None)]
    spam = corpus_messages(corpus.SPAMASSASSIN, "spam")
    assert sum(["HDR_DATE_NO_ZONE" in await symbols(raw, None) for raw in spam]) > 80


async def test_a_date_without_a_zone_is_still_dated() -> None:
    raw = inline(Date="Wed, 01 Jan 2003 10:52:37")
    assert await symbols(raw) == {"HDR_DATE_NO_ZONE", "HDR_DATE_PAST"}
    raw = inline(Date="Wed, 02 Jul 2003 10:52:37")
    assert await symbols(raw) == {"HDR_DATE_NO_ZONE", "HDR_DATE_FUTURE"}


@pytest.mark.parametrize(
    ("fields", "excess"),
    [
        ({"Subject": "=?UTF-8?B?WW91ciBhY2NvdW50IGlzIG9uIGhvbGQ=?="}, ("subject",)),
        ({"From": "=?utf-8?b?UGF5UGFs?= <service@example.org>"}, ("from",)),
        (
            {
                "Subject": "=?UTF-8?B?WW91ciBhY2NvdW50IGlzIG9uIGhvbGQ=?=",
                "From": "=?UTF-8?B?UGF5UGFs?= <service@example.org>",
            },
            ("subject", "from"),
        ),
        # Base64 that carries what ASCII cannot, and quoted-printable, are what RFC 2047 is for.
        ({"Subject": "=?UTF-8?B?R3LDvMOfZSBhdXMgTcO8bmNoZW4=?="}, None),
        ({"From": "=?iso-8859-1?q?Nils_O=2E_Sel=E5sdal?= <nils@example.org>"}, None),
        ({"Subject": "=?us-ascii?q?lunch?="}, None),
        ({"Subject": "lunch =? b? maybe"}, None),
    ],
)
async def test_base64_words_for_plain_ascii(
    fields: dict[str, str], excess: tuple[str, ...] | None
) -> None:
    hits = await scan(DETECTOR, msg(inline(**fields), RELAY), NOW)
    if excess is None:
        assert "HDR_EXCESS_BASE64" not in hits
    else:
        assert hits["HDR_EXCESS_BASE64"].options == excess


# Measured on all 22,175 ham of the shared corpora: none; 342 spam, 300 of them Phishing
# Pot's.
async def test_base64_words_for_plain_ascii_on_real_mail() -> None:
    ham = corpus_messages(corpus.SPAMASSASSIN, "ham") + corpus_messages(corpus.CSDMC, "ham")
    assert not [raw for raw in ham if "HDR_EXCESS_BASE64" in await symbols(raw, None)]
    spam = corpus_messages(corpus.PHISHING_POT, "spam", step=4)
    assert sum(["HDR_EXCESS_BASE64" in await symbols(raw, None) for raw in spam]) > 50


async def test_the_age_of_a_date_needs_an_arrival() -> None:
    old = "Wed, 01 Jan 2003 10:52:37 +0200"
    # Dated by the top Received field, envelope or not.
    assert "HDR_DATE_PAST" in await symbols(inline(Date=old), None)
    # No Received field, and a front end named the client: it is arriving now.
    assert "HDR_DATE_PAST" in await symbols(inline(hops="", Date=old), RELAY)
    # A stored message with neither (an archive, a Sent folder): its arrival is unknown.
    assert await symbols(inline(hops="", Date=old), None) == set()
    ahead = "Wed, 02 Jul 2003 10:52:37 +0200"
    assert await symbols(inline(hops="", Date=ahead), None) == set()
    assert "HDR_DATE_FUTURE" in await symbols(inline(hops="", Date=ahead), RELAY)


# A reader's fetch from its mailbox ten days after our border took the mail in.
FETCHED_LATE = (
    "Received: from pop.example.net [203.0.113.110]\n"
    "\tby localhost with POP3 (fetchmail-6.4.37)\n"
    "\tfor bob@localhost (single-drop); Fri, 11 Jul 2003 10:52:40 +0200\n"
    "Received: from mail.example.org (mail.example.org [198.51.100.7])\n"
    "\tby mx.example.net (Postfix) with ESMTPS id 4F2A1; Tue, 01 Jul 2003 10:52:40 +0200\n"
)


async def test_a_stored_message_arrived_when_our_border_took_it_in() -> None:
    """Our side's delay after the border (a reader fetching days later, a queue) is not
    the sender's: the Date is judged against the border's Received field."""
    assert await symbols(inline(FETCHED_LATE), None) == set()
    three_hours_on = "Tue, 01 Jul 2003 13:52:37 +0200"
    assert "HDR_DATE_FUTURE" in await symbols(inline(FETCHED_LATE, Date=three_hours_on), None)
    nine_days_before = "Sun, 22 Jun 2003 10:52:37 +0200"
    assert "HDR_DATE_PAST" in await symbols(inline(FETCHED_LATE, Date=nine_days_before), None)
