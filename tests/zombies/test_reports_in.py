"""ARF, X-ARF and Shadowserver-layout feeds into evidence."""

from __future__ import annotations

import time

from tests.zombies.reports import DRONE_CSV, SINKHOLE_CSV, arf, xarf

from seawall.config import Config, IspSettings, ZombiesSettings
from seawall.zombies.evidence import Scope
from seawall.zombies.feeds import kind_of, read_feed
from seawall.zombies.model import KINDS
from seawall.zombies.reports_in import parse_report

CONFIG = Config(
    isp=IspSettings(networks=("10.0.0.0/8",), dynamic=("10.1.0.0/16",), relays=("10.0.0.25",)),
    zombies=ZombiesSettings(exempt=("10.200.0.0/24",)),
)
SCOPE = Scope(CONFIG)
WEIGHTS = {k: CONFIG.zombies.weight(k) for k in KINDS}
NOW = 1_800_000_000.0


def test_arf_names_the_source_the_original_and_the_time() -> None:
    when = 1_796_000_000.0
    parsed = parse_report(arf("10.1.2.3", "m1@shop.example", when=when), SCOPE, WEIGHTS, now=NOW)
    e = parsed.evidence
    assert e is not None, parsed.problem
    assert (e.source, e.kind, e.ip, e.own) == ("arf", "report", "10.1.2.3", True)
    assert e.at == when
    assert e.message_id == "m1@shop.example"
    assert e.subject == "Cheap meds today"
    assert e.weight == CONFIG.zombies.weight("report")
    assert e.symbols[:2] == ("ARF", "abuse")
    assert e.raw_ref


def test_the_same_incident_reported_twice_is_one_evidence() -> None:
    a = parse_report(arf("10.1.2.3", "m1@x", when=NOW), SCOPE, WEIGHTS, now=NOW).evidence
    b = parse_report(arf("10.1.2.3", "m1@x", when=NOW), SCOPE, WEIGHTS, now=NOW + 60).evidence
    c = parse_report(arf("10.1.2.3", "m2@x", when=NOW), SCOPE, WEIGHTS, now=NOW).evidence
    assert a is not None
    assert b is not None
    assert c is not None
    assert a.id == b.id != c.id


def test_arf_virus_and_external_and_exempt() -> None:
    virus = parse_report(arf("10.1.2.3", "v@x", feedback="virus"), SCOPE, WEIGHTS, now=NOW)
    assert virus.evidence is not None
    assert virus.evidence.kind == "malware"
    outside = parse_report(arf("198.51.100.7", "o@x"), SCOPE, WEIGHTS, now=NOW).evidence
    assert outside is not None
    assert not outside.own
    relay = parse_report(arf("10.0.0.25", "r@x"), SCOPE, WEIGHTS, now=NOW)
    assert relay.evidence is None
    assert "exempt" in relay.problem
    business = parse_report(arf("10.200.0.9", "b@x"), SCOPE, WEIGHTS, now=NOW)
    assert business.evidence is None
    not_spam = parse_report(arf("10.1.2.3", "n@x", feedback="not-spam"), SCOPE, WEIGHTS, now=NOW)
    assert not_spam.evidence is None


def test_xarf() -> None:
    parsed = parse_report(xarf("10.1.9.9"), SCOPE, WEIGHTS, now=NOW)
    e = parsed.evidence
    assert e is not None, parsed.problem
    assert (e.source, e.kind, e.ip) == ("xarf", "report", "10.1.9.9")
    assert e.at == 1796538600.0  # 2026-12-06T06:30:00Z
    assert e.subject == "Cheap meds today"
    assert "abuse-reports@other.example" in e.symbols
    bot = parse_report(xarf("10.1.9.9", report_type="malware"), SCOPE, WEIGHTS, now=NOW)
    assert bot.evidence is not None
    assert bot.evidence.kind == "malware"


def test_garbage_is_a_problem_not_a_crash() -> None:
    for raw in (
        b"",
        b"\xff\xfe\x00garbage",
        b"Content-Type: multipart/report; report-type=feedback-report; boundary=x\r\n\r\n--x",
        b"X-ARF: yes\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\r\nhi\r\n--q--",
        arf("not-an-ip", "z@x"),
        b"Subject: hello\r\n\r\njust mail",
    ):
        parsed = parse_report(raw, SCOPE, WEIGHTS, now=time.time())
        assert parsed.evidence is None
        assert parsed.problem


def test_drone_feed() -> None:
    rows = list(read_feed(DRONE_CSV, kind_of("2026-12-06-drone-xx.csv"), SCOPE, WEIGHTS))
    good = [r.evidence for r in rows if r.evidence is not None]
    bad = [r for r in rows if r.evidence is None]
    assert [(e.ip, e.own, e.infection, e.kind) for e in good] == [
        ("10.1.2.3", True, "necurs", "drone"),
        ("10.1.2.3", True, "necurs", "drone"),
        ("198.51.100.9", False, "mirai", "drone"),
    ]
    assert good[0].at == 1796533262.0
    assert good[0].id != good[1].id  # another time: another observation
    assert len(bad) == 1
    assert "bad timestamp" in bad[0].problem
    assert b"necurs" in rows[0].raw
    again = [r.evidence.id for r in read_feed(DRONE_CSV, "drone", SCOPE, WEIGHTS) if r.evidence]
    assert again == [e.id for e in good]


def test_sinkhole_feed_and_kinds_by_name() -> None:
    assert kind_of("sinkhole-http.csv") == "sinkhole"
    assert kind_of("scan_spam_source.csv") == "spam_source"
    (row,) = read_feed(SINKHOLE_CSV, "sinkhole", SCOPE, WEIGHTS)
    assert row.evidence is not None
    assert (row.evidence.ip, row.evidence.infection) == ("10.1.2.3", "andromeda")
    assert row.evidence.weight == CONFIG.zombies.weight("sinkhole")


def test_feed_without_columns() -> None:
    (row,) = read_feed("a,b,c\n1,2,3\n", "drone", SCOPE, WEIGHTS)
    assert row.evidence is None
    assert "no timestamp or ip" in row.problem


def test_xarf_json() -> None:
    doc = (
        '{"Version": "0.3", "ReporterInfo": {"ReporterOrg": "Other Net"},'
        ' "Report": {"ReportClass": "Activity", "ReportType": "Spam",'
        ' "Date": "2026-12-06T06:30:00Z", "SourceIp": "10.1.9.8"}}'
    )
    raw = xarf("10.1.9.8").replace(
        xarf("10.1.9.8").split(b'name="report.txt"\r\n\r\n')[1].split(b"--xb")[0],
        doc.encode() + b"\r\n",
    )
    parsed = parse_report(raw, SCOPE, WEIGHTS, now=NOW)
    e = parsed.evidence
    assert e is not None, parsed.problem
    assert (e.source, e.ip, e.at) == ("xarf", "10.1.9.8", 1796538600.0)
    assert e.symbols[:2] == ("X-ARF", "spam")
    broken = raw.replace(b'"SourceIp"', b'"Nothing"')
    assert parse_report(broken, SCOPE, WEIGHTS, now=NOW).evidence is None
