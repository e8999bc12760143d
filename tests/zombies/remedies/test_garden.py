"""The walled-garden page and the zombie feed, over the real case book (Starlette TestClient).

Two customers are walled; each token link shows that customer's evidence only.  The
self-release button needs the page's CSRF token, works once per period, is logged on the
case as the customer's, and a relapse walls the account again (re-entry).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from tests.zombies.test_cli import detail

from seawall.accounting import open_sessions
from seawall.accounting.detail import DetailParser, Problem
from seawall.config import Config, RemediationSettings
from seawall.frontends.http.garden import garden_routes
from seawall.store.memory import MemoryStore
from seawall.zombies.cases import Accounts, Desk
from seawall.zombies.model import Evidence, evidence_id
from seawall.zombies.remedies import build
from seawall.zombies.remedies.links import GardenLinks
from seawall.zombies.store import CaseBook, open_case_store

SEQ = iter(range(1_000_000))


def spam(
    account: str, ip: str, subject: str, *, kind: str = "spam", at: float | None = None
) -> Evidence:
    n = next(SEQ)
    return Evidence(
        id=evidence_id("garden", n),
        source="verdict",
        kind=kind,  # type: ignore[arg-type]
        at=time.time() if at is None else at,
        ip=ip,
        account=account,
        subject=subject,
        weight=8.0,
    )


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[Config, Desk, MemoryStore]]:
    config = Config(
        state_dir=str(tmp_path),
        remediation=RemediationSettings(
            mode="enforce",  # no NAS, no notice address: walls by exports only
            export_dir=str(tmp_path / "exports"),
            support_contact="Support: 0800 555 0100",
            self_release_period_s=7 * 86400.0,
        ),
    )
    # Who holds which address comes from RADIUS accounting, as in serve.
    now = int(time.time())
    starts = [
        ("Start", now - 600, "alice", "192.0.2.10", "s1"),
        ("Start", now - 600, "bob", "192.0.2.11", "s2"),
        ("Start", now - 60, "carol", "192.0.2.50", "s3"),  # after the address case's spam
    ]
    parser = DetailParser("test")
    records = [
        r for r in parser.feed(detail(starts).encode()) + parser.end() if not isinstance(r, Problem)
    ]
    sessions = open_sessions(config)
    await sessions.add(records)
    await sessions.close()
    book: CaseBook = open_case_store(config)
    accounts = Accounts(config)
    desk = Desk(book, remedies=build(config, book), who=accounts.who)
    yield config, desk, MemoryStore()
    await book.close()
    await accounts.close()


async def walled(desk: Desk, account: str, ip: str, subject: str) -> str:
    await desk.ingest(spam(account, ip, subject))
    got = await desk.ingest(spam(account, ip, subject + " again"))
    assert got.case is not None
    case = await desk.store.get(got.case.id)
    assert case is not None
    if case.state != "walled":
        case = await desk.transition(case.id, "walled", "admin", "test")
    return case.id


def client(config: Config, desk: Desk, store: MemoryStore) -> TestClient:
    return TestClient(
        Starlette(routes=garden_routes(config, store, desk)), client=("192.0.2.10", 5000)
    )


async def test_the_page_shows_only_the_customers_own_evidence(
    setup: tuple[Config, Desk, MemoryStore],
) -> None:
    config, desk, store = setup
    alice = await walled(desk, "alice", "192.0.2.10", "Alice's <script>alert(1)</script> pills")
    bob = await walled(desk, "bob", "192.0.2.11", "Bob's watches")
    links = GardenLinks.from_settings(config.remediation, config.state_dir)
    http = client(config, desk, store)

    page = http.get(f"/garden/{links.token(alice)}")
    assert page.status_code == 200
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    html = page.text
    assert 'id="account">alice<' in html
    assert "Alice&#39;s &lt;script&gt;alert(1)&lt;/script&gt; pills" in html
    assert "<script>" not in html
    assert "Bob" not in html
    assert "bob" not in html
    assert "Support: 0800 555 0100" in html
    assert "antivirus" in html
    assert 'id="release"' in html

    assert "Bob&#39;s watches" in http.get(f"/garden/{links.token(bob)}").text
    assert http.get("/garden/not-a-token").status_code == 404
    forged = GardenLinks("another key").token(alice)
    assert http.get(f"/garden/{forged}").status_code == 404


async def test_an_old_link_has_expired(
    setup: tuple[Config, Desk, MemoryStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, desk, store = setup
    alice = await walled(desk, "alice", "192.0.2.10", "pills")
    links = GardenLinks.from_settings(config.remediation, config.state_dir)
    token = links.token(alice)
    import itsdangerous.timed

    later = time.time() + config.remediation.garden_link_s + 60
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: later)
    assert client(config, desk, store).get(f"/garden/{token}").status_code == 404


async def test_self_release_once_per_period_logged_and_relapse_rewalls(
    setup: tuple[Config, Desk, MemoryStore],
) -> None:
    config, desk, store = setup
    alice = await walled(desk, "alice", "192.0.2.10", "pills")
    links = GardenLinks.from_settings(config.remediation, config.state_dir)
    token = links.token(alice)
    http = client(config, desk, store)

    # No CSRF token, or another case's: refused, nothing changes.
    assert http.post(f"/garden/{token}/release", data={}).status_code == 403
    other = links.csrf_token("someone-else")
    assert http.post(f"/garden/{token}/release", data={"csrf": other}).status_code == 403
    assert (await desk.store.get(alice)).state == "walled"  # type: ignore[union-attr]

    csrf = links.csrf_token(alice)
    done = http.post(f"/garden/{token}/release", data={"csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == f"/garden/{token}?released=1"
    case = await desk.store.get(alice)
    assert case is not None
    assert case.state == "released"
    release = next(
        t for t in case.transitions if t.to_state == "released" and t.from_state == "walled"
    )
    assert release.who == "customer"
    assert release.why == "self-release from the garden page (192.0.2.10)"
    assert (
        "192.0.2.10"
        not in (Path(config.remediation.export_dir) / "walled.nft").read_text().split("flush")[-1]
    )
    assert "Your connection is released." in http.get(f"/garden/{token}?released=1").text

    # A relapse: the policy walls it again at once (re-entry, logged).
    await desk.ingest(spam("alice", "192.0.2.10", "relapse"))
    case = await desk.store.get(alice)
    assert case is not None
    assert case.state == "walled"
    assert any("re-entry" in t.why for t in case.transitions)

    # The second self-release within the period is refused; the page says when.
    page = http.get(f"/garden/{token}")
    assert 'id="no-release"' in page.text
    assert 'id="release"' not in page.text
    again = http.post(f"/garden/{token}/release", data={"csrf": csrf})
    assert again.status_code == 429
    assert (await desk.store.get(alice)).state == "walled"  # type: ignore[union-attr]


async def test_the_front_door_sends_a_walled_client_to_its_page(
    setup: tuple[Config, Desk, MemoryStore],
) -> None:
    config, desk, store = setup
    alice = await walled(desk, "alice", "192.0.2.10", "pills")
    links = GardenLinks.from_settings(config.remediation, config.state_dir)
    http = client(config, desk, store)
    door = http.get("/garden/", follow_redirects=False)
    assert door.status_code == 303
    assert links.case_of(door.headers["location"].rsplit("/", 1)[1]) == alice
    stranger = TestClient(
        Starlette(routes=garden_routes(config, store, desk)), client=("198.51.100.1", 5000)
    )
    page = stranger.get("/garden/", follow_redirects=False)
    assert page.status_code == 200
    assert "alice" not in page.text


async def test_the_zombie_feed_lists_the_zone(setup: tuple[Config, Desk, MemoryStore]) -> None:
    config, desk, store = setup
    await walled(desk, "alice", "192.0.2.10", "pills")
    external = Evidence(
        id=evidence_id("ext", 1),
        source="verdict",
        kind="malware",
        at=time.time(),
        ip="203.0.113.9",
        own=False,
        weight=10.0,
        infection="Win.Worm",
    )
    await desk.ingest(external)
    # An IPv6 one is listed by its /64, as the zone lists it.
    v6 = msgspec.structs.replace(external, id=evidence_id("ext", 2), ip="2001:db8:5:6::7")
    await desk.ingest(v6)
    feed = client(config, desk, store).get("/api/v1/zombies").json()
    by_ip = {e["ip"]: e for e in feed["entries"]}
    assert by_ip["192.0.2.10"]["class"] == "own"
    assert by_ip["192.0.2.10"]["code"] == "127.0.0.2"
    assert by_ip["203.0.113.9"]["class"] == "malware"
    assert by_ip["203.0.113.9"]["code"] == "127.0.0.4"
    assert by_ip["2001:db8:5:6::/64"]["code"] == "127.0.0.4"
    assert feed["count"] == 3
    only = client(config, desk, store).get("/api/v1/zombies?class=own").json()
    assert [e["ip"] for e in only["entries"]] == ["192.0.2.10"]


def test_the_routes_are_in_the_openapi_document() -> None:
    from seawall.frontends.http.garden import GARDEN_PATHS

    assert set(GARDEN_PATHS) == {"/api/v1/zombies", "/garden/{token}", "/garden/{token}/release"}
    assert GARDEN_PATHS["/garden/{token}/release"]["post"]["responses"]["429"]


async def test_behind_a_trusted_proxy_the_forwarded_client_counts(
    setup: tuple[Config, Desk, MemoryStore],
) -> None:
    config, desk, store = setup
    alice = await walled(desk, "alice", "192.0.2.10", "pills")
    links = GardenLinks.from_settings(config.remediation, config.state_dir)
    app = Starlette(routes=garden_routes(config, store, desk))
    proxy = TestClient(app, client=("127.0.0.1", 5000))  # [trusted] networks: loopback
    door = proxy.get(
        "/garden/", headers={"X-Forwarded-For": "203.0.113.1, 192.0.2.10"}, follow_redirects=False
    )
    assert door.status_code == 303
    assert links.case_of(door.headers["location"].rsplit("/", 1)[1]) == alice
    # A client that is not a trusted proxy cannot claim an address.
    stranger = TestClient(app, client=("198.51.100.1", 5000))
    page = stranger.get(
        "/garden/", headers={"X-Forwarded-For": "192.0.2.10"}, follow_redirects=False
    )
    assert page.status_code == 200


async def test_the_front_door_never_shows_an_address_case_to_its_next_holder(
    setup: tuple[Config, Desk, MemoryStore],
) -> None:
    config, desk, store = setup
    # Spam from 192.0.2.50 before anyone held it by the accounting: an address case.
    for i in range(2):
        await desk.ingest(
            Evidence(
                id=evidence_id("static", i),
                source="verdict",
                kind="spam",
                at=time.time() - 3600 + i,
                ip="192.0.2.50",
                weight=8.0,
                subject="x",
            )
        )
    case = await desk.store.find(ip="192.0.2.50")
    assert case is not None
    assert case.account is None
    if case.state != "walled":
        await desk.transition(case.id, "walled", "admin", "test")
    # carol holds 192.0.2.50 now: she is not sent to that case's page.
    carol = TestClient(
        Starlette(routes=garden_routes(config, store, desk)), client=("192.0.2.50", 5000)
    )
    page = carol.get("/garden/", follow_redirects=False)
    assert page.status_code == 200
