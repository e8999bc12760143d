"""A dashboard served in-process (Starlette's TestClient) over a real Engine, tracker and
verdict history, with three users: ``ana`` (view), ``lea`` (learn) and ``root`` (admin)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from seawall.campaigns.client import TrackerClient
from seawall.config import load_config
from seawall.dashboard import dashboard_routes
from seawall.engine import build_engine
from seawall.frontends.http import build_app
from seawall.message import Envelope
from seawall.serve.service import Service
from seawall.store import open_store
from seawall.store.verdicts import VerdictRecord, open_verdicts
from seawall.users import hash_password

PASSWORDS = {"ana": "ana-password", "lea": "lea-password", "root": "root-password"}
ROLES = {"ana": "view", "lea": "learn", "root": "admin"}


@dataclass
class Desk:
    client: TestClient
    service: Service
    tracker: TrackerClient
    root: Path

    def login(self, name: str, password: str | None = None) -> int:
        """Log ``name`` in through the form; the answer's status."""
        page = self.client.get("/ui/login")
        token = csrf_of(page.text)
        answer = self.client.post(
            "/ui/login",
            data={
                "username": name,
                "password": PASSWORDS[name] if password is None else password,
                "csrf": token,
                "next": "/ui/",
            },
            follow_redirects=False,
        )
        return answer.status_code

    def csrf(self, path: str = "/ui/") -> str:
        return csrf_of(self.client.get(path).text)

    def scan(self, raw: bytes, envelope: Envelope) -> None:
        """Scan one message as serve does, and record its verdict in the history."""

        async def run() -> None:
            verdict = await self.service.check(envelope, raw)
            verdicts = open_verdicts(self.service.config)
            try:
                await verdicts.record(
                    VerdictRecord.of(envelope, raw, verdict, frontend="http"), raw
                )
            finally:
                await verdicts.close()

        asyncio.run(run())


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def write_config(root: Path, extra: str = "", *, state: str = "") -> Path:
    lines = [f'state_dir = "{root / "state"}"']
    if state:
        lines.append(f'state = "{state}"')
    lines += ["[isp]", 'networks = ["10.0.0.0/8"]', 'dynamic = ["10.1.0.0/16"]']
    lines += ["[serve.history]", "keep_messages = true"]
    for name, password in PASSWORDS.items():
        lines += [
            f"[users.{name}]",
            f'password = "{hash_password(password)}"',
            f'roles = ["{ROLES[name]}"]',
        ]
    path = root / "seawall.toml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


@pytest.fixture
def extra_config() -> str:
    """More TOML for the desk's configuration (a test overrides this fixture)."""
    return ""


@contextmanager
def served_desk(
    root: Path, config_file: Path, tracker: TrackerClient | None = None
) -> Iterator[Desk]:
    """One worker's dashboard in-process: its Engine, store and Service (``tracker``: the
    campaign tracker it shares with another worker, else the Engine's own)."""
    config = load_config(config_file)
    engine = build_engine(config, tracker=tracker)
    if tracker is None:
        tracker = next(d for d in engine.detectors if d.name == "campaigns").tracker  # type: ignore[attr-defined]
    assert tracker is not None
    store = open_store(config)
    service = Service(engine, config, classifier=engine.classifier, store=store)
    app = build_app(
        service, allow_learn=True, extra_routes=dashboard_routes(service, tracker=tracker)
    )
    try:
        with TestClient(app, base_url="http://testserver") as client:
            yield Desk(client, service, tracker, root)
    finally:
        asyncio.run(store.close())
        engine.close()


@pytest.fixture
def desk(tmp_path: Path, extra_config: str) -> Iterator[Desk]:
    with served_desk(tmp_path, write_config(tmp_path, extra_config)) as served:
        yield served
