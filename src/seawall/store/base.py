"""The ``Store`` protocol every state backend implements, and the window arithmetic they share."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

# A sliding window is kept as this many sub-buckets of window_s / BUCKETS seconds each.
# Ten keeps a counter to ten rows (or dict entries) however busy the key is, at the price of
# an error of at most one bucket: an event is counted for between 0.9 and 1.0 window after it.
BUCKETS = 10

# Failed calls of this process to a state backend, by backend ("sqlite", "redis"): the
# metrics layer reports them (seawall_store_errors_total), summed over the workers.
ERRORS: Counter[str] = Counter()


@dataclass(frozen=True, slots=True)
class Decayed:
    """Exponentially decaying counters of one key, as they stand at the caller's ``now``."""

    values: tuple[float, ...]
    first: float  # the caller's clock when the key was first added to
    last: float  # ... and when it was last added to


class Store(Protocol):
    """Shared state for every worker: sliding-window counters and values with a TTL.

    Counters and values live in one key space; :meth:`delete` removes both. Each
    counter key must always be used with the same ``window_s`` (the buckets are sized
    by it). ``now`` is the caller's clock (``time.time()`` in production) and must be one
    clock per store, since old buckets are purged by it; TTLs always run on ``time.time()``.

    Example, in a coroutine::

        store = open_store(config)
        seen = await store.incr("policy:conn:ip:192.0.2.1", window_s=60.0, now=time.time())
    """

    async def incr(self, key: str, *, window_s: float, now: float, amount: int = 1) -> int:
        """Add ``amount`` at ``now``; return the total over ``(now - window_s, now]``.

        ``amount=0`` only reads. The total is exact to one bucket (see ``BUCKETS``).
        """
        ...

    async def get(self, key: str) -> bytes | None:
        """The value of ``key``, or None when it is missing or expired."""
        ...

    async def put(self, key: str, value: bytes, *, ttl_s: float | None = None) -> None:
        """Set ``key``; with ``ttl_s`` it reads as missing ``ttl_s`` seconds from now."""
        ...

    async def claim(self, key: str, value: bytes, *, ttl_s: float) -> bytes:
        """A lease: set ``key`` to ``value`` for ``ttl_s`` seconds if it is missing, expired or
        already ``value`` (a renewal), in one atomic step; return what ``key`` holds after.

        The caller holds the lease when the answer is its own ``value``.  One holder at a
        time: a lease taken by another caller is left alone until it expires.
        """
        ...

    async def decay(
        self,
        updates: Mapping[str, Sequence[float]],
        *,
        half_life_s: float,
        now: float,
        ttl_s: float,
    ) -> dict[str, Decayed]:
        """Add to decaying counters, several keys in one atomic step; return them at ``now``.

        Each key's counters lose half their value every ``half_life_s`` of the caller's
        clock. All zeros only read (a missing key then stays missing and is left out of
        the result). A key that was added to lives ``ttl_s`` wall-clock seconds from then.
        A key whose stored counters differ in number from the update starts afresh.
        """
        ...

    async def delete(self, key: str) -> None:
        """Remove the value and the counter of ``key``; a missing key is not an error."""
        ...

    async def close(self) -> None:
        """Release the backend; the store is not used afterwards."""
        ...


def bucket_span(window_s: float) -> float:
    """Seconds covered by one bucket of a ``window_s`` window."""
    if not window_s > 0:  # also refuses NaN
        raise ValueError(f"window_s must be positive, not {window_s!r}")
    return window_s / BUCKETS


def bucket_range(now: float, window_s: float) -> tuple[int, int]:
    """The first and last bucket (inclusive) whose counts make up the total at ``now``."""
    last = math.floor(now / bucket_span(window_s))
    return last - BUCKETS + 1, last


def bucket_expiry(bucket: int, window_s: float) -> float:
    """The first ``now`` at which ``bucket`` has left every window: it may be deleted then."""
    return (bucket + BUCKETS) * bucket_span(window_s)


def decayed(values: Sequence[float], since: float, now: float, half_life_s: float) -> list[float]:
    """``values`` counted at ``since``, at ``now``; a clock stepping back never grows them."""
    if not half_life_s > 0:
        raise ValueError(f"half_life_s must be positive, not {half_life_s!r}")
    factor = 0.5 ** (max(0.0, now - since) / half_life_s)
    return [v * factor for v in values]
