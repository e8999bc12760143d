"""Host names and dates as the detectors compare them: registrable domains, same site, Date."""

from __future__ import annotations

from seawall.message.dates import parse_date
from seawall.message.hosts import domain_of, registrable_domain, same_site


def test_registrable_domain() -> None:
    assert registrable_domain("a.b.example.co.uk") == "example.co.uk"
    assert registrable_domain("203.0.113.7") is None
    assert registrable_domain("co.uk") is None
    assert registrable_domain("localhost") is None


def test_domain_of_is_lenient() -> None:
    assert domain_of("www.bbc.co.uk") == "bbc.co.uk"
    assert domain_of("localhost") == "localhost"


def test_same_site() -> None:
    assert same_site("www.example.co.uk", "mail.example.co.uk")
    assert same_site("example.org", "example.org")
    assert not same_site("example.co.uk", "other.co.uk")
    assert not same_site("co.uk", "co.uk.evil")


def test_parse_date() -> None:
    assert parse_date("Tue, 1 Jul 2003 10:52:37 +0200") == 1057049557.0
    assert parse_date("Tue, 1 Jul 2003 10:52:37 GMT") == 1057056757.0
    assert parse_date("Tue, 1 Jul 03 04:52:37 EDT") == 1057049557.0
    assert parse_date("Tuesday 1 July 2003 08:52 +0000") == 1057049520.0
    assert parse_date("Tue, 31 Feb 2003 08:52:00 +0000") is None
    assert parse_date("") is None
