"""The HTTP front end in-process (Starlette's TestClient) on a real Engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from seawall.config import load_config
from seawall.engine import build_engine
from seawall.frontends.http import build_app
from seawall.frontends.http.app import envelope_of
from seawall.serve.service import Service
from seawall.store.memory import MemoryStore

RAW = (
    b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: lunch\r\n"
    b"Message-ID: <l1@example.org>\r\n\r\nShall we meet at noon by the old station today?\r\n"
)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, Service]]:
    config = load_config(state_dir=str(tmp_path))
    engine = build_engine(config)
    service = Service(engine, config, classifier=engine.classifier, store=MemoryStore())
    with TestClient(build_app(service, allow_learn=True)) as test_client:
        yield test_client, service
    engine.close()


def test_envelope_from_rspamd_headers() -> None:
    from starlette.datastructures import Headers

    headers = Headers(
        raw=[
            (b"ip", b"198.51.100.7"),
            (b"helo", b"bot.example"),
            (b"from", b"<a@example.net>"),
            (b"rcpt", b"<b@example.org>"),
            (b"rcpt", b"c@example.org, d@example.org"),
            (b"queue-id", b"4XyZ"),
            (b"user", b"alice"),
        ]
    )
    env = envelope_of(headers)
    assert env.client_ip == "198.51.100.7"
    assert env.helo == "bot.example"
    assert env.mail_from == "a@example.net"
    assert env.rcpts == ("b@example.org", "c@example.org", "d@example.org")
    assert env.queue_id == "4XyZ"
    assert env.user == "alice"


def test_checkv2(client: tuple[TestClient, Service]) -> None:
    http, service = client
    resp = http.post("/checkv2", content=RAW, headers={"IP": "198.51.100.7"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["action"] == "no action"
    assert body["message-id"] == "l1@example.org"
    assert body["language"] == "en"
    assert service.stats.scanned == 1


def test_learn_endpoints_answer_like_rspamd(client: tuple[TestClient, Service]) -> None:
    http, _ = client
    assert http.post("/learnspam", content=RAW).json() == {"success": True}
    again = http.post("/learnspam", content=RAW)
    assert again.status_code == 208
    assert "already learned as spam" in again.json()["error"]
    assert http.post("/learnham", content=RAW).json() == {"success": True}


def test_ping_stat_and_health(client: tuple[TestClient, Service]) -> None:
    http, _ = client
    assert http.get("/ping").text == "pong\r\n"
    http.post("/checkv2", content=RAW)
    stat = http.get("/stat").json()
    assert stat["scanned"] == 1
    assert stat["actions"] == {"no action": 1}
    assert http.get("/api/v1/health").json()["status"] == "ok"


def test_api_scan_takes_the_envelope_as_query(client: tuple[TestClient, Service]) -> None:
    http, _ = client
    body = http.post(
        "/api/v1/scan", params={"ip": "198.51.100.7", "rcpt": ["b@example.org"]}, content=RAW
    ).json()
    assert body["action"] == "no action"
    assert "milter" not in body


def test_api_learn_rejects_unknown_labels(client: tuple[TestClient, Service]) -> None:
    http, _ = client
    assert http.post("/api/v1/learn/maybe", content=RAW).status_code == 404
    assert http.post("/api/v1/learn/ham", content=RAW).json() == {"learned": True, "label": "ham"}


def test_openapi_document_lists_every_api_route(client: tuple[TestClient, Service]) -> None:
    http, _ = client
    from seawall.frontends.http.cases_api import CASES_PATHS
    from seawall.frontends.http.garden import GARDEN_PATHS

    spec = http.get("/openapi.json").json()
    # The scanning API, and the routes the worker adds (extra_routes), each tested beside them.
    assert set(spec["paths"]) == {
        "/api/v1/scan",
        "/api/v1/learn/{label}",
        "/api/v1/forget",
        "/api/v1/stats",
        "/api/v1/health",
    } | set(CASES_PATHS) | set(GARDEN_PATHS)


def test_wrong_method_and_path(client: tuple[TestClient, Service]) -> None:
    http, _ = client
    assert http.get("/checkv2").status_code == 405
    assert http.get("/nope").status_code == 404


def test_learning_can_be_turned_off_and_size_is_bounded(tmp_path: Path) -> None:
    import msgspec

    config = load_config(state_dir=str(tmp_path))
    serve = msgspec.structs.replace(
        config.serve, http=msgspec.structs.replace(config.serve.http, allow_learn=False)
    )
    config = msgspec.structs.replace(
        config, serve=serve, limits=msgspec.structs.replace(config.limits, max_message_bytes=500)
    )
    engine = build_engine(config)
    service = Service(engine, config, classifier=engine.classifier)
    with TestClient(build_app(service, allow_learn=config.serve.http.allow_learn)) as http:
        refused = http.post("/learnspam", content=RAW)
        assert refused.status_code == 403
        assert refused.json() == {"error": "learning is turned off"}
        assert http.post("/api/v1/learn/ham", content=RAW).status_code == 403
        assert http.post("/api/v1/forget", content=RAW).status_code == 403
        big = http.post("/checkv2", content=RAW + b"x" * 600)
        assert big.status_code == 413
        assert big.json() == {"error": "message larger than 500 bytes"}
    engine.close()


def test_checkv2_asks_for_authentication_results_with_the_configured_id() -> None:
    from seawall.policy.model import Action, SymbolResult, Verdict

    class Signed:
        max_message_bytes = 1 << 20

        async def check(self, envelope: object, raw: bytes) -> Verdict:
            spf = SymbolResult("SPF_PASS", -0.1, ("example.com",), "")
            return Verdict(
                score=-0.1,
                required=15.0,
                action=Action.NO_ACTION,
                symbols={"SPF_PASS": spf},
                language=None,
                elapsed_ms=0.1,
            )

        async def learn(self, raw: bytes, *, spam: bool) -> bool:
            return False

        async def forget(self, raw: bytes) -> bool:
            return False

        def stat(self) -> dict[str, object]:
            return {}

    with TestClient(build_app(Signed(), allow_learn=False, authserv_id="mx.isp.example")) as http:
        body = http.post("/checkv2", content=RAW).json()
    header = body["milter"]["add_headers"]["Authentication-Results"]
    assert header["value"] == "mx.isp.example; spf=pass smtp.mailfrom=example.com"
