"""The remedies as the case desk runs them, on the real case store, end to end.

Evidence goes through the Desk into the SQLite case book; the policy notifies, walls,
releases and re-gardens; the notice crosses a private Postfix to a sink and is read back;
the walled set lands in the export files and the zone; the NAS (a pyrad CoA server on
loopback) gets the CoA-Requests.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from email.message import Message
from pathlib import Path

import pytest
from tests.zombies.remedies.nas import SECRET, RunningNas, running_nas
from tests.zombies.sharing.mta import Mta, postfix_with_sink

from seawall.config import Config, NasSettings, RemediationSettings, SharingSettings
from seawall.zombies.cases import Desk
from seawall.zombies.model import Evidence, evidence_id
from seawall.zombies.remedies import build
from seawall.zombies.remedies.exports import NFT_FILE, RADIUS_FILE
from seawall.zombies.remedies.links import GardenLinks
from seawall.zombies.remedies.remediation import Remediation
from seawall.zombies.sharing.zone import parse_zone
from seawall.zombies.store import CaseBook, open_case_store


@pytest.fixture(scope="module")
def mta() -> Iterator[Mta]:
    with postfix_with_sink() as running:
        yield running


@pytest.fixture
def nas() -> Iterator[RunningNas]:
    with running_nas() as running:
        yield running


def make_config(tmp_path: Path, mta: Mta, nas: RunningNas, **remediation: object) -> Config:
    settings: dict[str, object] = {
        "mode": "enforce",
        "smtp": mta.smtp,
        "notice_from": "abuse@isp.example",
        "notice_to": "{account}@customers.example",
        "support_contact": "support@isp.example, +1 555 0100",
        "garden_url": "https://garden.isp.example",
        "export_dir": str(tmp_path / "exports"),
        "nas": (
            NasSettings(address=f"127.0.0.1:{nas.port}", secret=SECRET, timeout_s=0.5, tries=2),
        ),
        "release_clean_messages": 2,
    }
    return Config(
        state_dir=str(tmp_path / "state"),
        remediation=RemediationSettings(**(settings | remediation)),  # type: ignore[arg-type]
        sharing=SharingSettings(zone_file=str(tmp_path / "zone" / "zombies.ip4set")),
    )


@pytest.fixture
async def book(tmp_path: Path) -> AsyncIterator[CaseBook]:
    (tmp_path / "state").mkdir()
    store = open_case_store(Config(state_dir=str(tmp_path / "state")))
    yield store
    await store.close()


SEQ = iter(range(1_000_000))


def spam(
    account: str, ip: str, at: float, kind: str = "spam", weight: float = 4.0, **kw: object
) -> Evidence:
    n = next(SEQ)
    return Evidence(
        id=evidence_id("test", n),
        source="verdict",
        kind=kind,  # type: ignore[arg-type]
        at=at,
        ip=ip,
        account=account,
        message_id=f"<m{n}@pc>",
        weight=weight,
        **kw,  # type: ignore[arg-type]
    )


def text_of(message: Message, subtype: str) -> str:
    for part in message.walk():
        if part.get_content_type() == f"text/{subtype}":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError(f"no text/{subtype} part")


async def test_notify_wall_release_and_reentry(
    tmp_path: Path, mta: Mta, nas: RunningNas, book: CaseBook
) -> None:
    config = make_config(tmp_path, mta, nas)
    remedies = build(config, book)
    desk = Desk(book, remedies=remedies)
    now = time.time()
    before = len(mta.sink.received)

    # Two spam messages open the case (score 8); a malware one takes it past notify_score.
    await desk.ingest(
        spam("alice", "192.0.2.10", now - 300, subject="Cheap <b>pills</b>", campaign="c-77")
    )
    await desk.ingest(
        spam("alice", "192.0.2.10", now - 200, subject="Cheap pills again", campaign="c-77")
    )
    got = await desk.ingest(
        spam(
            "alice",
            "192.0.2.10",
            now - 100,
            kind="malware",
            weight=5.0,
            infection="Win.Worm.Mydoom",
            subject="Re: hi",
        )
    )
    assert got.case is not None
    case = await book.get(got.case.id)
    assert case is not None
    assert case.state == "notified"
    ((rcpt, notice),) = mta.sink.wait(before + 1)[before:]
    assert rcpt == ["alice@customers.example"]
    assert notice["X-Seawall-Case"] == case.id
    assert notice["Auto-Submitted"] == "auto-generated"
    plain, html = text_of(notice, "plain"), text_of(notice, "html")
    assert "2 spam messages" in plain
    assert "1 message carrying malware" in plain
    assert "Win.Worm.Mydoom" in plain
    assert "c-77" in plain
    assert "Cheap <b>pills</b>" in plain  # plain text as it was
    assert "Cheap &lt;b&gt;pills&lt;/b&gt;" in html  # HTML escaped
    assert "<b>pills</b>" not in html
    assert "support@isp.example" in plain
    link = next(w for w in plain.split() if w.startswith("https://garden.isp.example/garden/"))
    token = link.rsplit("/", 1)[1]
    assert GardenLinks.from_settings(config.remediation, config.state_dir).case_of(token) == case.id
    notes = [t.why for t in case.transitions if t.who == "remedies"]
    assert any(n.startswith("notice sent to alice@customers.example") for n in notes)

    # A note never re-sends the notice.
    await desk.note(case.id, "desk", "customer called, says it is a new PC")
    assert len(mta.sink.received) == before + 1

    # More spam: past wall_score, walled by the policy; no second notice within the interval.
    for i in range(5):
        await desk.ingest(spam("alice", "192.0.2.10", now - 50 + i, subject=f"spam {i}"))
    case = await book.get(case.id)
    assert case is not None
    assert case.state == "walled"
    (walled_at,) = [t for t in case.transitions if t.to_state == "walled" != t.from_state]
    assert walled_at.who == "policy"
    assert "reached wall_score 30" in walled_at.why
    wall_coa = nas.received[-1]
    assert wall_coa.verified
    assert wall_coa.attributes["User-Name"] == ["alice"]
    assert wall_coa.attributes["Framed-IP-Address"] == ["192.0.2.10"]
    assert wall_coa.attributes["Filter-Id"] == ["seawall-walled"]
    nft = (tmp_path / "exports" / NFT_FILE).read_text()
    assert "add element inet seawall walled { 192.0.2.10 }" in nft
    assert '"alice"' in (tmp_path / "exports" / RADIUS_FILE).read_text()
    assert parse_zone((tmp_path / "zone" / "zombies.ip4set").read_text()) == {
        "192.0.2.10": "127.0.0.2"
    }
    notes = [t.why for t in case.transitions if t.who == "remedies"]
    assert any("notice not sent: one went to alice@customers.example" in n for n in notes)
    assert any(f"CoA-Request to 127.0.0.1:{nas.port}: ACK" in n for n in notes)
    time.sleep(1.0)
    assert len(mta.sink.received) == before + 1

    # Quiet is not enough: released only after clean_period AND clean mail of its own.
    later = now + config.remediation.release_clean_s + 60
    await remedies.tick(later)
    assert (await book.get(case.id)).state == "walled"  # type: ignore[union-attr]
    for i in range(2):
        await desk.ingest(spam("alice", "192.0.2.10", now + i, kind="clean", weight=0.0))
    await remedies.tick(later)
    case = await book.get(case.id)
    assert case is not None
    assert case.state == "released"
    assert nas.received[-1].attributes["Filter-Id"] == ["seawall-default"]
    assert "walled {" not in (tmp_path / "exports" / NFT_FILE).read_text().split("flush")[-1]
    assert '"alice"' not in (tmp_path / "exports" / RADIUS_FILE).read_text()
    assert parse_zone((tmp_path / "zone" / "zombies.ip4set").read_text()) == {}

    # Relapse: new spam reopens the case and re-gardens it at once.
    await desk.ingest(spam("alice", "192.0.2.44", time.time(), subject="relapse"))
    case = await book.get(case.id)
    assert case is not None
    assert case.state == "walled"
    moves = [(t.from_state, t.to_state) for t in case.transitions if t.from_state != t.to_state]
    assert moves[-2:] == [("released", "open"), ("open", "walled")]
    assert any("re-entry" in t.why for t in case.transitions)
    assert nas.received[-1].attributes["Framed-IP-Address"] == ["192.0.2.44"]


async def test_dry_run_notes_what_it_would_do_and_does_nothing(
    tmp_path: Path, mta: Mta, nas: RunningNas, book: CaseBook
) -> None:
    config = make_config(tmp_path, mta, nas, mode="dry-run")
    desk = Desk(book, remedies=build(config, book))
    now = time.time()
    before = len(mta.sink.received)
    for i in range(9):
        got = await desk.ingest(spam("bob", "192.0.2.20", now - 100 + i))
    assert got.case is not None
    case = await book.get(got.case.id)
    assert case is not None
    assert case.state == "open"  # the policy's moves are not made
    dry = [t.why for t in case.transitions if t.why.startswith("dry-run: would move to")]
    # Once per state, however much evidence arrives.
    assert [w.split(":")[1] for w in dry] == [" would move to notified", " would move to walled"]
    # A move by hand is recorded, and its remedies only noted.
    case = await desk.transition(case.id, "walled", "admin", "by hand")
    assert case.state == "walled"
    notes = " | ".join(t.why for t in case.transitions if t.who == "remedies")
    assert "dry-run: would send the notice to bob@customers.example" in notes
    assert "dry-run: would wall 192.0.2.20 (exports, CoA)" in notes
    assert nas.received == []
    assert not (tmp_path / "exports").exists()
    time.sleep(0.5)
    assert len(mta.sink.received) == before


async def test_a_failing_nas_or_mta_is_noted_not_raised(tmp_path: Path, book: CaseBook) -> None:
    config = Config(
        state_dir=str(tmp_path / "state"),
        remediation=RemediationSettings(
            mode="enforce",
            smtp="127.0.0.1:9",
            notice_from="abuse@isp.example",
            notice_to="{account}@customers.example",
            export_dir=str(tmp_path / "exports"),
            nas=(NasSettings(address="127.0.0.1:9", secret="x", timeout_s=0.2, tries=1),),
        ),
    )
    remedies: Remediation = build(config, book)
    desk = Desk(book, remedies=remedies)
    got = await desk.ingest(spam("carol", "192.0.2.30", time.time(), weight=7.0))
    got = await desk.ingest(spam("carol", "192.0.2.30", time.time(), weight=7.0))
    assert got.case is not None
    case = await desk.transition(got.case.id, "walled", "admin", "by hand")
    notes = " | ".join(t.why for t in case.transitions if t.who == "remedies")
    assert "notice to carol@customers.example failed" in notes
    assert "CoA-Request to 127.0.0.1:9: no valid answer" in notes
    assert "192.0.2.30" in (tmp_path / "exports" / NFT_FILE).read_text()
    # The failed notice did not use up the account's one notice.
    assert await remedies.store.get("zombies:notice:carol") is None


async def test_the_clock_reports_external_zombies_once(
    tmp_path: Path, mta: Mta, nas: RunningNas, book: CaseBook
) -> None:
    config = make_config(tmp_path, mta, nas)
    config = Config(
        state_dir=config.state_dir,
        remediation=config.remediation,
        sharing=SharingSettings(
            zone_file=str(tmp_path / "zone" / "zombies.ip4set"),
            report_from="abuse@isp.example",
            smtp=mta.smtp,
            contacts={"203.0.113.0/24": "abuse@other.example"},
        ),
    )
    remedies = build(config, book)
    desk = Desk(book, remedies=remedies)
    now = time.time()
    raw = b"From: a@b.example\r\nSubject: pills\r\nMessage-ID: <orig@bot>\r\n\r\nbuy\r\n"
    for i in range(3):
        external = Evidence(
            id=evidence_id("ext", i),
            source="arf",
            kind="report",
            at=now - 60 + i,
            ip="203.0.113.9",
            own=False,
            weight=4.0,
            subject="pills",
            raw_ref=f"raw{i}",
        )
        await desk.ingest(external, raw)
    elsewhere = Evidence(
        id=evidence_id("ext", 9),
        source="verdict",
        kind="spam",
        at=now,
        ip="198.51.100.99",
        own=False,
        weight=2.0,
    )
    await desk.ingest(elsewhere)  # no contact for its network: listed, not reported
    before = len(mta.sink.received)
    await remedies.tick(now)
    await remedies.tick(now + 60)  # the same incident: not again
    ((rcpt, report),) = mta.sink.wait(before + 1)[before:]
    assert rcpt == ["abuse@other.example"]
    assert report.get_content_type() == "multipart/report"
    human, feedback, original = report.get_payload()
    (fields,) = feedback.get_payload()
    assert fields["Source-IP"] == "203.0.113.9"
    assert fields["Incidents"] == "3"
    assert original.get_payload()[0]["Message-ID"] == "<orig@bot>"  # the kept original
    zone = parse_zone((tmp_path / "zone" / "zombies.ip4set").read_text())
    assert zone == {"198.51.100.99": "127.0.0.3", "203.0.113.9": "127.0.0.3"}
    time.sleep(1.0)
    assert len(mta.sink.received) == before + 1


async def test_a_walled_account_is_followed_to_its_new_address(
    tmp_path: Path, mta: Mta, nas: RunningNas, book: CaseBook
) -> None:
    """Reconnected, alice holds another address; the one her spam came from is bob's now:
    the exports, the zone and the CoA follow alice, and bob is neither walled nor listed."""
    from tests.zombies.test_cli import detail

    from seawall.accounting import open_sessions
    from seawall.accounting.detail import DetailParser, Problem

    config = make_config(tmp_path, mta, nas)
    now = int(time.time())

    async def account(records: list[tuple[str, int, str, str, str]]) -> None:
        parser = DetailParser("test")
        parsed = parser.feed(detail(records).encode()) + parser.end()
        sessions = open_sessions(config)
        await sessions.add([r for r in parsed if not isinstance(r, Problem)])
        await sessions.close()

    await account([("Start", now - 900, "alice", "192.0.2.10", "s1")])
    remedies = build(config, book)
    desk = Desk(book, remedies=remedies)
    for i in range(2):
        await desk.ingest(spam("alice", "192.0.2.10", now - 800 + i, weight=7.0))
    case = await book.find(account="alice")
    assert case is not None
    case = await desk.transition(case.id, "walled", "admin", "by hand")
    assert nas.received[-1].attributes["Framed-IP-Address"] == ["192.0.2.10"]
    assert "192.0.2.10" in (tmp_path / "exports" / NFT_FILE).read_text()

    await account(
        [
            ("Stop", now - 60, "alice", "192.0.2.10", "s1"),
            ("Start", now - 50, "alice", "192.0.2.77", "s2"),
            ("Start", now - 40, "bob", "192.0.2.10", "s3"),
        ]
    )
    await remedies.tick(now)
    nft = (tmp_path / "exports" / NFT_FILE).read_text()
    assert "add element inet seawall walled { 192.0.2.77 }" in nft
    assert "192.0.2.10" not in nft
    assert parse_zone((tmp_path / "zone" / "zombies.ip4set").read_text()) == {
        "192.0.2.77": "127.0.0.2"
    }
    # Released and walled again by hand: the CoA names the session alice holds now.
    case = await desk.transition(case.id, "released", "admin", "test")
    assert nas.received[-1].attributes["Framed-IP-Address"] == ["192.0.2.77"]
    # Offline: nothing to firewall, nothing listed; the RADIUS file gardens her next session.
    await account([("Stop", now - 10, "alice", "192.0.2.77", "s2")])
    case = await desk.transition(case.id, "walled", "admin", "again")
    await remedies.tick(now)
    assert "192.0.2." not in (tmp_path / "exports" / NFT_FILE).read_text().split("flush")[-1]
    assert '"alice"' in (tmp_path / "exports" / RADIUS_FILE).read_text()
    assert parse_zone((tmp_path / "zone" / "zombies.ip4set").read_text()) == {}
