"""The case engine: the inbox in order, nothing lost when the store fails, the Maildir once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.zombies.reports import arf

from seawall.config import Config, IspSettings, ZombiesSettings
from seawall.errors import StoreError
from seawall.zombies.cases import Desk
from seawall.zombies.engine import CaseEngine
from seawall.zombies.model import Evidence, evidence_id
from seawall.zombies.store import open_case_store

T0 = 1_796_500_000.0


def piece(n: int) -> Evidence:
    return Evidence(
        id=evidence_id("engine", n),
        source="verdict",
        kind="spam",
        at=T0 + n,
        ip="10.1.2.3",
        weight=3.0,
    )


async def test_a_failing_lookup_loses_no_evidence(tmp_path: Path) -> None:
    config = Config(state_dir=str(tmp_path), isp=IspSettings(networks=("10.0.0.0/8",)))
    book = open_case_store(config)
    calls = {"n": 0}

    async def flaky(ip: str, at: float) -> str | None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise StoreError("accounting store down")
        return "erin"

    engine = CaseEngine(config, Desk(book, who=flaky))
    await book.push([piece(n) for n in range(3)])
    with pytest.raises(StoreError):
        await engine.step()
    assert await engine.step() == 2  # the two left were put back
    case = await book.find(account="erin")
    assert case is not None
    assert case.evidence_count == 3
    await book.close()


async def test_the_desk_reads_new_reports_once(tmp_path: Path) -> None:
    box = tmp_path / "abuse"
    for sub in ("new", "cur", "tmp"):
        (box / sub).mkdir(parents=True)
    config = Config(
        state_dir=str(tmp_path),
        isp=IspSettings(networks=("10.0.0.0/8",)),
        zombies=ZombiesSettings(abuse_maildir=str(box), scan_interval_s=0.001),
    )
    book = open_case_store(config)
    engine = CaseEngine(config, Desk(book))
    (box / "new" / "1.a.host").write_bytes(arf("10.1.2.3", "a@x", when=T0))
    (box / "new" / "2.b.host").write_bytes(b"not a report")
    assert await engine.step() == 2
    assert sorted(p.name for p in (box / "cur").iterdir()) == ["1.a.host:2,S", "2.b.host:2,S"]
    await asyncio.sleep(0.01)  # the next scan is due
    assert await engine.step() == 0  # read once
    (box / "new" / "3.c.host").write_bytes(arf("10.1.2.3", "c@x", when=T0 + 5))
    await asyncio.sleep(0.01)
    assert await engine.step() == 1
    case = await book.find(ip="10.1.2.3")
    assert case is not None
    assert case.kinds == {"report": 2}
    await book.close()
