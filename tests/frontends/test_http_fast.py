"""The HTTP front end's fast path: /checkv2 answered before Starlette's router, as the
routed handlers answer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from seawall.config import load_config
from seawall.engine import build_engine
from seawall.frontends.budget import Budget
from seawall.frontends.http import build_app
from seawall.serve.service import Service
from seawall.store.memory import MemoryStore

RAW = (
    b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: lunch\r\n"
    b"Message-ID: <f1@example.org>\r\n\r\nShall we meet at noon by the old station today?\r\n"
)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    config = load_config(state_dir=str(tmp_path))
    engine = build_engine(config)
    yield Service(engine, config, classifier=engine.classifier, store=MemoryStore())
    engine.close()


def test_checkv2_answers_as_the_routed_scan_api(service: Service) -> None:
    with TestClient(build_app(service, allow_learn=False)) as http:
        fast = http.post(
            "/checkv2",
            content=RAW,
            headers={"IP": "198.51.100.7", "Helo": "mx.example.org", "Rcpt": "<bob@example.org>"},
        )
        routed = http.post(
            "/api/v1/scan",
            content=RAW,
            params={"ip": "198.51.100.7", "helo": "mx.example.org", "rcpt": "bob@example.org"},
        )
    assert fast.status_code == routed.status_code == 200
    assert fast.headers["content-type"] == "application/json"
    assert int(fast.headers["content-length"]) == len(fast.content)
    ours, theirs = fast.json(), routed.json()
    assert set(ours) - set(theirs) == {"milter", "messages"}
    for body in (ours, theirs):
        body.pop("time_real")
    assert {k: v for k, v in ours.items() if k in theirs} == theirs
    assert ours["milter"]["add_headers"]["X-Spam-Flag"] == {"value": "NO", "order": 0}
    assert service.stats.scanned == 2


def test_checkv2_refuses_as_before_with_no_scan(service: Service) -> None:
    app = build_app(service, allow_learn=False, budget=Budget(100))
    with TestClient(app) as http:
        full = http.post("/checkv2", content=RAW)  # its bytes are more than the budget
        assert full.status_code == 503
        assert full.headers["retry-after"] == "5"
        assert full.json() == {"error": "too many messages in flight; try again later"}
        assert http.get("/checkv2").status_code == 405
        assert http.put("/checkv2", content=RAW).status_code == 405
    assert service.stats.scanned == 0


def test_checkv2_takes_a_body_sent_in_pieces(service: Service) -> None:
    """No Content-Length: the body is read to its end and taken from the budget as it comes."""
    pieces = [RAW[:40], RAW[40:90], RAW[90:]]
    with TestClient(build_app(service, allow_learn=False)) as http:
        resp = http.post("/checkv2", content=iter(pieces))
    assert resp.status_code == 200
    assert resp.json()["message-id"] == "f1@example.org"


def test_a_client_gone_before_its_body_ended_is_no_error(service: Service) -> None:
    app = build_app(service, allow_learn=False)
    sent: list[dict[str, Any]] = []
    messages = iter(
        [
            {"type": "http.request", "body": RAW[:30], "more_body": True},
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/checkv2",
        "raw_path": b"/checkv2",
        "query_string": b"",
        "headers": [],
        "http_version": "1.1",
        "scheme": "http",
        "root_path": "",
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 400
    assert service.stats.scanned == 0
