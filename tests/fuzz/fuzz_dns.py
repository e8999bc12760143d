"""Fuzz target: a DNS reply to our query either decodes or raises WireError, nothing else.

A random datagram almost never repeats our question, so the harness builds one that does
and fuzzes the rest: the first byte picks the query (an A query of a block list, or a TXT,
AAAA, MX or PTR query with its EDNS record), the next 12 bytes are the reply's header
(forced to be a reply), then the question as asked, then the answer and authority records
as fuzzed.  One input in eight is taken whole, question and all.
"""

from __future__ import annotations

import ipaddress

from seawall.dnslists.wire import RdType, WireError, decode_reply, encode_query

QUERIES = tuple(
    encode_query(0x1234, name, rdtype)
    for name, rdtype in (
        ("2.0.0.127.zen.example", RdType.A),
        ("_dmarc.example.com", RdType.TXT),
        ("mail.example.net", RdType.AAAA),
        ("example.org", RdType.MX),
        ("7.2.0.192.in-addr.arpa", RdType.PTR),
    )
)


def check(data: bytes) -> None:
    if not data:
        return
    choice, data = data[0], data[1:]
    query = QUERIES[choice % len(QUERIES)]
    if choice < 224:
        question = query[12:-11] if query[11] else query[12:]
        header = bytearray(data[:12].ljust(12, b"\0"))
        header[2] = (header[2] | 0x80) & 0x87  # QR set, standard query
        header[4:6] = b"\x00\x01"  # one question
        data = bytes(header) + question + data[12:]
    try:
        reply = decode_reply(data, query)
    except WireError:
        return
    assert 0 <= reply.rcode <= 15
    assert reply.ttl is None or 0 <= reply.ttl <= 0x7FFFFFFF
    for record in reply.addresses:
        assert isinstance(record, str)
        if query is QUERIES[0]:
            ipaddress.IPv4Address(record)
        elif query is QUERIES[2]:
            ipaddress.IPv6Address(record)
