"""The zombie case pages: the list and its filters, the evidence timeline, confirmed actions."""

from __future__ import annotations

import asyncio
import time

from tests.dashboard.conftest import Desk, csrf_of

from seawall.zombies.model import Case, Evidence, evidence_id
from seawall.zombies.store import open_case_store


def open_case(desk: Desk, account: str = "alice", ip: str = "10.1.1.5") -> Case:
    """Evidence enough to open a case for ``account``; the case."""

    async def add() -> Case:
        book = open_case_store(desk.service.config)
        try:
            now = time.time()
            for n, kind in enumerate(("malware", "spam", "spam")):
                got = await book.add_evidence(
                    Evidence(
                        id=evidence_id(account, n),
                        source="verdict",
                        kind=kind,
                        at=now - 60 * (3 - n),
                        ip=ip,
                        account=account,
                        queue_id=f"QZ{n}",
                        campaign="c0ffee",
                        symbols=("CLAMAV_VIRUS",) if kind == "malware" else ("CAMPAIGN_SPAM",),
                        subject=f"<b>hi</b> {n}",
                        infection="Worm.Sober" if kind == "malware" else "",
                        weight=10.0 if kind == "malware" else 2.0,
                    )
                )
            assert got.case is not None
            return got.case
        finally:
            await book.close()

    return asyncio.run(add())


def test_list_filters_and_timeline(desk: Desk) -> None:
    case = open_case(desk)
    open_case(desk, "bob", "10.1.1.9")
    assert desk.login("ana") == 303
    page = desk.client.get("/ui/cases")
    assert page.status_code == 200
    assert "alice" in page.text
    assert "bob" in page.text
    assert 'id="zone-size"' in page.text
    only = desk.client.get("/ui/cases", params={"subject": "alice"})
    assert "alice" in only.text
    assert "bob" not in only.text
    walled = desk.client.get("/ui/cases", params={"state": "walled"})
    assert "alice" not in walled.text
    detail = desk.client.get(f"/ui/cases/{case.id}")
    assert detail.status_code == 200
    assert "Worm.Sober" in detail.text
    assert "/ui/history?queue_id=QZ0" in detail.text  # the message behind the evidence
    assert "/ui/campaigns/c0ffee" in detail.text
    assert "&lt;b&gt;hi&lt;/b&gt;" in detail.text
    assert 'id="action-notify"' not in detail.text  # read-only


def test_an_action_is_confirmed_then_recorded(desk: Desk) -> None:
    case = open_case(desk)
    assert desk.login("ana") == 303
    refused = desk.client.post(
        f"/ui/cases/{case.id}/act",
        data={"csrf": desk.csrf(), "action": "wall", "confirmed": "yes"},
    )
    assert refused.status_code == 403
    desk.client.cookies.clear()
    assert desk.login("root") == 303
    detail = desk.client.get(f"/ui/cases/{case.id}")
    assert 'id="action-notify"' in detail.text
    assert 'id="action-wall"' in detail.text
    assert 'id="action-release"' not in detail.text  # not from "open"
    confirm = desk.client.get(f"/ui/cases/{case.id}/confirm", params={"action": "wall"})
    assert confirm.status_code == 200
    assert "walled garden" in confirm.text
    token = csrf_of(confirm.text)
    unconfirmed = desk.client.post(
        f"/ui/cases/{case.id}/act", data={"csrf": token, "action": "wall"}
    )
    assert unconfirmed.status_code == 400
    done = desk.client.post(
        f"/ui/cases/{case.id}/act",
        data={"csrf": token, "action": "wall", "confirmed": "yes", "why": "Sober worm"},
    )
    assert done.status_code == 200
    assert 'id="done"' in done.text
    assert "walled" in done.text

    async def state() -> Case | None:
        book = open_case_store(desk.service.config)
        try:
            return await book.get(case.id)
        finally:
            await book.close()

    after = asyncio.run(state())
    assert after is not None
    assert after.state == "walled"
    assert any(t.who == "root" and t.why == "Sober worm" for t in after.transitions)
    # A move the state forbids is refused with the reason.
    again = desk.client.post(
        f"/ui/cases/{case.id}/act",
        data={"csrf": token, "action": "notify", "confirmed": "yes"},
    )
    assert again.status_code == 409
