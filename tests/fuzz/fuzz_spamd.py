"""Fuzz target: the SPAMC request parser raises SpamdViolation or returns a request.

The first byte picks the piece size (1 to 32 bytes), and for one input in four small scan
and body limits.  Fed whole or in pieces, then closed, the stream must give the same
request or a SpamdViolation both ways; the replies built from what it parsed must encode.
"""

from __future__ import annotations

from tests.fuzz.harness import chunks

from seawall.errors import SpamdViolation
from seawall.frontends.spamd.codec import (
    Command,
    ExitCode,
    Request,
    RequestParser,
    ScanReply,
    encode_error,
    encode_result,
    encode_tell,
)


def _parse(pieces: list[bytes], scan: int, most: int) -> Request | str:
    parser = RequestParser(scan_bytes=scan, max_body_bytes=most)
    try:
        for piece in pieces:
            request = parser.feed(piece)
            if request is not None:
                return request
        return parser.feed_eof()
    except SpamdViolation as exc:
        reply = encode_error(ExitCode.EX_PROTOCOL, str(exc))
        assert reply.endswith(b"\r\n")
        assert reply.count(b"\n") == 1
        return "violation"


def check(data: bytes) -> None:
    if not data:
        return
    control, stream = data[0], data[1:]
    scan, most = (64, 1024) if control >= 192 else (64 * 1024, 1024 * 1024)
    whole = _parse([stream], scan, most)
    split = _parse(chunks(stream, control % 32 + 1), scan, most)
    assert whole == split, "fed whole and fed in pieces, the request parses differently"
    if isinstance(whole, str):
        return
    assert len(whole.body) <= most
    if whole.command is not Command.PROCESS and not whole.compressed:
        assert len(whole.body) <= scan
    if whole.command is Command.TELL:
        encode_tell(sorted(whole.sets), sorted(whole.removes))
    else:
        encode_result(whole, ScanReply(spam=True, score=16.2, threshold=15.0, body=whole.body))
