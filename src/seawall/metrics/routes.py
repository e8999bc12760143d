"""``GET /metrics``: the Prometheus exposition of the whole service, on the HTTP listener.

Whichever worker answers, the counters and histograms are every worker's summed
(``prom.exposition``).  Gauges of shared state are read at scrape time, from sources the
worker passes in (duck-typed, so this layer imports neither of them):

``seawall_campaigns_live``      campaigns with at least ``min_copies`` messages, in the tracker
``seawall_campaigns_outbreaks`` of those, the ones at ``outbreak_per_hour`` or more now
``seawall_campaigns_botnet``    of those, the ones sent from ``botnet_min_ips`` addresses or more
``seawall_cases{state}``        zombie cases by state
``seawall_scrape_errors{source}`` 1 when a source did not answer this scrape (else 0)

A source that fails or takes longer than ``SOURCE_TIMEOUT_S`` leaves its gauges out and
sets its ``seawall_scrape_errors`` to 1; the rest of the scrape is served.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from seawall.metrics.prom import CONTENT_TYPE, LiveGauge, exposition
from seawall.quietlog import QuietLog

if TYPE_CHECKING:
    from seawall.config import Config

log = logging.getLogger("seawall.metrics")
_quiet = QuietLog(log)

SOURCE_TIMEOUT_S = 3.0
# Every state is exposed, 0 when no case is in it, so a graph has no gaps.
CASE_STATES = ("open", "notified", "walled", "released", "closed")


class CampaignListing(Protocol):
    """What the scrape asks the campaign tracker (``campaigns.client.TrackerClient``)."""

    async def tally(
        self, min_count: int = 2, *, outbreak_per_hour: int = 0, botnet_min_ips: int = 0
    ) -> dict[str, int]: ...


class _Counted(Protocol):
    @property
    def by_state(self) -> Mapping[str, int]: ...


class CaseListing(Protocol):
    """What the scrape asks the zombie case book (``zombies.store.CaseBook``): a page of
    none, for its count of cases by state."""

    async def page(self, *, limit: int = 100) -> _Counted: ...


def metrics_routes(
    config: Config,
    path: Path | None,
    *,
    tracker: CampaignListing | None = None,
    cases: Callable[[], CaseListing] | None = None,
) -> list[BaseRoute]:
    """``/metrics`` reading the multiprocess files under ``path`` (None, or metrics
    disabled: no route); ``cases`` opens the case book, on the first scrape."""
    if path is None or not config.serve.metrics.enabled:
        return []
    campaigns = config.detectors.campaigns

    async def campaign_gauges() -> list[LiveGauge]:
        if tracker is None:
            return []
        counts = await tracker.tally(
            campaigns.min_copies,
            outbreak_per_hour=campaigns.outbreak_per_hour,
            botnet_min_ips=campaigns.botnet_min_ips,
        )
        return [
            LiveGauge(
                "seawall_campaigns_live", "Campaigns the tracker holds", [({}, counts["live"])]
            ),
            LiveGauge(
                "seawall_campaigns_outbreaks",
                "Campaigns at the outbreak rate now",
                [({}, counts["outbreaks"])],
            ),
            LiveGauge(
                "seawall_campaigns_botnet",
                "Campaigns sent from many addresses (a botnet)",
                [({}, counts["botnet"])],
            ),
        ]

    book: list[CaseListing] = []  # opened on the first scrape, then kept

    async def case_gauges() -> list[LiveGauge]:
        if cases is None:
            return []
        if not book:
            book.append(cases())
        counts = (await book[0].page(limit=0)).by_state
        states = dict.fromkeys((*CASE_STATES, *counts))
        samples = [({"state": state}, float(counts.get(state, 0))) for state in states]
        return [LiveGauge("seawall_cases", "Zombie cases by state", samples)]

    sources: dict[str, Callable[[], Awaitable[list[LiveGauge]]]] = {
        "campaigns": campaign_gauges,
        "cases": case_gauges,
    }

    async def scrape(request: Request) -> Response:
        gauges: list[LiveGauge] = []
        errors: list[tuple[Mapping[str, str], float]] = []
        results = await asyncio.gather(
            *(_bounded(fn()) for fn in sources.values()), return_exceptions=True
        )
        for name, result in zip(sources, results, strict=True):
            if isinstance(result, BaseException):
                _quiet.warning(name, "/metrics: no %s gauges: %r", name, result)
                errors.append(({"source": name}, 1.0))
            else:
                gauges += result
                errors.append(({"source": name}, 0.0))
        gauges.append(
            LiveGauge("seawall_scrape_errors", "A source of gauges that did not answer", errors)
        )
        body = await asyncio.to_thread(exposition, path, gauges)
        return Response(body, media_type=CONTENT_TYPE)

    return [Route("/metrics", scrape, methods=["GET"])]


async def _bounded(pending: Awaitable[list[LiveGauge]]) -> list[LiveGauge]:
    async with asyncio.timeout(SOURCE_TIMEOUT_S):
        return await pending
