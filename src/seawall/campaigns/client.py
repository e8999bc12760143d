"""How a detector reaches the tracker: in-process, or over a unix socket (``wire.py``)."""

from __future__ import annotations

from typing import Protocol

from seawall.campaigns.fingerprint import Fingerprint
from seawall.campaigns.registry import Observation
from seawall.campaigns.tracker import Reply, Tracker


class TrackerClient(Protocol):
    async def observe(self, fp: Fingerprint, obs: Observation, now: float) -> Reply: ...

    async def judge(
        self,
        campaign: str | None,
        spam: bool,
        domains: tuple[str, ...],
        now: float,
        sample: bytes = b"",
    ) -> None: ...

    def close(self) -> None: ...


class LocalTracker:
    """The tracker in this process: ``seawall scan`` with one worker, tests, the simulator."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker

    async def observe(self, fp: Fingerprint, obs: Observation, now: float) -> Reply:
        return self.tracker.observe(fp, obs, now)

    async def judge(
        self,
        campaign: str | None,
        spam: bool,
        domains: tuple[str, ...],
        now: float,
        sample: bytes = b"",
    ) -> None:
        self.tracker.judge(campaign, spam, domains, now, sample)

    def close(self) -> None:
        pass
