"""The detail file parser: rlm_detail's format, the event time, and garbage."""

from __future__ import annotations

import pytest

from seawall.accounting import AccountingError, Record, Status
from seawall.accounting.detail import MAX_LINE, DetailParser, Problem, read_detail
from seawall.accounting.records import parse_event_timestamp

START = b"""Fri Nov 27 12:00:00 2026
\tPacket-Type = Accounting-Request
\tAcct-Session-Id = "4D2B0001"
\tAcct-Status-Type = Start
\tUser-Name = "alice@example.net"
\tNAS-IP-Address = 192.0.2.1
\tFramed-IP-Address = 198.19.0.7
\tFramed-IPv6-Prefix = 2001:db8:7::/64
\tEvent-Timestamp = "Nov 27 2026 12:00:00 UTC"
\tAcct-Delay-Time = 0
\tAcct-Unique-Session-Id = "0123456789abcdef"
\tTimestamp = 1795780800

"""


def parse(data: bytes) -> list[Record | Problem]:
    return list(read_detail([data], "detail"))


def test_a_start_record() -> None:
    assert parse(START) == [
        Record(
            Status.START,
            1795780800.0,
            "192.0.2.1",
            "4D2B0001",
            "alice@example.net",
            ("198.19.0.7", "2001:db8:7::/64"),
        )
    ]


def test_records_split_anywhere_between_feeds() -> None:
    data = START + START.replace(b"Start", b"Stop").replace(b"12:00:00 UTC", b"12:10:00 UTC")
    whole = parse(data)
    assert [r.status for r in whole if isinstance(r, Record)] == [Status.START, Status.STOP]
    for cut in range(0, len(data), 7):
        parser = DetailParser("detail")
        got = parser.feed(data[:cut]) + parser.feed(data[cut:]) + parser.end()
        assert got == whole


def test_event_time_without_event_timestamp_is_arrival_less_the_delay() -> None:
    data = START.replace(b'\tEvent-Timestamp = "Nov 27 2026 12:00:00 UTC"\n', b"")
    data = data.replace(b"Acct-Delay-Time = 0", b"Acct-Delay-Time = 30")
    (record,) = parse(data)
    assert isinstance(record, Record)
    assert record.time == 1795780800.0 - 30


def test_interim_and_stop_carry_the_session_time() -> None:
    data = START.replace(b"= Start", b"= Interim-Update").replace(
        b"\tTimestamp", b"\tAcct-Session-Time = 600\n\tTimestamp"
    )
    (record,) = parse(data)
    assert isinstance(record, Record)
    assert (record.status, record.session_time) == (Status.INTERIM, 600.0)


def test_accounting_on_and_numeric_statuses() -> None:
    data = b"Fri Nov 27 12:00:00 2026\n\tAcct-Status-Type = 7\n\tNAS-Identifier = bras-1\n"
    data += b"\tTimestamp = 1795780800\n\n"
    assert parse(data) == [Record(Status.ON, 1795780800.0, "bras-1")]


def test_failed_and_tunnel_records_are_skipped_not_errors() -> None:
    parser = DetailParser("detail")
    out = parser.feed(START.replace(b"= Start", b"= Failed")) + parser.end()
    assert out == []
    assert parser.skipped == 1


def test_quoted_strings_and_escapes() -> None:
    data = START.replace(b'"alice@example.net"', b'"a\\"b\\\\c\\101\\n"')
    (record,) = parse(data)
    assert isinstance(record, Record)
    assert record.account == 'a"b\\cA\n'


def test_a_last_record_without_its_blank_line() -> None:
    assert len(parse(START.rstrip(b"\n"))) == 1


def test_records_without_a_blank_line_between_them() -> None:
    assert len(parse(START.rstrip(b"\n") + b"\n" + START)) == 2


@pytest.mark.parametrize(
    ("garbage", "reason"),
    [
        pytest.param(b"\tthis is not an attribute\n", "not an 'Attribute = value' line", id="line"),
        pytest.param(b'\tUser-Name = "unterminated\n', "unterminated string", id="quote"),
        pytest.param(b"\tFramed-IP-Address = 300.1.2.3\n", "not an address", id="address"),
        pytest.param(b"\tAcct-Session-Time = soon\n", "not a number", id="number"),
    ],
)
def test_garbage_costs_its_record_only(garbage: bytes, reason: str) -> None:
    bad = START.replace(b"\tAcct-Delay-Time = 0\n", garbage)
    out = parse(START + bad + START)
    assert [type(x) for x in out] == [Record, Problem, Record]
    problem = out[1]
    assert isinstance(problem, Problem)
    assert problem.line == START.count(b"\n") + 1  # where the bad record starts
    assert reason in problem.reason
    assert str(problem).startswith(f"detail:{problem.line}: ")


@pytest.mark.parametrize(
    ("drop", "reason"),
    [
        (b"\tAcct-Status-Type = Start\n", "no Acct-Status-Type"),
        (b"\tNAS-IP-Address = 192.0.2.1\n", "no NAS-IP-Address"),
        (b'\tAcct-Session-Id = "4D2B0001"\n', "without Acct-Session-Id"),
    ],
)
def test_a_record_missing_what_a_session_needs(drop: bytes, reason: str) -> None:
    (problem,) = parse(START.replace(drop, b""))
    assert isinstance(problem, Problem)
    assert reason in problem.reason


def test_no_time_at_all() -> None:
    data = START.replace(b'\tEvent-Timestamp = "Nov 27 2026 12:00:00 UTC"\n', b"")
    (problem,) = parse(data.replace(b"\tTimestamp = 1795780800\n", b""))
    assert isinstance(problem, Problem)
    assert "no time" in problem.reason


def test_binary_junk_and_overlong_lines() -> None:
    junk = bytes(range(256)) * 10 + b"\n\n"
    huge = b"\tUser-Name = " + b"x" * (MAX_LINE + 10) + b"\n\n"
    out = parse(junk + START + huge + START + b"x" * (3 * MAX_LINE))
    assert [type(x) for x in out] == [Problem, Record, Problem, Record, Problem]
    assert "longer than" in str(out[2])


def test_attributes_before_any_date_line() -> None:
    out = parse(START[START.index(b"\n") + 1 :] + START)
    assert [type(x) for x in out] == [Problem, Record]


def test_event_timestamps() -> None:
    assert parse_event_timestamp("Nov 27 2026 12:00:00 UTC") == 1795780800.0
    assert parse_event_timestamp("Nov  7 2026 12:00:00 GMT") == 1794052800.0
    assert parse_event_timestamp("1795780800") == 1795780800.0
    with pytest.raises(AccountingError, match="only UTC"):
        parse_event_timestamp("Nov 27 2026 13:00:00 CET")
    with pytest.raises(AccountingError, match="not a time"):
        parse_event_timestamp("yesterday")
