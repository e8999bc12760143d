"""`seawall campaigns show ID`: a campaign's sources (your own pools' apart), counts, times,
subjects and domains, from the tracker in this process, over its socket, or the CLI."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import msgspec
import numpy as np
import pytest
from tests.campaigns.minhashes import copy_of

from seawall.campaigns.client import LocalTracker
from seawall.campaigns.fingerprint import PERMUTATIONS
from seawall.campaigns.registry import MAX_IPS, Judge, Observation
from seawall.campaigns.remote import RemoteTracker
from seawall.campaigns.server import TrackerServer
from seawall.campaigns.tracker import Snapshot, Tracker
from seawall.cli import main
from seawall.config import CampaignSettings, load_config
from seawall.serve import tracker as campaign_tracker

NOW = 1_795_000_000.0


def source(i: int) -> Observation:
    """Even copies from our own dial-up pool (198.18.0.0/16), odd ones from abroad."""
    ip = f"198.18.{i}.{10 + i}" if i % 2 == 0 else f"{60 + i}.{i}.1.9"
    return Observation(
        ip=ip,
        dynamic=True,
        own=i % 2 == 0,
        subject="Your parcel" if i % 3 else "Parcel waiting",
        domains=("parcel.test",),
    )


def campaign(tracker: Tracker, copies: int, seed: int = 1) -> str:
    rng = np.random.default_rng(seed)
    sig = rng.integers(0, 2**16, PERMUTATIONS).astype(np.uint16)
    ids = {tracker.observe(copy_of(sig, rng), source(i), NOW + i).view.id for i in range(copies)}
    (cid,) = ids
    for i in range(copies):
        tracker.judge(Judge(cid, True, ("parcel.test",), NOW + i))
    return cid


def test_show_lists_sources_and_own_addresses_in_address_order() -> None:
    tracker = Tracker(CampaignSettings())
    cid = campaign(tracker, 12)
    shown = tracker.show(cid, NOW + 20)
    assert shown is not None
    assert (shown["id"], shown["count"], shown["ips"], shown["own_ips"]) == (cid, 12, 12, 6)
    own = ["198.18.0.10", "198.18.2.12", "198.18.4.14", "198.18.6.16", "198.18.8.18"]
    assert shown["own_addresses"] == [*own, "198.18.10.20"]  # 2 before 10: by address
    assert shown["source_addresses"][:2] == ["61.1.1.9", "63.3.1.9"]
    assert len(shown["source_addresses"]) == 12
    assert (shown["first_seen"], shown["last_seen"]) == (NOW, NOW + 11)
    assert shown["subjects"] == {"Your parcel": 8, "Parcel waiting": 3}  # the first: a founder
    assert shown["top_domains"] == {"parcel.test": 11}
    assert shown["confirmed_spam"]
    assert shown["ips_complete"]
    # Bounded: at most max_ips of each list, with the counts of all.
    cut = tracker.show(cid, NOW + 20, max_ips=2)
    assert cut is not None
    assert (cut["own_addresses"], cut["ips"]) == (own[:2], 12)
    assert len(cut["source_addresses"]) == 2
    assert tracker.show("c-no-such", NOW) is None


def test_show_finds_a_founder_and_a_campaign_merged_away() -> None:
    tracker = Tracker(CampaignSettings())
    rng = np.random.default_rng(5)
    sig = rng.integers(0, 2**16, PERMUTATIONS).astype(np.uint16)
    one = tracker.observe(copy_of(sig, rng), source(0), NOW).view.id
    assert one in tracker.founders
    shown = tracker.show(one, NOW)
    assert shown is not None
    assert (shown["count"], shown["own_addresses"]) == (1, ["198.18.0.10"])
    assert one in tracker.founders  # looked at, not made a campaign
    tracker.alias["c-gone"] = one
    merged = tracker.show("c-gone", NOW)
    assert merged is not None
    assert (merged["id"], merged["merged_into"]) == (one, one)


def test_own_addresses_survive_a_snapshot_and_older_snapshots_load() -> None:
    settings = CampaignSettings()
    tracker = Tracker(settings)
    cid = campaign(tracker, 4)
    restored = Tracker.restore(tracker.snapshot(), settings)
    assert restored.campaigns[cid].own_ips == {"198.18.0.10", "198.18.2.12"}
    old = msgspec.msgpack.decode(tracker.snapshot(), type=Snapshot)
    for state in old.campaigns:
        del state["own_ips"]  # saved before own_ips was kept
    again = Tracker.restore(msgspec.msgpack.encode(old), settings)
    assert again.campaigns[cid].own_ips == set()
    assert again.campaigns[cid].ips == tracker.campaigns[cid].ips


def test_the_address_lists_stay_bounded() -> None:
    tracker = Tracker(CampaignSettings())
    rng = np.random.default_rng(3)
    sig = rng.integers(0, 2**16, PERMUTATIONS).astype(np.uint16)
    cid = tracker.observe(copy_of(sig, rng), source(0), NOW).view.id
    tracker.observe(copy_of(sig, rng), source(1), NOW)
    record = tracker.campaigns[cid]
    record.ips |= {f"10.{i // 256}.{i % 256}.1" for i in range(MAX_IPS - len(record.ips))}
    # A campaign remembers at most MAX_IPS addresses: a new one is counted, not kept.
    tracker.observe(copy_of(sig, rng), source(2), NOW + 1)
    assert (record.count, len(record.ips)) == (3, MAX_IPS)
    assert "198.18.2.12" not in record.own_ips
    shown = tracker.show(cid, NOW + 1, max_ips=10**9)  # asked for more than there can be
    assert shown is not None
    assert len(shown["source_addresses"]) == MAX_IPS
    assert not shown["ips_complete"]


def test_show_over_the_socket() -> None:
    tracker = Tracker(CampaignSettings())
    cid = campaign(tracker, 6)
    name = f"\0seawall-test-show-{os.getpid()}"

    async def run() -> tuple[object, object]:
        unix = await asyncio.start_unix_server(TrackerServer(tracker).connection, path=name)
        client = RemoteTracker(name)
        try:
            return await client.show(cid, 2), await client.show("c-nothing")
        finally:
            client.close()
            unix.close()
            await unix.wait_closed()

    shown, missing = asyncio.run(run())
    assert missing is None
    assert isinstance(shown, dict)
    assert shown["own_addresses"] == ["198.18.0.10", "198.18.2.12"]
    assert (shown["own_ips"], shown["ips"], len(shown["source_addresses"])) == (3, 6, 2)


def test_the_cli_shows_a_saved_campaign(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "seawall.toml"
    conf.write_text('state_dir = "state"\n[isp]\nnetworks = ["198.18.0.0/15"]\n'
                    'dynamic = ["198.18.0.0/24", "198.18.2.0/24"]\n')  # fmt: skip
    config = load_config(conf)
    with campaign_tracker.connect(config) as client:
        assert isinstance(client, LocalTracker)
        cid = campaign(client.tracker, 6)
        client.changed = True
    assert main(["campaigns", "show", cid, "--config", str(conf)]) == 0
    out = capsys.readouterr().out
    assert f"campaign {cid}\n" in out
    assert "  copies       6," in out
    assert "  seen         2026-11-18T" in out
    assert "own addresses (3, in [isp] networks)" in out
    assert "    198.18.0.10                              dynamic pool\n" in out
    assert "    198.18.4.14\n" in out  # in our networks, not in a dynamic pool
    assert "source addresses (6)\n" in out
    assert "Your parcel" in out
    assert main(["campaigns", "show", cid, "--max-ips", "1", "--json", "--config", str(conf)]) == 0
    item = json.loads(capsys.readouterr().out)
    assert item["own_addresses"] == ["198.18.0.10"]
    assert (item["own_ips"], item["ips"]) == (3, 6)
    assert main(["campaigns", "show", "c-none", "--config", str(conf)]) == 1
    assert "no campaign c-none" in capsys.readouterr().err
