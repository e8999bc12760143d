"""``seawall dnsbl test``'s judgement of each list's answers for its RFC 5782 entries."""

from __future__ import annotations

import pytest
from tests.dnslists.fakes import TableResolver, listed

from seawall.config import DnsblSettings
from seawall.dnslists.answer import Answer, Status
from seawall.dnslists.check import check_lists

ZEN_TEST, ZEN_ABSENT = "2.0.0.127.zen.spamhaus.org", "1.0.0.127.zen.spamhaus.org"
DBL_TEST, DBL_ABSENT = "dbltest.com.dbl.spamhaus.org", "invalid.dbl.spamhaus.org"
SURBL_TEST = "test.surbl.org.multi.surbl.org"
HEALTHY = {
    ZEN_TEST: listed("127.0.0.2"),
    DBL_TEST: listed("127.0.1.2"),
    SURBL_TEST: listed("127.0.0.8"),
}


async def test_all_healthy_and_what_was_asked() -> None:
    resolver = TableResolver(dict(HEALTHY))
    results = await check_lists(DnsblSettings(), resolver)
    assert [r.healthy for r in results] == [True, True, True]
    assert set(resolver.asked) == {*HEALTHY, ZEN_ABSENT, DBL_ABSENT, "invalid.multi.surbl.org"}


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
    assert results[1].healthy


async def test_a_list_that_lists_invalid_is_unhealthy() -> None:
    resolver = TableResolver({**HEALTHY, DBL_ABSENT: listed("127.0.1.2")})
    results = await check_lists(DnsblSettings(), resolver)
    assert "NXDOMAIN" in results[1].problem


async def test_unknown_codes_are_noted_not_failed() -> None:
    resolver = TableResolver({**HEALTHY, ZEN_TEST: listed("127.0.0.2", "127.0.0.77")})
    zen = (await check_lists(DnsblSettings(), resolver))[0]
    assert zen.healthy
    assert "127.0.0.77" in zen.note
