from __future__ import annotations

import pytest

from seawall.config import UrlsSettings
from seawall.detectors.urls import UrlsDetector

from .conftest import msg, scan

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
