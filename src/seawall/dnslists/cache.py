"""A bounded TTL cache of DNS answers, listed and not listed alike, with hit counters."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from seawall.dnslists.answer import Answer

# An A answer is kept under its name (the block lists' hot path builds no tuple), an
# answer of another type under (name, type); a str never equals a tuple, so they never mix.
CacheKey = str | tuple[str, int]


@dataclass(slots=True)
class CacheStats:
    """Counters since start: lookups answered from the cache and lookups that were not."""

    hits: int = 0
    misses: int = 0
    evictions: int = 0  # live entries dropped because the cache was full

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class AnswerCache:
    """Answers by query name, each kept for its TTL clamped to ``[min_ttl_s, max_ttl_s]``.

    NXDOMAIN is cached like a listing (its TTL is the SOA's, RFC 2308); a failure
    (timeout, SERVFAIL, error) for ``failure_ttl_s``, so a list that is down costs one
    wait, not one per message (RFC 9520 §3.2).  At ``max_entries`` the least recently
    used entry goes.

    >>> from seawall.dnslists.answer import NOT_LISTED
    >>> cache = AnswerCache(max_entries=10, clock=lambda: 0.0)
    >>> cache.put("1.0.0.127.zen.example", NOT_LISTED)
    >>> cache.get("1.0.0.127.zen.example") is NOT_LISTED, cache.stats.hits
    (True, 1)
    """

    def __init__(
        self,
        *,
        max_entries: int = 100_000,
        min_ttl_s: float = 60.0,
        max_ttl_s: float = 3600.0,
        failure_ttl_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.min_ttl_s = min_ttl_s
        self.max_ttl_s = max(min_ttl_s, max_ttl_s)
        self.failure_ttl_s = failure_ttl_s
        self.clock = clock
        self.stats = CacheStats()
        self._entries: OrderedDict[CacheKey, tuple[float, Answer]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name: CacheKey) -> Answer | None:
        """The cached answer for ``name``, counted as a hit; None (a miss) when absent or old."""
        entry = self._entries.get(name)
        if entry is not None:
            if entry[0] > self.clock():
                self._entries.move_to_end(name)
                self.stats.hits += 1
                return entry[1]
            del self._entries[name]
        self.stats.misses += 1
        return None

    def put(self, name: CacheKey, answer: Answer) -> None:
        if self.max_entries <= 0:
            return
        if answer.status.failed:
            ttl = self.failure_ttl_s
        elif answer.ttl is None:
            ttl = self.min_ttl_s
        else:
            ttl = min(max(answer.ttl, self.min_ttl_s), self.max_ttl_s)
        if ttl <= 0:
            return
        entries = self._entries
        if name in entries:
            entries.move_to_end(name)
        elif len(entries) >= self.max_entries:
            _, (expires, _) = entries.popitem(last=False)
            if expires > self.clock():
                self.stats.evictions += 1
        entries[name] = (self.clock() + ttl, answer)

    def clear(self) -> None:
        self._entries.clear()
