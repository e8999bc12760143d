"""Bytes of messages one worker holds at once, over every connection and front end.

Each front end buffers a message whole before it is scanned (the scan needs all of it),
so without a bound a few hundred slow uploads could hold gigabytes.  A request takes its
bytes from the worker's ``Budget`` as they arrive (or at once, when it says its length)
and gives them back when it is answered; one that would go beyond the budget gets the
protocol's tempfail instead, and the MTA retries.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class OverBudget(Exception):
    """The worker holds as many message bytes as it may: answer with a tempfail."""


class Budget:
    """A count of bytes held, capped at ``limit``.

    >>> budget = Budget(100)
    >>> with budget.hold() as held:
    ...     held.take(60)
    ...     budget.used
    60
    >>> budget.used
    0
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.peak = 0

    @contextmanager
    def hold(self) -> Iterator[Held]:
        held = Held(self)
        try:
            yield held
        finally:
            held.release()


class Held:
    """What one request holds of a Budget."""

    __slots__ = ("_budget", "size")

    def __init__(self, budget: Budget) -> None:
        self._budget = budget
        self.size = 0

    def take(self, n: int) -> None:
        """Hold ``n`` more bytes; OverBudget (holding nothing more) past the limit."""
        budget = self._budget
        if budget.used + n > budget.limit:
            raise OverBudget(f"this worker holds {budget.used} bytes of messages already")
        budget.used += n
        budget.peak = max(budget.peak, budget.used)
        self.size += n

    def release(self) -> None:
        self._budget.used -= self.size
        self.size = 0


UNLIMITED = Budget(1 << 62)
