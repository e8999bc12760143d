"""SPF records and macros without DNS: RFC 7208's grammar (§4.6, §5, §6, §7.1) and its
macro expansion examples (§7.4)."""

from __future__ import annotations

import ipaddress

import pytest

from seawall.auth.spf import SpfSyntaxError, expand, is_spf_record, parse_record

# --- Records --------------------------------------------------------------------------------


def test_mechanisms_qualifiers_and_cidr_lengths() -> None:
    record = parse_record(
        "v=spf1 +a -mx:mail.example.com/28 ~ptr ?ip4:192.0.2.0/24 ip6:2001:db8::/32 "
        "a:example.org/24//64 mx//96 exists:%{ir}.%{v}.bl.example.net include:_spf.example.net "
        "all exp=explain.%{d} moo.cow-far_out=man:dog/cat"
    )
    kinds = [(m.qualifier, m.kind) for m in record.mechanisms]
    assert kinds == [
        ("+", "a"),
        ("-", "mx"),
        ("~", "ptr"),
        ("?", "ip4"),
        ("+", "ip6"),
        ("+", "a"),
        ("+", "mx"),
        ("+", "exists"),
        ("+", "include"),
        ("+", "all"),
    ]
    mx, ip4, ip6, dual, mx6 = (record.mechanisms[i] for i in (1, 3, 4, 5, 6))
    assert (mx.cidr4, mx.cidr6) == (28, 128)
    assert ip4.network == ipaddress.ip_network("192.0.2.0/24")
    assert ip6.network == ipaddress.ip_network("2001:db8::/32")
    assert (dual.cidr4, dual.cidr6, dual.target) == (24, 64, ("example.org",))
    assert (mx6.cidr4, mx6.cidr6, mx6.target) == (32, 96, None)
    assert record.exp is not None
    assert record.redirect is None
    assert record.mechanisms[1].text == "-mx:mail.example.com/28"


def test_networks_may_have_host_bits_and_names_are_case_blind() -> None:
    record = parse_record("V=SPF1 IP4:192.0.2.77/24 Include:Example.COM -ALL Redirect=x.example")
    assert record.mechanisms[0].network == ipaddress.ip_network("192.0.2.0/24")
    assert [m.kind for m in record.mechanisms] == ["ip4", "include", "all"]
    assert record.redirect == ("x.example",)


def test_terms_are_separated_by_one_or_more_spaces() -> None:
    assert len(parse_record("v=spf1   a    -all  ").mechanisms) == 2
    assert parse_record("v=spf1").mechanisms == ()


@pytest.mark.parametrize(
    ("record", "why"),
    [
        ("v=spf1 ip4:192.0.2.1 -all moo", "an unknown mechanism after a matching one"),
        ("v=spf1 a:ctrl.example.com\rptr -all", "a control character between terms"),
        ("v=spf1 a:example.net \x96all", "a non-ASCII character"),
        ("v=spf1 a\t-all", "a tab between terms"),
        ("v=spf1 -all.", "a dot after all"),
        ("v=spf1 -all:foobar", "an argument to all"),
        ("v=spf1 -all/8", "a CIDR length on all"),
        ("v=spf1 ptr/0 -all", "a CIDR length on ptr"),
        ("v=spf1 ptr:", "an empty domain-spec"),
        ("v=spf1 include", "include without a domain"),
        ("v=spf1 include: -all", "include with an empty domain"),
        ("v=spf1 include:example.com/24 -all", "a CIDR length on include"),
        ("v=spf1 exists", "exists without a domain"),
        ("v=spf1 exists:mail.example.com/24", "a CIDR length on exists"),
        ("v=spf1 a:", "a with an empty domain"),
        ("v=spf1 a/33 -all", "an IPv4 CIDR length over 32"),
        ("v=spf1 a//129 -all", "an IPv6 CIDR length over 128"),
        ("v=spf1 a/24/64 -all", "the IPv6 length after a single slash"),
        ("v=spf1 mx/024", "a leading zero in a CIDR length"),
        ("v=spf1 a:111.222.33.44", "an address where a domain belongs"),
        ("v=spf1 a:abc.123", "an all-numeric top label"),
        ("v=spf1 a:museum", "a single label"),
        ("v=spf1 a:museum.", "a single label with a final dot"),
        ("v=spf1 a:example.-com", "a top label starting with a dash"),
        ("v=spf1 mx:example.com:8080", "a port after the domain"),
        ("v=spf1 a:foo.example.com\x00", "a NUL byte"),
        ("v=spf1 ip4", "ip4 without a network"),
        ("v=spf1 ip4:1.2.3", "a short IPv4 address"),
        ("v=spf1 ip4:1.2.3.4:8080", "a port after an IPv4 address"),
        ("v=spf1 ip4:192.0.2.01", "a leading zero in an IPv4 address"),
        ("v=spf1 ip4:1.2.3.4/33", "an IPv4 prefix over 32"),
        ("v=spf1 ip4:1.2.3.4/032", "a leading zero in a prefix"),
        ("v=spf1 ip4:1.2.3.4//32", "a dual CIDR on ip4"),
        ("v=spf1 ip6", "ip6 without a network"),
        ("v=spf1 ip6::CAFE::BABE", "a malformed IPv6 address"),
        ("v=spf1 ip6:::1.1.1.1/129", "an IPv6 prefix over 128"),
        ("v=spf1 ip6:::1.1.1.1//33", "a dual CIDR on ip6"),
        ("v=spf1 ip6:fe80::1%eth0", "a scoped IPv6 address"),
        ("v=spf1 redirect:example.com", "redirect written as a mechanism"),
        ("v=spf1 redirect=", "an empty redirect"),
        ("v=spf1 redirect=-all ?all", "a redirect to no domain"),
        ("v=spf1 exp=", "an empty exp"),
        ("v=spf1 exp=-all", "an exp to no domain"),
        ("v=spf1 redirect=a.example redirect=b.example", "redirect twice"),
        ("v=spf1 exp=a.example exp=b.example -all", "exp twice"),
        ("v=spf1 1up=foo", "a modifier name starting with a digit"),
        ("v=spf1 =all", "an empty modifier name"),
        ("v=spf1 moo.cow/far_out=man:dog/cat ip4:1.2.3.4", "a '/' in a modifier name"),
        ("v=spf1 moo.cow:far_out=man:dog/cat ip4:1.2.3.4", "a ':' before the '='"),
        ("v=spf1 -all foo=%abc", "a bad macro in an unknown modifier"),
        ("v=spf1 -exists:%(ir).sbl.example.com ?all", "'%(' instead of '%{'"),
        ("v=spf1 exists:foo%.sbl.example.com", "a lone '%'"),
        ("v=spf1 a:%{a}.example.com -all", "an unknown macro letter"),
        ("v=spf1 -all exp=%{r}.example.com", "an explanation-only macro in a domain-spec"),
        ("v=spf1 exists:%{d0}.example.com", "a zero transformer"),
        ("v=spf1 a:%{d}com", "no dot before the top label after a macro"),
        ("v=spf1 all -all blah", "an unknown mechanism after all"),
    ],
)
def test_syntax_errors_anywhere_are_errors(record: str, why: str) -> None:
    with pytest.raises(SpfSyntaxError):
        parse_record(record)


@pytest.mark.parametrize(
    "record",
    [
        "v=spf1 a:foo:bar/baz.example.com",  # any visible character but '%' before the top label
        "v=spf1 a:foo.example.xn--zckzah -all",  # a dash in the top label
        "v=spf1 a:mail.example.com. -all",  # a final dot
        "v=spf1 default=pass",  # an unknown modifier, ignored
        "v=spf1 default=+",
        "v=spf1 a:macro%%percent%_%_space%-url-space.example.com -all",
        "v=spf1 exists:%{i}.%{l2r-}.user.%{d2} exists:%{l2r+-}.user.%{d2}",
        "v=spf1 exists:%{p}.should.example.com ~exists:%{p}.ok.example.com",
        "v=spf1 a:%{H} -all",  # ends with a macro: no top label needed
        "v=spf1 -include:_spfh.%{d2} ip4:1.2.3.0/24 -all",
        "v=spf1 ip6:::1.1.1.1/0 ip6:Cafe:Babe:8000::/33 ip6:::ffff:1.2.3.4",
    ],
)
def test_valid_records(record: str) -> None:
    parse_record(record)


def test_a_record_is_told_by_its_version_alone() -> None:
    assert is_spf_record("v=spf1")
    assert is_spf_record("V=SpF1 -all")
    assert is_spf_record("v=spf1 a")
    assert not is_spf_record("v=spf10")
    assert not is_spf_record("v=spf1a")
    assert not is_spf_record("spf2.0/pra -all")
    assert not is_spf_record(" v=spf1 -all")


# --- Macros (§7.4) ---------------------------------------------------------------------------

SENDER = "strong-bad@email.example.com"


@pytest.mark.parametrize(
    ("macro", "expansion"),
    [
        ("%{s}", "strong-bad@email.example.com"),
        ("%{o}", "email.example.com"),
        ("%{d}", "email.example.com"),
        ("%{d4}", "email.example.com"),
        ("%{d3}", "email.example.com"),
        ("%{d2}", "example.com"),
        ("%{d1}", "com"),
        ("%{dr}", "com.example.email"),
        ("%{d2r}", "example.email"),
        ("%{l}", "strong-bad"),
        ("%{l-}", "strong.bad"),
        ("%{lr}", "strong-bad"),
        ("%{lr-}", "bad.strong"),
        ("%{l1r-}", "strong"),
        ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
        ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
        ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
        ("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
        ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
    ],
)
def test_rfc_7208_macro_examples_for_ipv4(macro: str, expansion: str) -> None:
    assert expand(macro, ip="192.0.2.3", sender=SENDER, domain="email.example.com") == expansion


def test_rfc_7208_macro_example_for_ipv6() -> None:
    got = expand(
        "%{ir}.%{v}._spf.%{d2}", ip="2001:db8::cb01", sender=SENDER, domain="email.example.com"
    )
    assert got == (
        "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
    )


def test_upper_case_macros_are_url_escaped() -> None:
    got = expand(
        "http://example.com/why.html?l=%{L}",
        ip="192.0.2.42",
        sender="~jack&jill=up-a_b3.c@e8.example.com",
        domain="e8.example.com",
    )
    assert got == "http://example.com/why.html?l=~jack%26jill%3Dup-a_b3.c"


def test_escapes_multiple_delimiters_and_explanation_letters() -> None:
    common = {"ip": "192.0.2.3", "domain": "example.com"}
    assert expand("a%%b%_c%-d", sender=SENDER, **common) == "a%b c%20d"
    assert expand("%{l2r+-}", sender="foo-bar+zip+quux@example.com", **common) == "bar.foo"
    assert expand("%{l2r-}", sender="philip-gladstone-test@example.com", **common) == (
        "gladstone.philip"
    )
    assert expand("%{l}", sender="@example.com", **common) == "postmaster"
    assert expand("%{h}.%{p}", sender=SENDER, helo="mx.example.org", **common) == (
        "mx.example.org.unknown"
    )
    text = "%{c} at %{r} on %{t}: %{i}"
    explained = expand(
        text, sender=SENDER, receiver="mx.isp.test", now=1e9, explanation=True, **common
    )
    assert explained == "192.0.2.3 at mx.isp.test on 1000000000: 192.0.2.3"
    v6 = expand("%{c} %{v}", ip="2001:DB8::CB01", sender=SENDER, domain="x.test", explanation=True)
    assert v6 == "2001:db8::cb01 ip6"
    with pytest.raises(SpfSyntaxError):
        expand("%{c}", sender=SENDER, **common)  # c, r and t only in explanations
    with pytest.raises(SpfSyntaxError):
        expand("%{x}-files", sender=SENDER, explanation=True, **common)


def test_an_ipv4_mapped_client_expands_as_ipv4() -> None:
    got = expand("%{ir}.%{v}", ip="::ffff:192.0.2.3", sender=SENDER, domain="example.com")
    assert got == "3.2.0.192.in-addr"
