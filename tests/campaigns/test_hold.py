"""Holding a copy's answer until its campaign's earlier copies are judged (campaigns/hold.py):
the rule on the tracker, and the wire answering the rest of a connection's requests while
one is held and the judgements that release it come on the same connection."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any

import msgspec
import pytest

from seawall.campaigns.client import LocalTracker
from seawall.campaigns.fingerprint import Fingerprint
from seawall.campaigns.hold import Held, Holds
from seawall.campaigns.registry import Judge, Observation
from seawall.campaigns.remote import RemoteTracker
from seawall.campaigns.server import TrackerServer
from seawall.campaigns.tracker import Reply, Tracker
from seawall.config import CampaignSettings, load_config
from seawall.errors import ConfigError

NOW = 1_795_000_000.0
TEXT = "your parcel is waiting at the depot, confirm the delivery fee to release it today now"
OTHER = "the committee meets on thursday to go over the budget for the spring term and the hall"
FP = Fingerprint.from_text(TEXT, "Parcel")


def bot(i: int) -> Observation:
    return Observation(ip=f"{20 + i}.{i}.0.9", dynamic=True, subject="Parcel", domains=("p.test",))


def settings(hold_s: float) -> CampaignSettings:
    return msgspec.structs.replace(CampaignSettings(), hold_s=hold_s)


def copies(tracker: Tracker, n: int, at: float = NOW) -> list[Reply | Held]:
    return [tracker.observe_or_hold(FP, bot(i), at + i * 0.001) for i in range(n)]


def judge(tracker: Tracker, cid: str, n: int, *, spam: bool = True) -> None:
    for _ in range(n):
        tracker.judge(Judge(cid, spam, ("p.test",), NOW + 0.01))


def test_the_first_min_judged_copies_never_wait_and_the_next_ones_do() -> None:
    tracker = Tracker(settings(0.25))
    first = copies(tracker, 5)
    assert all(isinstance(a, Reply) for a in first[:3])
    assert all(isinstance(a, Held) for a in first[3:])
    assert tracker.holds.stats.held == 2


def test_no_hold_when_judged_marked_or_off() -> None:
    tracker = Tracker(settings(0.25))
    replies = copies(tracker, 3)
    assert isinstance(replies[0], Reply)
    judge(tracker, replies[0].view.id, 3)
    assert isinstance(tracker.observe_or_hold(FP, bot(8), NOW + 0.02), Reply)

    marked = Tracker(settings(0.25))
    replies = copies(marked, 3)
    assert isinstance(replies[0], Reply)
    marked.mark(replies[0].view.id, "ham", NOW)
    assert isinstance(marked.observe_or_hold(FP, bot(8), NOW + 0.02), Reply)

    off = Tracker(settings(0.0))
    assert all(isinstance(a, Reply) for a in copies(off, 6))
    assert not off.holds.inflight


def test_a_held_answer_is_released_by_the_judgement_and_sees_it() -> None:
    tracker = Tracker(settings(0.25))
    answers = copies(tracker, 4)
    first, held = answers[0], answers[3]
    assert isinstance(first, Reply)
    assert isinstance(held, Held)
    released: list[float] = []
    held.release = released.append
    judge(tracker, first.view.id, 2)
    assert not released  # two of three: the campaign is not judged yet
    judge(tracker, first.view.id, 1)
    assert released == [NOW + 0.01]
    reply = tracker.answer(held, released[0])
    assert (reply.view.count, reply.view.spam) == (4, 3)
    assert tracker.confirmed_spam(tracker.campaigns[first.view.id])
    assert reply.blocked == ("p.test",)  # the domain the judgement listed, seen by the answer
    tracker.expire(held, NOW + 1)  # the timer after the release: nothing happens twice
    assert released == [NOW + 0.01]
    stats = tracker.holds.stats.summary()
    assert (stats["held"], stats["judged"], stats["timed_out"]) == (1, 1, 0)


def test_a_held_answer_is_released_at_hold_s_without_the_judgement() -> None:
    tracker = Tracker(settings(0.25))
    held = copies(tracker, 4)[3]
    assert isinstance(held, Held)
    released: list[float] = []
    held.release = released.append
    tracker.expire(held, NOW + 0.3)
    assert released == [NOW + 0.3]
    assert tracker.answer(held, NOW + 0.3).view.spam == 0
    assert not tracker.holds.waiting
    assert tracker.holds.stats.summary()["timed_out"] == 1


def test_copies_whose_judgement_was_lost_hold_nobody_after_hold_s() -> None:
    tracker = Tracker(settings(0.25))
    copies(tracker, 3)  # their judgements never come (a worker died)
    later = tracker.observe_or_hold(FP, bot(7), NOW + 1.0)
    assert isinstance(later, Reply)
    tracker._sweep(NOW + 120)
    assert not tracker.holds.inflight


def test_plain_observe_never_holds_but_counts_the_copy() -> None:
    tracker = Tracker(settings(0.25))
    for i in range(4):
        tracker.observe(FP, bot(i), NOW + i * 0.001)
    assert isinstance(tracker.observe_or_hold(FP, bot(5), NOW + 0.01), Held)


async def _wave(client: LocalTracker | RemoteTracker) -> list[Reply]:
    """Four copies and an unrelated message in flight together; then the first three
    copies' judgements, on the same connection.  The unrelated message's answer does not
    wait behind the held one, in one process or on a connection."""
    other = Fingerprint.from_text(OTHER, "Committee")
    loop = asyncio.get_running_loop()
    calls: list[Coroutine[Any, Any, Reply]] = [
        client.observe(FP, bot(i), NOW + i * 0.001) for i in range(4)
    ]
    calls.append(client.observe(other, Observation(ip="192.0.2.1", subject="Committee"), NOW))
    tasks = [loop.create_task(c) for c in calls]
    first = await asyncio.wait_for(asyncio.gather(*tasks[:3]), 30)
    await asyncio.sleep(0.2)
    assert not tasks[3].done()  # held
    assert tasks[4].done()  # asked after the held copy, answered before it
    for reply in first:
        await client.judge(Judge(reply.view.id, True, ("p.test",), NOW + 0.01))
    return [*first, *await asyncio.wait_for(asyncio.gather(*tasks[3:]), 30)]


def _check(replies: list[Reply], tracker: Tracker) -> None:
    ids = [r.view.id for r in replies]
    assert len(set(ids[:4])) == 1
    assert ids[4] != ids[0]  # each answer to its own request
    assert [r.view.spam for r in replies[:4]] == [0, 0, 0, 3]
    assert replies[3].blocked == ("p.test",)
    assert tracker.holds.stats.summary()["judged"] == 1


def test_the_server_keeps_answering_and_a_held_answer_delays_no_other() -> None:
    tracker = Tracker(settings(30.0))  # released by the judgement, long before this
    name = f"\0seawall-test-hold-{os.getpid()}"

    async def run() -> list[Reply]:
        unix = await asyncio.start_unix_server(TrackerServer(tracker).connection, path=name)
        client = RemoteTracker(name, judge_delay_s=0.001)
        try:
            return await _wave(client)
        finally:
            client.close()
            unix.close()
            await unix.wait_closed()

    _check(asyncio.run(run()), tracker)


def test_the_server_sends_a_held_answer_at_hold_s() -> None:
    tracker = Tracker(settings(0.2))
    name = f"\0seawall-test-hold-timeout-{os.getpid()}"

    async def run() -> list[Reply]:
        unix = await asyncio.start_unix_server(TrackerServer(tracker).connection, path=name)
        client = RemoteTracker(name)
        try:
            calls = [client.observe(FP, bot(i), NOW + i * 0.001) for i in range(4)]
            return list(await asyncio.wait_for(asyncio.gather(*calls), 30))
        finally:
            client.close()
            unix.close()
            await unix.wait_closed()

    replies = asyncio.run(run())
    assert [r.view.count for r in replies] == [1, 2, 3, 4]
    assert tracker.holds.stats.summary()["timed_out"] == 1


def test_the_local_tracker_holds_with_a_future() -> None:
    tracker = Tracker(settings(30.0))
    client = LocalTracker(tracker)
    _check(asyncio.run(_wave(client)), tracker)


@pytest.mark.parametrize("hold_s", [0.0, 0.25])
def test_a_cancelled_wait_lets_go_of_its_hold(hold_s: float) -> None:
    tracker = Tracker(settings(hold_s))
    client = LocalTracker(tracker)

    async def run() -> None:
        for i in range(3):
            await client.observe(FP, bot(i), NOW + i * 0.001)
        task = asyncio.get_running_loop().create_task(client.observe(FP, bot(3), NOW + 0.004))
        await asyncio.sleep(0.01)
        assert task.done() == (hold_s == 0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(run())
    assert not tracker.holds.waiting


def test_a_hold_longer_than_the_io_budget_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEAWALL_DETECTORS__CAMPAIGNS__HOLD_S", "2.0")
    with pytest.raises(ConfigError, match="hold_s"):
        load_config(None)
    monkeypatch.setenv("SEAWALL_ENGINE__IO_TIMEOUT_S", "2.5")
    assert load_config(None).detectors.campaigns.hold_s == 2.0


def test_a_merge_carries_the_copies_in_flight_and_the_held_answers() -> None:
    holds = Holds(min_judged=3, hold_s=1.0)
    for i in range(3):
        assert holds.observed("a", NOW + i * 0.01, judged=0, marked=False, domains=()) is None
    held = holds.observed("a", NOW + 0.05, judged=0, marked=False, domains=())
    assert held is not None
    released: list[float] = []
    held.release = released.append
    holds.moved("a", "b")
    assert held.key == "b"
    assert len(holds.inflight["b"]) == 4
    holds.judged("b")
    assert holds.settled("a", NOW + 0.1) == []
    assert holds.settled("b", NOW + 0.1) == [held]
    assert released == [NOW + 0.1]
    holds.expire(held, NOW + 2)  # its timer, late: nothing twice
    assert released == [NOW + 0.1]


OTHER_FP = Fingerprint.from_text(OTHER, "Committee")


def _linking(i: int, *domains: str) -> Observation:
    return Observation(ip=f"198.51.100.{i}", hostname="mx.example.org", domains=domains)


@pytest.mark.parametrize("spam", [True, False])
def test_a_message_linking_to_what_a_campaign_about_to_be_judged_would_list_waits(
    spam: bool,
) -> None:
    tracker = Tracker(settings(0.25))
    first = copies(tracker, 3)  # in flight together: the campaign is about to be judged
    assert all(isinstance(a, Reply) for a in first)
    other = tracker.observe_or_hold(OTHER_FP, _linking(1, "p.test", "q.test"), NOW + 0.005)
    assert isinstance(other, Held)
    assert other.campaign != other.key  # its own cluster's view, the campaign's judgement
    released: list[float] = []
    other.release = released.append
    reply = first[0]
    assert isinstance(reply, Reply)
    judge(tracker, reply.view.id, 3, spam=spam)
    assert released == [NOW + 0.01]
    answer = tracker.answer(other, released[0])
    assert answer.blocked == (("p.test",) if spam else ())
    assert answer.view.id == other.campaign


def test_a_link_already_listed_or_not_the_campaigns_does_not_wait() -> None:
    tracker = Tracker(settings(0.25))
    copies(tracker, 3)
    unrelated = tracker.observe_or_hold(OTHER_FP, _linking(1, "r.test"), NOW + 0.005)
    assert isinstance(unrelated, Reply)
    tracker.blocklist["p.test"] = NOW + 3600
    listed = tracker.observe_or_hold(OTHER_FP, _linking(2, "p.test"), NOW + 0.006)
    assert isinstance(listed, Reply)
    assert listed.blocked == ("p.test",)
    # Past hold_s, a campaign whose judgements did not come holds no links any more.
    del tracker.blocklist["p.test"]
    later = tracker.observe_or_hold(OTHER_FP, _linking(3, "p.test"), NOW + 1.0)
    assert isinstance(later, Reply)
