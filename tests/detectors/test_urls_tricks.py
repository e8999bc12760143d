"""URL_HOMOGRAPH, URL_REDIRECT and URL_FREE_HOSTING: look-alike hosts, links through open
redirectors, pages on free hosts."""

from __future__ import annotations

import pytest
from tests.detectors.conftest import corpus_messages, msg, scan

from seawall import corpus
from seawall.config import UrlsSettings
from seawall.detectors.urls import UrlsDetector


@pytest.fixture
def urls() -> UrlsDetector:
    return UrlsDetector(UrlsSettings())


@pytest.mark.parametrize(
    ("host", "fires"),
    [
        ("xn--pypal-4ve.com", True),  # p + Cyrillic a + ypal: mixed scripts
        ("xn--80ak6aa92e.com", True),  # "apple" wholly in Cyrillic look-alikes
        ("xn--mnchen-3ya.de", False),  # münchen: Latin with an umlaut
        ("xn--80adxhks.xn--p1ai", False),  # москва.рф: a whole Cyrillic name
        ("www.example.com", False),
    ],
)
async def test_homographs(urls: UrlsDetector, host: str, fires: bool) -> None:
    hits = await scan(urls, msg(f"From: a@b.example\n\nhttp://{host}/login\n".encode()))
    assert ("URL_HOMOGRAPH" in hits) is fires


async def test_open_redirector(urls: UrlsDetector) -> None:
    raw = b"From: a@b.example\n\nhttp://www.google.com/url?q=https%3A%2F%2Fevil.example%2Fx\n"
    hits = await scan(urls, msg(raw))
    assert hits["URL_REDIRECT"].options == ("www.google.com->evil.example",)


async def test_a_mailing_services_own_click_counter(urls: UrlsDetector) -> None:
    # The newsletter's links go through the service that sent it, to the publisher's site.
    link = b"http://www.mailservice.example.com/t?url=http://news.example.org/story\n"
    hop = (
        b"Received: from eng.mailservice.example.com (mta4.mailservice.example.com "
        b"[192.0.2.17])\n\tby mx.example.net (Postfix); Tue, 01 Jul 2003 10:52:40 +0200\n"
    )
    raw = hop + b"From: editor@news.example.org\n\n" + link
    assert "URL_REDIRECT" not in await scan(urls, msg(raw))
    # Through another site, or from a server no lookup named, it is an open redirector.
    unnamed = raw.replace(b"mta4.mailservice.example.com ", b"unknown ")
    hits = await scan(urls, msg(unnamed))
    assert hits["URL_REDIRECT"].options == ("www.mailservice.example.com->news.example.org",)
    other = raw.replace(b"mta4.mailservice.example.com", b"mta4.elsewhere.example.net")
    assert "URL_REDIRECT" in await scan(urls, msg(other))


@pytest.mark.parametrize(
    "link",
    [
        "http://www.example.com/login?next=https://www.example.com/home",  # its own site
        "http://click.mlsend.example/x?u=http://b.example/",  # a configured tracker
        "http://www.example.com/a/b?q=hello",
    ],
)
async def test_not_redirects(link: str) -> None:
    urls = UrlsDetector(UrlsSettings(redirectors=("mlsend.example",)))
    hits = await scan(urls, msg(f"From: a@b.example\n\n{link}\n".encode()))
    assert "URL_REDIRECT" not in hits


_HTML = "From: a@b.example\nContent-Type: text/html\n\n<html><body>{}</body></html>\n"


@pytest.mark.parametrize(
    ("body", "host"),
    [
        ('<a href="https://storage.googleapis.com/x7/i.html">Sign in</a>', None),
        ('<a href="https://secure-login.pages.dev/a">Verify</a>', "secure-login.pages.dev"),
        ('<form action="https://kit.000webhostapp.com/p.php"></form>', None),
        ("Visit transfer705.pages.dev/evas?flexchase now", "transfer705.pages.dev"),
        ('<a href="https://bafy.ipfs.dweb.link/#x">Open</a>', "bafy.ipfs.dweb.link"),
    ],
)
async def test_free_hosting_fires_for_pages_on_free_hosts(
    urls: UrlsDetector, body: str, host: str | None
) -> None:
    hits = await scan(urls, msg(_HTML.format(body).encode()))
    assert "URL_FREE_HOSTING" in hits
    if host is not None:
        assert hits["URL_FREE_HOSTING"].options == (host,)


@pytest.mark.parametrize(
    "body",
    [
        '<img src="https://storage.googleapis.com/news/banner.png">',  # an image, not a page
        '<a href="https://someone.blogspot.com/2024/post.html">my post</a>',  # blogs: left out
        '<a href="https://evilpages.dev/x">x</a>',  # a name that only ends like one
        '<a href="https://pages.dev.example.com/x">x</a>',
        '<a href="https://www.example.com/">home</a>',
    ],
)
async def test_free_hosting_not_for_images_blogs_or_look_alike_names(
    urls: UrlsDetector, body: str
) -> None:
    hits = await scan(urls, msg(_HTML.format(body).encode()))
    assert "URL_FREE_HOSTING" not in hits


async def test_free_hosting_takes_a_site_list() -> None:
    urls = UrlsDetector(UrlsSettings(free_hosts=("freesites.example.",)))
    raw = _HTML.format('<a href="https://shop.FreeSites.example/x">x</a>').encode()
    hits = await scan(urls, msg(raw))
    assert hits["URL_FREE_HOSTING"].options == ("shop.freesites.example",)


# Measured on all the shared corpora: 18 ham carried URL_REDIRECT before, 11 of them
# newsletters through their sending service's own click counter (CNET's, iMakeNews'); 2
# of the 292 spam hits were alike.
async def test_redirects_on_real_mail(urls: UrlsDetector) -> None:
    ham = corpus_messages(corpus.SPAMASSASSIN, "ham")
    fired = [raw for raw in ham if "URL_REDIRECT" in await scan(urls, msg(raw))]
    assert len(fired) <= 6, [raw[:300] for raw in fired]
    phish = corpus_messages(corpus.PHISHING_POT, "spam", step=4)
    assert sum(["URL_REDIRECT" in await scan(urls, msg(raw)) for raw in phish]) > 60
