from __future__ import annotations

import pytest

from seawall import corpus
from seawall.config import UrlsSettings
from seawall.detectors.urls import UrlsDetector
from seawall.message import Envelope

from .conftest import corpus_messages, msg, scan

DETECTOR = UrlsDetector(UrlsSettings(many_urls=5, shorteners=("sho.rt",)))


def html(*anchors: tuple[str, str]) -> bytes:
    """An HTML message whose body is the given (href, text) links."""
    body = "".join(f'<p><a href="{href}">{text}</a></p>\n' for href, text in anchors)
    return (
        "From: shop@example.org\nTo: bob@example.net\nSubject: news\n"
        "Content-Type: text/html; charset=utf-8\n\n"
        f"<html><body>{body}</body></html>\n"
    ).encode()


async def symbols(*anchors: tuple[str, str]) -> set[str]:
    return set(await scan(DETECTOR, msg(html(*anchors))))


@pytest.mark.parametrize(
    ("symbol", "href", "text"),
    [
        ("URL_IP", "http://203.0.113.7/login.php", "Log in"),
        ("URL_IP", "http://3405803783/login.php", "Log in"),
        ("URL_SHORTENER", "https://bit.ly/3xYz", "Track your parcel"),
        ("URL_SHORTENER", "https://sho.rt/abc", "Track your parcel"),
        ("URL_TEXT_MISMATCH", "http://paypal.account-verify.example.com/", "www.paypal.com"),
        ("URL_TEXT_MISMATCH", "https://evil.example.net/x", "https://www.bank.co.uk/login"),
        ("URL_TEXT_MISMATCH", "http://203.0.113.7/login", "www.paypal.com"),
        ("URL_USERINFO", "http://www.paypal.com@evil.example.net/", "Log in"),
        ("URL_PORT", "http://shop.example.net:8081/offer", "See the offer"),
    ],
)
async def test_url_symbol_fires(symbol: str, href: str, text: str) -> None:
    assert symbol in await symbols((href, text))


async def test_many_urls() -> None:
    links = [(f"https://example.org/item/{n}", f"item {n}") for n in range(6)]
    assert await symbols(*links) == {"URL_MANY"}
    assert await symbols(*links[:5]) == set()


async def test_obfuscated_url() -> None:
    raw = b"From: a@example.org\n\nGo to hxxp://evil[.]example[.]net/pay now\n"
    assert "URL_OBFUSCATED" in set(await scan(DETECTOR, msg(raw)))


@pytest.mark.parametrize(
    ("href", "text"),
    [
        ("https://www.example.org/news", "www.example.org"),
        ("https://shop.example.co.uk/", "https://example.co.uk"),
        ("https://example.org/a", "Read the FAQ.html"),
        ("https://example.org/a", "Click here"),
        ("https://example.org/a", "Contact bob@example.net"),
        ("https://example.list-manage.com/track/click?u=1", "www.example.org"),
        ("https://click.example.org/t/123", "www.example.net"),  # the sender's own tracker
        ("https://bitly.example.org/x", "bitly.example.org"),
        ("http://example.org:80/x", "http://example.org"),
    ],
)
async def test_honest_links_are_clean(href: str, text: str) -> None:
    assert await symbols((href, text)) == set()


async def test_no_links_is_clean() -> None:
    assert await scan(DETECTOR, msg(b"From: a@example.org\n\nhello\n")) == {}


async def test_a_stray_ip_link_in_a_link_digest_weighs_a_quarter() -> None:
    # many_urls is 5 here: 11 named links and one bare IP (under a tenth) is a digest.
    named = [(f"https://blog{n}.example.org/", f"blog {n}") for n in range(11)]
    ip = ("http://203.0.113.7/weblog/", "a weblog")
    hits = await scan(DETECTOR, msg(html(*named, ip)))
    assert hits["URL_IP"].weight == 0.25
    # The same IP link among a few named ones (a bank's mail copied, its login link
    # replaced) keeps its whole weight, and so does a digest of many IP links.
    assert (await scan(DETECTOR, msg(html(*named[:4], ip))))["URL_IP"].weight == 1.0
    ips = [(f"http://203.0.113.{n}/", f"host {n}") for n in range(3)]
    assert (await scan(DETECTOR, msg(html(*named[:9], *ips))))["URL_IP"].weight == 1.0


# A mailing service counts clicks on its own domain: the link text shows the shop, the
# link goes to the service, whose server handed us the mail.
SERVICE_HOP = (
    "Received: from mta7.mailer.example.com (80-93-2-13-ptr.mailer.example.com [192.0.2.13])\n"
    "\tby mx.example.net (Postfix) with ESMTP id 4F2A1; Tue, 01 Jul 2003 10:52:40 +0200\n"
)
TRACKED = ("http://www.mailer.example.com/c?id=7", "www.tesco.example.org")


async def test_a_link_to_the_sending_servers_own_domain_is_no_mismatch() -> None:
    assert await symbols(TRACKED) == {"URL_TEXT_MISMATCH"}
    tracked = SERVICE_HOP.encode() + html(TRACKED)
    assert set(await scan(DETECTOR, msg(tracked))) == set()
    # Told by the MTA, as a milter hears it, with no Received header yet.
    told = Envelope(client_ip="192.0.2.13", helo="mta7", hostname="mta7.mailer.example.com")
    assert set(await scan(DETECTOR, msg(html(TRACKED), told))) == set()


async def test_only_the_receivers_lookup_names_the_sending_server() -> None:
    # The HELO is the client's own word; "unknown" is a lookup that found nothing.
    helo_only = SERVICE_HOP.replace("80-93-2-13-ptr.mailer.example.com", "unknown")
    assert set(await scan(DETECTOR, msg(helo_only.encode() + html(TRACKED)))) == {
        "URL_TEXT_MISMATCH"
    }
    told = Envelope(client_ip="192.0.2.13", helo="mta7.mailer.example.com", hostname="unknown")
    assert set(await scan(DETECTOR, msg(html(TRACKED), told))) == {"URL_TEXT_MISMATCH"}
    # A link elsewhere still mismatches, whoever sent it.
    elsewhere = ("http://login.evil.example.net/", "www.tesco.example.org")
    assert set(await scan(DETECTOR, msg(SERVICE_HOP.encode() + html(elsewhere)))) == {
        "URL_TEXT_MISMATCH"
    }


# Measured on all the shared corpora: 3 ham mismatched before, 2 of them newsletters whose
# links went to their mailing service's domain; every one of the 421 spam hits stayed.
async def test_link_text_mismatch_on_real_mail() -> None:
    ham = corpus_messages(corpus.SPAMASSASSIN, "ham")
    fired = [raw for raw in ham if "URL_TEXT_MISMATCH" in await scan(DETECTOR, msg(raw))]
    assert len(fired) <= 1, [raw[:300] for raw in fired]
    phish = corpus_messages(corpus.NAZARIO, "spam")
    caught = [raw for raw in phish if "URL_TEXT_MISMATCH" in await scan(DETECTOR, msg(raw))]
    assert len(caught) > 140
