"""Logging in: the form, sessions, roles, CSRF, the failed-login limit, the headers."""

from __future__ import annotations

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
