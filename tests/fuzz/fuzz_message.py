"""Fuzz target: ``parse_message`` never raises, whatever the bytes, and keeps its limits.

Also reads the parsed message the way the detectors do (the Date header, the arrival time,
list mail, the URLs' domains, the names and addresses asked of DNS lists, as queries on the
wire), since those helpers parse attacker text too.  One input in
five is parsed under tight limits, so the limit paths are fuzzed as well as the defaults.
"""

from __future__ import annotations

import contextlib

from seawall.dnslists.lists import listable_ip, reverse_ip
from seawall.dnslists.names import link_names, sender_names
from seawall.dnslists.wire import RdType, encode_query
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
ENVELOPE = Envelope(
    client_ip="198.51.100.7", helo="bot.example", hostname="unknown", mail_from="<a@b.example>"
)
ROLES = frozenset({"mail_from", "from", "reply_to", "helo", "rdns"})
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
    links, hosts = link_names(msg, 20, hosts=True)
    for name in (*links, *hosts):
        # ValueError is what the DNS client answers as "not a valid DNS name".
        with contextlib.suppress(ValueError):
            encode_query(1, f"{name}.dbl.example", RdType.A)
    for _, domain, full in sender_names(msg, ROLES, authenticated=False):
        encode_query(1, domain, RdType.A)  # sender names are checked DNS names: no error
        encode_query(1, full, RdType.A)
    for hop in msg.received:
        if hop.ip and listable_ip(hop.ip):
            assert reverse_ip(hop.ip) is not None
