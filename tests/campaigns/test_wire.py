"""The tracker over a unix socket: answers in step, judgements one-way."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from seawall.campaigns.fingerprint import Fingerprint
from seawall.campaigns.registry import Observation
from seawall.campaigns.tracker import Tracker
from seawall.campaigns.wire import RemoteTracker, TrackerServer
from seawall.config import CampaignSettings, Config

NOW = 1_795_000_000.0
TEXT = "your parcel is waiting at the depot, confirm the delivery fee to release it today now"


def bot(i: int) -> Observation:
    return Observation(ip=f"{20 + i}.{i}.0.9", dynamic=True, subject="Parcel", domains=("p.test",))


async def _exchange(name: str, server: TrackerServer) -> list[tuple[str, int, int]]:
    unix = await asyncio.start_unix_server(server.connection, path=name)
    client = RemoteTracker(name)
    fp = Fingerprint.from_text(TEXT, "Parcel")
    seen = []
    try:
        for i in range(5):
            reply = await client.observe(fp, bot(i), NOW + i)
            seen.append((reply.view.id, reply.view.count, reply.view.spam))
            # One-way: returns without an answer, and the next observe still reads its own.
            await client.judge(reply.view.id, True, ("p.test",), NOW + i)
        listing = await client.listing(min_count=1)
        assert [item["spam"] for item in listing] == [5]
    finally:
        client.close()
        unix.close()
        await unix.wait_closed()
    return seen


def test_judgements_are_one_way_and_replies_stay_in_step() -> None:
    tracker = Tracker(CampaignSettings())
    server = TrackerServer(tracker, Config())
    name = f"\0seawall-test-wire-{os.getpid()}"
    seen = asyncio.run(_exchange(name, server))
    ids = {cid for cid, _, _ in seen}
    assert len(ids) == 1
    # Each observe sees the judgements of every copy before it: they all reached the tracker.
    assert [(count, spam) for _, count, spam in seen] == [(1, 0), (2, 1), (3, 2), (4, 3), (5, 4)]
    assert tracker.confirmed_spam(tracker.campaigns[seen[0][0]])


class BrokenJudge(Tracker):
    """A tracker whose every judgement fails."""

    def judge(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("judgement failed")


def test_a_failing_judgement_does_not_put_the_stream_out_of_step() -> None:
    server = TrackerServer(BrokenJudge(CampaignSettings()), Config())
    name = f"\0seawall-test-wire-fail-{os.getpid()}"

    async def run() -> int:
        unix = await asyncio.start_unix_server(server.connection, path=name)
        client = RemoteTracker(name)
        try:
            fp = Fingerprint.from_text(TEXT, "Parcel")
            await client.judge(None, True, (), NOW)
            reply = await client.observe(fp, bot(0), NOW)
            await client.judge(reply.view.id, True, (), NOW)
            return (await client.observe(fp, bot(1), NOW + 1)).view.count
        finally:
            client.close()
            unix.close()
            await unix.wait_closed()

    assert asyncio.run(run()) == 2


def test_many_judgements_in_a_row_all_arrive() -> None:
    count = 200
    tracker = Tracker(CampaignSettings())
    server = TrackerServer(tracker, Config())
    name = f"\0seawall-test-wire-many-{os.getpid()}"

    async def run() -> int:
        unix = await asyncio.start_unix_server(server.connection, path=name)
        client = RemoteTracker(name)
        try:
            fp = Fingerprint.from_text(TEXT, "Parcel")
            cid = (await client.observe(fp, bot(0), NOW)).view.id
            await client.observe(fp, bot(1), NOW + 1)
            for i in range(count):
                await client.judge(cid, i % 2 == 0, (), NOW + 2)
            return (await client.observe(fp, bot(2), NOW + 3)).view.spam
        finally:
            client.close()
            unix.close()
            await unix.wait_closed()

    assert asyncio.run(run()) == count // 2
