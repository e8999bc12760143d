"""The Zombie cases pages: the list with filters, one case with its evidence timeline, and
the desk's actions (notify, wall, release, close), each confirmed on a page of its own.

Cases live in the state every node shares (``seawall.zombies``); an action goes through
the zombie desk, which records the move and runs the remedies (a notice, the walled
garden, a CoA), so a move made here is the same as one made with ``seawall cases``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from seawall.dashboard.auth import Session
from seawall.dashboard.inert import clean
from seawall.dashboard.parts import CaseDesk, Parts, guarded
from seawall.dashboard.web import PREFIX, SECURITY_HEADERS
from seawall.errors import SeawallError
from seawall.zombies.model import STATES, Case, CasePage, State, can_move

log = logging.getLogger("seawall.dashboard")

PAGE_SIZE = 100
# The desk's actions: the state each moves a case to, and how the confirmation says it.
ACTIONS: dict[str, tuple[State, str]] = {
    "notify": ("notified", "send the customer the notice"),
    "wall": ("walled", "put the account in the walled garden"),
    "release": ("released", "release the account from the garden"),
    "close": ("closed", "close the case"),
}
SINCE_HOURS = (1, 24, 168, 720)


def actions_for(case: Case) -> list[tuple[str, str]]:
    """The actions the case's state allows: (action, what it does)."""
    return [(name, text) for name, (state, text) in ACTIONS.items() if can_move(case.state, state)]


def case_row(case: Case, now: float, half_life_s: float) -> dict[str, Any]:
    return {
        "id": case.id,
        "subject": clean(case.subject, 200),
        "account": case.account,
        "ips": list(case.ips[-5:]),
        "state": case.state,
        "score": case.score_now(now, half_life_s),
        "evidence": case.evidence_count,
        "kinds": sorted(case.kinds.items(), key=lambda kv: -kv[1]),
        "campaigns": list(case.campaigns[:5]),
        "opened": case.opened_at,
        "updated": case.updated_at,
        "last_seen": case.last_seen,
    }


def routes(parts: Parts, desk: CaseDesk) -> list[Route]:
    web = parts.web
    half_life = parts.config.zombies.half_life_s

    async def listing(request: Request, session: Session) -> Response:
        now = time.time()
        params = request.query_params
        state = params.get("state", "")
        subject = params.get("subject", "").strip()[:100]
        campaign = params.get("campaign", "").strip()[:64]
        raw_since = params.get("since", "")
        since_h = int(raw_since) if raw_since.isdigit() and int(raw_since) in SINCE_HOURS else 0
        states: tuple[State, ...] = ()
        if state == "active":
            states = ("open", "notified", "walled")
        elif state in STATES:
            states = (state,)  # type: ignore[assignment]
        ip = subject if subject and (":" in subject or subject.replace(".", "").isdigit()) else None

        async def read() -> tuple[CasePage, int | None]:
            found = await desk.store.page(
                states=states,
                account=subject if subject and ip is None else None,
                ip=ip,
                campaign=campaign or None,
                since=now - since_h * 3600 if since_h else None,
                limit=PAGE_SIZE,
            )
            return found, await parts.zone_size()

        (page, zone), error = await guarded(read, (CasePage(cases=(), total=0, by_state={}), None))
        return web.render(
            request,
            "cases.html",
            session,
            active="cases",
            rows=[case_row(c, now, half_life) for c in page.cases],
            total=page.total,
            counts=page.by_state,
            zone=zone,
            state=state,
            states=STATES,
            subject=subject,
            campaign=campaign,
            since=since_h,
            since_choices=SINCE_HOURS,
            error=error,
        )

    async def detail(request: Request, session: Session) -> Response:
        cid = request.path_params["cid"][:64]
        try:
            case = await desk.store.get(cid)
            evidence = await desk.store.evidence(cid, limit=300) if case else []
        except SeawallError as exc:
            return web.error(request, session, 503, f"The case store: {exc}")
        if case is None:
            return web.error(request, session, 404, f"No case {cid}.")
        now = time.time()
        timeline: list[dict[str, Any]] = [
            {
                "at": e.at,
                "what": "evidence",
                "kind": e.kind,
                "source": e.source,
                "ip": e.ip,
                "account": e.account or "",
                "queue_id": clean(e.queue_id, 100),
                "message_id": clean(e.message_id, 200),
                "campaign": e.campaign,
                "symbols": list(e.symbols[:8]),
                "subject": clean(e.subject, 200),
                "infection": clean(e.infection, 100),
                "weight": e.weight,
            }
            for e in evidence
        ]
        timeline += [
            {
                "at": t.at,
                "what": "note" if t.from_state == t.to_state else "state",
                "from": t.from_state or "",
                "to": t.to_state,
                "who": clean(t.who, 100),
                "why": clean(t.why, 500),
            }
            for t in case.transitions
        ]
        timeline.sort(key=lambda item: -float(item["at"]))
        return web.render(
            request,
            "case.html",
            session,
            active="cases",
            c=case_row(case, now, half_life),
            case=case,
            timeline=timeline,
            actions=actions_for(case),
            done=request.query_params.get("done", ""),
        )

    async def confirm(request: Request, session: Session) -> Response:
        cid = request.path_params["cid"][:64]
        action = request.query_params.get("action", "")
        if action not in ACTIONS:
            return web.error(request, session, 400, "No such action.")
        case, error = await guarded(lambda: desk.store.get(cid), None)
        if case is None:
            return web.error(request, session, 404 if not error else 503, error or "No case.")
        state, text = ACTIONS[action]
        if not can_move(case.state, state):
            return web.error(
                request, session, 409, f"A case {case.state} cannot be moved to {state}."
            )
        return web.render(
            request,
            "case_confirm.html",
            session,
            active="cases",
            c=case_row(case, time.time(), half_life),
            action=action,
            text=text,
            state=state,
        )

    async def act(request: Request, session: Session) -> Response:
        cid = request.path_params["cid"][:64]
        form: dict[str, str] = request.state.form
        action = form.get("action", "")
        if action not in ACTIONS or form.get("confirmed") != "yes":
            return web.error(request, session, 400, "Confirm the action on its page first.")
        state, _ = ACTIONS[action]
        why = form.get("why", "").strip()[:500] or f"{action} from the dashboard"
        try:
            await desk.transition(cid, state, session.user.name, why)
        except SeawallError as exc:  # CaseError: unknown case, or a move its state forbids
            return web.error(request, session, 409, str(exc))
        log.info("dashboard: %s moved case %s to %s", session.user.name, cid, state)
        return RedirectResponse(
            f"{PREFIX}/cases/{cid}?done={action}", 303, headers=SECURITY_HEADERS
        )

    return [
        Route("/cases", web.page("view", listing), methods=["GET"]),
        Route("/cases/{cid}", web.page("view", detail), methods=["GET"]),
        Route("/cases/{cid}/confirm", web.page("admin", confirm), methods=["GET"]),
        Route("/cases/{cid}/act", web.page("admin", act), methods=["POST"]),
    ]
