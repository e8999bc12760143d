"""What the pages are built from: the configuration, the store, the tracker, the cases."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from seawall.addresses import IspNetworks
from seawall.campaigns.client import TrackerClient
from seawall.config import Config
from seawall.dashboard.web import Web
from seawall.errors import SeawallError
from seawall.message import ParseLimits
from seawall.store import Store
from seawall.store.verdicts import Verdicts, open_verdicts
from seawall.zombies.model import Case, CaseStore, State


class Learner(Protocol):
    """What a page needs of the scanning service: teaching the classifier."""

    async def learn(self, raw: bytes, *, spam: bool) -> bool: ...


class CaseDesk(Protocol):
    """The zombie desk as the pages use it (``seawall.zombies.cases.Desk``): its store to
    read, and moves that run the remedies."""

    @property
    def store(self) -> CaseStore: ...

    async def transition(self, case_id: str, new_state: State, who: str, why: str) -> Case: ...


@dataclass
class Parts:
    """Everything a page reads; one per worker, shared by its requests."""

    config: Config
    web: Web
    store: Store
    tracker: TrackerClient | None
    learner: Learner
    desk: CaseDesk | None = None
    limits: ParseLimits = field(default_factory=ParseLimits)
    networks: IspNetworks = field(init=False)
    _verdicts: Verdicts | None = field(default=None, init=False)
    _listing: tuple[float, tuple[int, int], list[dict[str, Any]]] | None = field(
        default=None, init=False
    )
    _listing_lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    _zone: tuple[float, int] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.networks = IspNetworks.of(self.config.isp)
        self.limits = ParseLimits.from_config(self.config)

    @property
    def cases(self) -> CaseStore | None:
        """The zombie cases, when the desk runs ([zombies] enabled)."""
        return self.desk.store if self.desk is not None else None

    @property
    def verdicts(self) -> Verdicts:
        """The verdict history every worker writes (opened on first use).  Raises
        StoreError when it cannot be opened."""
        if self._verdicts is None:
            self._verdicts = open_verdicts(self.config)
        return self._verdicts

    async def zone_size(self) -> int | None:
        """How many addresses the shared zone lists; None without the zombie desk.  Read
        again at most every ``[sharing] refresh_s``, as often as the zone itself is
        rewritten: the count walks every case.  Raises SeawallError when the store fails."""
        book = self.cases
        if book is None:
            return None
        now = time.monotonic()
        if self._zone is None or now - self._zone[0] >= self.config.sharing.refresh_s:
            self._zone = (now, len(await book.active_zombies(time.time())))
        return self._zone[1]

    async def campaigns(self, min_count: int = 2, *, limit: int = 0) -> list[dict[str, Any]]:
        """The tracker's campaigns, busiest first (the first ``limit`` when not 0); kept for
        a second, so several pages open at once ask the tracker once.  Raises
        SeawallError when there is no tracker or it does not answer."""
        if self.tracker is None:
            raise SeawallError("campaign tracking is turned off ([detectors.campaigns])")
        async with self._listing_lock:
            now = time.monotonic()
            cached = self._listing
            key = (min_count, limit)
            if cached is not None and cached[1] == key and now - cached[0] < 1.0:
                return cached[2]
            listing = await self.tracker.listing(min_count, limit=limit)
            self._listing = (time.monotonic(), key, listing)
            return listing


async def guarded(call: Callable[[], Awaitable[Any]], default: Any) -> tuple[Any, str]:
    """``call()``'s answer, or ``default`` and the error that a page shows instead."""
    try:
        return await call(), ""
    except SeawallError as exc:
        return default, str(exc)
