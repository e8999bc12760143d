"""Reputation's reads: those asked for in one turn of the event loop share one store call."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from seawall.config import ReputationSettings
from seawall.errors import StoreError
from seawall.reputation import Record, Reputation
from seawall.store import FILENAME, MemoryStore, SqliteStore, Store
from seawall.store.base import Decayed

T0 = 1_800_000_000.0
SOURCES = [f"198.51.{n}.{m}" for n in (100, 101, 102) for m in (7, 8, 9, 10)]


class Counting:
    """A store that counts its ``decay`` calls and the keys each carried."""

    def __init__(self, inner: Store, *, fail: bool = False) -> None:
        self.inner = inner
        self.calls: list[list[str]] = []
        self.fail = fail

    async def decay(
        self,
        updates: Mapping[str, Sequence[float]],
        *,
        half_life_s: float,
        now: float,
        ttl_s: float,
    ) -> dict[str, Decayed]:
        self.calls.append(list(updates))
        if self.fail:
            raise StoreError("the disk is gone")
        return await self.inner.decay(updates, half_life_s=half_life_s, now=now, ttl_s=ttl_s)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


async def _seed(store: Store) -> None:
    """Some history for each source: spam from the first half, ham from the rest."""
    writer = Reputation(store, ReputationSettings())
    for i, ip in enumerate(SOURCES):
        for _ in range(i + 1):
            await writer.record(ip, spam=i < 6, ham=i >= 6, now=T0 - 3600)
    await writer.flush()


def _values(records: tuple[Record | None, Record | None]) -> list[tuple[float, ...] | None]:
    return [None if r is None else (r.spam, r.ham, r.volume, r.first, r.last) for r in records]


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_lookups_of_one_turn_share_one_store_call_and_answer_as_alone(
    kind: str, tmp_path: Path
) -> None:
    inner: Store = MemoryStore() if kind == "memory" else SqliteStore.open(tmp_path / FILENAME)
    await _seed(inner)
    store = Counting(inner)
    # Each message's time differs a little, as in a scan (time.time() per message).
    times = [T0 + i * 0.001 for i in range(len(SOURCES))]

    alone = []
    for ip, now in zip(SOURCES, times, strict=True):
        one = Reputation(store, ReputationSettings())  # type: ignore[arg-type]
        alone.append(_values(await one.lookup(ip, now)))
    assert len(store.calls) == len(SOURCES)

    store.calls.clear()
    together = Reputation(store, ReputationSettings())  # type: ignore[arg-type]
    answers = await asyncio.gather(
        *(together.lookup(ip, now) for ip, now in zip(SOURCES, times, strict=True)),
        together.lookup("203.0.113.9", T0),  # no history: read in the same call
    )
    assert len(store.calls) == 1
    # Every address, its three networks once, and the unknown source's two keys.
    assert sorted(store.calls[0]) == sorted(set(store.calls[0]))
    assert len(store.calls[0]) == len(SOURCES) + 3 + 2
    assert answers[-1] == (None, None)
    for got, want in zip(answers, alone, strict=False):
        assert [None if v is None else pytest.approx(v) for v in _values(got)] == want
    # Cached now: no store call at all.
    await asyncio.gather(*(together.lookup(ip, T0) for ip in SOURCES))
    assert len(store.calls) == 1
    await inner.close()


async def test_a_later_turn_makes_a_call_of_its_own() -> None:
    inner = MemoryStore()
    await _seed(inner)
    store = Counting(inner)
    rep = Reputation(store, ReputationSettings())  # type: ignore[arg-type]
    await rep.lookup(SOURCES[0], T0)
    await rep.lookup(SOURCES[1], T0)
    assert [sorted(c) for c in store.calls] == [
        sorted(["rep:ip:198.51.100.7", "rep:net:198.51.100.0/24"]),
        ["rep:ip:198.51.100.8"],  # its network is cached already
    ]


async def test_a_cancelled_caller_does_not_cancel_the_others_read() -> None:
    inner = MemoryStore()
    await _seed(inner)
    store = Counting(inner)
    rep = Reputation(store, ReputationSettings())  # type: ignore[arg-type]
    first = asyncio.ensure_future(rep.lookup(SOURCES[0], T0))
    second = asyncio.ensure_future(rep.lookup(SOURCES[6], T0))
    await asyncio.sleep(0)  # both asked, in one turn
    first.cancel()
    own, _ = await second
    assert first.cancelled()
    assert own is not None
    assert own.ham == pytest.approx(7 * 0.5 ** (3600 / ReputationSettings().half_life_s))
    assert len(store.calls) == 1


async def test_a_failing_store_answers_every_caller_with_nothing_and_counts_once() -> None:
    store = Counting(MemoryStore(), fail=True)
    rep = Reputation(store, ReputationSettings())  # type: ignore[arg-type]
    answers = await asyncio.gather(*(rep.lookup(ip, T0) for ip in SOURCES[:4]))
    assert answers == [(None, None)] * 4
    assert len(store.calls) == 1
    assert rep.store_errors == 1


def test_a_read_left_by_a_loop_that_stopped_does_not_hold_the_next_one() -> None:
    inner = MemoryStore()
    asyncio.run(_seed(inner))
    rep = Reputation(inner, ReputationSettings())
    first = asyncio.new_event_loop()
    try:
        task = first.create_task(rep.lookup(SOURCES[0], T0))
        # The loop stops after the lookup asked for its read, before the read was made.
        first.call_soon(first.stop)
        first.run_forever()
        assert not task.done()
        own, net = asyncio.run(asyncio.wait_for(rep.lookup(SOURCES[6], T0), 30.0))
        assert own is not None
        assert net is not None
        # The first loop, run again, still makes its own read.
        own, _ = first.run_until_complete(task)
        assert own is not None
    finally:
        first.close()
