"""The checks answered from the cache without a task or a wait give the results the full,
waiting checks give; the domain reputation reads in batches, not one store call a message.

Against NSD on loopback: each case is checked cold (every answer fetched), then again warm,
and the two must agree to the last field."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

import pytest
from tests.auth.dns_server import AuthDns, Records, txt
from tests.auth.signing import ed25519_record, rsa_record, sign

from seawall.auth.spf import SpfChecker
from seawall.auth.standing import DomainStanding
from seawall.config import AuthSettings, ReputationSettings, Trusted
from seawall.detectors.auth import AuthDetector
from seawall.detectors.base import Context, Hit
from seawall.message import Envelope, parse_message
from seawall.store.base import Decayed
from seawall.store.memory import MemoryStore

AddRecords = Callable[[Records], None]

ZONE: dict[str, list[str]] = {
    "fast.test": [
        txt("v=spf1 ip4:192.0.2.0/26 include:_spf.fast-provider.test a:out.fast.test -all"),
        "MX 10 mx.fast.test.",
    ],
    "_spf.fast-provider.test": [txt("v=spf1 ip4:198.51.100.0/24 mx:fast.test ~all")],
    "out.fast.test": ["A 203.0.113.9"],
    "mx.fast.test": ["A 203.0.113.25"],
    "mail.fast.test": [txt("v=spf1 a -all"), "A 192.0.2.7"],
    "rsa._domainkey.fast.test": [rsa_record()],
    "ed._domainkey.fast.test": [ed25519_record()],
    "_dmarc.fast.test": [txt("v=DMARC1; p=reject")],
    "macro.fast.test": [txt("v=spf1 exists:%{ir}.%{l1r+}._list.fast.test -all")],
    "7.2.0.192.joe._list.fast.test": ["A 127.0.0.2"],
    "loop.fast.test": [txt("v=spf1 include:loop.fast.test -all")],
    "void.fast.test": [txt("v=spf1 a:n1.fast.test a:n2.fast.test a:n3.fast.test -all")],
    "other.test": [txt("v=spf1 redirect=fast.test")],
    "_dmarc.other.test": [txt("v=DMARC1; p=quarantine; sp=none")],
}

# (client, sender, HELO): pass, fail, softfail by include, an a: and an mx: term,
# macros and exists, an include loop, void lookups, a redirect, no record at all.
CHECKS = [
    ("192.0.2.7", "joe@fast.test", "mail.fast.test"),
    ("198.51.100.9", "joe@fast.test", "mail.fast.test"),
    ("203.0.113.9", "joe@fast.test", "out.fast.test"),
    ("203.0.113.25", "joe@fast.test", "mx.fast.test"),
    ("45.1.2.3", "joe@fast.test", "mail.fast.test"),
    ("192.0.2.7", "joe@macro.fast.test", "mail.fast.test"),
    ("192.0.2.8", "joe@macro.fast.test", "mail.fast.test"),
    ("192.0.2.7", "joe@loop.fast.test", "mail.fast.test"),
    ("192.0.2.7", "joe@void.fast.test", "mail.fast.test"),
    ("198.51.100.9", "joe@other.test", "mail.other.test"),
    ("192.0.2.7", "joe@nothing.fast.test", "nothing.fast.test"),
    ("192.0.2.7", "<>", "mail.fast.test"),
]


@pytest.fixture(scope="module")
def zone(auth_dns: AuthDns) -> Iterator[AuthDns]:
    with auth_dns.serving(ZONE):
        yield auth_dns


@pytest.mark.parametrize(("ip", "sender", "helo"), CHECKS)
async def test_spf_from_the_cache_is_the_full_checks_result(
    zone: AuthDns, ip: str, sender: str, helo: str
) -> None:
    client = zone.client()
    try:
        spf = SpfChecker(client, timeout_s=1.0, budget_s=5.0)
        assert spf.check_mail_from_now(ip, sender, helo) is None  # cold: DNS must be asked
        full = await spf.check_mail_from(ip, sender, helo)
        assert spf.check_mail_from_now(ip, sender, helo) == full
        helo_full = await spf.check_helo(ip, helo)
        assert spf.check_helo_now(ip, helo) == helo_full
    finally:
        client.close()


async def test_spf_with_an_explanation_to_fetch_is_left_to_the_full_check(
    zone: AuthDns, dns_records: AddRecords
) -> None:
    dns_records(
        {"exp.fast.test": txt("v=spf1 -all exp=why.fast.test"), "why.fast.test": txt("%{i} no")}
    )
    client = zone.client()
    try:
        spf = SpfChecker(client, explain=True)
        full = await spf.check_host("192.0.2.1", "exp.fast.test", "a@exp.fast.test")
        assert full.explanation == "192.0.2.1 no"
        assert spf.check_host_now("192.0.2.1", "exp.fast.test", "a@exp.fast.test") is None
        plain = SpfChecker(client, explain=False)
        now = plain.check_host_now("192.0.2.1", "exp.fast.test", "a@exp.fast.test")
        assert now is not None
        assert now.result is full.result
        assert not now.explanation
    finally:
        client.close()


def _message(n: int, ip: str, sender: str, helo: str, selector: str | None) -> bytes:
    domain = sender.rpartition("@")[2] or "fast.test"
    raw = (
        f"From: Joe <joe@{domain}>\nTo: you@isp.test\nSubject: note {n}\n"
        f"Date: Sun, 06 Dec 2026 10:00:00 +0000\nMessage-ID: <{n}@{domain}>\n\nHello {n}.\n"
    ).encode()
    if selector is not None:
        raw = sign(raw, "fast.test", selector, ed25519=selector == "ed")
    return raw


class CountingStore(MemoryStore):
    """The in-memory store, counting the reads and writes the reputation makes."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def decay(
        self,
        updates: Mapping[str, Sequence[float]],
        *,
        half_life_s: float,
        now: float,
        ttl_s: float | None = None,
    ) -> dict[str, Decayed]:
        self.calls += 1
        return await super().decay(updates, half_life_s=half_life_s, now=now, ttl_s=ttl_s)


def _detector(zone: AuthDns, store: CountingStore) -> AuthDetector:
    return AuthDetector(
        AuthSettings(enabled=True, nameservers=(zone.address,), budget_s=2.0),
        Trusted(networks=(), private_is_trusted=False),
        io_timeout_s=5.0,
        standing=DomainStanding(lambda: store, ReputationSettings()),
    )


def _symbols(hits: Sequence[Hit]) -> list[tuple[str, tuple[str, ...], float | None]]:
    return [(h.symbol, h.options, h.weight) for h in hits]


async def test_the_detector_answers_warm_mail_at_once_with_the_same_hits(zone: AuthDns) -> None:
    store = CountingStore()
    auth = _detector(zone, store)
    ctx = Context(now=time.time())
    selectors = [None, "rsa", "ed"]
    messages = [
        parse_message(
            _message(n, ip, sender, helo, selectors[n % 3]),
            Envelope(client_ip=ip, helo=helo, mail_from=sender),
        )
        for n, (ip, sender, helo) in enumerate(CHECKS)
    ]
    try:
        cold = [await auth.check(msg, ctx) for msg in messages]
        assert any(h.symbol == "DKIM_PASS" for hits in cold for h in hits)
        assert any(h.symbol == "SPF_FAIL" for hits in cold for h in hits)
        for msg, first in zip(messages, cold, strict=True):
            pending = auth.start(msg, ctx)
            assert isinstance(pending, asyncio.Future)
            assert pending.done(), msg.headers["Subject"]
            assert _symbols(pending.result()) == _symbols(first)
    finally:
        auth.close()


async def test_the_domain_reputation_is_read_in_batches(zone: AuthDns) -> None:
    store = CountingStore()
    now = time.time()
    feeder = DomainStanding(lambda: store, ReputationSettings())
    for _ in range(60):
        await feeder.record(("fast.test",), spam=False, ham=True, now=now)
    await feeder.flush()
    auth = _detector(zone, store)
    ctx = Context(now=now + 1)
    ip, sender, helo = CHECKS[0]
    messages = [
        parse_message(
            _message(n, ip, sender, helo, "rsa"),
            Envelope(client_ip=ip, helo=helo, mail_from=sender),
        )
        for n in range(40)
    ]
    try:
        await auth.check(messages[0], Context(now=now + 1))  # the DNS answers cached
        auth.standing = DomainStanding(lambda: store, ReputationSettings())  # nothing read
        before = store.calls
        results = await asyncio.gather(*(auth.check(msg, ctx) for msg in messages))
        assert store.calls - before == 1  # forty messages, one read
        for hits in results:
            assert "REP_DOMAIN_HAM" in {h.symbol for h in hits}
        # Read once, the records answer the next messages from memory, with no wait.
        pending = auth.start(messages[1], ctx)
        assert isinstance(pending, asyncio.Future)
        assert pending.done()
        assert "REP_DOMAIN_HAM" in {h.symbol for h in pending.result()}
        assert store.calls - before == 1
    finally:
        auth.close()


async def test_a_cached_answer_is_given_as_it_is_and_counted_once(zone: AuthDns) -> None:
    """resolve_now: a question not in the cache is sent (a future, one miss, one query);
    asked again, the answer itself comes back (one hit, nothing sent), as resolve's."""
    from seawall.dnslists.answer import Answer
    from seawall.dnslists.wire import RdType

    client = zone.client()
    try:
        first = client.resolve_now("_dmarc.fast.test", RdType.TXT, 1.0)
        assert isinstance(first, asyncio.Future)
        fetched = await first
        assert (client.cache.stats.misses, client.cache.stats.hits, client.stats.queries) == (
            1,
            0,
            1,
        )
        again = client.resolve_now("_DMARC.fast.test.", RdType.TXT, 1.0)
        assert isinstance(again, Answer)
        assert again == fetched == await client.resolve("_dmarc.fast.test", RdType.TXT, 1.0)
        assert again.records == ("v=DMARC1; p=reject",)
        assert (client.cache.stats.misses, client.stats.queries) == (1, 1)
        assert client.cache.stats.hits == 2
        address = client.resolve_now("out.fast.test", RdType.A, 1.0)  # the lists' A entries
        assert isinstance(address, asyncio.Future)
        listed = await address
        assert client.resolve_now("out.fast.test", RdType.A, 1.0) == listed
        assert listed.records == ("203.0.113.9",)
    finally:
        client.close()
