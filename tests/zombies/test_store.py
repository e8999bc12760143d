"""The CaseStore contract, on SQLite and on a real redis-server."""

from __future__ import annotations

import pytest

from seawall.zombies.model import CaseError, Evidence, case_id, evidence_id
from seawall.zombies.store import CaseBook

T0 = 1_700_000_000.0


def ev(
    n: int,
    *,
    kind: str = "spam",
    account: str | None = "alice",
    ip: str = "10.1.0.5",
    at: float = T0,
    weight: float = 2.0,
    own: bool = True,
    campaign: str = "",
    raw_ref: str = "",
) -> Evidence:
    return Evidence(
        id=evidence_id("test", n, ip),
        source="verdict",
        kind=kind,  # type: ignore[arg-type]
        at=at,
        ip=ip,
        account=account,
        own=own,
        campaign=campaign,
        weight=weight,
        raw_ref=raw_ref,
    )


async def test_one_weak_signal_opens_nothing(book: CaseBook) -> None:
    got = await book.add_evidence(ev(1, kind="rate", weight=50.0))
    assert got.new
    assert got.case is None
    got = await book.add_evidence(ev(2, kind="direct_mx", weight=50.0))
    assert got.case is None, "weak kinds alone never open a case, whatever their score"
    assert await book.list() == []


async def test_evidence_opens_a_case_per_account(book: CaseBook) -> None:
    for n in range(3):
        got = await book.add_evidence(ev(n, at=T0, campaign="c1", ip=f"10.1.0.{n}", weight=2.5))
    assert got.case is not None
    assert got.moved is not None
    case = got.case
    assert case.id == case_id("account", "alice")
    assert case.state == "open"
    assert case.account == "alice"
    assert case.evidence_count == 3
    assert case.kinds == {"spam": 3}
    assert case.ips == ("10.1.0.0", "10.1.0.1", "10.1.0.2")
    assert case.campaigns == ("c1",)
    assert case.opened_at == pytest.approx(got.moved.at)
    assert case.transitions[0].from_state is None
    assert case.transitions[0].who == "seawall"
    assert await book.get(case.id) == case
    assert await book.find(account="alice") == case
    assert [c.id for c in await book.list(ip="10.1.0.1")] == [case.id]
    assert await book.list(states=["walled"]) == []
    assert {e.id for e in await book.evidence(case.id)} == {
        ev(n, ip=f"10.1.0.{n}").id for n in (0, 1, 2)
    }
    assert len(await book.evidence(case.id, limit=2)) == 2
    assert await book.campaign_senders("c1") == (["alice"], 0)


async def test_identical_evidence_counts_once(book: CaseBook) -> None:
    raw = b"From: abuse@example.org\r\n\r\nreport"
    first = await book.add_evidence(ev(1, kind="report", weight=4.0, raw_ref="r1"), raw)
    again = await book.add_evidence(ev(1, kind="report", weight=4.0, raw_ref="r1"), raw)
    assert first.new
    assert not again.new
    await book.add_evidence(ev(2, kind="malware", weight=10.0))
    case = await book.find(account="alice")
    assert case is not None
    assert case.evidence_count == 2
    assert await book.raw("r1") == raw


async def test_score_decays(book: CaseBook) -> None:
    assert book.settings.half_life_s == 86400
    assert book.settings.open_score == 6
    await book.add_evidence(ev(1, weight=4.0, at=T0))
    got = await book.add_evidence(ev(2, weight=3.0, at=T0 + 86400))  # one half-life later
    assert got.case is None  # 4 / 2 + 3 = 5: without the decay it would be 7
    # A report that arrives late counts as of its own time: 5 + 4 / 2 = 7.
    got = await book.add_evidence(ev(3, kind="report", weight=4.0, at=T0))
    assert got.case is not None
    assert got.case.score == pytest.approx(7.0)
    assert got.case.score_at == T0 + 86400
    assert got.case.score_now(T0 + 2 * 86400, 86400) == pytest.approx(3.5)


async def test_transitions_are_logged_and_checked(book: CaseBook) -> None:
    for n in range(3):
        got = await book.add_evidence(ev(n, weight=3.0, at=T0 + n))
    assert got.case is not None
    cid = got.case.id
    case = await book.transition(cid, "notified", "ops", "mailed the customer", at=T0 + 10)
    assert case.state == "notified"
    case = await book.transition(cid, "walled", "ops", "still spamming", at=T0 + 20)
    with pytest.raises(CaseError):
        await book.transition(cid, "notified", "ops", "backwards")
    with pytest.raises(CaseError):
        await book.transition("nosuchcase", "closed", "ops", "x")
    case = await book.note(cid, "ops", "called the customer", at=T0 + 25)
    assert case.state == "walled"
    case = await book.transition(cid, "released", "ops", "cleaned", at=T0 + 30)
    assert [(t.from_state, t.to_state, t.who) for t in case.transitions] == [
        (None, "open", "seawall"),
        ("open", "notified", "ops"),
        ("notified", "walled", "ops"),
        ("walled", "walled", "ops"),
        ("walled", "released", "ops"),
    ]
    zombies = await book.active_zombies(T0 + 40)
    assert zombies == []  # released: no longer listed
    # A weak signal does not reopen; a real one does.
    got = await book.add_evidence(ev(10, kind="rate", weight=1.0, at=T0 + 50))
    assert got.case is not None
    assert got.case.state == "released"
    assert got.moved is None
    got = await book.add_evidence(ev(11, weight=2.0, at=T0 + 60))
    assert got.case is not None
    assert got.case.state == "open"
    assert got.moved is not None
    assert got.moved.from_state == "released"
    assert got.moved.who == "seawall"
    assert got.case.opened_at == case.opened_at


async def test_external_addresses_are_zombies_not_cases(book: CaseBook) -> None:
    for n in range(5):
        await book.add_evidence(
            ev(n, account=None, own=False, ip="198.51.100.7", weight=8.0, at=T0, campaign="c9")
        )
    await book.add_evidence(
        ev(9, account=None, own=False, ip="198.51.100.8", kind="malware", at=T0)
    )
    assert await book.list() == []
    zombies = {z.ip: z for z in await book.active_zombies(T0 + 60)}
    assert zombies["198.51.100.7"].cls == "botnet"
    assert zombies["198.51.100.8"].cls == "malware"
    assert zombies["198.51.100.7"].expires == T0 + book.settings.external_ttl_s
    assert await book.active_zombies(T0 + book.settings.external_ttl_s + 1) == []
    assert await book.campaign_senders("c9") == ([], 1)


async def test_active_own_zombies(book: CaseBook) -> None:
    for n in range(3):
        await book.add_evidence(ev(n, account=None, ip="10.9.0.1", weight=3.0, at=T0 + n))
    case = await book.find(ip="10.9.0.1")
    assert case is not None
    assert case.account is None
    assert case.ip == "10.9.0.1"
    assert case.id == case_id("ip", "10.9.0.1")
    assert await book.active_zombies(T0) == []  # open: not yet told
    await book.transition(case.id, "walled", "ops", "port 25 blocked")
    (zombie,) = await book.active_zombies(T0)
    assert (zombie.ip, zombie.cls, zombie.case_id) == ("10.9.0.1", "own", case.id)


async def test_inbox_hands_evidence_over_in_order(book: CaseBook) -> None:
    await book.push([ev(n) for n in range(5)])
    first = await book.take(3)
    rest = await book.take(10)
    assert [e.id for e in first + rest] == [ev(n).id for n in range(5)]
    assert await book.take(10) == []


async def test_evidence_per_case_is_bounded(book: CaseBook) -> None:
    keep = book.settings.max_evidence_per_case
    for n in range(keep + 5):
        await book.add_evidence(ev(n, at=T0 + n, weight=0.1))
    case = await book.find(account="alice")
    assert case is not None
    assert case.evidence_count == keep + 5
    kept = await book.evidence(case.id)
    assert len(kept) == keep
    assert kept[0].at == T0 + keep + 4


async def test_prune_forgets_old_evidence_and_external_addresses(book: CaseBook) -> None:
    ttl = book.settings.evidence_ttl_s
    for n in range(3):
        await book.add_evidence(ev(n, weight=3.0, at=T0 + n, raw_ref=f"old{n}"), b"old")
    await book.add_evidence(ev(9, weight=3.0, at=T0 + ttl + 100, raw_ref="new"), b"new")
    await book.add_evidence(ev(20, account=None, own=False, ip="198.51.100.3", at=T0))
    gone = await book.prune(T0 + ttl + 50)
    assert gone >= 3
    case = await book.find(account="alice")
    assert case is not None  # the case stays, with what is recent
    assert [e.raw_ref for e in await book.evidence(case.id)] == ["new"]
    assert await book.raw("old0") is None
    assert await book.raw("new") == b"new"
    assert await book.active_zombies(T0 + 1) == []  # the external address is forgotten


async def test_external_evidence_by_address(book: CaseBook) -> None:
    await book.add_evidence(ev(1, account=None, own=False, ip="198.51.100.7", at=T0))
    await book.add_evidence(ev(2, account=None, own=False, ip="198.51.100.7", at=T0 + 1))
    got = await book.external_evidence("198.51.100.7")
    assert [e.at for e in got] == [T0 + 1, T0]
    assert await book.external_evidence("198.51.100.8") == []


async def test_a_page_of_cases_with_the_counts_of_all(book: CaseBook) -> None:
    for i in range(5):
        account = f"acct{i}"
        for n in range(3):
            await book.add_evidence(ev(n, account=account, ip=f"10.1.{i}.{n}", at=T0 + i, weight=3))
    newest = await book.find(account="acct4")
    assert newest is not None
    await book.transition(newest.id, "notified", "desk", "test")
    page = await book.page(limit=2)
    assert page.total == 5
    assert page.by_state == {"open": 4, "notified": 1}
    assert [c.account for c in page.cases] == ["acct4", "acct3"]
    assert [c.id for c in page.cases] == [c.id for c in (await book.list())[:2]]
    only = await book.page(states=["open"], limit=10)
    assert (only.total, only.by_state) == (4, {"open": 4})
    assert [c.account for c in only.cases] == ["acct3", "acct2", "acct1", "acct0"]
