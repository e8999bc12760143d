"""The answer cache: TTLs clamped, NXDOMAIN and failures cached, LRU eviction, counters."""

from __future__ import annotations

from seawall.dnslists.answer import Answer, Status
from seawall.dnslists.cache import AnswerCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _cache(clock: Clock, **kw: float) -> AnswerCache:
    settings = {"max_entries": 3, "min_ttl_s": 10.0, "max_ttl_s": 100.0, "failure_ttl_s": 2.0}
    settings.update(kw)
    return AnswerCache(**settings, clock=clock)  # type: ignore[arg-type]


LISTED = Answer(Status.LISTED, ("127.0.0.2",), ttl=50)


def test_answer_ttl_is_honoured() -> None:
    clock = Clock()
    cache = _cache(clock)
    cache.put("a", LISTED)
    clock.now += 49.9
    assert cache.get("a") is LISTED
    clock.now += 0.2
    assert cache.get("a") is None
    assert (cache.stats.hits, cache.stats.misses) == (1, 1)
    assert len(cache) == 0  # the stale entry is dropped on the miss


def test_ttls_are_clamped() -> None:
    clock = Clock()
    cache = _cache(clock)
    cache.put("short", Answer(Status.LISTED, ("127.0.0.2",), ttl=1))
    cache.put("long", Answer(Status.LISTED, ("127.0.0.2",), ttl=86400))
    cache.put("none", Answer(Status.NOT_LISTED, ttl=None))
    clock.now += 9.9
    assert cache.get("short") is not None  # raised to min_ttl_s
    assert cache.get("none") is not None  # no TTL given: min_ttl_s
    clock.now += 0.2
    assert cache.get("short") is None
    clock.now += 89.0
    assert cache.get("long") is not None
    clock.now += 1.0
    assert cache.get("long") is None  # cut to max_ttl_s


def test_nxdomain_is_cached_with_its_negative_ttl() -> None:
    clock = Clock()
    cache = _cache(clock)
    nx = Answer(Status.NOT_LISTED, ttl=30)
    cache.put("nx", nx)
    clock.now += 29
    assert cache.get("nx") is nx
    clock.now += 2
    assert cache.get("nx") is None


def test_failures_are_cached_briefly() -> None:
    clock = Clock()
    cache = _cache(clock)
    for status in (Status.TIMEOUT, Status.SERVFAIL, Status.ERROR):
        cache.put(status.value, Answer(status, ttl=3600))  # a failure's own TTL is ignored
    clock.now += 1.9
    assert all(cache.get(s.value) is not None for s in (Status.TIMEOUT, Status.SERVFAIL))
    clock.now += 0.2
    assert cache.get("timeout") is None
    assert cache.get("error") is None


def test_least_recently_used_is_evicted() -> None:
    clock = Clock()
    cache = _cache(clock)
    for name in "abc":
        cache.put(name, LISTED)
    assert cache.get("a") is LISTED  # "b" is now the least recently used
    cache.put("d", LISTED)
    assert len(cache) == 3
    assert cache.get("b") is None
    assert all(cache.get(name) is LISTED for name in "acd")
    assert cache.stats.evictions == 1
    assert round(cache.stats.hit_rate, 2) == round(4 / 5, 2)


def test_zero_entries_or_zero_ttl_caches_nothing() -> None:
    clock = Clock()
    off = _cache(clock, max_entries=0)
    off.put("a", LISTED)
    assert off.get("a") is None
    no_failures = _cache(clock, failure_ttl_s=0.0)
    no_failures.put("t", Answer(Status.TIMEOUT))
    assert no_failures.get("t") is None


def test_a_name_and_its_other_types_are_separate_entries() -> None:
    """An A answer is kept under its name, another type's under (name, type)."""
    clock = Clock()
    cache = _cache(clock)
    txt = Answer(Status.LISTED, ("v=spf1 -all",), ttl=50)
    cache.put("example.test", LISTED)
    cache.put(("example.test", 16), txt)
    assert cache.get("example.test") is LISTED
    assert cache.get(("example.test", 16)) is txt
    assert cache.get(("example.test", 15)) is None
