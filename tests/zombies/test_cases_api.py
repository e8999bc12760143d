"""/api/v1/cases: reading with role view, moving with admin, over the shared case store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from seawall.config import Config, UserSettings
from seawall.frontends.http.cases_api import cases_routes
from seawall.frontends.http.openapi import OPENAPI
from seawall.users import hash_password
from seawall.zombies.model import Evidence, evidence_id
from seawall.zombies.store import open_case_store

VIEW = {"Authorization": "Bearer viewer:view-pass-1"}
ADMIN = {"Authorization": "Bearer boss:admin-pass-1"}


@pytest.fixture(scope="module")
def users() -> dict[str, UserSettings]:
    return {
        "viewer": UserSettings(password=hash_password("view-pass-1"), roles=("view",)),
        "boss": UserSettings(password=hash_password("admin-pass-1"), roles=("admin",)),
    }


@pytest.fixture
def client(tmp_path: Path, users: dict[str, UserSettings]) -> TestClient:
    config = Config(state_dir=str(tmp_path), users=users)

    async def seed() -> None:
        store = open_case_store(config)
        for n in range(4):
            await store.add_evidence(
                Evidence(
                    id=evidence_id("api", n),
                    source="arf",
                    kind="report",
                    at=1_796_500_000.0 + n,
                    ip="10.1.2.3",
                    account="carol",
                    weight=4.0,
                    raw_ref=f"ref{n}",
                    campaign="c42",
                ),
                f"report {n}".encode(),
            )
        await store.close()

    asyncio.run(seed())
    return TestClient(Starlette(routes=cases_routes(config)))


def test_reading_needs_a_viewer(client: TestClient) -> None:
    assert client.get("/api/v1/cases").status_code == 401
    wrong = {"Authorization": "Bearer viewer:nope"}
    response = client.get("/api/v1/cases", headers=wrong)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    (case,) = client.get("/api/v1/cases", headers=VIEW).json()["cases"]
    assert case["account"] == "carol"
    assert case["state"] == "open"
    assert case["evidence_count"] == 4
    assert case["campaigns"] == ["c42"]
    assert client.get("/api/v1/cases?state=walled", headers=VIEW).json() == {"cases": []}
    assert client.get("/api/v1/cases?state=bogus", headers=VIEW).status_code == 400
    assert client.get("/api/v1/cases?limit=x", headers=VIEW).status_code == 400
    one = client.get(f"/api/v1/cases/{case['id']}?evidence=2", headers=VIEW).json()
    assert len(one["evidence"]) == 2
    assert one["transitions"][0]["to"] == "open"
    ref = one["evidence"][0]["raw_ref"]
    raw = client.get(f"/api/v1/cases/{case['id']}/raw/{ref}", headers=VIEW)
    assert raw.status_code == 200
    assert raw.content.startswith(b"report ")
    assert client.get(f"/api/v1/cases/{case['id']}/raw/other", headers=VIEW).status_code == 404
    assert client.get("/api/v1/cases/000000000000", headers=VIEW).status_code == 404


def test_moves_need_an_admin(client: TestClient) -> None:
    (case,) = client.get("/api/v1/cases", headers=VIEW).json()["cases"]
    url = f"/api/v1/cases/{case['id']}/transition"
    body = {"state": "walled", "reason": "port 25 blocked"}
    assert client.post(url, json=body, headers=VIEW).status_code == 403
    assert client.post(url, json={"state": "walled"}, headers=ADMIN).status_code == 400
    assert client.post(url, json={"state": "x", "reason": "r"}, headers=ADMIN).status_code == 400
    assert client.post(url, content=b"{nope", headers=ADMIN).status_code == 400
    moved = client.post(url, json=body, headers=ADMIN)
    assert moved.status_code == 200
    assert moved.json()["state"] == "walled"
    mine = [t for t in moved.json()["transitions"] if t["who"] == "boss"]
    assert [(t["from"], t["to"], t["why"]) for t in mine] == [("open", "walled", "port 25 blocked")]
    again = client.post(url, json={"state": "notified", "reason": "r"}, headers=ADMIN)
    assert again.status_code == 409
    note = client.post(f"/api/v1/cases/{case['id']}/note", json={"reason": "called"}, headers=ADMIN)
    assert note.json()["transitions"][-1]["why"] == "called"
    missing = client.post("/api/v1/cases/000000000000/transition", json=body, headers=ADMIN)
    assert missing.status_code == 404


def test_openapi_describes_the_cases() -> None:
    paths = OPENAPI["paths"]
    assert "get" in paths["/api/v1/cases"]
    assert "post" in paths["/api/v1/cases/{case_id}/transition"]
    assert OPENAPI["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
