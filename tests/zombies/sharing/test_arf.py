"""Abuse reports about external zombies: ARF and X-ARF through a real Postfix, read back.

Reports go through a private Postfix to a sink; the test parses what arrived and checks
the structure RFC 5965 (ARF) and X-ARF v0.2 define, then the one-report-per-incident and
per-contact rate rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import Message
from email.utils import parsedate_to_datetime

import msgspec
import pytest
from tests.zombies.sharing.mta import Mta, postfix_with_sink

from seawall.config import SharingSettings
from seawall.errors import ConfigError
from seawall.store.memory import MemoryStore
from seawall.zombies.model import Evidence
from seawall.zombies.sharing.arf import Contacts, Reporter, build_arf

NOW = 1_800_000_000.0
RAW = (
    b"Received: from pc7.dyn.net.example ([198.51.100.7])\r\n"
    b'From: "Pharmacy" <sales@shop.example>\r\nTo: victim@isp.example\r\n'
    b"Subject: Cheap pills\r\nMessage-ID: <spam-1@pc7>\r\n\r\nBuy now.\r\n"
)


def evidence(ip: str, n: int, **kw: object) -> list[Evidence]:
    return [
        Evidence(
            id=f"{ip}-{i}",
            source="verdict",
            kind="spam",
            at=NOW - 60 * i,
            ip=ip,
            own=False,
            message_id=f"<spam-{i}@pc>",
            subject=f"Cheap pills {i}",
            **kw,  # type: ignore[arg-type]
        )
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def mta() -> Iterator[Mta]:
    with postfix_with_sink() as running:
        yield running


def settings(mta: Mta, **kw: object) -> SharingSettings:
    given: dict[str, object] = {
        "report_from": "abuse@isp.example",
        "smtp": mta.smtp,
        "contacts": {
            "198.51.100.0/24": "abuse@net.example",
            "198.51.100.128/25": "noc@small.example",
            "203.0.113.0/24": "abuse@other.example",
        },
    }
    return SharingSettings(**(given | kw))  # type: ignore[arg-type]


def check_arf(message: Message, ip: str) -> dict[str, str]:
    """RFC 5965's structure; the feedback-report fields."""
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "feedback-report"
    parts = message.get_payload()
    assert isinstance(parts, list)
    assert len(parts) == 3
    human, feedback, original = parts
    assert human.get_content_type() == "text/plain"
    assert ip in human.get_payload(decode=True).decode()
    assert feedback.get_content_type() == "message/feedback-report"
    (fields_msg,) = feedback.get_payload()  # the fields parse as a header block
    fields = {k: str(v) for k, v in fields_msg.items()}
    assert fields["Feedback-Type"] == "abuse"
    assert fields["Version"] == "1"
    assert fields["User-Agent"].startswith("Seawall/")
    assert fields["Source-IP"] == ip
    parsedate_to_datetime(fields["Arrival-Date"])  # RFC 5322 date
    assert original.get_content_type() in ("message/rfc822", "text/rfc822-headers")
    return fields | {"_third": original.get_content_type()}


def read_xarf_yaml(text: str) -> dict[str, object]:
    """The X-ARF report.txt: one ``Key: scalar`` a line (quoted string or integer)."""
    out: dict[str, object] = {}
    for line in text.splitlines():
        m = re.fullmatch(r"([A-Z][A-Za-z-]*): (\d+|\"(?:[^\"\\]|\\.)*\")", line)
        assert m, f"not a YAML key: scalar line: {line!r}"
        value = m[2]
        out[m[1]] = int(value) if value.isdigit() else re.sub(r"\\(.)", r"\1", value[1:-1])
    return out


def test_contacts_take_the_longest_prefix() -> None:
    contacts = Contacts({"198.51.100.0/24": "a@x.example", "198.51.100.128/25": "b@y.example"})
    assert contacts.of("198.51.100.7") == "a@x.example"
    assert contacts.of("198.51.100.200") == "b@y.example"
    assert contacts.of("192.0.2.1") is None
    assert contacts.of("garbage") is None
    with pytest.raises(ConfigError, match="not a prefix"):
        Contacts({"198.51.100/33": "a@x.example"})
    with pytest.raises(ConfigError, match="not an address"):
        Contacts({"198.51.100.0/24": "nobody"})


def test_arf_without_the_original_carries_its_headers() -> None:
    message = build_arf(
        "198.51.100.7",
        evidence("198.51.100.7", 2),
        None,
        to="a@x.example",
        sender="abuse@isp.example",
        now=NOW,
    )
    from email import message_from_bytes

    fields = check_arf(message_from_bytes(message.as_bytes()), "198.51.100.7")
    assert fields["Incidents"] == "2"
    assert fields["_third"] == "text/rfc822-headers"
    third = message.get_payload()[2].get_payload()
    assert "Message-ID: <spam-0@pc>" in third


async def test_arf_report_crosses_postfix_and_validates(mta: Mta) -> None:
    reporter = Reporter(settings(mta), MemoryStore())
    before = len(mta.sink.received)
    done = await reporter.report("198.51.100.7", evidence("198.51.100.7", 3), RAW, now=NOW)
    assert done == "arf report on 198.51.100.7 sent to abuse@net.example"
    ((rcpt, message),) = mta.sink.wait(before + 1)[before:]
    assert rcpt == ["abuse@net.example"]
    assert message["Auto-Submitted"] == "auto-generated"
    fields = check_arf(message, "198.51.100.7")
    assert fields["Incidents"] == "3"
    assert fields["_third"] == "message/rfc822"
    (original,) = message.get_payload()[2].get_payload()
    assert original["Message-ID"] == "<spam-1@pc7>"

    # The same incident again: nothing sent.
    assert (
        await reporter.report("198.51.100.7", evidence("198.51.100.7", 4), RAW, now=NOW + 60)
        is None
    )


async def test_xarf_report_crosses_postfix_and_validates(mta: Mta) -> None:
    reporter = Reporter(settings(mta, report_format="xarf"), MemoryStore())
    before = len(mta.sink.received)
    done = await reporter.report(
        "203.0.113.9", evidence("203.0.113.9", 2, infection="Win.Trojan.Agent"), None, now=NOW
    )
    assert done == "xarf report on 203.0.113.9 sent to abuse@other.example"
    ((rcpt, message),) = mta.sink.wait(before + 1)[before:]
    assert rcpt == ["abuse@other.example"]
    assert message["X-ARF"] == "YES"
    assert message.get_content_type() == "multipart/mixed"
    human, report, attachment = message.get_payload()
    assert "Win.Trojan.Agent" in human.get_payload(decode=True).decode()
    assert report.get_content_type() == "text/plain"
    assert report.get_param("name") == "report.txt"
    fields = read_xarf_yaml(report.get_payload(decode=True).decode())
    assert fields["Reported-From"] == "abuse@isp.example"
    assert fields["Category"] == "abuse"
    assert fields["Report-Type"] == "spam"
    assert fields["Service"] == "smtp"
    assert fields["Version"] == "0.2"
    assert fields["Source-Type"] == "ip-address"
    assert fields["Source"] == "203.0.113.9"
    assert fields["Port"] == 25
    assert fields["Occurrences"] == 2
    assert fields["Attachment"] == attachment.get_content_type() == "text/plain"
    assert str(fields["Schema-URL"]).startswith("http://www.xarf.org/schema/")
    parsedate_to_datetime(str(fields["Date"]))


async def test_reports_are_rate_limited_per_contact_and_held_back_ones_sent_later(mta: Mta) -> None:
    store = MemoryStore()
    reporter = Reporter(settings(mta, reports_per_hour=2), store)
    before = len(mta.sink.received)
    results = [
        await reporter.report(ip, evidence(ip, 1), None, now=NOW)
        for ip in ("198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.200")
    ]
    assert results[:2] == [
        "arf report on 198.51.100.1 sent to abuse@net.example",
        "arf report on 198.51.100.2 sent to abuse@net.example",
    ]
    assert results[2] == "report on 198.51.100.3 to abuse@net.example held back: 2 sent this hour"
    assert results[3] == "arf report on 198.51.100.200 sent to noc@small.example"  # its own limit
    delivered = mta.sink.wait(before + 3)[before:]
    assert sorted(r[0][0] for r in delivered) == ["abuse@net.example"] * 2 + ["noc@small.example"]
    # An hour on, the held-back incident goes out; the sent ones stay deduplicated.
    later = NOW + 3700
    assert await reporter.report("198.51.100.3", evidence("198.51.100.3", 1), None, now=later) == (
        "arf report on 198.51.100.3 sent to abuse@net.example"
    )
    assert (
        await reporter.report("198.51.100.1", evidence("198.51.100.1", 1), None, now=later) is None
    )


async def test_no_contact_or_a_down_mta_loses_nothing(mta: Mta) -> None:
    reporter = Reporter(settings(mta), MemoryStore())
    assert await reporter.report("192.0.2.1", evidence("192.0.2.1", 3), None, now=NOW) is None
    down = Reporter(settings(mta, smtp="127.0.0.1:9"), MemoryStore())
    failed = await down.report("198.51.100.50", evidence("198.51.100.50", 1), None, now=NOW)
    assert failed is not None
    assert failed.startswith("report on 198.51.100.50 to abuse@net.example failed")
    # The incident was not spent on the failure: the next try sends it.
    down.settings = settings(mta)
    assert await down.report("198.51.100.50", evidence("198.51.100.50", 1), None, now=NOW) == (
        "arf report on 198.51.100.50 sent to abuse@net.example"
    )


def test_contacts_without_a_sender_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="report_from"):
        Reporter(SharingSettings(contacts={"198.51.100.0/24": "a@x.example"}), MemoryStore())


def test_a_non_ascii_subject_is_encoded_in_the_kept_headers() -> None:
    from email import message_from_bytes
    from email.header import decode_header, make_header

    (one,) = evidence("198.51.100.7", 1)
    items = [msgspec.structs.replace(one, subject="Günstige Pillen " * 8)]
    message = build_arf(
        "198.51.100.7", items, None, to="a@x.example", sender="abuse@isp.example", now=NOW
    )
    raw = message.as_bytes()
    raw.decode("ascii")  # every line of the report is ASCII
    third = message_from_bytes(raw).get_payload()[2].get_payload()
    headers = message_from_bytes(third.encode())
    assert str(make_header(decode_header(headers["Subject"]))) == ("Günstige Pillen " * 8).strip()
