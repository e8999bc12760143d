"""The SPAMC/SPAMD codec: exact bytes in and out, split reads, zlib and malformed requests."""

from __future__ import annotations

import zlib

import pytest

from seawall.errors import SpamdViolation
from seawall.frontends.spamd.codec import (
    Command,
    ExitCode,
    Request,
    RequestParser,
    ScanReply,
    encode_error,
    encode_pong,
    encode_result,
    encode_tell,
    spam_header,
)

MSG = b"From: a@example.com\r\nSubject: hi\r\n\r\nbody\r\n"

REQUESTS = [
    pytest.param(b"PING SPAMC/1.5\r\n\r\n", Request(Command.PING, (1, 5)), id="ping-1.5"),
    pytest.param(b"PING SPAMC/1.2\r\n", Request(Command.PING, (1, 2)), id="ping-1.2-no-headers"),
    pytest.param(b"SKIP SPAMC/1.5\r\n\r\n", Request(Command.SKIP, (1, 5)), id="skip"),
    pytest.param(
        b"CHECK SPAMC/1.5\r\nUser: alice\r\nContent-length: %d\r\n\r\n%s" % (len(MSG), MSG),
        Request(Command.CHECK, (1, 5), MSG, len(MSG), user="alice"),
        id="check-spamc",
    ),
    pytest.param(
        b"PROCESS SPAMC/1.5\ncontent-LENGTH:4\nX-Unknown: ignored\n\nbody",
        Request(Command.PROCESS, (1, 5), b"body", 4),
        id="lf-lines-any-case-unknown-header",
    ),
    pytest.param(
        b"TELL SPAMC/1.5\r\nMessage-class: spam\r\nSet: local\r\nUser: bob\r\n"
        b"Content-length: 5\r\n\r\nhello",
        Request(Command.TELL, (1, 5), b"hello", 5, "bob", "spam", sets=frozenset({"local"})),
        id="tell-learn-spam",
    ),
    pytest.param(
        b"TELL SPAMC/1.5\r\nMessage-class: HAM\r\nSet: local,remote\r\nContent-length: 0\r\n\r\n",
        Request(Command.TELL, (1, 5), message_class="ham", sets=frozenset({"local", "remote"})),
        id="tell-report-ham-empty-body",
    ),
    pytest.param(
        b"TELL SPAMC/1.5\r\nRemove: local\r\nContent-length: 1\r\n\r\nx",
        Request(Command.TELL, (1, 5), b"x", 1, removes=frozenset({"local"})),
        id="tell-forget",
    ),
]


@pytest.mark.parametrize(("data", "expected"), REQUESTS)
def test_whole_request(data: bytes, expected: Request) -> None:
    assert RequestParser().feed(data) == expected


@pytest.mark.parametrize(("data", "expected"), REQUESTS)
def test_request_fed_one_byte_at_a_time(data: bytes, expected: Request) -> None:
    parser = RequestParser()
    for i in range(len(data) - 1):
        assert parser.feed(data[i : i + 1]) is None
    assert parser.feed(data[-1:]) == expected
    assert parser.feed_eof() == expected  # the client's half-close after it changes nothing


def test_bytes_after_the_body_are_ignored() -> None:
    parser = RequestParser()
    request = parser.feed(b"CHECK SPAMC/1.5\r\nContent-length: 2\r\n\r\nabEXTRA")
    assert request is not None
    assert request.body == b"ab"
    assert parser.feed(b"more") is None


def test_without_content_length_the_body_runs_to_eof() -> None:
    parser = RequestParser()
    assert parser.feed(b"PROCESS SPAMC/1.2\r\n\r\n" + MSG[:10]) is None
    assert parser.feed(MSG[10:]) is None
    assert parser.feed_eof() == Request(Command.PROCESS, (1, 2), MSG, len(MSG))


def test_spamc_1_0_sends_no_headers() -> None:
    parser = RequestParser()
    assert parser.feed(b"CHECK SPAMC/1.0\r\n" + MSG) is None
    assert parser.feed_eof() == Request(Command.CHECK, (1, 0), MSG, len(MSG))


def test_zlib_body_is_inflated() -> None:
    packed = zlib.compress(MSG, 3)
    data = b"CHECK SPAMC/1.5\r\nCompress: zlib\r\nContent-length: %d\r\n\r\n" % len(packed)
    request = RequestParser().feed(data + packed)
    assert request == Request(Command.CHECK, (1, 5), MSG, len(MSG), compressed=True)


def test_zlib_body_without_content_length_runs_to_eof() -> None:
    parser = RequestParser()
    assert parser.feed(b"SYMBOLS SPAMC/1.5\r\nCompress: ZLIB\r\n\r\n" + zlib.compress(MSG)) is None
    assert parser.feed_eof().body == MSG


def _compressed(command: str, body: bytes) -> bytes:
    packed = zlib.compress(body, 9)
    head = f"{command} SPAMC/1.5\r\nCompress: zlib\r\nContent-length: {len(packed)}\r\n\r\n"
    return head.encode() + packed


def test_zlib_bomb_is_refused_for_process() -> None:
    parser = RequestParser(max_body_bytes=10_000)
    with pytest.raises(SpamdViolation, match="inflates beyond 10000 bytes"):
        parser.feed(_compressed("PROCESS", b"x" * 1_000_000))


def test_zlib_bomb_is_cut_for_a_scan() -> None:
    request = RequestParser(scan_bytes=1000).feed(_compressed("CHECK", b"x" * 1_000_000))
    assert request is not None
    assert request.body == b"x" * 1000
    assert request.truncated


@pytest.mark.parametrize(
    ("packed", "match"),
    [
        pytest.param(b"not zlib at all", "zlib: Error -3", id="garbage"),
        pytest.param(zlib.compress(MSG)[:-6], "ends before its stream", id="cut-short"),
    ],
)
def test_bad_zlib(packed: bytes, match: str) -> None:
    head = b"CHECK SPAMC/1.5\r\nCompress: zlib\r\nContent-length: %d\r\n\r\n" % len(packed)
    with pytest.raises(SpamdViolation, match=match):
        RequestParser().feed(head + packed)


def test_scans_keep_only_scan_bytes_but_process_keeps_all() -> None:
    body = b"y" * 5000
    for command, kept in (("CHECK", 100), ("TELL", 100), ("PROCESS", 5000)):
        data = f"{command} SPAMC/1.5\r\nContent-length: 5000\r\n\r\n".encode() + body
        request = RequestParser(scan_bytes=100).feed(data)
        assert request is not None
        assert (len(request.body), request.length) == (kept, 5000)


def test_body_over_the_hard_limit_is_refused() -> None:
    with pytest.raises(SpamdViolation, match="over 1000"):
        RequestParser(max_body_bytes=1000).feed(b"CHECK SPAMC/1.5\r\nContent-length: 1001\r\n\r\n")
    parser = RequestParser(max_body_bytes=1000)
    parser.feed(b"CHECK SPAMC/1.5\r\n\r\n" + b"z" * 1000)
    with pytest.raises(SpamdViolation, match="over 1000"):
        parser.feed(b"z")


MALFORMED = [
    pytest.param(b"GET / HTTP/1.1\r\n", "bad request line", id="http"),
    pytest.param(b"FROB SPAMC/1.5\r\n", "unknown command 'FROB'", id="unknown-verb"),
    pytest.param(b"CHECK SPAMC/2.0\r\n", "unsupported protocol version", id="version-2"),
    pytest.param(b"CHECK SPAMC/1.5\r\nContent-length: 1e3\r\n", "not a number", id="clen-nan"),
    pytest.param(b"CHECK SPAMC/1.5\r\nContent-length: -1\r\n", "not a number", id="clen-neg"),
    pytest.param(
        b"CHECK SPAMC/1.5\r\nContent-length: 1\r\nContent-length: 2\r\n",
        "two different Content-length",
        id="clen-twice",
    ),
    pytest.param(b"CHECK SPAMC/1.5\r\nno colon\r\n", "'Name: value'", id="no-colon"),
    pytest.param(b"CHECK SPAMC/1.5\r\nCompress: gzip\r\n", "not supported", id="gzip"),
    pytest.param(b"CHECK SPAMC/1.5\r\nUser: a\x1bb\r\n", "control characters", id="user-ctl"),
    pytest.param(b"TELL SPAMC/1.5\r\nMessage-class: eggs\r\n", "spam or ham", id="bad-class"),
    pytest.param(
        b"TELL SPAMC/1.5\r\nMessage-class: spam\r\nSet: local\r\nRemove: local\r\n\r\n",
        "set local and remove local",
        id="set-and-remove",
    ),
    pytest.param(b"TELL SPAMC/1.5\r\nSet: local\r\n\r\n", "needs a Message-class", id="no-class"),
    pytest.param(b"CHECK SPAMC/1.5\r\n" + b"X: y\r\n" * 256, "too many headers", id="flood"),
    pytest.param(b"CHECK SPAMC/1.5\r\nX: " + b"y" * 9000, "longer than 8192", id="long-line"),
]


@pytest.mark.parametrize(("data", "match"), MALFORMED)
def test_malformed_request(data: bytes, match: str) -> None:
    with pytest.raises(SpamdViolation, match=match):
        RequestParser().feed(data)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        pytest.param(b"", "closed before the request line", id="nothing"),
        pytest.param(b"CHECK SPAM", "closed before the request line", id="half-line"),
        pytest.param(b"PING SPAMC/1.5\r\n", "EOF during headers", id="ping-1.5-no-blank"),
        pytest.param(
            b"CHECK SPAMC/1.5\r\nContent-length: 10\r\n\r\nshort",
            "expected 10 bytes, got 5",
            id="short-body",
        ),
    ],
)
def test_incomplete_request_at_eof(data: bytes, match: str) -> None:
    parser = RequestParser()
    assert parser.feed(data) is None
    assert parser.idle is (not data)
    with pytest.raises(SpamdViolation, match=match):
        parser.feed_eof()


def check(version: tuple[int, int] = (1, 5), command: Command = Command.CHECK) -> Request:
    return Request(command, version)


SPAM = ScanReply(True, 16.25, 15.0)
HAM = ScanReply(False, 1.0, 15.0)

REPLIES = [
    pytest.param(
        check(), SPAM, b"SPAMD/1.1 0 EX_OK\r\nSpam: True ; 16.2 / 15.0\r\n\r\n", id="check-spam"
    ),
    pytest.param(
        check((1, 2)), HAM, b"SPAMD/1.1 0 EX_OK\r\nSpam: False ; 1.0 / 15.0\r\n\r\n", id="check-ham"
    ),
    pytest.param(
        check(command=Command.SYMBOLS),
        ScanReply(True, 16.25, 15.0, b"A,B"),
        b"SPAMD/1.1 0 EX_OK\r\nContent-length: 3\r\nSpam: True ; 16.2 / 15.0\r\n\r\nA,B",
        id="symbols",
    ),
    pytest.param(
        check((1, 2), Command.SYMBOLS),
        ScanReply(True, 16.25, 15.0, b"A,B"),
        b"SPAMD/1.1 0 EX_OK\r\nSpam: True ; 16.2 / 15.0\r\n\r\nA,B\r\n",
        id="symbols-1.2",
    ),
    pytest.param(
        check(command=Command.REPORT_IFSPAM),
        HAM,
        b"SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\nSpam: False ; 1.0 / 15.0\r\n\r\n",
        id="report-ifspam-ham",
    ),
    pytest.param(
        check(command=Command.PROCESS),
        ScanReply(False, -2.34, 15.0, b"msg"),
        b"SPAMD/1.1 0 EX_OK\r\nContent-length: 3\r\nSpam: False ; -2.3 / 15.0\r\n\r\nmsg",
        id="process",
    ),
    pytest.param(
        check((1, 2), Command.PROCESS),
        ScanReply(False, 1.0, 15.0, b"msg"),
        b"SPAMD/1.1 0 EX_OK\r\nContent-length: 3\r\n\r\nmsg",
        id="process-1.2",
    ),
    pytest.param(
        check((1, 1), Command.HEADERS),
        ScanReply(False, 1.0, 15.0, b"msg"),
        b"SPAMD/1.0 0 EX_OK\r\nmsg",
        id="headers-1.1",
    ),
]


@pytest.mark.parametrize(("request_", "reply", "expected"), REPLIES)
def test_encode_result(request_: Request, reply: ScanReply, expected: bytes) -> None:
    assert encode_result(request_, reply) == expected


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        pytest.param(ScanReply(True, 6.0, 15.0), "Spam: True ; 6.0 / 15.0", id="spam-below"),
        pytest.param(ScanReply(False, 15.0, 15.0), "Spam: False ; 14.9 / 15.0", id="ham-at"),
        pytest.param(ScanReply(False, 14.96, 15.0), "Spam: False ; 14.9 / 15.0", id="rounds-up"),
        pytest.param(ScanReply(False, -0.04, 15.0), "Spam: False ; 0.0 / 15.0", id="minus-0"),
    ],
)
def test_spam_header(reply: ScanReply, expected: str) -> None:
    assert spam_header(reply) == expected


def test_other_replies() -> None:
    assert encode_pong() == b"SPAMD/1.5 0 PONG\r\n"
    assert encode_tell(["local"], []) == b"SPAMD/1.1 0 EX_OK\r\nDidSet: local\r\n\r\n"
    assert encode_tell([], ["local"]) == b"SPAMD/1.1 0 EX_OK\r\nDidRemove: local\r\n\r\n"
    assert encode_tell([], []) == b"SPAMD/1.1 0 EX_OK\r\n\r\n"
    assert encode_error(ExitCode.EX_PROTOCOL, "Bad request:\r\nno\tway ") == (
        b"SPAMD/1.0 76 EX_PROTOCOL Bad request: no way\r\n"
    )
