"""The Campaigns pages: the tracker's list, one campaign in detail, and marking one.

Everything comes from the campaign tracker, the one process that every worker (and, on
Redis, every node) feeds, so the counts are the whole service's.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from seawall.dashboard.auth import Session
from seawall.dashboard.inert import clean, show_message
from seawall.dashboard.parts import Parts, guarded
from seawall.dashboard.web import PREFIX, SECURITY_HEADERS
from seawall.errors import LearningDisabled, SeawallError

log = logging.getLogger("seawall.dashboard")

PAGE_SIZE = 100
SHOWN_IPS = 200


def _matches(item: dict[str, Any], query: str) -> bool:
    if query in str(item.get("id", "")).lower():
        return True
    keys = [*item.get("subjects", {}), *item.get("top_domains", {})]
    return any(query in str(key).lower() for key in keys)


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return max(1, int(raw)) if raw.isdigit() else 1


def routes(parts: Parts) -> list[Route]:
    web = parts.web

    async def listing(request: Request, session: Session) -> Response:
        query = request.query_params.get("q", "").strip().lower()[:200]
        only = request.query_params.get("only", "")
        page = _page_number(request)
        # Busiest first, and outbreaks are the busiest: without a search, the tracker
        # summarises only the campaigns up to this page (and one more, to know there is a
        # next page); a search reads them all.
        limit = 0 if query or only == "spam" else page * PAGE_SIZE + 1
        items, error = await guarded(lambda: parts.campaigns(limit=limit), [])
        complete = limit == 0 or len(items) < limit
        if query:
            items = [item for item in items if _matches(item, query)]
        if only == "spam":
            items = [item for item in items if item.get("confirmed_spam")]
        elif only == "outbreak":
            limit = parts.config.detectors.campaigns.outbreak_per_hour
            items = [item for item in items if int(item.get("per_hour", 0)) >= limit]
        pages = max(1, -(-len(items) // PAGE_SIZE))
        page = min(page, pages)
        shown = items[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        return web.render(
            request,
            "campaigns.html",
            session,
            active="campaigns",
            items=[summary_row(item) for item in shown],
            total=len(items),
            complete=complete,
            page=page,
            pages=pages,
            query=request.query_params.get("q", "")[:200],
            only=only,
            outbreak_per_hour=parts.config.detectors.campaigns.outbreak_per_hour,
            error=error,
        )

    async def detail(request: Request, session: Session) -> Response:
        cid = request.path_params["cid"][:64]
        tracker = parts.tracker
        if tracker is None:
            return web.error(request, session, 503, "campaign tracking is turned off")
        try:
            item = await tracker.show(cid, SHOWN_IPS, sample=True)
        except SeawallError as exc:
            return web.error(request, session, 503, f"The campaign tracker: {exc}")
        if item is None:
            return web.error(request, session, 404, f"No campaign {cid}.")
        accounts: list[str] = []
        external = 0
        book = parts.cases
        if book is not None:
            found, _ = await guarded(lambda: book.campaign_senders(cid), ([], 0))
            accounts, external = found
        dynamic = parts.networks.dynamic
        own = [(ip, dynamic.contains(ip)) for ip in item.get("own_addresses", [])]
        sample = item.get("sample")
        shown = show_message(sample, parts.limits) if isinstance(sample, bytes) and sample else None
        minutes = [(int(m) * 60, int(n)) for m, n in item.get("minutes", [])]
        return web.render(
            request,
            "campaign.html",
            session,
            active="campaigns",
            c=summary_row(item),
            item=item,
            own=own,
            sources=item.get("source_addresses", []),
            accounts=accounts,
            external=external,
            sample=shown,
            volume={
                "x": [m for m, _ in minutes],
                "series": [["messages", [n for _, n in minutes]]],
            },
            marked=request.query_params.get("marked", ""),
        )

    async def mark(request: Request, session: Session) -> Response:
        cid = request.path_params["cid"][:64]
        form: dict[str, str] = request.state.form
        label = form.get("label")
        if label not in ("spam", "ham") or parts.tracker is None:
            return web.error(request, session, 400, "Mark a campaign spam or ham.")
        try:
            sample = await parts.tracker.mark(cid, str(label))
        except SeawallError as exc:
            return web.error(request, session, 503, f"The campaign tracker: {exc}")
        if sample is None:
            return web.error(request, session, 404, f"No campaign {cid}.")
        outcome = str(label)
        if sample:
            try:
                learned = await parts.learner.learn(sample, spam=label == "spam")
                outcome += "-learned" if learned else "-known"
            except LearningDisabled:
                outcome += "-nolearn"
        log.info("dashboard: %s marked campaign %s %s", session.user.name, cid, label)
        return RedirectResponse(
            f"{PREFIX}/campaigns/{cid}?marked={outcome}", status_code=303, headers=SECURITY_HEADERS
        )

    return [
        Route("/campaigns", web.page("view", listing), methods=["GET"]),
        Route("/campaigns/{cid}", web.page("view", detail), methods=["GET"]),
        Route("/campaigns/{cid}/mark", web.page("learn", mark), methods=["POST"]),
    ]


def summary_row(item: dict[str, Any]) -> dict[str, Any]:
    """A campaign's summary with the strings of its mail made safe to show."""
    subjects: dict[str, int] = item.get("subjects", {})
    judged = int(item.get("spam", 0)) + int(item.get("ham", 0))
    return {
        **item,
        "subject": clean(next(iter(subjects), ""), 200),
        "subjects": [(clean(s, 300), n) for s, n in subjects.items()],
        "top_domains": [(clean(d, 255), n) for d, n in item.get("top_domains", {}).items()],
        "top_urls": [(clean(u, 300), n) for u, n in item.get("top_urls", {}).items()],
        "languages": list(item.get("languages", {}).items()),
        "judged": judged,
        "verdict": item.get("mark") or ("spam" if item.get("confirmed_spam") else ""),
    }
