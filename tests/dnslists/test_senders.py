"""The sender's names asked of domain lists (DBL): which names, how often, what hits say."""

from __future__ import annotations

import msgspec
import pytest
from tests.dnslists.fakes import TableResolver, listed

from seawall.config import DnsblSettings, DnsListSettings, Trusted
from seawall.detectors.base import Context, Hit
from seawall.detectors.dnsbl import DnsblDetector
from seawall.dnslists.answer import Answer, Status
from seawall.dnslists.names import sender_names
from seawall.message import Envelope, Message, ParseLimits, parse_message

DBL = ".dbl.spamhaus.org"


def detector(resolver: TableResolver, **changes: object) -> DnsblDetector:
    settings = msgspec.structs.replace(DnsblSettings(enabled=True), **changes)
    return DnsblDetector(settings, Trusted(), io_timeout_s=2.0, resolver=resolver)


def message(raw: str, **envelope: str) -> Message:
    return parse_message(raw.encode(), Envelope(**envelope), ParseLimits())


async def hits(det: DnsblDetector, msg: Message, *, authenticated: bool = False) -> dict[str, Hit]:
    found = await det.start(msg, Context(now=0.0, authenticated=authenticated))
    by_symbol = {hit.symbol: hit for hit in found}
    assert len(by_symbol) == len(found)
    assert set(by_symbol) <= set(DnsblDetector.symbols)
    return by_symbol


def dbl_asked(resolver: TableResolver) -> list[str]:
    return [name.removesuffix(DBL) for name in resolver.asked if name.endswith(DBL)]


SENDER = """From: "Shop" <news@offers.spam-brand.com>
Reply-To: Orders <orders@reply-drop.org>
Content-Type: text/html

<a href="http://www.spam-brand.com/buy">buy</a> <a href="http://fine-shop.net/">x</a>
"""
ENVELOPE = {
    "client_ip": "81.2.69.160",
    "helo": "mx1.spam-host.net",
    "hostname": "out-7.spam-host.net",
    "mail_from": "bounce@mail.bulk-sender.com",
}


async def test_each_sender_name_is_asked_once_as_its_registrable_domain() -> None:
    resolver = TableResolver()
    await hits(detector(resolver), message(SENDER, **ENVELOPE))
    asked = dbl_asked(resolver)
    # The links first (spam-brand.com is also the From domain: asked once), then the
    # sender's names; HELO and rDNS share spam-host.net.
    assert asked == [
        "spam-brand.com",
        "fine-shop.net",
        "bulk-sender.com",
        "reply-drop.org",
        "spam-host.net",
    ]
    surbl = [n for n in resolver.asked if n.endswith(".multi.surbl.org")]
    assert surbl == ["spam-brand.com.multi.surbl.org", "fine-shop.net.multi.surbl.org"]


async def test_sender_hits_have_their_own_symbols_and_say_which_name() -> None:
    resolver = TableResolver(
        {
            "spam-host.net" + DBL: listed("127.0.1.2"),
            "spam-brand.com" + DBL: listed("127.0.1.4"),
            "reply-drop.org" + DBL: listed("127.0.1.105"),
        }
    )
    found = await hits(detector(resolver), message(SENDER, **ENVELOPE))
    assert found["RBL_DBL_SPAM"].options == (
        "helo:spam-host.net=127.0.1.2",
        "rdns:spam-host.net=127.0.1.2",
    )
    assert found["RBL_DBL_PHISH"].options == ("from:spam-brand.com=127.0.1.4",)
    assert found["URIBL_DBL_PHISH"].options == ("spam-brand.com=127.0.1.4",)  # the link
    assert found["RBL_DBL_ABUSED"].options == ("reply_to:reply-drop.org=127.0.1.105",)
    assert set(found) == {"RBL_DBL_SPAM", "RBL_DBL_PHISH", "URIBL_DBL_PHISH", "RBL_DBL_ABUSED"}


async def test_a_name_asked_only_for_the_sender_gives_no_link_symbol() -> None:
    resolver = TableResolver({"bulk-sender.com" + DBL: listed("127.0.1.2")})
    found = await hits(detector(resolver), message(SENDER, **ENVELOPE))
    assert set(found) == {"RBL_DBL_SPAM"}
    assert found["RBL_DBL_SPAM"].options == ("mail_from:bulk-sender.com=127.0.1.2",)


@pytest.mark.parametrize(
    ("raw", "envelope"),
    [
        ("From: a@[81.2.69.160]\n\nhi\n", {"helo": "[81.2.69.160]", "mail_from": ""}),
        ("From: nobody\n\nhi\n", {"helo": "81.2.69.160", "hostname": "unknown"}),
        ("From: a@localhost\n\nhi\n", {"helo": "localhost", "mail_from": "a@b"}),
        ("From: <>\nReply-To: ,;<@>\n\nhi\n", {"helo": "co.uk", "hostname": "[81.2.69.9]"}),
        ("From: a@setup.exe\n\nhi\n", {"helo": "host.invalid-tld-name", "mail_from": "<>"}),
        ("From: a@" + "x" * 300 + ".com\n\nhi\n", {"helo": "a." * 200 + "com"}),
        ("From: a@evil example.com\n\nhi\n", {"helo": "bad_label-.com"}),
    ],
)
async def test_names_that_cannot_be_listed_are_not_asked(raw: str, envelope: dict) -> None:
    resolver = TableResolver()
    assert await hits(detector(resolver), message(raw, **envelope)) == {}
    assert dbl_asked(resolver) == []


async def test_an_authenticated_sender_is_asked_by_address_not_by_host() -> None:
    resolver = TableResolver()
    await hits(detector(resolver), message(SENDER, **ENVELOPE), authenticated=True)
    assert "spam-host.net" not in dbl_asked(resolver)
    assert {"bulk-sender.com", "reply-drop.org"} <= set(dbl_asked(resolver))


RELAYED = """Received: from mx.our-isp.net (mx.our-isp.net [127.0.0.1]) by mx.our-isp.net
Received: from helo.spam-host.net (rdns.other-host.org [81.2.69.160]) by mx.our-isp.net
From: a@b.example

hi
"""


async def test_without_the_mtas_names_the_first_untrusted_hop_gives_them() -> None:
    resolver = TableResolver({"other-host.org" + DBL: listed("127.0.1.2")})
    found = await hits(detector(resolver), message(RELAYED))
    assert dbl_asked(resolver) == ["spam-host.net", "other-host.org"]
    assert found["RBL_DBL_SPAM"].options == ("rdns:other-host.org=127.0.1.2",)


async def test_a_list_with_hosts_also_asks_the_full_names() -> None:
    dbl = msgspec.structs.replace(DnsblSettings().lists[1], hosts=True, checks=("from", "helo"))
    resolver = TableResolver()
    await hits(detector(resolver, lists=(dbl,)), message(SENDER, **ENVELOPE))
    assert dbl_asked(resolver) == [
        "spam-brand.com",
        "offers.spam-brand.com",
        "spam-host.net",
        "mx1.spam-host.net",
    ]


async def test_checks_choose_the_names() -> None:
    dbl = msgspec.structs.replace(DnsblSettings().lists[1], checks=("helo",))
    resolver = TableResolver()
    await hits(detector(resolver, lists=(dbl,)), message(SENDER, **ENVELOPE))
    assert dbl_asked(resolver) == ["spam-host.net"]  # no links, no addresses


async def test_a_sender_lookup_that_fails_is_a_status_symbol() -> None:
    resolver = TableResolver(
        {"spam-host.net" + DBL: None, "bulk-sender.com" + DBL: listed("127.255.255.254")}
    )
    det = detector(resolver, budget_s=0.1)
    found = await hits(det, message(SENDER, **ENVELOPE))
    assert found["DNSBL_TIMEOUT"].options == ("dbl",)
    assert found["DNSBL_BLOCKED"].options == ("dbl=127.255.255.254",)
    assert not any(s.startswith("RBL_") for s in found)


async def test_hostile_headers_give_no_names() -> None:
    # What it costs: bench.hostile input ("sender names, megabyte headers").
    raw = "From: " + "<a@" * 20_000 + "x.com>\nReply-To: " + "@" * 100_000 + "\n\nhi\n"
    msg = message(raw, helo="x" * 100_000, mail_from="@" * 100_000)
    roles = frozenset({"mail_from", "from", "reply_to", "helo"})
    assert sender_names(msg, roles, authenticated=False) == []  # nothing to look up


def test_sender_names_of_a_plain_message() -> None:
    msg = message(SENDER, **ENVELOPE)
    roles = frozenset({"mail_from", "from", "reply_to", "helo", "rdns"})
    assert sender_names(msg, roles, authenticated=False) == [
        ("mail_from", "bulk-sender.com", "mail.bulk-sender.com"),
        ("from", "spam-brand.com", "offers.spam-brand.com"),
        ("reply_to", "reply-drop.org", "reply-drop.org"),
        ("helo", "spam-host.net", "mx1.spam-host.net"),
        ("rdns", "spam-host.net", "out-7.spam-host.net"),
    ]


def test_an_international_sender_domain_is_asked_in_ascii() -> None:
    msg = message("From: a@xn--bcher-kva.de\n\nhi\n", helo="mail.bücher.de")
    names = sender_names(msg, frozenset({"from", "helo"}), authenticated=False)
    assert names == [
        ("from", "xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("helo", "xn--bcher-kva.de", "mail.xn--bcher-kva.de"),
    ]


def test_sender_codes_must_match_the_checks() -> None:
    custom = DnsListSettings(
        name="own", zone="dbl.example.net", kind="domain", checks=("from",),
        sender_codes={"127.0.0.2": "RBL_OWN_FROM"},
    )  # fmt: skip
    det = detector(TableResolver(), lists=(custom,))
    assert det.lists[0].symbols == ("RBL_OWN_FROM",)
    assert not det.lists[0].links


async def test_failed_lookup_of_a_shared_name_counts_once() -> None:
    msg = message(SENDER, **{**ENVELOPE, "mail_from": "x@spam-brand.com"})
    resolver = TableResolver({"spam-brand.com" + DBL: Answer(Status.SERVFAIL, detail="x")})
    found = await hits(detector(resolver), msg)
    assert dbl_asked(resolver).count("spam-brand.com") == 1  # link, From and MAIL FROM
    assert found["DNSBL_SERVFAIL"].options == ("dbl",)
