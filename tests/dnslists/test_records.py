"""Record types beyond A (TXT, AAAA, MX, PTR) for SPF, DKIM and DMARC: the codec against
dnspython's, and the client against the in-test server: cache keys by type, coalescing,
NXDOMAIN against NODATA, TTLs, and large TXT answers over EDNS and TCP."""

from __future__ import annotations

import asyncio
import random
import struct

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from tests.dnslists.dnsserver import Behaviour, DnsServer

from seawall.dnslists.answer import Status
from seawall.dnslists.client import DnsClient
from seawall.dnslists.nameservers import parse_nameserver
from seawall.dnslists.wire import RdType, WireError, decode_reply, encode_query

NAME = "mail.example.test"


def _response(query: bytes) -> dns.message.Message:
    return dns.message.make_response(dns.message.from_wire(query))


def _reply(rdtype: RdType, *records: str, ttl: int = 300) -> tuple[bytes, bytes]:
    query = encode_query(21, NAME, rdtype)
    response = _response(query)
    owner = response.question[0].name
    response.answer.append(dns.rrset.from_text_list(owner, ttl, "IN", rdtype.name, records))
    return response.to_wire(), query


# The codec


def test_a_query_is_unchanged_and_other_types_carry_edns() -> None:
    a = encode_query(0xBEEF, NAME)
    assert a == encode_query(0xBEEF, NAME, RdType.A)
    assert a.endswith(b"\x04test\x00\x00\x01\x00\x01")  # no additional record
    for rdtype in (RdType.TXT, RdType.AAAA, RdType.MX, RdType.PTR):
        parsed = dns.message.from_wire(encode_query(0xBEEF, NAME, rdtype))
        assert parsed.question[0].rdtype == rdtype
        assert (parsed.edns, parsed.payload) == (0, 1232)


def test_txt_strings_of_one_record_are_joined_records_kept_apart() -> None:
    """RFC 7208 §3.3 / RFC 6376 §3.6.2.2: one record's character-strings are concatenated
    without spaces; separate records stay separate."""
    long = "k=rsa; p=" + "A" * 400
    wire, query = _reply(
        RdType.TXT,
        '"v=spf1 ip4:192.0.2.0/24" " -all"',
        " ".join(f'"{long[i : i + 255]}"' for i in range(0, len(long), 255)),
        '""',
    )
    reply = decode_reply(wire, query)
    assert sorted(reply.addresses) == ["", long, "v=spf1 ip4:192.0.2.0/24 -all"]
    assert reply.ttl == 300


def test_txt_with_non_ascii_bytes_decodes_without_raising() -> None:
    wire, query = _reply(RdType.TXT, '"v=spf1 \\128a -all"')
    assert decode_reply(wire, query).addresses == ("v=spf1 \ufffda -all",)


def test_aaaa_is_canonical_text() -> None:
    wire, query = _reply(RdType.AAAA, "2001:DB8:0:0::1", "::ffff:192.0.2.1")
    assert sorted(decode_reply(wire, query).addresses) == ["2001:db8::1", "::ffff:192.0.2.1"]


def test_mx_exchanges_come_by_preference_and_null_mx_is_a_dot() -> None:
    wire, query = _reply(RdType.MX, "20 b.example.test.", "5 a.example.test.", "30 c.example.")
    assert decode_reply(wire, query).addresses == ("a.example.test", "b.example.test", "c.example")
    wire, query = _reply(RdType.MX, "0 .")
    assert decode_reply(wire, query).addresses == (".",)


def test_ptr_names_with_compression() -> None:
    query = encode_query(22, "1.2.0.192.in-addr.arpa", RdType.PTR)
    response = _response(query)
    owner = response.question[0].name
    response.answer.append(
        dns.rrset.from_text_list(owner, 60, "IN", "PTR", ["mx.in-addr.arpa.", "Host.Example."])
    )
    reply = decode_reply(response.to_wire(), query)  # dnspython compresses "in-addr.arpa"
    assert sorted(reply.addresses) == ["Host.Example", "mx.in-addr.arpa"]


def test_a_label_holding_a_dot_or_a_space_drops_that_record() -> None:
    wire, query = _reply(RdType.PTR, r"evil\.example.test.", r"a\032b.test.", "ok.test.")
    assert decode_reply(wire, query).addresses == ("ok.test",)


def test_records_of_other_types_on_the_way_are_skipped() -> None:
    query = encode_query(23, NAME, RdType.TXT)
    response = _response(query)
    owner = response.question[0].name
    response.answer.append(dns.rrset.from_text(owner, 60, "IN", "CNAME", "spf.example.test."))
    response.answer.append(dns.rrset.from_text("spf.example.test.", 30, "IN", "TXT", '"v=spf1"'))
    reply = decode_reply(response.to_wire(), query)
    assert (reply.addresses, reply.ttl) == (("v=spf1",), 30)


def test_nodata_and_nxdomain_give_the_negative_ttl() -> None:
    for rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        query = encode_query(24, NAME, RdType.MX)
        response = _response(query)
        response.set_rcode(rcode)
        soa = "ns.example.test. h.example.test. 1 3600 600 86400 45"
        response.authority.append(dns.rrset.from_text("example.test.", 900, "IN", "SOA", soa))
        reply = decode_reply(response.to_wire(), query)
        assert (reply.rcode, reply.addresses, reply.ttl) == (rcode, (), 45)


def test_a_reply_to_the_same_name_of_another_type_is_rejected() -> None:
    wire, _ = _reply(RdType.AAAA, "2001:db8::1")
    with pytest.raises(WireError, match="question"):
        decode_reply(wire, encode_query(21, NAME, RdType.TXT))


def test_forward_or_looping_compression_pointers_are_wire_errors() -> None:
    query = encode_query(25, NAME, RdType.PTR)
    header = struct.pack("!HHHHHH", 25, 0x8180, 1, 1, 0, 0)
    question = query[12:-11]
    at = 12 + len(question)
    record = b"\xc0\x0c" + struct.pack("!HHIH", 12, 1, 60, 2)
    forward = header + question + record + struct.pack("!H", 0xC000 | (at + 12 + 2))
    with pytest.raises(WireError):
        decode_reply(forward, query)
    itself = header + question + record + struct.pack("!H", 0xC000 | (at + 12))
    with pytest.raises(WireError):
        decode_reply(itself, query)


@pytest.mark.parametrize("rdtype", [RdType.TXT, RdType.AAAA, RdType.MX, RdType.PTR])
def test_random_records_never_raise_anything_but_wire_error(rdtype: RdType) -> None:
    query = encode_query(26, NAME, rdtype)
    question = query[12:-11]
    rng = random.Random(7208 + rdtype)
    for _ in range(500):
        header = struct.pack("!HHHHHH", 26, 0x8180, 1, rng.randrange(4), rng.randrange(3), 0)
        records = b""
        for _ in range(rng.randrange(4)):
            rdata = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
            records += b"\xc0\x0c" + struct.pack("!HHIH", rdtype, 1, 60, len(rdata)) + rdata
        body = records + bytes(rng.randrange(256) for _ in range(rng.randrange(8)))
        try:
            reply = decode_reply(header + question + body, query)
        except WireError:
            continue
        assert all(isinstance(record, str) for record in reply.addresses)


# The client


def _client(server: DnsServer) -> DnsClient:
    return DnsClient([parse_nameserver(server.address)])


SPF = "v=spf1 mx -all"
RECORDS = {
    ("example.test", "TXT"): [f'"{SPF}"', '"google-site-verification=x"'],
    ("example.test", "MX"): ["10 mx.example.test."],
    ("mx.example.test", "AAAA"): ["2001:db8::25"],
    ("25.2.0.192.in-addr.arpa", "PTR"): ["mx.example.test."],
}


async def test_each_type_is_asked_and_answered_with_its_records() -> None:
    with DnsServer(Behaviour(records=RECORDS, listed={"mx.example.test": ["192.0.2.25"]})) as s:
        client = _client(s)
        try:
            txt, mx, a, aaaa, ptr = await asyncio.gather(
                client.resolve("example.test", RdType.TXT, 1.0),
                client.resolve("example.test", RdType.MX, 1.0),
                client.resolve("mx.example.test", RdType.A, 1.0),
                client.resolve("mx.example.test", RdType.AAAA, 1.0),
                client.resolve("25.2.0.192.in-addr.arpa", RdType.PTR, 1.0),
            )
        finally:
            client.close()
    assert txt.status is Status.LISTED
    assert sorted(txt.records) == ["google-site-verification=x", SPF]
    assert txt.ttl == 300
    assert mx.records == ("mx.example.test",)
    assert a.records == ("192.0.2.25",)
    assert aaaa.records == ("2001:db8::25",)
    assert ptr.records == ("mx.example.test",)


async def test_the_cache_key_holds_the_type() -> None:
    """The same name asked for TXT and for MX is two questions, each cached on its own;
    A asked through resolve() shares the block lists' entry for the name."""
    with DnsServer(Behaviour(records=RECORDS)) as server:
        client = _client(server)
        try:
            for _ in range(3):
                assert (await client.resolve("Example.Test.", RdType.TXT, 1.0)).listed
                assert (await client.resolve("example.test", RdType.MX, 1.0)).listed
                await client.resolve("example.test", RdType.A, 1.0)
                await client.lookup("example.test", 1.0)
        finally:
            client.close()
        assert server.types == {
            ("example.test", "TXT"): 1,
            ("example.test", "MX"): 1,
            ("example.test", "A"): 1,
        }
    assert client.cache.get(("example.test", RdType.TXT)) is not None
    assert client.cache.get("example.test") is not None  # the A answer, under its name


async def test_concurrent_questions_of_one_type_share_a_query() -> None:
    with DnsServer(Behaviour(records=RECORDS, delay_s=0.05)) as server:
        client = _client(server)
        try:
            first = client.resolve("example.test", RdType.TXT, 1.0)
            second = client.resolve("example.test", RdType.TXT, 1.0)
            other = client.resolve("example.test", RdType.MX, 1.0)
            assert second is first
            assert other is not first
            await asyncio.gather(first, other)
        finally:
            client.close()
        assert server.types[("example.test", "TXT")] == 1
    assert client.stats.coalesced == 1


async def test_nxdomain_is_told_from_nodata() -> None:
    with DnsServer(Behaviour(records=RECORDS, negative_ttl=90)) as server:
        client = _client(server)
        try:
            nodata = await client.resolve("example.test", RdType.AAAA, 1.0)
            missing = await client.resolve("nowhere.example.test", RdType.TXT, 1.0)
        finally:
            client.close()
    assert (nodata.status, nodata.nxdomain, nodata.ttl) == (Status.NOT_LISTED, False, 90)
    assert (missing.status, missing.nxdomain, missing.ttl) == (Status.NOT_LISTED, True, 90)


async def test_a_large_txt_answer_comes_over_edns_or_tcp() -> None:
    """About 1 KB of TXT fits the 1232-byte EDNS payload over UDP; 3 KB comes back
    truncated and is asked again over TCP."""
    medium = [f'"{n:02d}' + "m" * 248 + '"' for n in range(4)]
    large = [f'"{n:02d}' + "l" * 248 + '"' for n in range(12)]
    records = {("medium.test", "TXT"): medium, ("large.test", "TXT"): large}
    with DnsServer(Behaviour(records=records)) as server:
        client = _client(server)
        try:
            fits = await client.resolve("medium.test", RdType.TXT, 1.0)
            assert client.stats.tcp == 0
            big = await client.resolve("large.test", RdType.TXT, 1.0)
        finally:
            client.close()
        assert server.types[("large.test", "TXT")] == 2  # UDP (TC), then TCP
    assert sorted(fits.records) == [f"{n:02d}" + "m" * 248 for n in range(4)]
    assert sorted(big.records) == [f"{n:02d}" + "l" * 248 for n in range(12)]
    assert client.stats.tcp == 1


async def test_a_name_that_cannot_be_asked_is_an_error_answer() -> None:
    client = DnsClient([("127.0.0.1", 9)])
    try:
        answer = await client.resolve("a..b.test", RdType.TXT, 1.0)
        accented = await client.resolve("café.test", RdType.MX, 1.0)
    finally:
        client.close()
    assert answer.status is accented.status is Status.ERROR


async def test_a_silent_name_times_out_while_others_answer() -> None:
    behaviour = Behaviour(records=RECORDS, silent_names={"slow.example.test"})
    with DnsServer(behaviour) as server:
        client = _client(server)
        try:
            slow, fast = await asyncio.gather(
                client.resolve("slow.example.test", RdType.TXT, 0.2),
                client.resolve("example.test", RdType.TXT, 0.2),
            )
        finally:
            client.close()
    assert slow.status is Status.TIMEOUT
    assert fast.listed


def test_dnspython_agrees_with_the_edns_query() -> None:
    """The OPT record is well-formed: dnspython reads the payload and version back."""
    parsed = dns.message.from_wire(encode_query(1, NAME, RdType.TXT))
    assert parsed.opt is not None
    assert parsed.opt.rdclass == 1232
    assert not parsed.options
    assert (parsed.edns, parsed.ednsflags) == (0, 0)
    assert dns.rdatatype.to_text(parsed.question[0].rdtype) == "TXT"
