"""Hostile and broken input: each is flagged and capped, in bounded memory, and never raises.

Every input is generated here.  The CPU-time bound is a hang guard, not a speed figure: the
parser needs tens of milliseconds (``python -m bench.hostile input`` measures each input),
a quadratic or backtracking path on these megabyte sizes would take hours.
"""

from __future__ import annotations

import base64
import os
import random
import time
import tracemalloc
from collections.abc import Callable

import pytest

from seawall.message import Message, ParseLimits, parse_message

BOUND_S = 30.0  # CPU seconds: a hang guard


def timed(raw: bytes, limits: ParseLimits | None = None) -> tuple[Message, float]:
    start = time.process_time()
    msg = parse_message(raw) if limits is None else parse_message(raw, limits=limits)
    return msg, time.process_time() - start


def empty() -> bytes:
    return b""


def binary_garbage() -> bytes:
    return random.Random(7).randbytes(2 * 1024 * 1024)


def fifty_megabytes() -> bytes:
    body = base64.encodebytes(os.urandom(3 * 1024 * 1024)) * 12  # ~50 MB of base64 lines
    return (
        b"From: a@example.com\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nhello http://example.com/\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + body + b"\r\n--b--\r\n"
    )


def ten_thousand_parts() -> bytes:
    part = b"--b\nContent-Type: text/plain\n\nshort part http://x%d.example.com/\n"
    parts = b"".join(part.replace(b"%d", str(i).encode()) for i in range(10_000))
    return b'Content-Type: multipart/mixed; boundary="b"\n\n' + parts + b"--b--\n"


def nested_200_deep() -> bytes:
    raw = b"Content-Type: text/plain\n\ninnermost text\n"
    for level in range(200):
        boundary = b"level%d" % level
        raw = (
            b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\n\n'
            b"--" + boundary + b"\n" + raw + b"--" + boundary + b"--\n"
        )
    return b"From: a@example.com\n" + raw


def megabyte_header_line() -> bytes:
    return b"Subject: " + b"A" * (1024 * 1024) + b"\nFrom: a@example.com\n\nbody\n"


def broken_base64() -> bytes:
    garbage = b"SGVsbG8gV29ybGQh*!\n" * 5000 + b"abc"
    return (
        b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n" + garbage
    )


def unknown_charset() -> bytes:
    return (
        b"Subject: =?x-no-such-charset?Q?Gr=FC=DFe?=\n"
        b"Content-Type: text/plain; charset=x-no-such-charset\n"
        b"Content-Transfer-Encoding: 8bit\n\nGr\xfc\xdfe aus K\xf6ln\n"
    )


def many_header_fields() -> bytes:
    return b"X-A: b\n" * 250_000 + b"Received: from a (b [192.0.2.1]) by c\n" * 5000 + b"\nbody"


def many_html_parts() -> bytes:
    part = b"--b\nContent-Type: text/html\n\n<p>x <a href=http://a.example/>y</a>\n"
    return b'Content-Type: multipart/mixed; boundary="b"\n\n' + part * 5000 + b"--b--\n"


CASES: dict[str, tuple[Callable[[], bytes], tuple[str, ...]]] = {
    "empty": (empty, ("empty",)),
    "binary_garbage": (binary_garbage, ("no_headers", "binary_garbage")),
    "50_mb": (fifty_megabytes, ("too_large", "truncated", "part_too_large")),
    "10000_parts": (ten_thousand_parts, ("too_many_parts",)),
    "nesting_200": (nested_200_deep, ("nesting_too_deep",)),
    "1_mb_header_line": (megabyte_header_line, ("header_too_long",)),
    "broken_base64": (broken_base64, ("bad_base64",)),
    "unknown_charset": (unknown_charset, ("unknown_charset",)),
    "many_header_fields": (many_header_fields, ("too_many_headers",)),
    "many_html_parts": (many_html_parts, ("too_many_parts",)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_fast_and_flagged(name: str) -> None:
    make, expected = CASES[name]
    raw = make()
    msg, seconds = timed(raw)
    assert seconds < BOUND_S, f"{name}: {seconds:.3f}s"
    assert isinstance(msg, Message)
    assert msg.size == len(raw)
    for defect in expected:
        assert defect in msg.defects, (defect, msg.defects)
    assert len(msg.text) <= ParseLimits().max_text_chars
    assert len(msg.urls) <= ParseLimits().max_urls


def test_50_mb_keeps_what_fits() -> None:
    msg, _ = timed(fifty_megabytes())
    assert msg.subject == "big"
    assert msg.text.startswith("hello")
    assert [u.url for u in msg.urls] == ["http://example.com/"]
    (attachment,) = msg.attachments
    assert attachment.size == ParseLimits().max_part_bytes


def test_10000_parts_stops_at_the_limit() -> None:
    msg = parse_message(ten_thousand_parts(), limits=ParseLimits(max_parts=100))
    assert len(msg.parts) == 99  # the multipart itself is the first of the 100
    assert "too_many_parts" in msg.defects
    assert "truncated" not in msg.defects  # it was cut by us, not by the sender


def test_nesting_keeps_outer_levels() -> None:
    msg = parse_message(nested_200_deep(), limits=ParseLimits(max_depth=250))
    assert msg.text == "innermost text"  # the line break belongs to the delimiter
    assert msg.defects == ()


def test_megabyte_header_is_cut_and_the_rest_read() -> None:
    msg, _ = timed(megabyte_header_line())
    assert len(msg.subject) == ParseLimits().max_header_bytes
    assert msg.headers["From"] == "a@example.com"
    assert msg.text == "body\n"


def test_broken_base64_decodes_what_it_can() -> None:
    msg = parse_message(broken_base64())
    assert msg.text.startswith("Hello World!Hello World!")


def test_unknown_charset_falls_back() -> None:
    msg = parse_message(unknown_charset())
    assert msg.subject == "Grüße"
    assert msg.text == "Grüße aus Köln\n"
    assert msg.parts[0].charset == "windows-1252"
    assert msg.parts[0].declared_charset == "x-no-such-charset"


def test_memory_is_bounded_for_50_mb() -> None:
    raw = fifty_megabytes()
    tracemalloc.start()
    try:
        parse_message(raw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The decoded attachment (max_part_bytes) and one encoded copy of it, not the input.
    limits = ParseLimits()
    assert peak < 3 * limits.max_part_bytes + 4 * 1024 * 1024, peak


HOSTILE_LINES = {
    "dotted": b"a." * 500_000,
    "dashes": b"a-" * 500_000,
    "schemes": b"http://" * 150_000,
    "brackets": b"a[.]" * 250_000,
    "encoded_words": b"=?utf-8?q?" * 100_000,
    "params": b"; a=" * 250_000,
    "angle": b"<" * 1_000_000,
    "tags": b"<p>" * 330_000,
    "dots_and_tlds": b"x.com." * 170_000,
    "hxxp": b"hxxp[:]//" * 110_000,
    "at_signs": b"a@b.c" * 200_000,
}


@pytest.mark.parametrize("name", list(HOSTILE_LINES))
@pytest.mark.parametrize("where", ["body", "html", "subject", "content_type"])
def test_hostile_megabyte_line_is_linear(name: str, where: str) -> None:
    line = HOSTILE_LINES[name]
    if where == "body":
        raw = b"Subject: x\n\n" + line + b"\n"
    elif where == "html":
        raw = b"Content-Type: text/html\n\n<html><body>" + line + b"</body></html>\n"
    elif where == "subject":
        raw = b"Subject: " + line + b"\n\nbody\n"
    else:
        raw = b"Content-Type: multipart/mixed; boundary=b" + line + b"\n\nbody\n"
    msg, seconds = timed(raw)
    assert seconds < BOUND_S, f"{name} in {where}: {seconds:.3f}s"
    assert len(msg.urls) <= ParseLimits().max_urls


HOSTILE_HTML = {
    "nested_divs": (b"<div>" * 80_000, "html_too_deep"),
    "spans_then_stray_end_tags": (b"<span>" * 20_000 + b"</x>" * 20_000, "html_too_deep"),
    "end_tags_shielded_by_div": (b"<x><div></x>" * 20_000, "html_too_deep"),
    "nested_lists": (b"<ul>" * 20_000, "html_too_deep"),
    "tables_in_divs": (b"<div><table></div>" * 20_000, "html_too_deep"),
    "three_megabytes_of_links": (b'<a href="http://x.example/">x</a>' * 100_000, "html_too_large"),
}


@pytest.mark.parametrize("name", list(HOSTILE_HTML))
def test_hostile_html_is_bounded(name: str) -> None:
    """Tree building costs tags x depth; deep or huge documents must not stall the parse."""
    body, defect = HOSTILE_HTML[name]
    msg, seconds = timed(b"Content-Type: text/html; charset=utf-8\n\n" + body)
    assert seconds < BOUND_S, f"{name}: {seconds:.3f}s"
    assert defect in msg.defects


def test_random_mutations_never_raise() -> None:
    seed = (
        b"From: =?utf-8?b?w6TDtsO8?= <a@example.com>\nReceived: from x (y [192.0.2.1]) by z\n"
        b'Content-Type: multipart/alternative; boundary="q"\n\n--q\n'
        b"Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: "
        b"quoted-printable\n\nGr=FC=DFe http://example.com/\n--q\nContent-Type: text/html\n"
        b"Content-Transfer-Encoding: base64\n\n"
        b"PGEgaHJlZj0iaHR0cDovL3gudGVzdC8iPmNsaWNrPC9hPg==\n--q--\n"
    )
    rng = random.Random(11)
    for _ in range(2000):
        data = bytearray(seed)
        for _ in range(rng.randrange(1, 8)):
            position = rng.randrange(len(data))
            choice = rng.random()
            if choice < 0.4:
                data[position] = rng.randrange(256)
            elif choice < 0.7:
                del data[position : position + rng.randrange(1, 20)]
            else:
                data[position:position] = rng.choice([b"=?", b"--q", b"\n", b"[", b"%", b"\x00"])
        parse_message(bytes(data))
