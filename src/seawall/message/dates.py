"""Dates in mail: RFC 5322 Date values, and when a message reached us.

Values are cut to one RFC 5322 line (§2.1.1, 998 characters) before they are matched, so the
patterns here stay linear on a hostile field.
"""

from __future__ import annotations

import calendar
import re
from email.utils import parsedate_tz

from seawall.message.model import Message

_MAX_FIELD = 998
_DATE = re.compile(
    r"\s*(?:[a-z]{3,9},?\s*)?(\d{1,2})[\s-]+([a-z]{3})[a-z]*\.?[\s-]+(\d{2,4})\s+"
    r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(?:([+-])(\d{2}):?(\d{2})|([a-z]{1,5}))?",
    re.IGNORECASE,
)
_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
_MONTH_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # index 1..12
_DAYS_BEFORE = (0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)
_ZONES = {"edt": -4, "est": -5, "cdt": -5, "cst": -6, "mdt": -6, "mst": -7, "pdt": -7, "pst": -8}


def parse_date(value: str) -> float | None:
    """Unix time of an RFC 5322 date, None when it cannot be read.

    >>> parse_date("Tue, 1 Jul 2003 10:52:37 +0200")
    1057049557.0
    """
    found = _DATE.match(value)
    if found is None:
        parsed = parsedate_tz(value)  # the slow, lenient stdlib reader for odd spellings
        if parsed is None:
            return None
        try:
            return float(calendar.timegm(parsed[:6]) - (parsed[9] or 0))
        except (ValueError, OverflowError):
            return None
    day, mon, year, hour, minute, second, sign, zh, zm, zone = found.groups()
    month = _MONTHS.get(mon.lower())
    if month is None:
        return None
    y = int(year)
    if len(year) < 4:  # RFC 5322 §4.3: obsolete two- and three-digit years
        y += 2000 if y < 50 else 1900
    offset = 0
    if sign:
        offset = (int(zh) * 60 + int(zm)) * 60 * (-1 if sign == "-" else 1)
    elif zone:
        offset = _ZONES.get(zone.lower(), 0) * 3600
    d, h, m, s = int(day), int(hour), int(minute), int(second or 0)
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    if h > 23 or m > 59 or s > 60 or not 1 <= d <= _MONTH_DAYS[month] + (month == 2 and leap):
        return None
    # Days since 1970 in the proleptic Gregorian calendar (what calendar.timegm computes,
    # without building a datetime: this runs on every message).
    b = y - 1
    days = b * 365 + b // 4 - b // 100 + b // 400 - 719162 + _DAYS_BEFORE[month] + d - 1
    days += month > 2 and leap
    return float(days * 86400 + h * 3600 + m * 60 + min(s, 59) - offset)


def arrival_time(msg: Message, now: float) -> float | None:
    """When the message reached us: the date our border wrote in the Received field of the
    first untrusted hop, else the top Received field's date; else ``now`` when a front
    end named the client (the mail is arriving as it is scanned); else None.

    A stored message (a Maildir scanned months later) is judged against its own
    arrival, not the scan; live, our MTA's Received field is a moment old.  Our border's
    field, not the top one: what came after it (a reader fetching from its mailbox hours
    later, a relay's queue) is our side's delay, not the sender's.  A stored message
    without a dated Received field (an archive, a Sent folder, Enron's maildirs) arrived
    when nothing says: its age is unknown, not the years since.
    """
    first = msg.first_untrusted
    if first is not None and first.raw and not msg.envelope.client_ip:
        when = _stamp(first.raw)
        if when is not None:
            return when
    received = msg.headers.get_all("Received")
    if received:
        when = _stamp(received[0])
        if when is not None:
            return when
    return now if msg.envelope.client_ip else None


def _stamp(field: str) -> float | None:
    """The date after the last ";" of a Received field, if it parses."""
    _, sep, stamp = field[:_MAX_FIELD].rpartition(";")
    return parse_date(stamp.strip()) if sep else None
