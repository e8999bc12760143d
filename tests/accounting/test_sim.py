"""``seawall simulate``'s detail file, read back: every address answered exactly as the
simulated world had it, at each session's edges and at random seconds (three seeds)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from tests.accounting.conftest import open_backend

from seawall.accounting import Record, Sessions
from seawall.accounting.detail import Problem, read_detail
from seawall.sim.model import SimSettings
from seawall.sim.radius import radius_detail
from seawall.sim.world import Session as SimSession
from seawall.sim.world import World, build_world


def truth(world: World, ip: str, at: float) -> str | None:
    """Who held ``ip`` at ``at`` in the world, as far as the accounting up to its end shows."""
    for s in world.sessions:
        if s.ip == ip and s.start <= at and s.start <= world.end:
            stopped = s.stop if s.stop <= world.end else None
            if stopped is None or at < stopped:
                return s.account
    return None


def instants(world: World, rng: random.Random) -> list[tuple[str, float]]:
    """Each session's edges and the seconds beside them, and random moments."""
    seen: list[SimSession] = [s for s in world.sessions if s.start <= world.end]
    out: list[tuple[str, float]] = []
    for s in seen:
        out += [(s.ip, s.start - 1), (s.ip, s.start), (s.ip, s.start + 0.5)]
        if s.stop <= world.end:
            out += [(s.ip, s.stop - 1), (s.ip, s.stop - 0.001), (s.ip, s.stop)]
    ips = sorted({s.ip for s in seen})
    begin = min(s.start for s in seen)
    out += [(rng.choice(ips), rng.uniform(begin, world.end)) for _ in range(500)]
    return out


@pytest.mark.parametrize("seed", [7, 11, 23])
@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_the_simulated_accounting_read_back_exactly(
    seed: int, backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    world = build_world(SimSettings(seed=seed, zombies=60, hours=2.0))
    text = radius_detail(world).encode("ascii")
    items = list(read_detail([text[i : i + 4096] for i in range(0, len(text), 4096)], "detail"))
    assert not [i for i in items if isinstance(i, Problem)]
    records = [i for i in items if isinstance(i, Record)]
    assert len(records) == text.count(b"\n\n")
    sessions: Sessions = open_backend(backend, request, tmp_path)
    try:
        await sessions.add(records)
        # IP reuse is there to be got right: addresses held by several accounts in an hour.
        by_ip: dict[str, list[SimSession]] = {}
        for s in world.sessions:
            by_ip.setdefault(s.ip, []).append(s)
        handovers = sum(
            a.account != b.account and b.start - a.start < 3600
            for held in by_ip.values()
            for a, b in zip(held, held[1:], strict=False)
        )
        assert handovers >= 5
        wrong = []
        for ip, at in instants(world, random.Random(seed)):
            found = await sessions.who(ip, at)
            got = None if found is None else found.account
            if got != truth(world, ip, at):
                wrong.append((ip, at, got, truth(world, ip, at)))
        assert wrong == []
    finally:
        await sessions.close()
