"""Fuzz target: the policy parser raises PolicyViolation or returns requests.

The first byte picks the piece size (1 to 32 bytes), and for one input in four small line
and attribute limits.  Fed whole or in pieces, the stream must give the same requests or a
PolicyViolation both ways; any value from a request, echoed in a reply, stays one line.
"""

from __future__ import annotations

from tests.fuzz.harness import chunks

from seawall.errors import PolicyViolation
from seawall.frontends.policy.codec import PolicyParser, PolicyRequest, encode_reply


def _parse(pieces: list[bytes], line: int, attributes: int) -> list[PolicyRequest] | None:
    parser = PolicyParser(max_line_bytes=line, max_attributes=attributes)
    requests: list[PolicyRequest] = []
    try:
        for piece in pieces:
            requests += parser.feed(piece)
    except PolicyViolation:
        return None
    return requests


def check(data: bytes) -> None:
    if not data:
        return
    control, stream = data[0], data[1:]
    line, attributes = (40, 4) if control >= 192 else (8192, 100)
    whole = _parse([stream], line, attributes)
    split = _parse(chunks(stream, control % 32 + 1), line, attributes)
    assert whole == split, "fed whole and fed in pieces, the requests differ"
    for request in whole or ():
        assert request.request == request.attributes["request"]
        _ = request.protocol_state, request.client_address, request.instance
        for value in request.attributes.values():
            reply = encode_reply(value)
            assert reply.startswith(b"action=")
            assert reply.endswith(b"\n\n")
            assert reply.count(b"\n") == 2, "a value from a request forged a reply line"
