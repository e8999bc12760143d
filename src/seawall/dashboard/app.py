"""The dashboard's routes, built once per worker from what the worker opened."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from seawall.campaigns.client import TrackerClient
from seawall.config import Config
from seawall.dashboard import campaigns, cases, domains, history, login, overview, sources
from seawall.dashboard.auth import Session, Sessions, load_key
from seawall.dashboard.parts import CaseDesk, Learner, Parts
from seawall.dashboard.web import PREFIX, SECURITY_HEADERS, Web
from seawall.errors import SeawallError
from seawall.store import Store
from seawall.users import Users

log = logging.getLogger("seawall.dashboard")

STATIC = Path(__file__).parent / "static"


class Served(Learner, Protocol):
    """What the dashboard needs of a worker's service (``serve.service.Service``)."""

    config: Config
    store: Store | None


def dashboard_routes(
    service: Served, *, tracker: TrackerClient | None, desk: CaseDesk | None = None
) -> list[BaseRoute]:
    """The routes under ``/ui/`` (none when ``[dashboard] enabled`` is false, or there
    is no state store to keep logins in).

    ``service`` is the worker's service (its configuration and store, and it teaches the
    classifier), ``tracker`` the campaign tracker's client (unused when campaigns are
    off), ``desk`` the zombie desk (opened here from the configuration when None and
    ``[zombies] enabled``).
    """
    config = service.config
    store = service.store
    if not config.dashboard.enabled or store is None:
        return []
    if not config.detectors.campaigns.enabled:
        tracker = None
    learner = service
    if desk is None and config.zombies.enabled:
        desk = _open_desk(config)
    users = Users(config.users)
    web = Web(config, Sessions(config, users, store, load_key(config)))
    parts = Parts(config=config, web=web, store=store, tracker=tracker, learner=learner, desk=desk)
    web.env.globals["cases_on"] = desk is not None  # the nav leaves out what is not served

    async def users_page(request: Request, session: Session) -> Response:
        listed = [(name, settings.roles) for name, settings in sorted(config.users.items())]
        return web.render(request, "users.html", session, active="users", users=listed)

    async def to_root(request: Request) -> Response:
        return RedirectResponse(f"{PREFIX}/", 308, headers=SECURITY_HEADERS)

    routes: list[BaseRoute] = [
        *overview.routes(parts),
        Route("/users", web.page("admin", users_page), methods=["GET"]),
        *login.routes(parts),
        *campaigns.routes(parts),
        *sources.routes(parts),
        *history.routes(parts),
        *domains.routes(parts),
        *([] if desk is None else cases.routes(parts, desk)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return [Route(PREFIX, to_root, methods=["GET"]), Mount(PREFIX, routes=routes)]


def _open_desk(config: Config) -> CaseDesk | None:
    """The zombie desk of this worker; None (the case pages left out, logged) when its
    state cannot be opened."""
    from seawall.zombies.cases import open_desk

    try:
        desk, _ = open_desk(config)  # its accounting lookups live as long as the worker
    except SeawallError as exc:
        log.error("dashboard: the zombie cases cannot be opened: %s", exc)
        return None
    return desk
