"""Per-domain statistics: messages for each recipient domain and from each sender domain,
by action, for a hosting ISP's customers (the verdict history's per-hour counters)."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from seawall.dashboard.auth import Session
from seawall.dashboard.history import ACTIONS
from seawall.dashboard.inert import clean
from seawall.dashboard.parts import Parts, guarded
from seawall.store.verdicts import DomainStats

HOURS = (1, 6, 24, 72, 168)
SHOWN = 50


def routes(parts: Parts) -> list[Route]:
    web = parts.web

    async def domains(request: Request, session: Session) -> Response:
        now = time.time()
        raw = request.query_params.get("hours", "")
        hours = int(raw) if raw.isdigit() and int(raw) in HOURS else 24
        start = now - hours * 3600

        async def read() -> tuple[list[DomainStats], list[DomainStats]]:
            verdicts = parts.verdicts
            return (
                await verdicts.domains(start, now, "recipient", SHOWN),
                await verdicts.domains(start, now, "sender", SHOWN),
            )

        (recipient, sender), error = await guarded(read, ([], []))
        seen = {a for stats in (*recipient, *sender) for a in stats.actions}
        columns = [a for a in ACTIONS if a in seen] + sorted(seen - set(ACTIONS))
        return web.render(
            request,
            "domains.html",
            session,
            active="domains",
            hours=hours,
            choices=HOURS,
            columns=columns,
            recipient=[(clean(s.domain, 255), s) for s in recipient],
            sender=[(clean(s.domain, 255), s) for s in sender],
            error=error,
        )

    return [Route("/domains", web.page("view", domains), methods=["GET"])]
