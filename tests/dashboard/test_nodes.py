"""Two ``seawall serve`` nodes (two workers and one) on one Redis: each node's dashboard
counts the whole service, a login made on one node holds on the other (one secret file),
and failed logins and logouts count on both."""

from __future__ import annotations

import http.client
import json
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.dashboard.conftest import PASSWORDS, ROLES
from tests.dashboard.mail import campaign_copy, campaign_envelope, ham
from tests.integration.postfix import free_port
from tests.integration.seawall_proc import Seawall
from tests.redis_servers import redis_server, redis_url  # noqa: F401

from seawall.message import Envelope
from seawall.users import hash_password

Answer = tuple[int, dict[str, str], str]


def request(
    sw: Seawall, method: str, path: str, *, cookie: str = "", body: bytes = b"", **headers: str
) -> Answer:
    """One request on a new connection (so the node's workers share them), no redirects."""
    conn = http.client.HTTPConnection("127.0.0.1", sw.ports["http"], timeout=30)
    try:
        sent = {k.replace("_", "-"): v for k, v in headers.items()}
        if cookie:
            sent["Cookie"] = cookie
        conn.request(method, path, body=body or None, headers=sent)
        answer = conn.getresponse()
        text = answer.read().decode("utf-8", "replace")
        found: dict[str, str] = {}
        for k, v in answer.getheaders():  # several Set-Cookie fields: kept together
            found[k.lower()] = f"{found[k.lower()]}, {v}" if k.lower() in found else v
        return answer.status, found, text
    finally:
        conn.close()


def cookies(headers: dict[str, str]) -> dict[str, str]:
    return dict(re.findall(r"(seawall_\w+)=([^;]*)", headers.get("set-cookie", "")))


def login(sw: Seawall, name: str, password: str) -> tuple[int, str]:
    """The login form's answer and the session cookie it set ("" when none)."""
    _, headers, page = request(sw, "GET", "/ui/login")
    nonce = cookies(headers)["seawall_login"]
    token = re.findall(r'name="csrf" value="([^"]+)"', page)[0]
    form = f"username={name}&password={password}&csrf={token}&next=/ui/".encode()
    status, headers, _ = request(
        sw,
        "POST",
        "/ui/login",
        cookie=f"seawall_login={nonce}",
        body=form,
        Content_Type="application/x-www-form-urlencoded",
    )
    session = cookies(headers).get("seawall_session", "")
    return status, f"seawall_session={session}" if session else ""


def scan(sw: Seawall, raw: bytes, envelope: Envelope) -> None:
    status, _, _ = request(
        sw,
        "POST",
        "/checkv2",
        body=raw,
        IP=envelope.client_ip or "",
        From=envelope.mail_from or "",
        Rcpt=envelope.rcpts[0],
        Queue_Id=envelope.queue_id or "",
    )
    assert status == 200


def chart_total(html: str) -> int:
    found = re.search(r"id=\"actions-chart\" data-chart='([^']*)'", html)
    assert found
    data = json.loads(found.group(1))
    return sum(sum(v or 0 for v in values) for _, values in data["series"])


@pytest.fixture
def nodes(tmp_path: Path, redis_url: str) -> Iterator[tuple[Seawall, Seawall]]:  # noqa: F811
    key = tmp_path / "dashboard.key"
    key.write_bytes(secrets.token_bytes(32))
    key.chmod(0o600)
    users = "".join(
        f'[users.{n}]\npassword = "{hash_password(p)}"\nroles = ["{ROLES[n]}"]\n'
        for n, p in PASSWORDS.items()
    )
    extra = f'[dashboard]\nsecret_file = "{key}"\n' + users
    pair = []
    for name, workers in (("a", 2), ("b", 1)):
        sw = Seawall(
            tmp_path / name,
            tmp_path / f"{name}-state",
            workers=workers,
            shared=redis_url,
            extra=extra + f'[detectors.campaigns]\ntracker_listen = "127.0.0.1:{free_port()}"\n',
        )
        sw.write_config(log_messages=False)
        pair.append(sw)
    try:
        for sw in pair:
            sw.start()
        yield pair[0], pair[1]
    finally:
        for sw in pair:
            sw.stop()


def test_two_nodes_on_redis(nodes: tuple[Seawall, Seawall]) -> None:
    a, b = nodes
    for i in range(6):
        scan(a, campaign_copy(i), campaign_envelope(i))
    for i in range(3):
        scan(b, *ham(i))
    status, session = login(a, "ana", PASSWORDS["ana"])
    assert status == 303
    assert session
    for sw in (a, b):

        def page(path: str, sw: Seawall = sw) -> str:
            status, _, text = request(sw, "GET", path, cookie=session)
            assert status == 200, (sw.ports, path, status)
            return text

        # Each worker writes its own verdicts every second: node a's two workers each
        # hold some of the six.  Wait for all nine rows and the chart that counts them.
        wanted = [f"Q1C{i:04d}" for i in range(6)] + [f"QH{i:04d}" for i in range(3)]
        missing: list[str] = wanted
        total = 0
        deadline = time.monotonic() + 120  # a guard against a hang only
        while time.monotonic() < deadline:
            history = page("/ui/history")
            missing = [q for q in wanted if q not in history]
            total = chart_total(page("/ui/"))
            if not missing and total == 9:
                break
            time.sleep(0.2)
        assert missing == []
        assert total == 9
    # A logout on node b ends the session on node a.
    _, _, overview = request(b, "GET", "/ui/", cookie=session)
    token = re.findall(r'name="csrf" value="([^"]+)"', overview)[0]
    status, _, _ = request(
        b,
        "POST",
        "/ui/logout",
        cookie=session,
        body=f"csrf={token}".encode(),
        Content_Type="application/x-www-form-urlencoded",
    )
    assert status == 303
    assert request(a, "GET", "/ui/", cookie=session)[0] == 303
    # Failed logins count over both nodes: three on a, two on b use up the five.
    for _ in range(3):
        assert login(a, "lea", "wrong")[0] == 401
    for _ in range(2):
        assert login(b, "lea", "wrong")[0] == 401
    assert login(a, "lea", PASSWORDS["lea"])[0] == 429
