"""``seawall simulate``'s accounting written live, in replay wall time, and followed as a
running ``seawall serve`` follows it (DetailTail): each record appears when it is due, and
who held an address at a message's wall time is who held it at its simulated time."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

import pytest

from seawall.accounting import Record
from seawall.accounting.detail import Problem
from seawall.accounting.sqlite import SqliteSessions
from seawall.accounting.tail import DetailTail
from seawall.sim.model import SimSettings
from seawall.sim.radius import radius_detail
from seawall.sim.radius_live import LiveDetail
from seawall.sim.replay import ReplayClock
from seawall.sim.world import Session as SimSession
from seawall.sim.world import build_world

SPEED = 60.0  # 6 simulated minutes in 6 wall seconds


async def test_written_when_due_and_answered_in_wall_time(tmp_path: Path) -> None:
    world = build_world(SimSettings(seed=11, zombies=60, hours=0.1))
    clock = ReplayClock(world.start, time.time() + 0.5, SPEED)
    path = tmp_path / "radius.detail"
    live = LiveDetail(world, path, clock)
    tail = DetailTail(str(path))
    sessions = SqliteSessions.open(tmp_path / "state.sqlite", retention_s=86400.0 * 30)
    records: list[Record] = []
    seen: list[tuple[float, int]] = []  # (wall time, newest Timestamp in the file by then)
    try:
        live.start()
        history = live.written
        assert 0 < history < len(live.due)  # the sessions up before the run, at once
        deadline = time.time() + 120
        while live.written < len(live.due) and time.time() < deadline:
            got = tail.poll()
            assert not [p for p in got if isinstance(p, Problem)]
            records += [r for r in got if isinstance(r, Record)]
            if records:
                seen.append((time.time(), max(int(r.time) for r in records)))
            await asyncio.sleep(0.2)
        written = live.close()
        records += [r for r in tail.poll() if isinstance(r, Record)]
    finally:
        tail.close()
    try:
        # Everything the offline file holds, each record once, stamped in wall time.
        assert written == len(records) == radius_detail(world).count("\n\n")
        # Never a record before its time: what the file held at a moment was stamped
        # at most a second later (a Stop's stamp is rounded up).
        assert all(newest <= math.ceil(at) + 1 for at, newest in seen)
        assert len({newest for _, newest in seen}) > 3  # it grew while the replay ran
        await sessions.add(records)
        by_ip: dict[str, list[SimSession]] = {}
        for s in world.sessions:
            by_ip.setdefault(s.ip, []).append(s)
        checked = 0
        for s in world.sessions:
            if s.start > world.end:
                continue
            last = min(s.stop, world.end)
            others = [o for o in by_ip[s.ip] if o is not s]

            def clear(at: float, s: SimSession = s, others: list[SimSession] = others) -> bool:
                """No other session of the address begins or ends within a wall second."""
                edges = [t for o in others for t in (o.start, o.stop)]
                return all(abs(clock.wall(t) - clock.wall(at)) > 1.0 for t in edges)

            for at in (s.start + 1, (s.start + last) / 2, last - 1):
                if clear(at):
                    found = await sessions.who(s.ip, clock.wall(at))
                    assert found is not None, (s, at)
                    assert found.account == s.account, (s, at)
                    checked += 1
            # Half a wall second after the Stop's (rounded up) stamp, the address is free.
            gone = clock.sim(math.ceil(clock.wall(s.stop)) + 0.5)
            if gone > world.end or not clear(gone):
                continue
            if not any(o.start <= gone < o.stop for o in others):
                assert await sessions.who(s.ip, clock.wall(gone)) is None
                checked += 1
        assert checked > 50
    finally:
        await sessions.close()


def test_the_clock_maps_both_ways() -> None:
    clock = ReplayClock(base=1000.0, wall0=5000.0, speed=12.0)
    assert clock.wall(1000.0) == 5000.0
    assert clock.wall(1120.0) == 5010.0
    assert clock.sim(clock.wall(1234.5)) == pytest.approx(1234.5)
