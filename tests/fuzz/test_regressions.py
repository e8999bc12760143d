"""Every input that once crashed a parser, replayed: each now gets the parser's own error.

The inputs are kept as files under ``tests/fuzz/regressions/<target>/`` in their harness's
format (the codecs' and DNS's first byte is the harness's control byte), so each also runs
through its target's whole check; the named tests below assert what the parser now does.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.fuzz.fuzz_arf import NOW, SCOPE, WEIGHTS
from tests.fuzz.fuzz_radius_packet import ADDR, PROTOCOL, signed
from tests.fuzz.harness import load

from seawall.accounting.detail import Problem, read_detail
from seawall.accounting.records import Status
from seawall.errors import SpamdViolation
from seawall.frontends.spamd.codec import RequestParser
from seawall.zombies.evidence import subject_of
from seawall.zombies.reports_in import parse_report

REGRESSIONS = Path(__file__).resolve().parent / "regressions"
CASES = sorted(REGRESSIONS.glob("*/*"))


def _input(target: str, name: str) -> bytes:
    return (REGRESSIONS / target / name).read_bytes()


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.name}" for p in CASES])
def test_replayed_through_its_harness(path: Path) -> None:
    load(path.parent.name).check(path.read_bytes())


@pytest.mark.parametrize("name", ["content-length-4301-digits", "version-4301-digits"])
def test_spamd_number_too_long_for_int_is_a_protocol_error(name: str) -> None:
    # int() refuses more than 4300 decimal digits with ValueError, which escaped the codec.
    with pytest.raises(SpamdViolation):
        RequestParser().feed(_input("spamd", name)[1:])


@pytest.mark.parametrize(
    ("name", "bad", "good", "kept"),
    [
        # Framed-IP-Address of 0 bytes, beside a good Framed-IPv6-Prefix
        ("framed-ip-address-empty", bytes([8, 2]), bytes([97, 6, 0, 32, 32, 1]), "2001::/32"),
        # Framed-IPv6-Prefix /161, beside a good Framed-IP-Address
        ("ipv6-prefix-length-161", bytes([97, 4, 0, 161]), bytes([8, 6, 198, 19, 0, 7]),
         "198.19.0.7"),
    ],
)  # fmt: skip
def test_radius_attribute_that_does_not_decode_is_ignored_not_raised(
    name: str, bad: bytes, good: bytes, kept: str
) -> None:
    # pyrad decodes a value when it is read, after the listener's try: ValueError escaped
    # datagram_received, and the request got no answer however often the NAS sent it.
    assert PROTOCOL.decode(signed(_input("radius_packet", name)[1:]), ADDR) is None
    start = (
        bytes([40, 6, 0, 0, 0, 1])  # Acct-Status-Type = Start
        + bytes([44, 10]) + b"4D2B0001"  # Acct-Session-Id
        + bytes([4, 6, 192, 0, 2, 1])  # NAS-IP-Address
    )  # fmt: skip
    pending = PROTOCOL.decode(signed(b"\x07" + start + good + bad), ADDR)
    assert pending is not None
    assert pending.reply[0] == 5  # answered: Accounting-Response
    assert pending.record is not None
    assert pending.record.status is Status.START
    assert pending.record.ips == (kept,)  # the attributes that decode are kept


@pytest.mark.parametrize("name", ["part-charset-unknown", "part-charset-with-nul"])
def test_x_arf_part_in_an_unknown_charset_is_still_read(name: str) -> None:
    # bytes.decode raised LookupError ("utf-v") or ValueError (a NUL in the name), and the
    # catch-all in parse_report dropped the whole report as "unreadable".
    parsed = parse_report(_input("arf", name), SCOPE, WEIGHTS, now=NOW)
    assert parsed.problem == ""
    assert parsed.evidence is not None
    assert parsed.evidence.source == "xarf"


def test_subject_with_a_charset_name_that_is_not_ascii_is_kept_as_written() -> None:
    # email.header.make_header raised CharsetError, which subject_of did not catch: the ARF
    # report was dropped as unreadable, and evidence from an own verdict on such a message
    # raised in the evidence path.
    assert subject_of(b"Subject: =?\xff?q?a?=\r\n\r\nbody") == "=?\ufffd?q?a?="
    parsed = parse_report(
        _input("arf", "original-subject-charset-not-ascii"), SCOPE, WEIGHTS, now=NOW
    )
    assert parsed.problem == ""
    assert parsed.evidence is not None
    assert parsed.evidence.subject.startswith("=?\ufffd?B?")


def test_detail_address_with_a_nul_is_a_problem_of_its_record() -> None:
    # inet_pton raises ValueError, not OSError, for an embedded NUL: it escaped the parser
    # (and the tailer reading the file).
    out = list(read_detail([_input("radius_detail", "framed-ip-address-with-nul")[1:]], "d"))
    first = out[0]
    assert isinstance(first, Problem)
    assert first.line == 1
    assert first.reason.startswith("Framed-IP-Address = '198.19.\\x00")
    assert first.reason.endswith("not an address")
