"""Header sections: order, unfolding, RFC 2047 words, RFC 2231 parameters, raw 8-bit."""

from __future__ import annotations

import re

import pytest

from seawall import corpus
from seawall.message import parse_message
from seawall.message.defects import Defects
from seawall.message.headers import decode_words, parse_params, read_fields


def test_order_case_and_unfolding() -> None:
    msg = parse_message(
        b"From: a@example.com\r\nReceived: from one\r\n\tby two\r\n"
        b"X-Thing: 1\r\nreceived: second\r\nSubject: folded\r\n  subject line\r\n\r\nbody"
    )
    names = [name for name, _ in msg.headers.items_in_order()]
    assert names == ["From", "Received", "X-Thing", "received", "Subject"]
    assert msg.headers.get_all("RECEIVED") == ("from one\tby two", "second")
    assert msg.subject == "folded  subject line"
    assert msg.text == "body"


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        pytest.param(b"=?utf-8?B?R3LDvMOfZQ==?=", "Grüße", id="utf8-b"),
        pytest.param(b"=?ISO-8859-1?Q?Gr=FC=DFe_aus_K=F6ln?=", "Grüße aus Köln", id="latin1-q"),
        pytest.param(b"Re: =?utf-8?q?caf=C3=A9?= ok", "Re: café ok", id="text-around"),
        pytest.param(b"=?utf-8?q?a?= =?utf-8?q?b?=", "ab", id="space-between-dropped"),
        pytest.param(b"=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab", id="folded-between"),
        pytest.param(b"=?utf-8?b?4oI=?= =?utf-8?b?rA==?=", "€", id="char-split-across"),
        pytest.param(b"=?utf-8*de?q?Hallo?=", "Hallo", id="rfc2231-language"),
        pytest.param(b"=?windows-1252?q?=93quoted=94?=", "\u201cquoted\u201d", id="cp1252"),
        pytest.param(b"=?utf-8?q?=E4?=", "ä", id="declared-utf8-is-latin1"),
        pytest.param(b"=?utf-8?q?broken", "=?utf-8?q?broken", id="unterminated"),
        pytest.param(b"=?utf-8?x?abc?=", "=?utf-8?x?abc?=", id="unknown-encoding-letter"),
        pytest.param(b"=?koi8-r?b?8NLJ18XU?=", "Привет", id="koi8-r"),
    ],
)
def test_rfc2047_subjects(raw: bytes, decoded: str) -> None:
    msg = parse_message(b"Subject: " + raw + b"\n\nx")
    assert msg.subject == decoded
    assert "\ufffd" not in msg.subject


def test_rfc2047_unknown_charset_is_a_defect_not_an_error() -> None:
    msg = parse_message(b"Subject: =?bogus-42?Q?caf=E9?=\n\nx")
    assert msg.subject == "café"
    assert msg.defects == ("unknown_charset",)


def test_raw_items_keep_encoded_words() -> None:
    msg = parse_message(b"Subject: =?utf-8?q?caf=C3=A9?=\n\nx")
    assert msg.headers.raw_items() == (("Subject", "=?utf-8?q?caf=C3=A9?="),)
    assert msg.headers["subject"] == "café"


def test_eight_bit_headers() -> None:
    utf8 = parse_message("Subject: Grüße\n\nx".encode())
    latin1 = parse_message("Subject: Grüße\n\nx".encode("latin-1"))
    assert utf8.subject == latin1.subject == "Grüße"


def test_mbox_from_line_is_skipped() -> None:
    msg = parse_message(b"From someone@example.com Mon Sep  2 16:28:00 2002\nSubject: s\n\nb")
    assert [name for name, _ in msg.headers.items_in_order()] == ["Subject"]


def test_non_header_line_ends_the_section() -> None:
    msg = parse_message(b"Subject: s\nthis is not a header\nmore\n")
    assert msg.subject == "s"
    assert msg.text == "this is not a header\nmore\n"
    assert msg.defects == ("missing_header_separator",)


def test_no_headers() -> None:
    msg = parse_message(b"just some text, no header at all\n")
    assert msg.defects == ("no_headers", "not_mail")
    assert msg.text == "just some text, no header at all\n"


def test_opaque_microsoft_fields_are_not_decoded() -> None:
    msg = parse_message(b"X-Microsoft-Antispam-Message-Info: =?utf-8?B?QUJD?=\n\nx")
    assert msg.headers["X-Microsoft-Antispam-Message-Info"] == "=?utf-8?B?QUJD?="


def test_read_fields_reports_body_start() -> None:
    raw = b"A: 1\r\nB: 2\r\n\r\nbody"
    fields, body = read_fields(raw, 0, len(raw), 100, Defects())
    assert fields == [("A", "1"), ("B", "2")]
    assert raw[body:] == b"body"


@pytest.mark.parametrize(
    ("value", "main", "params"),
    [
        ('text/plain; charset="UTF-8"', "text/plain", {"charset": "UTF-8"}),
        ("TEXT/HTML;CHARSET=iso-8859-1", "text/html", {"charset": "iso-8859-1"}),
        ('multipart/mixed; boundary="a;b=c"', "multipart/mixed", {"boundary": "a;b=c"}),
        ('attachment; filename="a \\"b\\".pdf"', "attachment", {"filename": 'a "b".pdf'}),
        ("attachment; filename*=UTF-8''%C3%BCbung.pdf", "attachment", {"filename": "übung.pdf"}),
        (
            "attachment; filename*0*=iso-8859-1'de'%FC; filename*1=ber.pdf",
            "attachment",
            {"filename": "über.pdf"},
        ),
        (
            "attachment; filename=\"plain.pdf\"; filename*=utf-8''%E2%82%AC.pdf",
            "attachment",
            {"filename": "€.pdf"},
        ),
        (
            'multipart/mixed; boundary="unterminated',
            "multipart/mixed",
            {"boundary": "unterminated"},
        ),
        ("text/plain;; junk ; charset=us-ascii", "text/plain", {"charset": "us-ascii"}),
    ],
)
def test_parse_params(value: str, main: str, params: dict[str, str]) -> None:
    assert parse_params(value, Defects()) == (main, params)


def test_encoded_word_join_keeps_text_between() -> None:
    assert decode_words("=?utf-8?q?a?= and =?utf-8?q?b?=", Defects()) == "a and b"


def test_corpus_encoded_subjects_decode() -> None:
    """Every RFC 2047 Subject in the phishing corpus decodes to words, not to =?...?=."""
    encoded = decoded = 0
    word = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
    for item in corpus.items(corpus.PHISHING_POT)[:2000]:
        msg = parse_message(item.path.read_bytes())
        raw_subject = dict(msg.headers.raw_items()).get("Subject", "")
        if not word.search(raw_subject):
            continue
        encoded += 1
        if not word.search(msg.subject) and "\ufffd" not in msg.subject:
            decoded += 1
    assert encoded > 100
    assert decoded / encoded > 0.99, (decoded, encoded)
