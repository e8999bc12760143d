"""Fuzz target: ``parse_message`` never raises, whatever the bytes, and keeps its limits.

Also reads the parsed message the way the detectors do (the Date header, the arrival time,
list mail, the URLs' domains), since those helpers parse attacker text too.  One input in
five is parsed under tight limits, so the limit paths are fuzzed as well as the defaults.
"""

from __future__ import annotations

from seawall.message import Envelope, ParseLimits, parse_message
from seawall.message.dates import arrival_time, parse_date
from seawall.message.headers import is_list_mail
from seawall.message.hosts import registrable_domain, same_site

TIGHT = ParseLimits(
    max_message_bytes=16384,
    max_parts=5,
    max_depth=3,
    max_header_bytes=512,
    max_text_chars=1000,
    max_part_bytes=4096,
    max_urls=5,
)
DEFAULT = ParseLimits()
ENVELOPE = Envelope(client_ip="198.51.100.7", helo="bot.example", hostname="unknown")
NOW = 1_750_000_000.0


def check(data: bytes) -> None:
    limits = TIGHT if len(data) % 5 == 0 else DEFAULT
    envelope = ENVELOPE if len(data) % 3 == 0 else Envelope()
    msg = parse_message(data, envelope, limits)
    assert msg.size == len(data)
    assert len(msg.text) <= limits.max_text_chars
    assert len(msg.urls) <= limits.max_urls
    assert all(isinstance(defect, str) for defect in msg.defects)
    date = parse_date(msg.headers.get("Date", ""))
    assert date is None or isinstance(date, float)
    arrival_time(msg, NOW)
    is_list_mail(msg.headers)
    _ = msg.source_ip, msg.has_html, msg.subject
    for url in msg.urls:
        registrable_domain(url.host)
        same_site(url.host, "example.com")
