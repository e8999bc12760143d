"""Reputation counts reach the store within flush_s of their message, at its time."""

from __future__ import annotations

import asyncio

from seawall.config import ReputationSettings
from seawall.reputation import Reputation
from seawall.store import MemoryStore

T0 = 1_800_000_000.0
BOT = "198.51.100.23"
OTHER = "203.0.113.50"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def stored(store: MemoryStore, ip: str, now: float) -> tuple[float, float, float]:
    """(volume, first, last) of ``ip`` as another process reads it from the store (the
    volume decayed to ``now``, to two places)."""
    own, _ = await Reputation(store, ReputationSettings()).read(ip, now)
    assert own is not None
    return round(own.volume, 2), own.first, own.last


async def test_a_count_is_written_at_its_message_time_not_the_flush_time() -> None:
    store, clock = MemoryStore(), Clock()
    rep = Reputation(store, ReputationSettings(), clock=clock)
    await rep.record(BOT, spam=True, ham=False, now=T0)
    await rep.record(BOT, spam=True, ham=False, now=T0 + 0.25)
    clock.now = 15.0  # the next message, 15 s later, finds flush_s past: it flushes both
    await rep.record(OTHER, spam=False, ham=True, now=T0 + 15)
    # To the second: the counts of one flush (at most flush_s apart) are written together.
    assert await stored(store, BOT, T0 + 20) == (2.0, T0 + 0.25, T0 + 0.25)
    assert await stored(store, OTHER, T0 + 20) == (1.0, T0 + 15, T0 + 15)
    # A later message of BOT moves its last time on, not its first.
    clock.now = 30.0
    await rep.record(BOT, spam=True, ham=False, now=T0 + 30)
    await rep.flush()
    assert await stored(store, BOT, T0 + 30) == (3.0, T0 + 0.25, T0 + 30)


async def test_a_quiet_worker_flushes_within_flush_s() -> None:
    store = MemoryStore()
    rep = Reputation(store, ReputationSettings(flush_s=0.05))  # the real clock
    await rep.record(BOT, spam=True, ham=False, now=T0)
    # No other message comes: the timer writes it.
    await asyncio.sleep(0.3)
    assert await stored(store, BOT, T0 + 1) == (1.0, T0, T0)
    await rep.flush()  # nothing left, no timer left behind
    await asyncio.sleep(0.1)
    assert not rep._flushing
