"""What the detector asks and what it makes of the answers, with a table for a resolver."""

from __future__ import annotations

import asyncio
import logging
import time

import msgspec
import pytest
from tests.dnslists.fakes import TableResolver, listed

from seawall.config import DnsblSettings, DnsListSettings, Trusted
from seawall.detectors.base import Context, Hit
from seawall.detectors.dnsbl import DnsblDetector
from seawall.dnslists.answer import Answer, Status
from seawall.errors import ConfigError
from seawall.message import Envelope, Message, ParseLimits, parse_message


def detector(resolver: TableResolver, **changes: object) -> DnsblDetector:
    settings = msgspec.structs.replace(DnsblSettings(enabled=True), **changes)
    return DnsblDetector(settings, Trusted(), io_timeout_s=2.0, resolver=resolver)


def message(raw: str, client_ip: str | None = None, user: str | None = None) -> Message:
    envelope = Envelope(client_ip=client_ip, user=user)
    return parse_message(raw.encode(), envelope, ParseLimits())


async def hits(det: DnsblDetector, msg: Message, *, authenticated: bool = False) -> dict[str, Hit]:
    found = await det.start(msg, Context(now=0.0, authenticated=authenticated))
    by_symbol = {hit.symbol: hit for hit in found}
    assert len(by_symbol) == len(found)
    return by_symbol


RELAYED = """Received: from mx.sender.example (mx.sender.example [81.2.69.160]) by mx.our.example
Received: from pc (dsl.example [192.0.2.1]) by mx.sender.example
From: a@sender.example

hi
"""


async def test_client_ip_listed() -> None:
    resolver = TableResolver({"160.69.2.81.zen.spamhaus.org": listed("127.0.0.4")})
    found = await hits(detector(resolver), message("From: a@b.example\n\nhi\n", "81.2.69.160"))
    assert found["RBL_SPAMHAUS_XBL"].options == ("81.2.69.160=127.0.0.4",)
    assert resolver.asked == ["160.69.2.81.zen.spamhaus.org"]


async def test_first_untrusted_hop_when_it_differs_from_the_client() -> None:
    resolver = TableResolver()
    msg = message("Received: from x (x [81.2.69.161]) by mx.our.example\n" + RELAYED, "81.2.69.160")
    await hits(detector(resolver), msg)
    assert resolver.asked == ["160.69.2.81.zen.spamhaus.org", "161.69.2.81.zen.spamhaus.org"]
    resolver = TableResolver()
    await hits(detector(resolver), message(RELAYED, "81.2.69.160"))  # the hop is the client
    assert resolver.asked == ["160.69.2.81.zen.spamhaus.org"]


@pytest.mark.parametrize("client", ["10.0.0.5", "127.0.0.1", "192.0.2.9", "100.64.3.3", "x"])
async def test_unroutable_private_and_bad_addresses_are_not_asked(client: str) -> None:
    resolver = TableResolver()
    assert await hits(detector(resolver), message("From: a@b.example\n\nhi\n", client)) == {}
    assert resolver.asked == []


async def test_trusted_networks_are_not_asked() -> None:
    resolver = TableResolver()
    det = DnsblDetector(
        DnsblSettings(enabled=True),
        Trusted(networks=("81.2.69.0/24",)),
        io_timeout_s=2.0,
        resolver=resolver,
    )
    await hits(det, message("From: a@b.example\n\nhi\n", "81.2.69.160"))
    assert resolver.asked == []


async def test_authenticated_senders_are_not_asked_by_address() -> None:
    resolver = TableResolver({"160.69.2.81.zen.spamhaus.org": listed("127.0.0.10")})
    msg = message("From: a@b.example\n\nhi\n", "81.2.69.160", user="alice")
    assert await hits(detector(resolver), msg, authenticated=True) == {}


async def test_pbl_counts_for_the_client_and_not_for_a_hop_behind_it() -> None:
    table = {
        "160.69.2.81.zen.spamhaus.org": listed("127.0.0.10"),
        "161.69.2.81.zen.spamhaus.org": listed("127.0.0.11", "127.0.0.4"),
    }
    raw = "Received: from x (x [81.2.69.161]) by mx.sender.example\nFrom: a@b.example\n\nhi\n"
    found = await hits(detector(TableResolver(table)), message(raw, "81.2.69.160"))
    assert found["RBL_SPAMHAUS_PBL"].options == ("81.2.69.160=127.0.0.10",)
    assert found["RBL_SPAMHAUS_XBL"].options == ("81.2.69.161=127.0.0.4",)
    # A stored message with no envelope: the first untrusted hop is our border's client.
    found = await hits(detector(TableResolver(table)), message(raw))
    assert found["RBL_SPAMHAUS_PBL"].options == ("81.2.69.161=127.0.0.11",)


LINKS = """From: a@b.example
Content-Type: text/html

<a href="http://www.evil.example/1">x</a> <a href="http://shop.evil.example/2">x</a>
<a href="http://evil.example/3">x</a> <a href="http://other.example/">x</a>
<a href="http://81.2.69.162/x">x</a> <a href="http://bücher.example/">x</a>
"""


async def test_link_domains_most_linked_first_and_capped() -> None:
    resolver = TableResolver({"evil.example.dbl.spamhaus.org": listed("127.0.1.2")})
    found = await hits(detector(resolver, max_names=2), message(LINKS))
    assert found["URIBL_DBL_SPAM"].options == ("evil.example=127.0.1.2",)
    dbl = [n for n in resolver.asked if n.endswith(".dbl.spamhaus.org")]
    assert dbl == ["evil.example.dbl.spamhaus.org", "other.example.dbl.spamhaus.org"]
    resolver = TableResolver()
    await hits(detector(resolver), message(LINKS))
    assert "xn--bcher-kva.example.multi.surbl.org" in resolver.asked
    assert "162.69.2.81.zen.spamhaus.org" in resolver.asked  # zen: link_ips
    assert not any(n.startswith("81.2.69.162.") for n in resolver.asked)  # IPs are no domains


async def test_hosts_are_asked_when_the_list_wants_them() -> None:
    item = DnsListSettings(
        name="hosts", zone="uribl.test", kind="domain", hosts=True, codes={"127.0.0.2": "URIBL_X"}
    )
    resolver = TableResolver({"shop.evil.example.uribl.test": listed("127.0.0.2")})
    found = await hits(detector(resolver, lists=(item,)), message(LINKS))
    assert found["URIBL_X"].options == ("shop.evil.example=127.0.0.2",)
    assert resolver.asked[0] == "evil.example.uribl.test"  # linked three times


async def test_bitmask_answer_and_list_weight() -> None:
    surbl = msgspec.structs.replace(DnsblSettings().lists[2], weight=0.5)
    resolver = TableResolver({"other.example.multi.surbl.org": listed("127.0.0.72")})
    found = await hits(detector(resolver, lists=(surbl,)), message(LINKS))
    assert set(found) == {"URIBL_SURBL_PHISH", "URIBL_SURBL_ABUSE"}
    assert found["URIBL_SURBL_PHISH"].weight == 0.5


async def test_error_codes_give_a_zero_symbol_and_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    resolver = TableResolver({"160.69.2.81.zen.spamhaus.org": listed("127.255.255.254")})
    det = detector(resolver)
    msg = message("From: a@b.example\n\nhi\n", "81.2.69.160")
    with caplog.at_level(logging.WARNING, logger="seawall.dnsbl"):
        for _ in range(3):
            found = await hits(det, msg)
            assert set(found) == {"DNSBL_BLOCKED"}
            assert found["DNSBL_BLOCKED"].options == ("zen=127.255.255.254",)
    warnings = [r for r in caplog.records if "public resolver" in r.getMessage()]
    assert len(warnings) == 1  # rate-limited: the same refusal on every message


async def test_unknown_code_is_a_zero_symbol() -> None:
    resolver = TableResolver({"160.69.2.81.zen.spamhaus.org": listed("127.0.0.99")})
    found = await hits(detector(resolver), message("From: a@b.example\n\nhi\n", "81.2.69.160"))
    assert set(found) == {"DNSBL_UNKNOWN_CODE"}


async def test_failures_become_status_symbols() -> None:
    table: dict[str, Answer | None] = {
        "160.69.2.81.zen.spamhaus.org": Answer(Status.SERVFAIL, detail="SERVFAIL"),
        "evil.example.dbl.spamhaus.org": Answer(Status.ERROR, detail="REFUSED"),
        "evil.example.multi.surbl.org": Answer(Status.TIMEOUT),
    }
    found = await hits(detector(TableResolver(table)), message(LINKS, "81.2.69.160"))
    assert found["DNSBL_SERVFAIL"].options == ("zen",)
    assert found["DNSBL_FAILED"].options == ("dbl: REFUSED",)
    assert found["DNSBL_TIMEOUT"].options == ("surbl",)


async def test_budget_gives_up_on_answers_that_do_not_come() -> None:
    resolver = TableResolver({"160.69.2.81.zen.spamhaus.org": None})
    det = detector(resolver, budget_s=0.2)
    t0 = time.perf_counter()
    check = hits(det, message("From: a@b.example\n\nhi\n", "81.2.69.160"))
    found = await asyncio.wait_for(check, 30)  # a hang guard: the answer never comes
    elapsed = time.perf_counter() - t0
    assert found["DNSBL_TIMEOUT"].options == ("zen",)
    assert elapsed > 0.19  # the budget was waited for


async def test_budget_counts_from_start_not_from_collection() -> None:
    resolver = TableResolver({"160.69.2.81.zen.spamhaus.org": None})
    budget_s = 1.0
    det = detector(resolver, budget_s=budget_s)
    pending = det.start(message("From: a@b.example\n\nhi\n", "81.2.69.160"), Context(now=0))
    time.sleep(budget_s + 0.05)  # CPU work of other detectors used the whole budget
    t0 = time.perf_counter()
    found = await pending
    # Counted from collection it would wait the whole budget again.
    assert time.perf_counter() - t0 < budget_s / 2
    assert "DNSBL_TIMEOUT" in {h.symbol for h in found}


def test_budget_must_stay_below_the_engine_io_timeout() -> None:
    with pytest.raises(ConfigError, match="io_timeout_s"):
        DnsblDetector(
            DnsblSettings(budget_s=2.0), Trusted(), io_timeout_s=2.0, resolver=TableResolver()
        )


def test_stats_report_the_cache() -> None:
    det = detector(TableResolver())
    assert det.stats()["cache_hits"] == 0
    assert "cache_hit_rate" in det.stats()


V6 = "2a00:1450:4001:80b::200e"
V6_KEY = "e.0.0.2.0.0.0.0.0.0.0.0.0.0.0.0.b.0.8.0.1.0.0.4.0.5.4.1.0.0.a.2"


async def test_ipv6_senders_are_asked_of_ipv6_lists_only() -> None:
    own = DnsListSettings(name="own", zone="bl.example.net", codes={"127.0.0.2": "RBL_OWN"})
    resolver = TableResolver({f"{V6_KEY}.zen.spamhaus.org": listed("127.0.0.4")})
    det = detector(resolver, lists=(DnsblSettings().lists[0], own))
    raw = f'From: a@b.example\nContent-Type: text/html\n\n<a href="http://[{V6}]/">x</a>\n'
    found = await hits(det, message(raw, V6))
    assert found["RBL_SPAMHAUS_XBL"].options == (f"{V6}=127.0.0.4",)
    assert resolver.asked == [f"{V6_KEY}.zen.spamhaus.org"]  # the link is the same address
    # An IPv4-mapped address is an IPv4 sender: every IP list is asked.
    resolver = TableResolver()
    await hits(detector(resolver, lists=(own,)), message("From: a@b\n\nhi\n", "::ffff:81.2.69.160"))
    assert resolver.asked == ["160.69.2.81.bl.example.net"]
