"""Without the zombie desk the case pages are not served, and the menu does not offer them."""

from __future__ import annotations

import pytest
from tests.dashboard.conftest import Desk


@pytest.fixture
def extra_config() -> str:
    return "[zombies]\nenabled = false\n"


def test_no_case_pages_without_the_desk(desk: Desk) -> None:
    assert desk.login("root") == 303
    page = desk.client.get("/ui/")
    assert page.status_code == 200
    assert "/ui/cases" not in page.text
    assert desk.client.get("/ui/cases").status_code == 404
