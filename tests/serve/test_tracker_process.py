"""The tracker process and `connect`: commands reach the live tracker, or the saved state."""

from __future__ import annotations

import asyncio
from pathlib import Path

from seawall.campaigns.client import LocalTracker
from seawall.campaigns.fingerprint import Fingerprint
from seawall.campaigns.registry import Judge, Observation
from seawall.campaigns.remote import RemoteTracker
from seawall.config import load_config
from seawall.serve import tracker as campaign_tracker

NOW = 1_795_000_000.0
TEXT = "your parcel is waiting at the depot, confirm the delivery fee to release it today now"


async def wave(client: object, copies: int) -> str:
    assert isinstance(client, LocalTracker | RemoteTracker)
    fp = Fingerprint.from_text(TEXT, "Parcel")
    cid = ""
    for i in range(copies):
        obs = Observation(ip=f"{20 + i}.{i}.0.9", dynamic=True, subject="Parcel")
        reply = await client.observe(fp, obs, NOW + i)
        cid = reply.view.id
        await client.judge(Judge(cid, True, ("p.test",), NOW + i, b"the sample"))
    return cid


def test_without_serve_the_saved_state_is_read_and_written(tmp_path: Path) -> None:
    config = load_config(state_dir=str(tmp_path))
    with campaign_tracker.connect(config) as client:
        assert isinstance(client, LocalTracker)
        cid = asyncio.run(wave(client, 3))
    with campaign_tracker.connect(config) as client:
        listing = asyncio.run(client.listing(min_count=1))
        assert [(item["id"], item["count"]) for item in listing] == [(cid, 3)]
        assert asyncio.run(client.mark(cid, "ham")) == b"the sample"
        assert asyncio.run(client.mark("no-such-campaign", "spam")) is None
    restored = campaign_tracker.load(config)
    assert restored.campaigns[cid].mark == "ham"


def test_with_a_live_tracker_commands_talk_to_it(tmp_path: Path) -> None:
    config = load_config(state_dir=str(tmp_path))
    with campaign_tracker.tracker_process(config):
        assert campaign_tracker.running(config)
        with campaign_tracker.connect(config) as client:
            assert isinstance(client, RemoteTracker)

            async def run() -> tuple[str, list[dict[str, object]], bytes | None]:
                cid = await wave(client, 4)
                return cid, await client.listing(min_count=1), await client.mark(cid, "spam")

            cid, listing, sample = asyncio.run(run())
    assert [(item["id"], item["count"]) for item in listing] == [(cid, 4)]
    assert sample == b"the sample"
    assert not campaign_tracker.running(config)
    # The process saved its state when it stopped, with the mark.
    assert campaign_tracker.load(config).campaigns[cid].mark == "spam"


def test_a_save_is_skipped_while_nothing_changed(tmp_path: Path) -> None:
    from seawall.store import open_store

    config = load_config(state_dir=str(tmp_path))
    tracker = campaign_tracker.load(config)

    async def run() -> list[bool]:
        store = open_store(config)
        held = []
        try:
            saved = await campaign_tracker.save_changed(store, tracker, tracker.changes)
            held.append(await store.get(campaign_tracker.SNAPSHOT_KEY) is not None)
            await wave(LocalTracker(tracker), 2)
            saved = await campaign_tracker.save_changed(store, tracker, saved)
            held.append(await store.get(campaign_tracker.SNAPSHOT_KEY) is not None)
            # Taken away behind the tracker's back: with no change since, it is not rewritten.
            await store.delete(campaign_tracker.SNAPSHOT_KEY)
            saved = await campaign_tracker.save_changed(store, tracker, saved)
            held.append(await store.get(campaign_tracker.SNAPSHOT_KEY) is not None)
            tracker.mark(next(iter(tracker.campaigns)), "spam", NOW + 10)
            await campaign_tracker.save_changed(store, tracker, saved)
            held.append(await store.get(campaign_tracker.SNAPSHOT_KEY) is not None)
        finally:
            await store.close()
        return held

    # Nothing yet; saved after the wave; not rewritten while idle; saved after the mark.
    assert asyncio.run(run()) == [False, True, False, True]
    assert next(iter(campaign_tracker.load(config).campaigns.values())).mark == "spam"
