"""The query codec against dnspython's independent one: what we send, what we read back."""

from __future__ import annotations

import random
import struct

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest

from seawall.dnslists.wire import WireError, decode_reply, encode_query, reply_id

NAME = "7.113.0.203.zen.example"


def _response(query: bytes) -> dns.message.Message:
    return dns.message.make_response(dns.message.from_wire(query))


def test_query_is_a_recursive_a_query_dnspython_reads() -> None:
    wire = encode_query(0xBEEF, NAME)
    parsed = dns.message.from_wire(wire)
    assert parsed.id == 0xBEEF
    assert parsed.flags & dns.flags.RD
    assert not parsed.flags & dns.flags.QR
    assert parsed.question[0].name.to_text() == NAME + "."
    assert dns.rdatatype.to_text(parsed.question[0].rdtype) == "A"
    assert reply_id(wire) == 0xBEEF


@pytest.mark.parametrize("name", ["a..b", "x" * 64 + ".example", ".".join(["abcdefgh"] * 32)])
def test_impossible_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message names the bad part
        encode_query(1, name)


def test_listed_reply_gives_every_address_and_the_lowest_ttl() -> None:
    query = encode_query(7, NAME)
    response = _response(query)
    owner = response.question[0].name
    response.answer.append(dns.rrset.from_text_list(owner, 300, "IN", "A", ["127.0.0.4"]))
    response.answer.append(dns.rrset.from_text(owner, 90, "IN", "A", "127.0.0.10"))
    reply = decode_reply(response.to_wire(), query)  # dnspython compresses the owner names
    assert reply.qid == 7
    assert reply.rcode == 0
    assert not reply.truncated
    assert reply.addresses == ("127.0.0.4", "127.0.0.10")
    assert reply.ttl == 90


def test_nxdomain_gives_the_soa_negative_ttl() -> None:
    query = encode_query(8, NAME)
    response = _response(query)
    response.set_rcode(dns.rcode.NXDOMAIN)
    soa = "ns.zen.example. host.zen.example. 1 3600 600 86400 150"
    response.authority.append(dns.rrset.from_text("zen.example.", 900, "IN", "SOA", soa))
    reply = decode_reply(response.to_wire(), query)
    assert (reply.rcode, reply.addresses, reply.ttl) == (3, (), 150)  # min(SOA TTL, minimum)


def test_cname_chain_and_truncation() -> None:
    query = encode_query(9, NAME)
    response = _response(query)
    owner = response.question[0].name
    response.answer.append(dns.rrset.from_text(owner, 60, "IN", "CNAME", "x.zen.example."))
    response.answer.append(dns.rrset.from_text("x.zen.example.", 60, "IN", "A", "127.0.0.2"))
    assert decode_reply(response.to_wire(), query).addresses == ("127.0.0.2",)
    response.flags |= dns.flags.TC
    assert decode_reply(response.to_wire(), query).truncated


def test_reply_to_another_question_is_rejected() -> None:
    query = encode_query(10, NAME)
    other = _response(encode_query(10, "8.113.0.203.zen.example"))
    with pytest.raises(WireError, match="question"):
        decode_reply(other.to_wire(), query)
    upper = _response(encode_query(10, NAME.upper()))  # case does not make it another name
    assert decode_reply(upper.to_wire(), query).rcode == 0


@pytest.mark.parametrize("cut", [0, 5, 12, 30, 45, 50])
def test_cut_and_garbage_datagrams_raise_wire_error_only(cut: int) -> None:
    query = encode_query(11, NAME)
    response = _response(query)
    response.answer.append(
        dns.rrset.from_text(response.question[0].name, 60, "IN", "A", "127.0.0.2")
    )
    wire = response.to_wire()
    with pytest.raises(WireError):
        decode_reply(wire[:cut], query)
    with pytest.raises(WireError):
        decode_reply(query, query)  # a query is not a reply


def test_random_records_never_raise_anything_but_wire_error() -> None:
    query = encode_query(12, NAME)
    rng = random.Random(5782)
    for _ in range(500):
        header = struct.pack("!HHHHHH", 12, 0x8180, 1, rng.randrange(4), rng.randrange(4), 0)
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(60)))
        try:
            reply = decode_reply(header + query[12:] + body, query)
        except WireError:
            continue
        assert all(address.count(".") == 3 for address in reply.addresses)
