"""How a detector, a command or a page reaches the tracker: in-process, or over a unix
socket (``remote.py``).  Both speak :class:`TrackerClient`."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

from seawall.campaigns.fingerprint import Fingerprint
from seawall.campaigns.registry import SHOWN_IPS, Judge, Observation
from seawall.campaigns.tracker import Reply, Tracker


class TrackerClient(Protocol):
    async def observe(self, fp: Fingerprint, obs: Observation, now: float) -> Reply:
        """Which campaign the message joins, and how that campaign looks now."""
        ...

    async def judge(self, judgement: Judge) -> None:
        """How one message was judged (one-way: nothing is awaited from the tracker)."""
        ...

    async def mark(self, campaign: str, label: str) -> bytes | None:
        """An admin's judgement ("spam" or "ham"); the campaign's sample message (b"" when
        none has come back yet), or None when there is no such campaign."""
        ...

    async def listing(self, min_count: int = 2, *, limit: int = 0) -> list[dict[str, Any]]:
        """Campaigns with at least ``min_count`` messages, busiest first (the first
        ``limit``, when not 0)."""
        ...

    async def tally(
        self, min_count: int = 2, *, outbreak_per_hour: int = 0, botnet_min_ips: int = 0
    ) -> dict[str, int]:
        """How many campaigns have ``min_count`` messages (``live``), and of those how many
        are outbreaks and botnets now (``Tracker.tally``)."""
        ...

    async def show(
        self, campaign: str, max_ips: int = SHOWN_IPS, *, sample: bool = False
    ) -> dict[str, Any] | None:
        """One campaign in detail, with at most ``max_ips`` of its source addresses and of
        those in the ISP's own networks, and with ``sample`` its sample message
        (``Tracker.show``); None when there is none."""
        ...

    def close(self) -> None: ...


class LocalTracker:
    """The tracker in this process: ``seawall scan`` with one worker, tests, the simulator,
    and the commands when no ``seawall serve`` is up (``changed`` says whether to save)."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker
        self.changed = False

    async def observe(self, fp: Fingerprint, obs: Observation, now: float) -> Reply:
        self.changed = True
        tracker = self.tracker
        answer = tracker.observe_or_hold(fp, obs, now)
        if isinstance(answer, Reply):
            return answer
        # Held for the campaign's earlier copies: their judgements come from this
        # process's other messages, which go on while this one waits.
        loop = asyncio.get_running_loop()
        released: asyncio.Future[float] = loop.create_future()

        def release(at: float) -> None:
            if not released.done():
                released.set_result(at)

        answer.release = release
        timer = loop.call_later(tracker.holds.hold_s, lambda: tracker.expire(answer, time.time()))
        try:
            at = await released
        finally:
            timer.cancel()
            tracker.expire(answer, time.time())  # a cancelled wait lets go of its hold
        return tracker.answer(answer, at)

    async def judge(self, judgement: Judge) -> None:
        self.changed = True
        self.tracker.judge(judgement)

    async def mark(self, campaign: str, label: str) -> bytes | None:
        marked = self.tracker.mark(campaign, label, time.time())
        if marked is None:
            return None
        self.changed = True
        return marked.sample

    async def listing(self, min_count: int = 2, *, limit: int = 0) -> list[dict[str, Any]]:
        return self.tracker.listing(time.time(), min_count=min_count, limit=limit)

    async def tally(
        self, min_count: int = 2, *, outbreak_per_hour: int = 0, botnet_min_ips: int = 0
    ) -> dict[str, int]:
        return self.tracker.tally(
            time.time(),
            min_count=min_count,
            outbreak_per_hour=outbreak_per_hour,
            botnet_min_ips=botnet_min_ips,
        )

    async def show(
        self, campaign: str, max_ips: int = SHOWN_IPS, *, sample: bool = False
    ) -> dict[str, Any] | None:
        return self.tracker.show(campaign, time.time(), max_ips=max_ips, sample=sample)

    def close(self) -> None:
        self.tracker.holds.log_stats()
