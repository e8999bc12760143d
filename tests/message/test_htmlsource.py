"""The HTML sources the parse keeps (Message.html) are what a walk of their own reads."""

from __future__ import annotations

import base64

import pytest

from seawall import corpus
from seawall.message.htmlsource import _read_again, html_sources
from seawall.message.mime import HTML_SOURCE_CHARS
from seawall.message.parse import DEFAULT_LIMITS, ParseLimits, parse_message
from seawall.sources import units_of_file


def _multipart(*parts: bytes, kind: str = "mixed") -> bytes:
    body = b"".join(b"--b\nContent-Type: " + p + b"\n" for p in parts)
    return b"Content-Type: multipart/" + kind.encode() + b'; boundary="b"\n\n' + body + b"--b--\n"


HTML = b'text/html; charset=utf-8\n\n<p style="display:none">hidden %d</p><form>x</form>\n'
FORWARDED = b"message/rfc822\n\nContent-Type: text/html\n\n<p>inside a forwarded message</p>\n"
BIG = b"text/html\nContent-Transfer-Encoding: base64\n\n" + base64.encodebytes(
    b"<p>" + b"x" * (3 * HTML_SOURCE_CHARS) + b"</p>"
)

CASES = {
    "one part": b"Content-Type: text/html\n\n<p>Hi</p>",
    "plain only": b"Subject: x\n\nno markup",
    "six parts": _multipart(*(HTML % n for n in range(6))),
    "alternative": _multipart(b"text/plain\n\nplain\n", HTML % 1, kind="alternative"),
    "forwarded": _multipart(HTML % 1, FORWARDED, HTML % 2),
    "attachment": _multipart(
        b"text/plain\n\nsee the file\n",
        b'text/html; name="invoice.html"\nContent-Disposition: attachment\n\n<form>pw</form>\n',
    ),
    "larger than kept": _multipart(BIG, HTML % 1),
    "latin-1": b"Content-Type: text/html; charset=iso-8859-1\n\n<p>Gr\xfc\xdfe</p>",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_kept_sources_are_what_a_walk_of_their_own_reads(name: str) -> None:
    msg = parse_message(CASES[name])
    assert html_sources(msg) == _read_again(msg, DEFAULT_LIMITS)


def test_the_parse_keeps_the_sources_and_skips_forwarded_messages() -> None:
    msg = parse_message(CASES["forwarded"])
    assert msg.html is not None
    assert len(msg.html) == 2
    assert all("forwarded" not in html for html in msg.html)
    assert len(parse_message(CASES["six parts"]).html or ()) == 4


def test_a_part_too_large_to_keep_whole_is_read_again() -> None:
    msg = parse_message(CASES["larger than kept"])
    assert msg.html is None
    [big, small] = html_sources(msg)
    assert len(big) == HTML_SOURCE_CHARS
    assert "hidden 1" in small


def test_other_limits_read_the_message_again() -> None:
    limits = ParseLimits(max_part_bytes=20)
    msg = parse_message(CASES["one part"])
    assert html_sources(msg, limits) == _read_again(msg, limits) == ["<p>Hi</p>"[:20]]


def test_the_sources_of_real_phishing_are_the_same() -> None:
    units = [u for item in corpus.items(corpus.PHISHING_POT) for u in units_of_file(str(item.path))]
    seen = 0
    for unit in units[::25]:
        msg = parse_message(unit.read())
        kept = html_sources(msg)
        assert kept == _read_again(msg, DEFAULT_LIMITS)
        seen += bool(kept)
    assert seen > 100
