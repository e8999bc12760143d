"""clamd's wire format: addresses, INSTREAM framing and replies, as exact bytes."""

from __future__ import annotations

import re
import socket

import pytest

from seawall.clamd import (
    ClamdReplyError,
    ScanResult,
    StreamTooLarge,
    encode_instream,
    parse_reply,
    parse_scan,
    socket_address,
)


@pytest.mark.parametrize(
    ("address", "family", "sockaddr"),
    [
        ("127.0.0.1:3310", socket.AF_INET, ("127.0.0.1", 3310)),
        ("[::1]:3310", socket.AF_INET6, ("::1", 3310)),
        ("/var/run/clamav/clamd.ctl", socket.AF_UNIX, "/var/run/clamav/clamd.ctl"),
        ("unix:/tmp/clamd.sock", socket.AF_UNIX, "/tmp/clamd.sock"),
    ],
)
def test_addresses(address: str, family: socket.AddressFamily, sockaddr: object) -> None:
    assert socket_address(address) == (family, sockaddr)


def test_host_name_is_resolved_once() -> None:
    family, sockaddr = socket_address("localhost:3310")
    assert family in (socket.AF_INET, socket.AF_INET6)
    assert sockaddr in (("127.0.0.1", 3310), ("::1", 3310))


@pytest.mark.parametrize(
    "address", ["", "3310", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "host:99999", "clamd.ctl"]
)
def test_bad_addresses(address: str) -> None:
    with pytest.raises(ValueError, match="clamd address"):
        socket_address(address)


def test_instream_framing() -> None:
    assert list(encode_instream(b"")) == [b"\0\0\0\0"]
    assert list(encode_instream(b"abc")) == [b"\0\0\0\x03abc", b"\0\0\0\0"]
    assert list(encode_instream(b"abcde", chunk=2)) == [
        b"\0\0\0\x02ab",
        b"\0\0\0\x02cd",
        b"\0\0\0\x01e",
        b"\0\0\0\0",
    ]
    big = bytes(70_000)
    pieces = list(encode_instream(big))
    assert [len(p) for p in pieces] == [4 + 65536, 4 + 4464, 4]
    assert pieces[0][:4] == (65536).to_bytes(4, "big")


@pytest.mark.parametrize(
    ("reply", "session", "text"),
    [
        pytest.param(b"stream: OK\0", None, "stream: OK", id="plain"),
        pytest.param(b"PONG\n", None, "PONG", id="newline"),
        pytest.param(b"12: stream: OK\0", 12, "stream: OK", id="session"),
    ],
)
def test_reply_text(reply: bytes, session: int | None, text: str) -> None:
    assert parse_reply(reply, session) == text


@pytest.mark.parametrize(
    "reply", [b"3: stream: OK\0", b"stream: OK\0", b"COMMAND READ TIMED OUT\n", b""]
)
def test_reply_for_another_request(reply: bytes) -> None:
    with pytest.raises(ClamdReplyError, match="another request"):
        parse_reply(reply, 2)


@pytest.mark.parametrize(
    ("text", "result"),
    [
        ("stream: OK", ScanResult()),
        ("stream: Eicar-Signature FOUND", ScanResult("Eicar-Signature")),
        ("stream: Win.Test.EICAR_HDB-1 FOUND", ScanResult("Win.Test.EICAR_HDB-1")),
        # ExtendedDetectionInfo yes: the hash and size follow the name.
        (
            "stream: Eicar-Signature(44d88612fea8a8f36de82e1278abb02f:68) FOUND",
            ScanResult("Eicar-Signature(44d88612fea8a8f36de82e1278abb02f:68)"),
        ),
        (
            "stream: Heuristics.Limits.Exceeded.MaxFileSize FOUND",
            ScanResult("Heuristics.Limits.Exceeded.MaxFileSize"),
        ),
    ],
)
def test_scan_results(text: str, result: ScanResult) -> None:
    assert parse_scan(text) == result
    assert parse_scan(text).infected is (result.signature is not None)


def test_size_limit_reply() -> None:
    with pytest.raises(StreamTooLarge, match="StreamMaxLength"):
        parse_scan("INSTREAM size limit exceeded. ERROR")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stream: Can't allocate memory ERROR", "Can't allocate memory"),
        ("stream: lstat() failed: No such file or directory. ERROR", "lstat() failed"),
        ("UNKNOWN COMMAND", "unexpected reply"),
        ("COMMAND READ TIMED OUT", "unexpected reply"),
        ("stream:  FOUND", "unexpected reply"),
        ("stream: OK trailing", "unexpected reply"),
        ("", "unexpected reply"),
        ("ERROR", "unexpected reply"),
    ],
)
def test_error_replies(text: str, message: str) -> None:
    with pytest.raises(ClamdReplyError, match=re.escape(message)):
        parse_scan(text)
