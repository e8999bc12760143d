"""The pages in-process over a real Engine, campaign tracker and verdict history."""

from __future__ import annotations

import asyncio
import csv
import io
import re

import pytest
from tests.dashboard.conftest import Desk, csrf_of
from tests.dashboard.mail import campaign_copy, campaign_envelope, ham, hostile


def feed(desk: Desk, copies: int = 8) -> str:
    """Scan one campaign's copies (half from own dynamic addresses) and some ham; the
    campaign's id."""
    for i in range(copies):
        desk.scan(campaign_copy(i), campaign_envelope(i, own=i % 2 == 0))
    for i in range(3):
        desk.scan(*ham(i))
    listing = asyncio.run(desk.tracker.listing(2))
    assert listing, "the copies made no campaign"
    return str(listing[0]["id"])


def test_campaign_list_detail_and_marking(desk: Desk) -> None:
    cid = feed(desk)
    assert desk.login("ana") == 303
    page = desk.client.get("/ui/campaigns")
    assert page.status_code == 200
    assert cid in page.text
    assert "Cheap meds" in page.text
    detail = desk.client.get(f"/ui/campaigns/{cid}")
    assert detail.status_code == 200
    assert "10.1.1.1" in detail.text  # an own address ...
    assert "dynamic pool" in detail.text  # ... in the [isp] dynamic pool
    assert "pills1.example" in detail.text
    # A read-only user sees no mark buttons and cannot mark by posting either.
    assert 'id="mark-spam"' not in detail.text
    token = csrf_of(detail.text)
    refused = desk.client.post(f"/ui/campaigns/{cid}/mark", data={"csrf": token, "label": "spam"})
    assert refused.status_code == 403
    desk.client.cookies.clear()
    assert desk.login("lea") == 303
    detail = desk.client.get(f"/ui/campaigns/{cid}")
    assert 'id="mark-spam"' in detail.text
    done = desk.client.post(
        f"/ui/campaigns/{cid}/mark", data={"csrf": csrf_of(detail.text), "label": "spam"}
    )
    assert done.status_code == 200
    assert 'id="marked"' in done.text
    shown = asyncio.run(desk.tracker.show(cid))
    assert shown is not None
    assert shown["mark"] == "spam"
    assert desk.client.get("/ui/campaigns/nosuchcampaign").status_code == 404


def test_a_post_without_its_csrf_token_is_refused(desk: Desk) -> None:
    cid = feed(desk, 4)
    assert desk.login("lea") == 303
    for data in ({"label": "spam"}, {"label": "spam", "csrf": "0" * 64}):
        answer = desk.client.post(f"/ui/campaigns/{cid}/mark", data=data)
        assert answer.status_code == 403
        assert "security token" in answer.text
    shown = asyncio.run(desk.tracker.show(cid))
    assert shown is not None
    assert shown["mark"] is None
    # Another session's token does not do either.
    other = desk.csrf()
    desk.client.cookies.clear()
    assert desk.login("lea") == 303
    assert (
        desk.client.post(
            f"/ui/campaigns/{cid}/mark", data={"label": "ham", "csrf": other}
        ).status_code
        == 403
    )


def test_history_search_export_explain_and_learn(desk: Desk) -> None:
    feed(desk)
    assert desk.login("lea") == 303
    page = desk.client.get("/ui/history")
    assert page.status_code == 200
    assert "Q1C0003" in page.text
    assert "QH0001" in page.text
    one = desk.client.get("/ui/history", params={"queue_id": "QH0001"})
    assert "QH0001" in one.text
    assert "Q1C0003" not in one.text
    hidden = desk.client.get("/ui/history", params={"hide": "1", "sender": "alice@"})
    assert "QH0001" not in hidden.text  # ham is "no action"
    by_client = desk.client.get("/ui/history", params={"client_ip": "10.1.1.1"})
    assert "Q1C0000" in by_client.text
    assert "Q1C0001" not in by_client.text
    bad = desk.client.get("/ui/history", params={"start": "yesterday"})
    assert "start is not a time" in bad.text
    exported = desk.client.get("/ui/history.csv", params={"recipient": "bob@"})
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {r["queue_id"] for r in rows} == {"QH0000", "QH0001", "QH0002"}
    rid = re.search(r'href="/ui/history/(\d+)">', one.text)
    assert rid
    detail = desk.client.get(f"/ui/history/{rid.group(1)}")
    assert detail.status_code == 200
    assert 'id="symbols"' in detail.text
    assert "Minutes of meeting 1" in detail.text
    learned = desk.client.post(
        f"/ui/history/{rid.group(1)}/learn", data={"csrf": csrf_of(detail.text), "label": "ham"}
    )
    assert learned.status_code == 200
    assert 'id="learned"' in learned.text
    assert desk.service.classifier is not None
    assert desk.service.classifier.counts[1] >= 1


def test_overview_sources_and_domains_count_the_history(desk: Desk) -> None:
    feed(desk)
    assert desk.login("ana") == 303
    overview = desk.client.get("/ui/")
    assert overview.status_code == 200
    chart = re.search(r"id=\"actions-chart\" data-chart='([^']*)'", overview.text)
    assert chart
    assert '"no action"' in chart.group(1)
    sources = desk.client.get("/ui/sources")
    assert "198.51.100.20" in sources.text  # the ham server, external
    assert "10.1.1.1" in sources.text
    assert "own dynamic" in sources.text
    one = desk.client.get("/ui/sources", params={"ip": "198.51.100.20"})
    assert "QH" not in one.text or "Minutes of meeting" in one.text
    assert "Minutes of meeting" in one.text
    domains = desk.client.get("/ui/domains")
    assert "customer.example" in domains.text
    assert "partner.example" in domains.text


def test_hostile_mail_is_shown_as_text(desk: Desk) -> None:
    for i in range(4):
        desk.scan(*hostile(i))
    assert desk.login("lea") == 303
    pages = [desk.client.get(p).text for p in ("/ui/history", "/ui/campaigns", "/ui/sources")]
    rid = re.search(r'href="/ui/history/(\d+)">', pages[0])
    assert rid
    pages.append(desk.client.get(f"/ui/history/{rid.group(1)}").text)
    listing = asyncio.run(desk.tracker.listing(2))
    for item in listing:
        pages.append(desk.client.get(f"/ui/campaigns/{item['id']}").text)
    for html in pages:
        assert "<script>window" not in html
        assert 'onerror="' not in html
        assert "<img src=x" not in html
        assert "<svg" not in html
        assert 'href="javascript:' not in html
    assert "&lt;script&gt;window.__xss" in pages[0]  # shown, as text


def test_the_campaign_list_pages_through_the_busiest(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seawall.dashboard import campaigns

    for seed in (1, 2, 3):
        for i in range(3 + seed):
            desk.scan(campaign_copy(i, seed=seed), campaign_envelope(i, seed=seed))
    ids = [str(c["id"]) for c in asyncio.run(desk.tracker.listing(2))]
    assert len(ids) == 3
    monkeypatch.setattr(campaigns, "PAGE_SIZE", 1)
    assert desk.login("ana") == 303
    first = desk.client.get("/ui/campaigns")
    assert ids[0] in first.text
    assert ids[1] not in first.text
    assert "page=2" in first.text
    last = desk.client.get("/ui/campaigns", params={"page": "3"})
    assert ids[2] in last.text
    assert "page=4" not in last.text
    found = desk.client.get("/ui/campaigns", params={"q": "pills2.example"})
    assert "1 campaigns" in found.text
