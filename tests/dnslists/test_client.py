"""The UDP client against a real DNS server on loopback: answers, coalescing, the cache,
retries, timeouts, failures and the TCP fallback."""

from __future__ import annotations

import asyncio
import time

import pytest
from tests.dnslists.dnsserver import Behaviour, DnsServer

from seawall.dnslists.answer import Status
from seawall.dnslists.cache import AnswerCache
from seawall.dnslists.client import DnsClient
from seawall.dnslists.nameservers import parse_nameserver
from seawall.errors import ConfigError

LISTED = "4.3.2.1.zen.test"
OTHER = "5.3.2.1.zen.test"


def _client(*servers: DnsServer, **kw: object) -> DnsClient:
    return DnsClient([parse_nameserver(s.address) for s in servers], **kw)  # type: ignore[arg-type]


async def test_listed_and_not_listed() -> None:
    with DnsServer(Behaviour(listed={LISTED: ["127.0.0.2", "127.0.0.4"]})) as server:
        client = _client(server)
        try:
            listed = await client.lookup(LISTED, 1.0)
            missing = await client.lookup(OTHER, 1.0)
        finally:
            client.close()
    assert listed.status is Status.LISTED
    assert sorted(listed.addresses) == ["127.0.0.2", "127.0.0.4"]
    assert listed.ttl == 300
    assert missing.status is Status.NOT_LISTED
    assert missing.ttl == 120  # the SOA's negative TTL
    assert (client.stats.listed, client.stats.not_listed, client.stats.sent) == (1, 1, 2)


async def test_concurrent_identical_lookups_share_one_query() -> None:
    behaviour = Behaviour(listed={LISTED: ["127.0.0.2"]}, delay_s=0.05)
    with DnsServer(behaviour) as server:
        client = _client(server)
        try:
            first = client.lookup(LISTED, 1.0)
            second = client.lookup(LISTED, 1.0)  # another message asks the same name meanwhile
            assert second is first
            answers = await asyncio.gather(first, second)
        finally:
            client.close()
        assert server.queries[LISTED] == 1
    assert answers[0] is answers[1]
    assert client.stats.coalesced == 1


async def test_answers_are_cached_listed_and_nxdomain() -> None:
    with DnsServer(Behaviour(listed={LISTED: ["127.0.0.2"]})) as server:
        cache = AnswerCache()
        client = _client(server, cache=cache)
        try:
            for _ in range(3):
                assert (await client.lookup(LISTED, 1.0)).listed
                assert not (await client.lookup(OTHER, 1.0)).listed
        finally:
            client.close()
        assert server.queries == {LISTED: 1, OTHER: 1}
    assert (cache.stats.hits, cache.stats.misses) == (4, 2)


async def test_silent_server_times_out_in_bounded_time_after_one_retry() -> None:
    with DnsServer(Behaviour(silent=True)) as server:
        client = _client(server)
        t0 = time.perf_counter()
        try:
            answer = await asyncio.wait_for(client.lookup(LISTED, 0.3), 30)  # a hang guard
        finally:
            client.close()
        elapsed = time.perf_counter() - t0
        assert server.queries[LISTED] == 2  # sent, then once more halfway
    assert answer.status is Status.TIMEOUT
    assert elapsed > 0.28  # the timeout was waited for
    assert client.stats.timeouts == 1


async def test_retry_goes_to_the_next_nameserver() -> None:
    with (
        DnsServer(Behaviour(silent=True)) as dead,
        DnsServer(Behaviour(listed={LISTED: ["127.0.0.2"]})) as alive,
    ):
        client = _client(dead, alive)
        t0 = time.perf_counter()
        try:
            answer = await asyncio.wait_for(client.lookup(LISTED, 0.4), 30)  # a hang guard
        finally:
            client.close()
    assert answer.listed
    assert time.perf_counter() - t0 > 0.18  # answered after the retry at 0.2 s,
    assert (dead.queries[LISTED], alive.queries[LISTED]) == (1, 1)  # by the next nameserver


@pytest.mark.parametrize(
    ("rcode", "status"), [("SERVFAIL", Status.SERVFAIL), ("REFUSED", Status.ERROR)]
)
async def test_failure_rcodes(rcode: str, status: Status) -> None:
    with DnsServer(Behaviour(rcode=rcode)) as server:
        client = _client(server)
        try:
            answer = await client.lookup(LISTED, 1.0)
        finally:
            client.close()
    assert answer.status is status
    assert answer.detail == rcode


async def test_truncated_reply_is_asked_again_over_tcp() -> None:
    with DnsServer(Behaviour(listed={LISTED: ["127.0.0.3"]}, truncate=True)) as server:
        client = _client(server)
        try:
            answer = await client.lookup(LISTED, 1.0)
        finally:
            client.close()
        assert server.queries[LISTED] == 2  # UDP (TC), then TCP
    assert answer.addresses == ("127.0.0.3",)
    assert client.stats.tcp == 1


async def test_stray_datagrams_are_ignored() -> None:
    """A datagram from an address we did not ask, or with an unknown ID, changes nothing."""
    import socket

    with DnsServer(Behaviour(listed={LISTED: ["127.0.0.2"]}, delay_s=0.1)) as server:
        client = _client(server)
        try:
            future = client.lookup(LISTED, 1.0)
            index, qid = next(iter(client._pending))
            port = client._socks[index].getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as forger:
                forged = bytearray(client._pending[(index, qid)].wire)
                forged[2] |= 0x80  # QR: a reply, from the wrong address, saying NXDOMAIN
                forged[3] = 3
                forger.sendto(bytes(forged), ("127.0.0.1", port))
                forger.sendto(b"\x00\x01garbage", ("127.0.0.1", port))
            answer = await future
        finally:
            client.close()
    assert answer.listed
    assert client.stats.ignored == 2


async def test_names_that_cannot_be_asked_are_errors_not_exceptions() -> None:
    client = DnsClient([("127.0.0.1", 9)])
    try:
        answer = await client.lookup("a..b.zen.test", 1.0)
    finally:
        client.close()
    assert answer.status is Status.ERROR


def test_nameserver_forms() -> None:
    assert parse_nameserver("192.0.2.53") == ("192.0.2.53", 53)
    assert parse_nameserver("192.0.2.53:5353") == ("192.0.2.53", 5353)
    assert parse_nameserver("2001:db8::53") == ("2001:db8::53", 53)
    assert parse_nameserver("[2001:db8::53]:5353") == ("2001:db8::53", 5353)
    for bad in ("resolver.example", "192.0.2.53:0", "[::1]x", "1.2.3.4:99999"):
        with pytest.raises(ConfigError):
            parse_nameserver(bad)
    with pytest.raises(ConfigError):
        DnsClient([])


async def test_ipv6_nameserver_on_dual_stack_sockets() -> None:
    """A v6 nameserver makes the sockets dual-stack; a v4 one still answers through them."""
    with DnsServer(Behaviour(listed={LISTED: ["127.0.0.2"]})) as server:
        client = DnsClient([("::1", 9), parse_nameserver(server.address)])
        try:
            answer = await client.lookup(LISTED, 0.4)  # ::1:9 is silent; the retry answers
        finally:
            client.close()
    assert answer.listed
