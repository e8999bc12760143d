"""URL_HOMOGRAPH and URL_REDIRECT: look-alike hosts and links through open redirectors."""

from __future__ import annotations

import pytest
from tests.detectors.conftest import msg, scan

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
