"""Charsets: the declared one when it is right, UTF-8 or Windows-1252 when it is not."""

from __future__ import annotations

import re

import pytest

from seawall import corpus
from seawall.message import parse_message
from seawall.message.charset import decode_text

GERMAN = "Grüße aus Köln, schöne Äpfel für 5 €"


@pytest.mark.parametrize(
    ("data", "declared", "text", "used"),
    [
        pytest.param(GERMAN.encode(), "utf-8", GERMAN, "utf-8", id="utf8-declared"),
        pytest.param(GERMAN.encode(), None, GERMAN, "utf-8", id="utf8-undeclared"),
        pytest.param(GERMAN.encode("cp1252"), "utf-8", GERMAN, "windows-1252", id="1252-as-utf8"),
        pytest.param(GERMAN.encode("cp1252"), None, GERMAN, "windows-1252", id="1252-undeclared"),
        pytest.param(GERMAN.encode(), "iso-8859-1", GERMAN, "utf-8", id="utf8-as-latin1"),
        pytest.param(
            "Grüße".encode("latin-1"), "iso-8859-1", "Grüße", "iso-8859-1", id="latin1-declared"
        ),
        pytest.param(
            b"\x93quoted\x94 \x80", "iso-8859-1", "\u201cquoted\u201d €", "windows-1252", id="c1"
        ),
        pytest.param("Grüße".encode("latin-1"), "us-ascii", "Grüße", "windows-1252", id="ascii"),
        pytest.param(
            "5 € für".encode("iso8859-15"), "ISO-8859-15", "5 € für", "iso-8859-15", id="latin9"
        ),
        pytest.param(
            "Grüße".encode("latin-1"), "x-unknown", "Grüße", "windows-1252", id="unknown-name"
        ),
        pytest.param("Привет".encode("koi8-r"), "koi8-r", "Привет", "koi8-r", id="koi8-r"),
        pytest.param("日本語".encode("shift_jis"), "shift_jis", "日本語", "cp932", id="sjis"),
        pytest.param("中文".encode("gbk"), "gb2312", "中文", "gb18030", id="gb2312-is-gbk"),
        pytest.param(b"plai", "utf-16-le", "\u6c70\u6961", "utf-16-le", id="utf16-not-ascii"),
        pytest.param(
            "Grüße ".encode() + b"\xe4" + b" ok", "utf-8", "Grüße ä ok", "utf-8", id="mix"
        ),
        pytest.param(b"\x81\x8d\x8f\x90\x9d", None, "\x81\x8d\x8f\x90\x9d", "windows-1252", id="u"),
        pytest.param(b"\xef\xbb\xbfBOM", "utf-8", "BOM", "utf-8", id="bom"),
        pytest.param(b"abc", "base64", "abc", "us-ascii", id="not-a-charset"),
    ],
)
def test_decode_text(data: bytes, declared: str | None, text: str, used: str) -> None:
    decoded = decode_text(data, declared)
    assert decoded.text == text
    assert decoded.charset == used
    assert "\ufffd" not in decoded.text


def test_unknown_charset_is_reported() -> None:
    assert decode_text(b"abc", "x-bogus").unknown
    assert decode_text(b"abc", "base64").unknown
    assert not decode_text(b"abc", "UTF8").unknown
    assert not decode_text(b"abc", None).unknown


def test_text_part_records_both_charsets() -> None:
    raw = (
        b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable"
        b"\n\nGr=FC=DFe\n"
    )
    (part,) = parse_message(raw).parts
    assert (part.text, part.declared_charset, part.charset) == ("Grüße\n", "utf-8", "windows-1252")


MOJIBAKE = re.compile("Ã[\u0080-\u00bf]|â€")


@pytest.mark.slow
def test_german_phishing_has_real_umlauts() -> None:
    """German phishing (lang_heuristic "de") reads as German: umlauts, no mojibake, no U+FFFD.

    A few senders double-encoded their own mail (the raw bytes already hold UTF-8 "Ã¼"),
    and a reader shows those wrong too; they are the only mojibake allowed.
    """
    items = [i for i in corpus.items(corpus.PHISHING_POT) if i.get("lang_heuristic") == "de"]
    assert len(items) > 1000
    with_umlauts = 0
    for item in items:
        raw = item.path.read_bytes()
        msg = parse_message(raw)
        text = msg.subject + "\n" + msg.text
        assert "\ufffd" not in text, item.path.name
        if MOJIBAKE.search(text):
            assert b"\xc3\x83\xc2" in raw or b"\xc3\xa2\xe2\x82\xac" in raw, item.path.name
        if re.search("[äöüÄÖÜß]", text):
            with_umlauts += 1
    assert with_umlauts / len(items) > 0.95


def test_german_latin1_phishing_message() -> None:
    """An ISO-8859-1 German message from the phishing corpus: declared charset used as is."""
    (item,) = [i for i in corpus.items(corpus.PHISHING_POT) if i.path.name == "sample-2738.eml"]
    msg = parse_message(item.path.read_bytes())
    latin1 = [
        p for p in msg.parts if p.declared_charset and p.declared_charset.lower() == "iso-8859-1"
    ]
    assert latin1
    for part in latin1:
        assert part.charset == "iso-8859-1"
        assert re.search("[äöüß]", part.text)
        assert not MOJIBAKE.search(part.text)


def test_iso_8859_1_fixture() -> None:
    from pathlib import Path

    raw = (Path(__file__).parent / "fixtures" / "latin1.eml").read_bytes()
    msg = parse_message(raw)
    assert msg.subject == "Bestätigung Ihrer Bestellung"
    (part,) = msg.parts
    assert part.declared_charset == "ISO-8859-1"
    assert part.charset == "iso-8859-1"
    assert "Grüßen" in msg.text
    assert "Hauptstraße" in msg.text
    assert "für" in msg.text
