"""The Overview: messages per minute by action, infected-mail findings on the same time axis,
the current rate, the top symbols, and the outbreaks firing now.

The series are the verdict history's per-minute counters, which every worker adds to, so
the chart is the whole service's; outbreaks are the tracker's campaigns at or above
``[detectors.campaigns] outbreak_per_hour``.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from seawall.dashboard.auth import Session
from seawall.dashboard.campaigns import summary_row
from seawall.dashboard.parts import Parts, guarded

# Actions in the order they are stacked and listed; others (a new action) come after.
ACTIONS = ("no action", "greylist", "add header", "rewrite subject", "soft reject", "reject")
HOURS = (1, 3, 6, 12, 24, 48)
DEFAULT_HOURS = 1
SHOWN_CAMPAIGNS = 50  # outbreaks and busiest campaigns: the busiest this many
RATE_MINUTES = 5  # the current rate: the last five whole minutes


def _hours(request: Request) -> int:
    raw = request.query_params.get("hours", "")
    return int(raw) if raw.isdigit() and int(raw) in HOURS else DEFAULT_HOURS


def series(minutes: list[tuple[int, dict[str, int]]]) -> dict[str, Any]:
    """Per-minute counts by action as a chart's x axis and one series per action seen."""
    seen = {action for _, counts in minutes for action in counts}
    order = [a for a in ACTIONS if a in seen] + sorted(seen - set(ACTIONS))
    return {
        "x": [start for start, _ in minutes],
        "series": [[a, [counts.get(a, 0) for _, counts in minutes]] for a in order],
        "unit": "messages/min",
    }


def rate(minutes: list[tuple[int, dict[str, int]]], now: float) -> dict[str, Any]:
    """Messages a minute over the last RATE_MINUTES whole minutes, and by action."""
    current = int(now // 60) * 60
    recent = [counts for start, counts in minutes if current - 60 * RATE_MINUTES <= start < current]
    total = sum(sum(counts.values()) for counts in recent)
    by_action: dict[str, int] = {}
    for counts in recent:
        for action, n in counts.items():
            by_action[action] = by_action.get(action, 0) + n
    span = max(1, len(recent))
    spam = sum(n for a, n in by_action.items() if a in ("reject", "soft reject", "add header"))
    return {
        "per_minute": total / span,
        "per_hour": round(total / span * 60),
        "spam_share": spam / total if total else 0.0,
        "by_action": sorted(by_action.items(), key=lambda kv: -kv[1]),
    }


def routes(parts: Parts) -> list[Route]:
    web = parts.web

    async def overview(request: Request, session: Session) -> Response:
        now = time.time()
        hours = _hours(request)
        start = now - hours * 3600
        errors: list[str] = []

        async def history() -> tuple[Any, Any, Any]:
            verdicts = parts.verdicts
            return (
                await verdicts.minutes(start, now),
                await verdicts.infected(start, now),
                await verdicts.top_symbols(now - 3600, now, 15),
            )

        (minutes, infected, symbols), error = await guarded(history, ([], [], []))
        if error:
            errors.append(f"The verdict history: {error}")
        # The busiest only: summarising every campaign on each live update would cost the
        # tracker, which every message waits on, tens of milliseconds at 1,000 campaigns.
        listing, error = await guarded(lambda: parts.campaigns(limit=SHOWN_CAMPAIGNS), [])
        if error:
            errors.append(f"The campaign tracker: {error}")
        limit = parts.config.detectors.campaigns.outbreak_per_hour
        outbreaks = [summary_row(c) for c in listing if int(c.get("per_hour", 0)) >= limit]
        zone, error = await guarded(parts.zone_size, None)
        if error:
            errors.append(f"The zombie cases: {error}")
        return web.render(
            request,
            "overview.html",
            session,
            active="overview",
            hours=hours,
            choices=HOURS,
            actions=series(minutes),
            infected={
                "x": [s for s, _ in infected],
                "series": [["infected", [n for _, n in infected]]],
                "unit": "findings/min",
            },
            infected_total=sum(n for _, n in infected),
            rate=rate(minutes, now),
            symbols=symbols,
            outbreaks=outbreaks,
            outbreak_per_hour=limit,
            shown_campaigns=SHOWN_CAMPAIGNS,
            top_campaigns=[summary_row(c) for c in listing[:8]],
            zone=zone,
            errors=errors,
        )

    return [Route("/", web.page("view", overview), methods=["GET"])]
