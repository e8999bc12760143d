"""The MIME walk: multipart structure, transfer encodings, text parts and their limits."""

from __future__ import annotations

import base64

import pytest

from seawall.message import ParseLimits, parse_message


def multipart(kind: str, *parts: bytes, boundary: bytes = b"BOUND", close: bool = True) -> bytes:
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    end = b"--" + boundary + b"--\r\n" if close else b""
    head = b"Content-Type: multipart/" + kind.encode() + b'; boundary="' + boundary + b'"\r\n'
    return head + b"\r\npreamble is ignored\r\n" + body + end + b"epilogue too\r\n"


PLAIN = b"Content-Type: text/plain; charset=utf-8\r\n\r\nplain words"
HTML = b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>html <b>words</b></p>"


def test_single_part_defaults_to_plain_text() -> None:
    msg = parse_message(b"Subject: s\n\nhello\n")
    (part,) = msg.parts
    assert (part.content_type, part.text, part.charset, part.declared_charset) == (
        "text/plain",
        "hello\n",
        "us-ascii",
        None,
    )
    assert msg.text == "hello\n"
    assert not msg.has_html


def test_alternative_shows_the_html_once() -> None:
    msg = parse_message(multipart("alternative", PLAIN, HTML))
    assert [p.content_type for p in msg.parts] == ["text/plain", "text/html"]
    assert msg.parts[1].text == "html words"
    assert msg.text == "html words"
    assert msg.has_html
    assert msg.defects == ()


def test_alternative_falls_back_to_plain_when_html_has_no_text() -> None:
    image_only = b'Content-Type: text/html\r\n\r\n<img src="http://x.example/a.png">'
    msg = parse_message(multipart("alternative", PLAIN, image_only))
    assert msg.text == "plain words"


def test_mixed_joins_all_text_parts_in_order() -> None:
    second = b"Content-Type: text/plain\r\n\r\nsecond"
    inner = multipart("alternative", PLAIN, HTML, boundary=b"inner")
    msg = parse_message(multipart("mixed", inner, second))
    assert msg.text == "html words\nsecond"


def test_transfer_encodings() -> None:
    b64 = b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b64 += base64.encodebytes("Grüße\r\n".encode())
    qp = b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: Quoted-"
    qp += b"Printable\r\n\r\nK=F6ln ist so=\r\nft umbrochen =3D gut"
    msg = parse_message(multipart("mixed", b64, qp))
    assert [p.text for p in msg.parts] == ["Grüße\n", "Köln ist soft umbrochen = gut"]
    assert msg.defects == ()


def test_bad_qp_and_unknown_encoding_are_defects() -> None:
    bad_qp = b"Content-Transfer-Encoding: quoted-printable\r\n\r\nprice =ZZ 5"
    odd = b"Content-Transfer-Encoding: 8bit+\r\n\r\nstill read"
    msg = parse_message(multipart("mixed", bad_qp, odd))
    assert msg.text == "price =ZZ 5\nstill read"
    assert set(msg.defects) == {"bad_qp", "unknown_encoding"}


def test_unterminated_multipart_is_truncated() -> None:
    msg = parse_message(multipart("mixed", PLAIN, HTML, close=False))
    assert "truncated" in msg.defects
    assert [p.content_type for p in msg.parts] == ["text/plain", "text/html"]


def test_missing_boundary_reads_the_body_as_text() -> None:
    msg = parse_message(b"Content-Type: multipart/mixed\r\n\r\nvisit http://x.example/")
    assert msg.defects == ("missing_boundary",)
    assert msg.urls[0].host == "x.example"


def test_boundary_never_seen_reads_the_body_as_text() -> None:
    msg = parse_message(b'Content-Type: multipart/mixed; boundary="nope"\r\n\r\nbody text')
    assert msg.defects == ("bad_boundary",)
    assert msg.text == "body text"


def test_longer_boundary_is_not_this_boundary() -> None:
    inner = b"Content-Type: text/plain\r\n\r\n--BOUNDARYX is text\r\n--BOUND2 also"
    msg = parse_message(multipart("mixed", inner))
    assert msg.text == "--BOUNDARYX is text\n--BOUND2 also"


def test_delimiter_with_trailing_blanks() -> None:
    raw = b'Content-Type: multipart/mixed; boundary="b"\n\n'
    raw += b"--b  \nContent-Type: text/plain\n\nx\n--b-- \n"
    assert parse_message(raw).text == "x"


def test_nesting_limit() -> None:
    raw = multipart("mixed", multipart("mixed", PLAIN, boundary=b"inner"))
    msg = parse_message(raw, limits=ParseLimits(max_depth=1))
    assert msg.defects == ("nesting_too_deep",)
    assert msg.parts == ()


def test_part_limit() -> None:
    msg = parse_message(multipart("mixed", PLAIN, PLAIN, PLAIN), limits=ParseLimits(max_parts=3))
    assert len(msg.parts) == 2
    assert msg.defects == ("too_many_parts",)


def test_part_size_limit() -> None:
    raw = b"Content-Transfer-Encoding: base64\n\n" + base64.encodebytes(b"A" * 10_000)
    msg = parse_message(raw, limits=ParseLimits(max_part_bytes=1000))
    assert msg.parts[0].text == "A" * 1000
    assert msg.defects == ("part_too_large",)  # cut at a line: no false "bad_base64"


def test_text_limit() -> None:
    msg = parse_message(b"\n" + b"word " * 1000, limits=ParseLimits(max_text_chars=100))
    assert len(msg.text) == 100
    assert len(msg.parts[0].text) == 100


def test_message_size_limit() -> None:
    raw = b"Subject: s\n\n" + b"x" * 1000
    msg = parse_message(raw, limits=ParseLimits(max_message_bytes=100))
    assert msg.size == len(raw)
    assert msg.raw is raw
    assert msg.defects == ("too_large",)
    assert len(msg.text) == 100 - len(b"Subject: s\n\n")


def test_enclosed_message_is_walked_and_kept() -> None:
    inner = b"Subject: inner\r\nContent-Type: text/plain\r\n\r\ninner text http://in.example/"
    part = b"Content-Type: message/rfc822\r\n\r\n" + inner
    msg = parse_message(multipart("mixed", PLAIN, part))
    assert msg.text == "plain words\ninner text http://in.example/"
    assert msg.subject == ""
    (attachment,) = msg.attachments
    assert attachment.declared_type == "message/rfc822"
    assert attachment.size == len(inner)


def test_base64_enclosed_message() -> None:
    inner = b"Content-Type: text/plain\r\n\r\nhidden inside"
    part = b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    msg = parse_message(multipart("mixed", part + base64.encodebytes(inner)))
    assert msg.text == "hidden inside"


def test_digest_parts_default_to_messages() -> None:
    entry = b"\r\nSubject: one\r\n\r\ndigest entry"
    msg = parse_message(multipart("digest", entry))
    assert msg.text == "digest entry"


def test_text_attachment_is_a_part_but_not_body_text() -> None:
    part = (
        b'Content-Type: text/html; name="invoice.html"\r\n\r\n<a href="http://evil.example/">x</a>'
    )
    msg = parse_message(multipart("mixed", PLAIN, part))
    assert msg.text == "plain words"
    assert msg.parts[1].text == "x"
    assert [u.host for u in msg.urls] == ["evil.example"]
    assert msg.attachments[0].filename == "invoice.html"
    assert msg.attachments[0].sniffed_type is None  # "<a" alone is not an HTML document


def test_other_text_types_are_attachments() -> None:
    part = b"Content-Type: text/calendar\r\n\r\nBEGIN:VCALENDAR"
    msg = parse_message(multipart("mixed", part))
    assert msg.parts == ()
    assert msg.attachments[0].declared_type == "text/calendar"


def test_invisible_characters_are_removed() -> None:
    msg = parse_message("\nVi\u200bag\u00adra".encode())
    assert msg.text == "Viagra"
    assert msg.defects == ("no_headers", "not_mail")


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_line_endings(newline: bytes) -> None:
    raw = multipart("alternative", PLAIN, HTML).replace(b"\r\n", newline)
    assert parse_message(raw).text == "html words"
