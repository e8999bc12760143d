"""Mail reduced to inert text (dashboard/inert.py) and the history's time parsing."""

from __future__ import annotations

from tests.dashboard.mail import hostile

from seawall.dashboard.history import _no_formula, parse_time
from seawall.dashboard.inert import clean, show_message
from seawall.message import ParseLimits


def test_control_and_bidi_characters_are_replaced() -> None:
    assert clean("pay\u202eexe.pdf") == "pay\ufffdexe.pdf"
    assert clean("a\x1b[31mred\x07") == "a\ufffd[31mred\ufffd"
    assert clean("line\nnext\ttab") == "line\nnext\ttab"
    assert clean("x" * 10, limit=4) == "xxxx…"


def test_a_hostile_message_becomes_strings() -> None:
    raw, _ = hostile()
    shown = show_message(raw, ParseLimits())
    assert shown.subject.startswith("<script>")  # kept as text; the template escapes it
    assert "here" in shown.text
    assert "window.__xss=4" not in shown.text  # script is not text a reader sees
    assert any(
        link.url.startswith("javascript:") or "evil.example" in link.url for link in shown.links
    )
    assert dict(shown.headers)["From"].startswith('"<svg')


def test_times_and_spreadsheet_cells() -> None:
    assert parse_time("2026-12-06 07:00") == 1796540400.0
    assert parse_time("2026-12-06T07:00:30Z") == 1796540430.0
    assert parse_time("2026-12-06") == 1796515200.0
    assert parse_time("yesterday") is None
    assert _no_formula("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert _no_formula("Invoice") == "Invoice"
