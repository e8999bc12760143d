"""QuietLog: one line per kind of failure per interval, with the count held back."""

from __future__ import annotations

import logging

import pytest

from seawall import quietlog
from seawall.quietlog import QuietLog


def test_one_line_per_kind_per_interval(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(quietlog.time, "monotonic", lambda: clock[0])
    quiet = QuietLog(logging.getLogger("test.quiet"), interval_s=60.0)
    with caplog.at_level(logging.WARNING, logger="test.quiet"):
        for _ in range(100):
            quiet.warning("store", "store failed: %s", "OOM")
            quiet.warning("tracker", "tracker down")
            clock[0] += 0.5  # 100 messages over 50 s
        clock[0] += 10.0  # past the minute
        quiet.warning("store", "store failed: %s", "OOM")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "store failed: OOM",
        "tracker down",
        "store failed: OOM (and 99 more since the last report)",
    ]


def test_reset_lets_the_next_failure_through(caplog: pytest.LogCaptureFixture) -> None:
    quiet = QuietLog(logging.getLogger("test.quiet"))
    with caplog.at_level(logging.WARNING, logger="test.quiet"):
        quiet.warning("store", "down")
        quiet.warning("store", "down")
        quietlog.reset()
        quiet.warning("store", "down")
    assert [r.getMessage() for r in caplog.records] == ["down", "down"]
