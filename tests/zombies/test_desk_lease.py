"""On a shared (Redis) state one desk works at a time; another takes over when it stops."""

from __future__ import annotations

import asyncio
from pathlib import Path

from seawall.config import Config, IspSettings, ZombiesSettings
from seawall.serve.desk import Lease, wanted


async def test_one_desk_holds_the_lease(redis_url: str, tmp_path: Path) -> None:
    config = Config(
        state=redis_url, state_dir=str(tmp_path), zombies=ZombiesSettings(desk_lease_s=0.6)
    )
    one, two = Lease(config), Lease(config)
    first, second = one.holds, two.holds
    assert await first()
    assert not await second()
    assert two.holder == one.token.decode()  # who holds it, for the logs
    # The first renews while it runs ...
    for _ in range(4):
        await asyncio.sleep(0.25)
        assert await first()
    assert not await second()
    # ... and when it stops renewing, the lease expires and the second takes over.
    await asyncio.sleep(0.8)
    taken = False
    for _ in range(20):
        if await second():
            taken = True
            break
        await asyncio.sleep(0.1)
    assert taken
    await one.close()
    await two.close()


def test_the_desk_runs_when_there_is_something_to_find() -> None:
    assert not wanted(Config())
    assert wanted(Config(isp=IspSettings(networks=("10.0.0.0/8",))))
    assert wanted(Config(zombies=ZombiesSettings(abuse_maildir="/var/mail/abuse")))
    off = ZombiesSettings(enabled=False)
    assert not wanted(Config(isp=IspSettings(networks=("10.0.0.0/8",)), zombies=off))
