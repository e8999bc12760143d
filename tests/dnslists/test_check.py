"""``seawall dnsbl test``'s judgement of each list's answers for its RFC 5782 entries."""

from __future__ import annotations

import msgspec
import pytest
from tests.dnslists.fakes import TableResolver, listed

from seawall.config import DnsblSettings
from seawall.dnslists.answer import Answer, Status
from seawall.dnslists.check import check_lists

ZEN_TEST, ZEN_ABSENT = "2.0.0.127.zen.spamhaus.org", "1.0.0.127.zen.spamhaus.org"
# RFC 5782 §5: ::FFFF:7F00:2 and ::FFFF:7F00:1, nibble by nibble (not as mapped IPv4)
NIBBLES = "0.0.f.7.f.f.f.f" + ".0" * 20 + ".zen.spamhaus.org"
ZEN6_TEST, ZEN6_ABSENT = "2.0.0.0." + NIBBLES, "1.0.0.0." + NIBBLES
DBL_TEST, DBL_ABSENT = "dbltest.com.dbl.spamhaus.org", "invalid.dbl.spamhaus.org"
SURBL_TEST = "test.surbl.org.multi.surbl.org"
HEALTHY = {
    ZEN_TEST: listed("127.0.0.2"),
    ZEN6_TEST: listed("127.0.0.2"),
    DBL_TEST: listed("127.0.1.2"),
    SURBL_TEST: listed("127.0.0.8"),
}


async def test_all_healthy_and_what_was_asked() -> None:
    resolver = TableResolver(dict(HEALTHY))
    results = await check_lists(DnsblSettings(), resolver)
    assert [(r.name, r.family, r.healthy) for r in results] == [
        ("zen", "IPv4", True),
        ("zen", "IPv6", True),
        ("dbl", "", True),
        ("surbl", "", True),
    ]
    assert set(resolver.asked) == {
        *HEALTHY,
        ZEN_ABSENT,
        ZEN6_ABSENT,
        DBL_ABSENT,
        "invalid.multi.surbl.org",
    }
    assert len(ZEN6_TEST.split(".")) == 32 + 3
    assert results[1].entries == ("::ffff:7f00:2", "::ffff:7f00:1")


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (listed("127.255.255.254"), "public resolver"),
        (Answer(Status.NOT_LISTED), "mistyped zone"),
        (Answer(Status.SERVFAIL, detail="SERVFAIL"), "servfail"),
        (Answer(Status.TIMEOUT, detail="no reply in 0.8s"), "timeout"),
    ],
)
async def test_unhealthy_test_entry(answer: Answer, problem: str) -> None:
    results = await check_lists(DnsblSettings(), TableResolver({**HEALTHY, ZEN_TEST: answer}))
    assert not results[0].healthy
    assert problem in results[0].problem
    assert results[1].healthy  # the IPv6 entries answered well
    assert results[2].healthy


async def test_a_list_without_ipv6_entries_is_told_so() -> None:
    resolver = TableResolver({**HEALTHY, ZEN6_TEST: Answer(Status.NOT_LISTED)})
    zen4, zen6, *_ = await check_lists(DnsblSettings(), resolver)
    assert zen4.healthy
    assert not zen6.healthy
    assert "::ffff:7f00:2 is not listed" in zen6.problem
    assert "ipv6 = false" in zen6.problem


async def test_an_ipv6_list_that_lists_the_never_listed_entry_is_unhealthy() -> None:
    resolver = TableResolver({**HEALTHY, ZEN6_ABSENT: listed("127.0.0.2")})
    zen6 = (await check_lists(DnsblSettings(), resolver))[1]
    assert "NXDOMAIN" in zen6.problem


async def test_a_list_without_ipv6_is_asked_ipv4_only() -> None:
    zen = msgspec.structs.replace(DnsblSettings().lists[0], ipv6=False)
    resolver = TableResolver(dict(HEALTHY))
    results = await check_lists(DnsblSettings(lists=(zen,)), resolver)
    assert [(r.family, r.healthy) for r in results] == [("", True)]
    assert set(resolver.asked) == {ZEN_TEST, ZEN_ABSENT}


async def test_a_list_that_lists_invalid_is_unhealthy() -> None:
    resolver = TableResolver({**HEALTHY, DBL_ABSENT: listed("127.0.1.2")})
    results = await check_lists(DnsblSettings(), resolver)
    assert "NXDOMAIN" in results[2].problem


async def test_unknown_codes_are_noted_not_failed() -> None:
    resolver = TableResolver({**HEALTHY, ZEN_TEST: listed("127.0.0.2", "127.0.0.77")})
    zen = (await check_lists(DnsblSettings(), resolver))[0]
    assert zen.healthy
    assert "127.0.0.77" in zen.note
