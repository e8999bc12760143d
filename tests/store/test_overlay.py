"""Overlay: reads see the base store plus this process's own writes; the base is never written."""

from __future__ import annotations

from pathlib import Path

import pytest

from seawall.store import FILENAME, MemoryStore, SqliteStore
from seawall.store.overlay import Overlay

T0 = 1_008_000.0
W = 60.0
HALF = 3600.0
TTL = 86400.0


@pytest.fixture
async def base(tmp_path: Path) -> SqliteStore:
    store = SqliteStore.open(tmp_path / FILENAME)
    await store.decay({"rep:a": [3.0, 1.0]}, half_life_s=HALF, now=T0, ttl_s=TTL)
    await store.incr("conn:a", window_s=W, now=T0, amount=4)
    await store.put("value:a", b"base")
    return store


async def test_reads_add_the_base_and_own_counts(base: SqliteStore) -> None:
    overlay = Overlay(lambda: base)
    got = await overlay.decay({"rep:a": [1.0, 0.0]}, half_life_s=HALF, now=T0 + HALF, ttl_s=TTL)
    assert got["rep:a"].values == pytest.approx((2.5, 0.5))  # 3 and 1 halved, plus 1 spam
    assert got["rep:a"].first == T0
    assert got["rep:a"].last == T0 + HALF
    assert await overlay.incr("conn:a", window_s=W, now=T0 + 1, amount=2) == 6
    assert await overlay.get("value:a") == b"base"


async def test_the_same_counts_as_a_copy_of_the_state(base: SqliteStore) -> None:
    copy = MemoryStore()
    await copy.decay({"rep:a": [3.0, 1.0]}, half_life_s=HALF, now=T0, ttl_s=TTL)
    overlay = Overlay(lambda: base)
    for step, update in enumerate([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]], start=1):
        now = T0 + step * 600.0
        mine = await overlay.decay({"rep:a": update}, half_life_s=HALF, now=now, ttl_s=TTL)
        theirs = await copy.decay({"rep:a": update}, half_life_s=HALF, now=now, ttl_s=TTL)
        assert mine["rep:a"].values == pytest.approx(theirs["rep:a"].values)


async def test_nothing_reaches_the_base(base: SqliteStore) -> None:
    overlay = Overlay(lambda: base)
    await overlay.decay(
        {"rep:a": [5.0, 0.0], "rep:b": [1.0, 1.0]}, half_life_s=HALF, now=T0, ttl_s=TTL
    )
    await overlay.incr("conn:a", window_s=W, now=T0, amount=10)
    await overlay.put("value:b", b"own")
    assert await overlay.claim("lease", b"me", ttl_s=10.0) == b"me"
    await overlay.delete("value:a")
    assert await overlay.get("value:a") is None  # deleted here: the base's value is hidden
    assert await overlay.get("value:b") == b"own"
    zeros = {"rep:a": [0.0, 0.0], "rep:b": [0.0, 0.0]}
    untouched = await base.decay(zeros, half_life_s=HALF, now=T0, ttl_s=TTL)
    assert untouched["rep:a"].values == pytest.approx((3.0, 1.0))
    assert "rep:b" not in untouched
    assert await base.incr("conn:a", window_s=W, now=T0, amount=0) == 4
    assert await base.get("value:a") == b"base"
    assert await base.get("value:b") is None
    assert await base.get("lease") is None


async def test_the_base_is_opened_on_first_use_and_closed_with_it(base: SqliteStore) -> None:
    opened: list[SqliteStore] = []

    def open_base() -> SqliteStore:
        opened.append(base)
        return base

    overlay = Overlay(open_base)
    await overlay.put("value:c", b"own")
    assert opened == []  # a write never needs the base
    assert await overlay.get("value:a") == b"base"
    assert await overlay.get("value:a") == b"base"
    assert len(opened) == 1
    await overlay.close()
