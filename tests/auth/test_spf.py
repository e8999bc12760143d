"""SPF check_host() against a real authoritative server (NSD on loopback): RFC 7208's
Appendix A examples, every mechanism and modifier, the lookup and void limits, include and
redirect loops, macros, IPv6, explanations, and the results for broken records.

Failing DNS (silence, slowness) comes from the scriptable in-test server instead."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import pytest
from tests.auth.dns_server import AuthDns, Records, txt
from tests.dnslists.dnsserver import Behaviour, DnsServer

from seawall.auth.spf import Result, SpfChecker, check_host
from seawall.dnslists.answer import Answer
from seawall.dnslists.client import DnsClient
from seawall.dnslists.nameservers import parse_nameserver
from seawall.dnslists.wire import RdType

AddRecords = Callable[[Records], None]

# RFC 7208 Appendix A.1: example.com's hosts and servers, a related domain, the reverse
# names of those addresses, and a rogue reverse name that claims to be bob.example.com.
APPENDIX_A: dict[str, list[str]] = {
    "example.com": [
        "MX 10 mail-a.example.com.",
        "MX 20 mail-b.example.com.",
        "A 192.0.2.10",
        "A 192.0.2.11",
    ],
    "amy.example.com": ["A 192.0.2.65"],
    "bob.example.com": ["A 192.0.2.66"],
    "mail-a.example.com": ["A 192.0.2.129"],
    "mail-b.example.com": ["A 192.0.2.130"],
    "www.example.com": ["CNAME example.com."],
    "example.org": ["MX 10 mail-c.example.org."],
    "mail-c.example.org": ["A 192.0.2.140"],
    "10.2.0.192.in-addr.arpa": ["PTR example.com."],
    "11.2.0.192.in-addr.arpa": ["PTR example.com."],
    "65.2.0.192.in-addr.arpa": ["PTR amy.example.com."],
    "66.2.0.192.in-addr.arpa": ["PTR bob.example.com."],
    "129.2.0.192.in-addr.arpa": ["PTR mail-a.example.com."],
    "130.2.0.192.in-addr.arpa": ["PTR mail-b.example.com."],
    "140.2.0.192.in-addr.arpa": ["PTR mail-c.example.org."],
    "4.0.0.10.in-addr.arpa": ["PTR bob.example.com."],
    # A.2: several domains sharing one policy through redirect.
    "la.example.com": [txt("v=spf1 redirect=_spf.example.com")],
    "ny.example.com": [txt("v=spf1 redirect=_spf.example.com")],
    "_spf.example.com": [txt("v=spf1 mx:example.com -all")],
    # A.3: DNSBL-style lists of roaming users, asked through exists and macros.
    "mobile-users._spf.example.com": [txt("v=spf1 exists:%{l1r+}.%{d}")],
    "remote-users._spf.example.com": [txt("v=spf1 exists:%{ir}.%{l1r+}.%{d}")],
    "mary.mobile-users._spf.example.com": ["A 127.0.0.2"],
    "fred.mobile-users._spf.example.com": ["A 127.0.0.2"],
    "15.15.168.192.joel.remote-users._spf.example.com": ["A 127.0.0.2"],
    "16.15.168.192.joel.remote-users._spf.example.com": ["A 127.0.0.2"],
    # A.4: both a network and a reverse name required.
    "ip4._spf.example.com": [txt("v=spf1 -ip4:192.0.2.0/24 +all")],
    "ptr._spf.example.com": [txt("v=spf1 -ptr:example.com +all")],
}

# This module's own domains, under spf.test.
LOOKUP_TERMS = "a mx a mx a mx a mx a ptr"  # ten terms that query DNS
ZONE: dict[str, list[str]] = {
    "mail.spf.test": ["A 192.0.2.4", "AAAA 2001:db8::4"],
    "at-limit.spf.test": [
        txt(f"v=spf1 {LOOKUP_TERMS} ip4:192.0.2.4 -all"),
        "A 192.0.2.8",
        "MX 10 at-limit.spf.test.",
    ],
    "over-limit.spf.test": [
        txt(f"v=spf1 {LOOKUP_TERMS} a ip4:192.0.2.4 -all"),
        "A 192.0.2.20",
        "MX 10 over-limit.spf.test.",
    ],
    "inc8.spf.test": [txt("v=spf1 a a a a a a a a"), "A 192.0.2.10"],
    "inc-limit.spf.test": [
        txt("v=spf1 a include:inc8.spf.test ip4:192.0.2.4 mx -all"),
        "A 192.0.2.22",
    ],
    "inc-over.spf.test": [
        txt("v=spf1 a include:inc8.spf.test a ip4:192.0.2.4 -all"),
        "A 192.0.2.21",
    ],
    "void2.spf.test": [txt("v=spf1 a:nx1.spf.test mx:mail.spf.test ?all")],
    "void3.spf.test": [txt("v=spf1 a:nx1.spf.test mx:mail.spf.test exists:nx3.spf.test ?all")],
    "loop-a.spf.test": [txt("v=spf1 include:loop-b.spf.test -all")],
    "loop-b.spf.test": [txt("v=spf1 include:loop-a.spf.test -all")],
    "loop-r.spf.test": [txt("v=spf1 ip4:198.51.100.1 redirect=loop-r.spf.test")],
    "mx10.spf.test": [txt("v=spf1 mx -all")] + [f"MX {n} m{n}.spf.test." for n in range(10)],
    "mx11.spf.test": [txt("v=spf1 mx -all")] + [f"MX {n} m{n}.spf.test." for n in range(11)],
    **{f"m{n}.spf.test": [f"A 192.0.2.{100 + n}"] for n in range(11)},
    "ptr11.spf.test": [txt("v=spf1 ptr:elsewhere.spf.test -all")],
    "77.2.0.192.in-addr.arpa": [f"PTR h{n}.ptr11.spf.test." for n in range(11)],
    **{f"h{n}.ptr11.spf.test": ["A 192.0.2.77"] for n in range(11)},
    # IPv6
    "v6.spf.test": [
        txt("v=spf1 a mx ip6:2001:db8:1::/48 -all"),
        "AAAA 2001:db8:2::1",
        "A 192.0.2.60",
        "MX 10 mx.v6.spf.test.",
    ],
    "mx.v6.spf.test": ["AAAA 2001:db8:3::25"],
    "dual.spf.test": [
        txt("v=spf1 a/24//64 -all"),
        "A 192.0.2.5",
        "AAAA 2001:db8:1234::dead:beef",
    ],
    "aaaa-only.spf.test": [txt("v=spf1 a//0 -all"), "AAAA 2001:db8::99"],
    "mapped.spf.test": [txt("v=spf1 -ip4:192.0.2.4 ip6:::ffff:192.0.2.4")],
    "ptr6.spf.test": [txt("v=spf1 ptr -all")],
    "host.ptr6.spf.test": ["AAAA 2001:db8::1"],
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa": [
        "PTR host.ptr6.spf.test."
    ],
    "exists6.spf.test": [txt("v=spf1 exists:mail.spf.test -all")],
    # Macros over DNS
    "macro.spf.test": [txt("v=spf1 exists:%{ir}.%{l1r-}._at.%{d} -all")],
    "3.2.0.192.strong._at.macro.spf.test": ["A 127.0.0.2"],
    "p.spf.test": [txt("v=spf1 exists:%{p}.ok.spf.test -all")],
    "41.2.0.192.in-addr.arpa": ["PTR mx.p.spf.test."],
    "mx.p.spf.test": ["A 192.0.2.41"],
    "mx.p.spf.test.ok.spf.test": ["A 127.0.0.2"],
    "helo.spf.test": [txt("v=spf1 a:%{h} -all")],
    "mailer.spf.test": ["A 192.0.2.50"],
    # Explanations
    "exp.spf.test": [txt("v=spf1 mx -all exp=why.%{d}")],
    "why.exp.spf.test": [txt("%{i} is not one of %{d}'s designated mail servers.")],
    "exp-inc.spf.test": [txt("v=spf1 include:exp.spf.test -all exp=own.spf.test")],
    "own.spf.test": [txt("Rejected by ", "%{o}.")],
    "exp-two.spf.test": [txt("v=spf1 -all exp=two.spf.test")],
    "two.spf.test": [txt("one"), txt("two")],
    "exp-redirect.spf.test": [txt("v=spf1 exp=own.spf.test redirect=exp.spf.test")],
    # Includes, redirects and record selection
    "inc.spf.test": [
        txt(
            "v=spf1 include:fail.spf.test include:soft.spf.test include:neutral.spf.test "
            "include:pass.spf.test -all"
        )
    ],
    "fail.spf.test": [txt("v=spf1 -ip4:198.51.100.1")],  # neutral for the others
    "soft.spf.test": [txt("v=spf1 ~ip4:198.51.100.2")],
    "neutral.spf.test": [txt("v=spf1 ?ip4:198.51.100.3")],
    "pass.spf.test": [txt("v=spf1 ip4:198.51.100.4")],
    "inc-none.spf.test": [txt("v=spf1 include:nothing.spf.test -all")],
    "nothing.spf.test": [txt("google-site-verification=abc")],
    "redirect.spf.test": [txt("v=spf1 redirect=target.spf.test"), "A 192.0.2.1"],
    "target.spf.test": [txt("v=spf1 a -all"), "A 192.0.2.2"],
    "redirect-none.spf.test": [txt("v=spf1 redirect=nxdomain.spf.test")],
    "two-records.spf.test": [txt("v=spf1 -all"), txt("v=spf1 +all")],
    "among-others.spf.test": [
        txt("v=spf10 +all"),
        txt("google-site-verification=abc"),
        txt("V=SPF1 ip4:192.0.2.0/24 -all"),
    ],
    "split.spf.test": [txt("v=spf1 ip4:192.0.2.0/24", " ip4:198.51.100.0/24 -all")],
    "long.spf.test": [txt("v=spf1 " + " ".join(f"ip4:10.{n}.0.0/16" for n in range(40)) + " -all")],
    "huge.spf.test": [  # about 1.9 KB: more than a 1232-byte EDNS answer holds
        txt("v=spf1 " + " ".join(f"ip4:10.{n}.{n}.0/24" for n in range(100)) + " -all")
    ],
    "syntax.spf.test": [txt("v=spf1 ip4:192.0.2.1 -all moo")],
    "nospf.spf.test": ["A 192.0.2.9"],
    "empty.spf.test": [txt("v=spf1")],
}


@pytest.fixture(scope="module")
def zone(auth_dns: AuthDns) -> Iterator[AuthDns]:
    with auth_dns.serving({**APPENDIX_A, **ZONE}):
        yield auth_dns


@pytest.fixture
def client(zone: AuthDns) -> Iterator[DnsClient]:
    resolver = zone.client()
    yield resolver
    resolver.close()


@pytest.fixture
def spf(client: DnsClient) -> SpfChecker:
    return SpfChecker(client, timeout_s=1.0, budget_s=5.0, explain=True, receiver="mx.isp.test")


async def _check(spf: SpfChecker, ip: str, sender: str, helo: str = "mx.client.test") -> Result:
    result = await spf.check_host(ip, sender.rpartition("@")[2], sender, helo)
    return result.result


# --- Appendix A ------------------------------------------------------------------------------

APPENDIX_A1 = [
    ("v=spf1 +all", "198.51.100.7", Result.PASS),
    ("v=spf1 a -all", "192.0.2.10", Result.PASS),
    ("v=spf1 a -all", "192.0.2.11", Result.PASS),
    ("v=spf1 a -all", "192.0.2.65", Result.FAIL),
    ("v=spf1 a:example.org -all", "192.0.2.10", Result.FAIL),  # example.org has no A
    ("v=spf1 mx -all", "192.0.2.129", Result.PASS),
    ("v=spf1 mx -all", "192.0.2.130", Result.PASS),
    ("v=spf1 mx -all", "192.0.2.10", Result.FAIL),
    ("v=spf1 mx:example.org -all", "192.0.2.140", Result.PASS),
    ("v=spf1 mx:example.org -all", "192.0.2.129", Result.FAIL),
    ("v=spf1 mx mx:example.org -all", "192.0.2.129", Result.PASS),
    ("v=spf1 mx mx:example.org -all", "192.0.2.130", Result.PASS),
    ("v=spf1 mx mx:example.org -all", "192.0.2.140", Result.PASS),
    ("v=spf1 mx/30 mx:example.org/30 -all", "192.0.2.131", Result.PASS),  # in .128/30
    ("v=spf1 mx/30 mx:example.org/30 -all", "192.0.2.143", Result.PASS),  # in .140/30
    ("v=spf1 mx/30 mx:example.org/30 -all", "192.0.2.132", Result.FAIL),
    ("v=spf1 ptr -all", "192.0.2.65", Result.PASS),  # amy.example.com, validated
    ("v=spf1 ptr -all", "192.0.2.140", Result.FAIL),  # mail-c.example.org: not ours
    ("v=spf1 ptr -all", "10.0.0.4", Result.FAIL),  # claims bob.example.com, who is .66
    ("v=spf1 ip4:192.0.2.128/28 -all", "192.0.2.65", Result.FAIL),
    ("v=spf1 ip4:192.0.2.128/28 -all", "192.0.2.129", Result.PASS),
]


@pytest.mark.parametrize(("record", "ip", "expected"), APPENDIX_A1)
async def test_appendix_a1_simple_examples(
    spf: SpfChecker, dns_records: AddRecords, record: str, ip: str, expected: Result
) -> None:
    dns_records({"example.com": txt(record)})
    result = await spf.check_host(ip, "example.com", "someone@example.com", "mx.client.test")
    assert result.result is expected, result
    if expected is Result.PASS:
        assert result.mechanism in record.split()
    else:
        assert result.mechanism == "-all"


async def test_appendix_a2_several_domains_share_a_policy_by_redirect(spf: SpfChecker) -> None:
    for domain in ("la.example.com", "ny.example.com"):
        passed = await spf.check_host("192.0.2.129", domain, f"user@{domain}")
        assert (passed.result, passed.mechanism) == (Result.PASS, "mx:example.com")
        assert passed.lookups == 2  # the redirect and the mx
        failed = await spf.check_host("192.0.2.10", domain, f"user@{domain}")
        assert (failed.result, failed.mechanism) == (Result.FAIL, "-all")


@pytest.mark.parametrize(
    ("sender", "ip", "expected"),
    [
        ("mary@example.com", "198.51.100.1", Result.PASS),  # a mobile user, from anywhere
        ("mary+travel@example.com", "198.51.100.1", Result.PASS),  # %{l1r+}: before the +
        ("fred@example.com", "203.0.113.9", Result.PASS),
        ("joel@example.com", "192.168.15.15", Result.PASS),  # a remote user, from his hosts
        ("joel@example.com", "192.168.15.16", Result.PASS),
        ("joel@example.com", "192.168.15.17", Result.FAIL),
        ("bob@example.com", "198.51.100.1", Result.FAIL),  # two void lookups: still fail
        ("bob@example.com", "192.0.2.129", Result.PASS),  # the mx
    ],
)
async def test_appendix_a3_dnsbl_style_users(
    spf: SpfChecker, dns_records: AddRecords, sender: str, ip: str, expected: Result
) -> None:
    dns_records(
        {
            "example.com": txt(
                "v=spf1 mx include:mobile-users._spf.%{d} include:remote-users._spf.%{d} -all"
            )
        }
    )
    result = await spf.check_host(ip, "example.com", sender)
    assert result.result is expected, result


@pytest.mark.parametrize(
    ("ip", "expected", "why"),
    [
        ("192.0.2.65", Result.PASS, "in the network, with a name under example.com"),
        ("10.0.0.4", Result.FAIL, "outside the network"),
        ("192.0.2.140", Result.FAIL, "in the network, named under example.org"),
    ],
)
async def test_appendix_a4_network_and_name_both_required(
    spf: SpfChecker, dns_records: AddRecords, ip: str, expected: Result, why: str
) -> None:
    dns_records({"example.com": txt("v=spf1 -include:ip4._spf.%{d} -include:ptr._spf.%{d} +all")})
    result = await spf.check_host(ip, "example.com", "user@example.com")
    assert result.result is expected, why


async def test_a_cname_is_followed(spf: SpfChecker, dns_records: AddRecords) -> None:
    dns_records({"example.com": txt("v=spf1 a:www.example.com -all")})
    assert await _check(spf, "192.0.2.11", "x@example.com") is Result.PASS


# --- Results, includes, redirects ------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "expected", "mechanism"),
    [
        ("198.51.100.1", Result.FAIL, "-all"),  # the include's fail does not match
        ("198.51.100.2", Result.FAIL, "-all"),  # nor its softfail
        ("198.51.100.3", Result.FAIL, "-all"),  # nor its neutral
        ("198.51.100.4", Result.PASS, "include:pass.spf.test"),  # its pass does
    ],
)
async def test_include_matches_on_pass_only(
    spf: SpfChecker, ip: str, expected: Result, mechanism: str
) -> None:
    result = await spf.check_host(ip, "inc.spf.test", "a@inc.spf.test")
    assert (result.result, result.mechanism) == (expected, mechanism)


async def test_include_of_a_domain_without_spf_is_a_permerror(spf: SpfChecker) -> None:
    result = await spf.check_host("192.0.2.1", "inc-none.spf.test", "a@inc-none.spf.test")
    assert result.result is Result.PERMERROR
    assert "nothing.spf.test" in result.detail


async def test_redirect_moves_the_domain_and_none_there_is_a_permerror(spf: SpfChecker) -> None:
    moved = await spf.check_host("192.0.2.2", "redirect.spf.test", "a@redirect.spf.test")
    assert (moved.result, moved.mechanism) == (Result.PASS, "a")  # target's own A
    stayed = await spf.check_host("192.0.2.1", "redirect.spf.test", "a@redirect.spf.test")
    assert stayed.result is Result.FAIL  # redirect.spf.test's A does not count
    none = await spf.check_host("192.0.2.1", "redirect-none.spf.test", "a@redirect-none.spf.test")
    assert none.result is Result.PERMERROR


async def test_no_match_is_neutral_by_default(spf: SpfChecker) -> None:
    result = await spf.check_host("192.0.2.1", "empty.spf.test", "a@empty.spf.test")
    assert (result.result, result.mechanism) == (Result.NEUTRAL, "default")


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("nospf.spf.test", Result.NONE),  # a name with no TXT record
        ("nxdomain.spf.test", Result.NONE),  # no such name
        ("a" * 64 + ".spf.test", Result.NONE),  # a label too long
        ("spf..test", Result.NONE),  # an empty label
        ("localhost", Result.NONE),  # a single label
        ("[192.0.2.1]", Result.NONE),  # a domain literal
        ("two-records.spf.test", Result.PERMERROR),
        ("syntax.spf.test", Result.PERMERROR),  # even from the host its ip4 names
    ],
)
async def test_none_and_permerror_from_the_record(
    spf: SpfChecker, domain: str, expected: Result
) -> None:
    result = await spf.check_host("192.0.2.1", domain, f"a@{domain}")
    assert result.result is expected, result
    assert result.detail


async def test_the_spf_record_is_picked_among_other_txt_records(spf: SpfChecker) -> None:
    domain = "among-others.spf.test"
    result = await spf.check_host("192.0.2.7", domain, f"a@{domain}")
    assert (result.result, result.mechanism) == (Result.PASS, "ip4:192.0.2.0/24")


async def test_a_record_in_several_strings_is_joined_as_published(spf: SpfChecker) -> None:
    assert await _check(spf, "198.51.100.9", "a@split.spf.test") is Result.PASS
    assert await _check(spf, "10.39.1.1", "a@long.spf.test") is Result.PASS  # over 255 bytes
    assert await _check(spf, "10.40.1.1", "a@long.spf.test") is Result.FAIL


async def test_a_record_too_large_for_udp_comes_over_tcp(
    spf: SpfChecker, client: DnsClient
) -> None:
    result = await spf.check_host("10.99.99.1", "huge.spf.test", "a@huge.spf.test")
    assert (result.result, result.mechanism) == (Result.PASS, "ip4:10.99.99.0/24")
    assert client.stats.tcp == 1  # NSD truncated the UDP answer


# --- Limits ----------------------------------------------------------------------------------


async def test_ten_lookups_are_allowed_and_the_eleventh_is_a_permerror(spf: SpfChecker) -> None:
    at = await spf.check_host("192.0.2.4", "at-limit.spf.test", "a@at-limit.spf.test")
    assert (at.result, at.mechanism, at.lookups) == (Result.PASS, "ip4:192.0.2.4", 10)
    over = await spf.check_host("192.0.2.4", "over-limit.spf.test", "a@over-limit.spf.test")
    assert over.result is Result.PERMERROR
    assert "more than 10 DNS lookups" in over.detail


async def test_lookups_in_includes_count_towards_the_limit(spf: SpfChecker) -> None:
    at = await spf.check_host("192.0.2.4", "inc-limit.spf.test", "a@inc-limit.spf.test")
    assert (at.result, at.lookups) == (Result.PASS, 10)
    over = await spf.check_host("192.0.2.4", "inc-over.spf.test", "a@inc-over.spf.test")
    assert over.result is Result.PERMERROR


async def test_two_void_lookups_are_allowed_and_the_third_is_a_permerror(
    spf: SpfChecker,
) -> None:
    two = await spf.check_host("192.0.2.1", "void2.spf.test", "a@void2.spf.test")
    assert (two.result, two.void_lookups) == (Result.NEUTRAL, 2)  # NXDOMAIN, then NODATA
    three = await spf.check_host("192.0.2.1", "void3.spf.test", "a@void3.spf.test")
    assert three.result is Result.PERMERROR
    assert "void" in three.detail


@pytest.mark.parametrize("domain", ["loop-a.spf.test", "loop-r.spf.test"])
async def test_include_and_redirect_loops_end_in_a_permerror(spf: SpfChecker, domain: str) -> None:
    result = await spf.check_host("192.0.2.1", domain, f"a@{domain}")
    assert result.result is Result.PERMERROR
    assert result.lookups == 11


async def test_more_than_ten_mx_names_is_a_permerror(spf: SpfChecker) -> None:
    ten = await spf.check_host("192.0.2.109", "mx10.spf.test", "a@mx10.spf.test")
    assert ten.result is Result.PASS
    eleven = await spf.check_host("192.0.2.110", "mx11.spf.test", "a@mx11.spf.test")
    assert eleven.result is Result.PERMERROR
    assert "more than 10 MX" in eleven.detail


class Counting:
    """A RecordResolver that notes every question on its way to the real one."""

    def __init__(self, inner: DnsClient) -> None:
        self.inner = inner
        self.asked: list[tuple[str, RdType]] = []

    def resolve(self, name: str, rdtype: RdType, timeout_s: float) -> asyncio.Future[Answer]:
        self.asked.append((name, rdtype))
        return self.inner.resolve(name, rdtype, timeout_s)


async def test_only_ten_ptr_names_are_checked(client: DnsClient) -> None:
    counting = Counting(client)
    spf = SpfChecker(counting)
    result = await spf.check_host("192.0.2.77", "ptr11.spf.test", "a@ptr11.spf.test")
    assert result.result is Result.FAIL  # validated names, none under elsewhere.spf.test
    forward = [name for name, rdtype in counting.asked if name.startswith("h")]
    assert len(forward) == 10
    assert all(rdtype is RdType.A for name, rdtype in counting.asked if name in forward)


# --- IPv6 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "expected", "mechanism"),
    [
        ("2001:db8:2::1", Result.PASS, "a"),  # AAAA of the domain
        ("2001:db8:3::25", Result.PASS, "mx"),  # AAAA of its MX host
        ("2001:db8:1:ffff::1", Result.PASS, "ip6:2001:db8:1::/48"),
        ("2001:db8:4::1", Result.FAIL, "-all"),
        ("192.0.2.60", Result.PASS, "a"),  # an IPv4 client is matched against A
    ],
)
async def test_ipv6_clients_match_aaaa_and_ip6(
    spf: SpfChecker, ip: str, expected: Result, mechanism: str
) -> None:
    result = await spf.check_host(ip, "v6.spf.test", "a@v6.spf.test")
    assert (result.result, result.mechanism) == (expected, mechanism)


@pytest.mark.parametrize(
    ("domain", "ip", "expected"),
    [
        ("dual.spf.test", "192.0.2.200", Result.PASS),  # A widened to /24
        ("dual.spf.test", "192.0.3.5", Result.FAIL),
        ("dual.spf.test", "2001:db8:1234::cafe", Result.PASS),  # AAAA widened to /64
        ("dual.spf.test", "2001:db8:1234:1::1", Result.FAIL),
        ("aaaa-only.spf.test", "2001:db8:ffff::1", Result.PASS),  # //0: any AAAA at all
        ("aaaa-only.spf.test", "192.0.2.1", Result.FAIL),  # but no A for an IPv4 client
        ("aaaa-only.spf.test", "::ffff:192.0.2.1", Result.FAIL),  # mapped is IPv4
        ("mapped.spf.test", "::ffff:192.0.2.4", Result.FAIL),  # -ip4 matches first
        ("ptr6.spf.test", "2001:db8::1", Result.PASS),  # ip6.arpa, validated by AAAA
        ("ptr6.spf.test", "2001:db8::2", Result.FAIL),
        ("exists6.spf.test", "2001:db8::77", Result.PASS),  # exists asks A, even for IPv6
    ],
)
async def test_dual_cidr_mapped_addresses_and_ipv6_names(
    spf: SpfChecker, domain: str, ip: str, expected: Result
) -> None:
    result = await spf.check_host(ip, domain, f"a@{domain}")
    assert result.result is expected, result


# --- Macros over DNS -------------------------------------------------------------------------


async def test_macros_build_the_names_asked(spf: SpfChecker) -> None:
    assert await _check(spf, "192.0.2.3", "strong-bad@macro.spf.test") is Result.PASS
    assert await _check(spf, "192.0.2.3", "weak-bad@macro.spf.test") is Result.FAIL
    assert await _check(spf, "192.0.2.4", "strong-bad@macro.spf.test") is Result.FAIL


async def test_p_macro_uses_a_validated_name_and_counts_a_lookup(spf: SpfChecker) -> None:
    passed = await spf.check_host("192.0.2.41", "p.spf.test", "a@p.spf.test")
    assert (passed.result, passed.lookups) == (Result.PASS, 2)  # exists, and the PTR query
    unknown = await spf.check_host("192.0.2.42", "p.spf.test", "a@p.spf.test")
    assert unknown.result is Result.FAIL  # "unknown.ok.spf.test" does not exist


async def test_helo_macro_and_the_helo_identity(spf: SpfChecker) -> None:
    assert await _check(spf, "192.0.2.50", "a@helo.spf.test", "mailer.spf.test") is Result.PASS
    # A HELO that is no domain expands to no name: the mechanism cannot match.
    assert await _check(spf, "192.0.2.50", "a@helo.spf.test", "JUMPIN' JUPITER") is Result.FAIL
    helo = await spf.check_helo("192.0.2.4", "mail.spf.test")
    assert (helo.result, helo.domain) == (Result.NONE, "mail.spf.test")  # no SPF record
    bounce = await spf.check_mail_from("192.0.2.50", "<>", "helo.spf.test")
    assert bounce.result is Result.FAIL  # postmaster@helo.spf.test: %{h} has no A
    literal = await spf.check_helo("192.0.2.4", "[192.0.2.4]")
    assert literal.result is Result.NONE


# --- Explanations ----------------------------------------------------------------------------


async def test_a_fail_carries_the_expanded_explanation(spf: SpfChecker) -> None:
    result = await spf.check_host("192.0.2.99", "exp.spf.test", "a@exp.spf.test")
    assert result.result is Result.FAIL
    assert result.explanation == "192.0.2.99 is not one of exp.spf.test's designated mail servers."


async def test_explanations_come_from_the_deciding_record(spf: SpfChecker) -> None:
    included = await spf.check_host("192.0.2.99", "exp-inc.spf.test", "bob@exp-inc.spf.test")
    assert included.explanation == "Rejected by exp-inc.spf.test."  # not the include's exp
    redirected = await spf.check_host(
        "192.0.2.99", "exp-redirect.spf.test", "a@exp-redirect.spf.test"
    )
    assert redirected.explanation == (
        "192.0.2.99 is not one of exp.spf.test's designated mail servers."
    )  # the redirect target's own exp, not the one beside the redirect
    two = await spf.check_host("192.0.2.99", "exp-two.spf.test", "a@exp-two.spf.test")
    assert (two.result, two.explanation) == (Result.FAIL, "")  # two TXT records: none


async def test_the_module_function(client: DnsClient) -> None:
    result = await check_host("192.0.2.129", "la.example.com", "x@la.example.com", resolver=client)
    assert result.result is Result.PASS


# --- Failing DNS -----------------------------------------------------------------------------


def _records(zone: dict[str, list[str]]) -> dict[tuple[str, str], list[str]]:
    """Zone-file records for the in-test server: ("name", "TYPE") -> rdata texts."""
    out: dict[tuple[str, str], list[str]] = {}
    for name, records in zone.items():
        for record in records:
            rdtype, _, rdata = record.partition(" ")
            out.setdefault((name, rdtype), []).append(rdata)
    return out


SLOW = {
    "top.slow.test": [
        txt("v=spf1 include:a.slow.test include:b.slow.test mx -all"),
        "MX 10 up.slow.test.",
    ],
    "a.slow.test": [txt("v=spf1 ip4:198.51.100.1 -all")],
    "b.slow.test": [txt("v=spf1 ip4:198.51.100.2 -all")],
    "mx.slow.test": [txt("v=spf1 mx -all"), "MX 10 up.slow.test.", "MX 20 down.slow.test."],
    "up.slow.test": ["A 198.51.100.25"],
    "inc.slow.test": [txt("v=spf1 include:silent.slow.test -all")],
}


async def test_a_server_that_does_not_answer_is_a_temperror() -> None:
    with DnsServer(Behaviour(silent=True)) as server:
        client = DnsClient([parse_nameserver(server.address)])
        try:
            check = check_host(
                "192.0.2.1", "example.com", "a@example.com", resolver=client, timeout_s=0.2
            )
            result = await asyncio.wait_for(check, 30)  # a hang guard: the 0.2 s timeout ends it
        finally:
            client.close()
        assert server.queries  # asked, never answered
    assert result.result is Result.TEMPERROR
    assert "no reply" in result.detail


async def test_silence_further_down_is_a_temperror_too() -> None:
    silent = {"silent.slow.test", "down.slow.test"}
    behaviour = Behaviour(records=_records(SLOW), silent_names=silent)
    with DnsServer(behaviour) as server:
        client = DnsClient([parse_nameserver(server.address)])
        spf = SpfChecker(client, timeout_s=0.2)
        try:
            included = await spf.check_host("192.0.2.1", "inc.slow.test", "a@inc.slow.test")
            matched = await spf.check_host("198.51.100.25", "mx.slow.test", "a@mx.slow.test")
            unmatched = await spf.check_host("192.0.2.1", "mx.slow.test", "a@mx.slow.test")
        finally:
            client.close()
    assert included.result is Result.TEMPERROR
    assert matched.result is Result.PASS  # one MX host answered with the address
    assert unmatched.result is Result.TEMPERROR  # the other MX host might have had it


async def test_the_budget_ends_a_slow_check_without_cancelling_shared_queries() -> None:
    with DnsServer(Behaviour(records=_records(SLOW), delay_s=0.3)) as server:
        client = DnsClient([parse_nameserver(server.address)])
        try:
            pending = client.resolve("top.slow.test", RdType.TXT, 1.0)  # someone else asks too
            spf = SpfChecker(client, timeout_s=1.0, budget_s=0.1)
            check = spf.check_host("198.51.100.2", "top.slow.test", "a@top.slow.test")
            result = await asyncio.wait_for(check, 30)  # a hang guard
            # Every answer was there after 0.3 s and would have made it a PASS (b.slow.test
            # lists the address): the 0.1 s budget ended it first.
            assert result.result is Result.TEMPERROR
            assert "within 0.1s" in result.detail
            assert (await pending).listed  # the shared query was not cancelled
        finally:
            client.close()


async def test_a_records_includes_are_asked_together() -> None:
    """Prefetching: the record's two includes and its MX go out at once, so the check takes
    three round trips of 0.1 s (TXT; both includes' TXT and MX; the MX host's A) rather than
    five; the result is the same without it."""
    with DnsServer(Behaviour(records=_records(SLOW), delay_s=0.1)) as server:
        client = DnsClient([parse_nameserver(server.address)])
        try:
            fast = await SpfChecker(client).check_host(
                "198.51.100.25", "top.slow.test", "a@top.slow.test"
            )
            together = server.most_in_flight  # the most queries the server held at once
            client.cache.clear()
            server.most_in_flight = 0
            t0 = time.perf_counter()
            slow = await SpfChecker(client, prefetch=False).check_host(
                "198.51.100.25", "top.slow.test", "a@top.slow.test"
            )
            one_by_one = time.perf_counter() - t0
        finally:
            client.close()
    assert fast == slow
    assert (fast.result, fast.mechanism, fast.lookups) == (Result.PASS, "mx", 3)
    assert together == 3  # both includes' TXT and the MX went out at once
    assert server.most_in_flight == 1  # without it: one by one,
    assert one_by_one > 0.48  # five round trips of 0.1 s
