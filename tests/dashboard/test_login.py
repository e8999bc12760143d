"""Logging in: the form, sessions, roles, CSRF, the failed-login limit, the headers."""

from __future__ import annotations

import re

from tests.dashboard.conftest import Desk, csrf_of


def test_pages_ask_for_a_login_first(desk: Desk) -> None:
    answer = desk.client.get("/ui/campaigns?q=x", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/login?next=%2Fui%2Fcampaigns%3Fq%3Dx"
    assert desk.client.get("/ui", follow_redirects=False).headers["location"] == "/ui/"


def test_login_sets_a_strict_http_only_cookie_and_logout_ends_it(desk: Desk) -> None:
    assert desk.login("ana") == 303
    cookie = desk.client.cookies.get("seawall_session")
    assert cookie
    page = desk.client.get("/ui/")
    assert page.status_code == 200
    assert "ana (view)" in page.text
    answer = desk.client.post(
        "/ui/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False
    )
    assert answer.status_code == 303
    # The old cookie no longer works, even replayed.
    desk.client.cookies.set("seawall_session", cookie, path="/ui")
    assert desk.client.get("/ui/", follow_redirects=False).status_code == 303


def test_wrong_passwords_are_refused_and_limited_per_address(desk: Desk) -> None:
    assert desk.login("ana", "wrong") == 401
    for _ in range(4):
        assert desk.login("ana", "still wrong") == 401
    # Five failures from this address: now even the right password is not checked.
    assert desk.login("ana") == 429
    assert desk.client.cookies.get("seawall_session") is None
    page = desk.client.get("/ui/login")
    assert page.status_code == 200


def test_the_login_form_needs_its_own_token(desk: Desk) -> None:
    desk.client.get("/ui/login")
    answer = desk.client.post(
        "/ui/login",
        data={"username": "ana", "password": "ana-password", "csrf": "forged"},
        follow_redirects=False,
    )
    assert answer.status_code == 403
    assert desk.client.cookies.get("seawall_session") is None


def test_every_page_carries_the_security_headers(desk: Desk) -> None:
    login = desk.client.get("/ui/login")
    assert desk.login("root") == 303
    for answer in (login, desk.client.get("/ui/"), desk.client.get("/ui/users")):
        assert answer.status_code == 200
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert "<script>" not in answer.text  # every script is a file
        assert not re.search(r"<[^>]+\son[a-z]+=", answer.text)  # no inline handler


def test_roles(desk: Desk) -> None:
    assert desk.login("ana") == 303
    assert desk.client.get("/ui/users").status_code == 403
    desk.client.cookies.clear()
    assert desk.login("root") == 303
    users = desk.client.get("/ui/users")
    assert users.status_code == 200
    assert "lea" in users.text


def test_cookie_is_secure_over_tls(desk: Desk) -> None:
    desk.client.base_url = "https://testserver"  # type: ignore[assignment]
    page = desk.client.get("/ui/login")
    token = csrf_of(page.text)
    answer = desk.client.post(
        "/ui/login",
        data={"username": "ana", "password": "ana-password", "csrf": token},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "secure" in cookie
    assert "path=/ui" in cookie


def test_the_signing_key_is_made_private_once(desk: Desk) -> None:
    key = desk.root / "state" / "dashboard.key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert len(key.read_bytes()) == 32
