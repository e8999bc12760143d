"""URLs: found in text and HTML, deobfuscated, normalised, with their registrable domain."""

from __future__ import annotations

import pytest

from seawall import corpus
from seawall.message import ParseLimits, Url, parse_message
from seawall.message.hosts import parse_ipv4
from seawall.message.urls import collect_urls, normalize_url


def urls_in(text: str) -> list[Url]:
    return list(parse_message(b"Subject: t\n\n" + text.encode()).urls)


@pytest.mark.parametrize(
    ("text", "url", "source"),
    [
        ("see http://Example.COM:80/Path?q=1#f.", "http://example.com/Path?q=1#f", "text"),
        ("HTTPS://EXAMPLE.COM", "https://example.com/", "text"),
        ("https://example.com:443/a", "https://example.com/a", "text"),
        ("https://example.com:8443/a", "https://example.com:8443/a", "text"),
        ("(see http://example.com/a_(b))", "http://example.com/a_(b)", "text"),
        ("<http://example.com/x>", "http://example.com/x", "text"),
        ('"http://example.com/q"', "http://example.com/q", "text"),
        ("ftp://files.example.org/pub", "ftp://files.example.org/pub", "text"),
        ("http://www.example.com./", "http://www.example.com/", "text"),
        # A host in percent-escapes is decoded (in a link's href it is marked as hidden).
        ("http://%77%77%77.example.com/", "http://www.example.com/", "text"),
        (
            "http://%31%39%35%2E%31%34%36%2E%39%39%2E%31%38%30:%38%37/%73%74/",
            "http://195.146.99.180:87/%73%74/",
            "text",
        ),
        ("http://user%40x@example.com/", "http://user%40x@example.com/", "text"),
        ("www.example.co.uk, then", "http://www.example.co.uk/", "bare"),
        ("WWW.EXAMPLE.COM", "http://www.example.com/", "bare"),
        ("go to example.com/login now", "http://example.com/login", "bare"),
        ("shop.example.de:8080/x", "http://shop.example.de:8080/x", "bare"),
        ("hxxp://evil.example/x", "http://evil.example/x", "obfuscated"),
        ("hXXps[:]//evil.example/", "https://evil.example/", "obfuscated"),
        ("evil[.]example/login", "http://evil.example/login", "obfuscated"),
        ("evil(.)example", "http://evil.example/", "obfuscated"),
        ("evil[dot]com", "http://evil.com/", "obfuscated"),
        ("evil(DOT)com", "http://evil.com/", "obfuscated"),
        ("hxxp://evil[.]example/a", "http://evil.example/a", "obfuscated"),
        ("http://münchen.de/", "http://münchen.de/", "text"),
        ("http://xn--mnchen-3ya.de/", "http://münchen.de/", "text"),
    ],
)
def test_found_in_text(text: str, url: str, source: str) -> None:
    (found,) = urls_in(text)
    assert (found.url, found.source) == (url, source)


@pytest.mark.parametrize(
    "text",
    [
        "mail me at john@example.com please",
        "the end.Start of a sentence",
        "run setup.py first",
        "version 1.2.3 and e.g. this, i.e. that",
        "javascript:alert(1) mailto:a@b.example",
        "a file named report.pdf",
        "ssh://host.example.com",
        "",
    ],
)
def test_not_urls(text: str) -> None:
    assert urls_in(text) == []


@pytest.mark.parametrize(
    ("raw", "host", "domain", "is_ip"),
    [
        ("http://www.bbc.co.uk/news", "www.bbc.co.uk", "bbc.co.uk", False),
        ("http://foo.blogspot.com/", "foo.blogspot.com", "foo.blogspot.com", False),
        ("http://a.b.example.com/", "a.b.example.com", "example.com", False),
        ("http://localhost/", "localhost", "localhost", False),
        ("http://xn--bcher-kva.de/", "bücher.de", "bücher.de", False),
        ("http://3232235777/", "192.168.1.1", "192.168.1.1", True),
        ("http://0xC0A80001/", "192.168.0.1", "192.168.0.1", True),
        ("http://0300.0250.0.1/", "192.168.0.1", "192.168.0.1", True),
        ("http://0xc0.168.1/", "192.168.0.1", "192.168.0.1", True),
        ("http://192.0.2.1:8080/", "192.0.2.1", "192.0.2.1", True),
        ("http://[2001:DB8::1]:8080/", "2001:db8::1", "2001:db8::1", True),
        ("http://user:pw@www.paypal.com@evil.example/", "evil.example", "evil.example", False),
    ],
)
def test_hosts(raw: str, host: str, domain: str, is_ip: bool) -> None:
    url = normalize_url(raw, "href")
    assert url is not None
    assert (url.host, url.domain, url.is_ip) == (host, domain, is_ip)


def test_ipv6_url_keeps_brackets() -> None:
    url = normalize_url("http://[2001:DB8::1]:8080/x", "href")
    assert url is not None
    assert url.url == "http://[2001:db8::1]:8080/x"


@pytest.mark.parametrize(
    "raw",
    [
        "/relative/path",
        "#top",
        "mailto:a@example.com",
        "javascript:void(0)",
        "cid:image001",
        "http://",
        "http://exa mple.com/",
        "http://example.com:99999/",
        "http://1.2.3.4.5/",
        "http://256.1.1.1/",
        "http://09.1.1.1/",
        "http://[::zz]/",
    ],
)
def test_rejected(raw: str) -> None:
    assert normalize_url(raw, "href") is None


def test_parse_ipv4_forms() -> None:
    assert parse_ipv4("127.1") == "127.0.0.1"
    assert parse_ipv4("0x7f.1") == "127.0.0.1"
    assert parse_ipv4("4294967295") == "255.255.255.255"
    assert parse_ipv4("4294967296") is None
    assert parse_ipv4("1.2.3.4.5") is None


def test_duplicates_keep_their_place_and_gain_link_text() -> None:
    links = [("http://x.example/", "href", "Click")]
    found = collect_urls(
        [([], "see http://x.example/ and HTTP://X.EXAMPLE:80/"), (links, "")], max_urls=10
    )
    (url,) = found
    assert (url.source, url.link_text) == ("href", "Click")


def test_limit() -> None:
    text = " ".join(f"http://h{i}.example/" for i in range(50))
    msg = parse_message(b"\n" + text.encode(), limits=ParseLimits(max_urls=7))
    assert [u.host for u in msg.urls] == [f"h{i}.example" for i in range(7)]


def test_html_links_come_first_with_their_text() -> None:
    raw = (
        b"Content-Type: text/html\n\n"
        b'<a href="http://track.example/c?u=1">www.bank.com</a> and '
        b'<img src="//cdn.example/p.png"><form action="https://post.example/"></form>'
        b'<a href="mailto:x@example.com">mail</a><a href="/relative">rel</a>'
    )
    msg = parse_message(raw)
    assert [(u.url, u.source, u.link_text) for u in msg.urls] == [
        ("http://track.example/c?u=1", "href", "www.bank.com"),
        ("http://cdn.example/p.png", "src", None),
        ("https://post.example/", "action", None),
        ("http://www.bank.com/", "bare", None),
    ]


def test_escaped_hosts_in_html() -> None:
    """An image map's area over a brand's link, its host in percent-escapes (as phishing
    of 2004 sent it): the address is found and marked; a form keeps its kind."""
    raw = (
        b"Content-Type: text/html\n\n"
        b'<a href="http://www.bank.example/login"><map name="m"><area shape="rect" '
        b'href="http://%31%39%32%2E%30%2E%32%2E%37:%38%37/%73/"></map>'
        b'<img src="cid:x" usemap="#m"></a>'
        b'<form action="http://%70ost.example/"></form>'
    )
    msg = parse_message(raw)
    assert [(u.url, u.source, u.is_ip) for u in msg.urls] == [
        ("http://www.bank.example/login", "href", False),
        ("http://192.0.2.7:87/%73/", "obfuscated", True),
        ("http://post.example/", "action", False),
    ]


def test_whitespace_inside_href_is_dropped() -> None:
    url = normalize_url(" http://ex\nample.com/a\tb ", "href")
    assert url is not None
    assert url.url == "http://example.com/ab"


def test_corpus_urls_are_normalised() -> None:
    """Across real spam every URL is absolute, lower-case in scheme and host, with a domain."""
    seen = 0
    for item in corpus.items(corpus.SPAMASSASSIN)[-600:]:
        for url in parse_message(item.path.read_bytes()).urls:
            seen += 1
            assert url.url.startswith(url.scheme + "://")
            assert url.scheme in ("http", "https", "ftp")
            assert url.host == url.host.lower()
            assert not url.host.endswith(".")
            assert url.domain
            assert url.host.endswith(url.domain)
    assert seen > 1000


def test_an_obfuscated_host_is_found_once_not_again_from_its_middle() -> None:
    msg = parse_message(
        b"From: a@b.example\n\nvisit hxxp://evil[.]co[.]uk/a or shop[.]example[.]biz\n"
    )
    assert [u.url for u in msg.urls] == ["http://evil.co.uk/a", "http://shop.example.biz/"]
