"""Recurring failures logged once a minute, not once a message.

A Redis at ``maxmemory``, a stopped tracker or a locked database fails every message the
same way; one line a minute per kind of failure, with how many were held back since, says
as much to the admin as ten thousand lines and keeps the log readable.
"""

from __future__ import annotations

import logging
import time
import weakref

INTERVAL_S = 60.0
_ALL: weakref.WeakSet[QuietLog] = weakref.WeakSet()


class QuietLog:
    """Logs each kind of failure at most once per ``interval_s``, counting the rest."""

    def __init__(self, logger: logging.Logger, interval_s: float = INTERVAL_S) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self._kinds: dict[str, tuple[float, int]] = {}  # kind -> (last logged, held back)
        _ALL.add(self)

    def warning(self, kind: str, message: str, *args: object) -> None:
        """Log ``message % args`` at WARNING unless ``kind`` was logged within the interval."""
        now = time.monotonic()
        last, held = self._kinds.get(kind, (float("-inf"), 0))
        if now - last < self.interval_s:
            self._kinds[kind] = (last, held + 1)
            return
        self._kinds[kind] = (now, 0)
        if held:
            message += f" (and {held} more since the last report)"
        self.logger.warning(message, *args)


def reset() -> None:
    """Forget what every QuietLog has logged: the next failure of each kind is logged (for
    tests, which each expect their own failures in the log)."""
    for quiet in list(_ALL):
        quiet._kinds.clear()
