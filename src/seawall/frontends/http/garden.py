"""The walled-garden landing page and the zombie feed, beside the scanning protocol.

``GET /garden/{token}``: the page a gardened customer reaches by the link in the notice
(``zombies.remedies.links``: the token names one case, signed, expiring).  It shows that
case's own evidence and nothing of any other, the cleaning steps, the support contact,
and while the case is walled a self-release button: a POST to ``/garden/{token}/release``
with a CSRF token bound to the case, honoured once per ``[remediation]
self_release_period_s`` per customer (claimed in the shared store).  The release goes
through the desk, so it is logged on the case (who: ``customer``) and its remedies run
(CoA, exports); a relapse re-gardens the account by the policy (re-entry).

``GET /garden/``: the address the NAS's garden profile sends web traffic to.  A client
whose own address is a walled case's current one is sent on to its case's page; anyone
else gets a page that points at the notice's link.

``GET /api/v1/zombies``: the shared zone's entries as JSON (what the DNS zone answers:
each address with its class and return code, expiry, last seen and campaigns).

Token links travel in URLs, so every page is sent with ``Referrer-Policy: no-referrer``
and ``Cache-Control: no-store``.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from seawall.addresses import Networks, parse_ip
from seawall.config import Config
from seawall.errors import SeawallError
from seawall.store import Store
from seawall.zombies.cases import Desk
from seawall.zombies.model import Case, CaseError
from seawall.zombies.remedies.links import PATH, GardenLinks
from seawall.zombies.remedies.notice import templates
from seawall.zombies.remedies.summary import CLEANING_STEPS, summarize
from seawall.zombies.sharing.zone import zone6_entries, zone_entries

log = logging.getLogger("seawall.garden")

CUSTOMER = "customer"  # who a self-release is logged as
EVIDENCE_SHOWN = 1000
MAX_FORM_BYTES = 4096
HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}


def _period(seconds: float) -> str:
    days = seconds / 86400
    return f"{days:g} days" if days >= 1 else f"{seconds / 3600:g} hours"


def _utc(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at))


class Garden:
    """The pages over one worker's desk and store."""

    def __init__(self, config: Config, desk: Desk, store: Store, links: GardenLinks) -> None:
        self.config = config
        self.settings = config.remediation
        self.desk = desk
        self.store = store
        self.links = links
        self.env = templates()
        # A reverse proxy in [trusted] networks names the client in X-Forwarded-For.
        self.proxies = Networks(config.trusted.networks, where="trusted.networks")

    def _page(self, status: int, **context: Any) -> HTMLResponse:
        body = self.env.get_template("garden.html").render(
            steps=CLEANING_STEPS, support=self.settings.support_contact, **context
        )
        return HTMLResponse(body, status, headers=HEADERS)

    def _plain(self, status: int, text: str) -> Response:
        return Response(text + "\n", status, media_type="text/plain", headers=HEADERS)

    async def _case(self, token: str) -> Case | None:
        case_id = self.links.case_of(token)
        return None if case_id is None else await self.desk.store.get(case_id)

    def _release_key(self, case: Case) -> str:
        return f"zombies:self-release:{case.subject}"

    async def page(self, request: Request) -> Response:
        token = request.path_params["token"]
        case = await self._case(token)
        if case is None:
            return self._plain(404, "This link is not valid or has expired.")
        message = "Your connection is released." if request.query_params.get("released") else ""
        return await self._render(case, token, message=message)

    async def _render(
        self, case: Case, token: str, *, message: str = "", status: int = 200
    ) -> Response:
        evidence = await self.desk.store.evidence(case.id, limit=EVIDENCE_SHOWN)
        released = await self.store.get(self._release_key(case))
        released_at = float(released.split(b":")[0]) if released else 0.0
        period = self.settings.self_release_period_s
        return self._page(
            status,
            case_id=case.id,
            subject=case.subject,
            state=case.state,
            summary=summarize(evidence),
            message=message,
            can_release=not released,
            period=_period(period),
            released_text=_utc(released_at) if released_at else "",
            next_text=_utc(released_at + period) if released_at else "",
            csrf=self.links.csrf_token(case.id),
            release_path=f"{PATH}{token}/release",
        )

    async def release(self, request: Request) -> Response:
        token = request.path_params["token"]
        case = await self._case(token)
        if case is None:
            return self._plain(404, "This link is not valid or has expired.")
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return self._plain(413, "Too large.")
        # A urlencoded form of one field, read without a multipart parser.
        csrf = parse_qs(body.decode("ascii", "replace")).get("csrf", [""])[0]
        if not csrf or not self.links.csrf_ok(case.id, csrf):
            return self._plain(403, "This form has expired; reload the page and try again.")
        if case.state != "walled":
            return await self._render(case, token, message="Your connection is not walled.")
        now = time.time()
        claim = f"{now:.3f}:{secrets.token_hex(4)}".encode()
        key = self._release_key(case)
        held = await self.store.claim(key, claim, ttl_s=self.settings.self_release_period_s)
        if held != claim:
            why = "You released your connection yourself recently; please contact support."
            return await self._render(case, token, message=why, status=429)
        client = request.client.host if request.client else "unknown"
        try:
            await self.desk.transition(
                case.id, "released", CUSTOMER, f"self-release from the garden page ({client})"
            )
        except CaseError as exc:
            await self.store.delete(key)
            return await self._render(case, token, message=str(exc), status=409)
        log.info("case %s: self-release by the customer from %s", case.id, client)
        return RedirectResponse(f"{PATH}{token}?released=1", 303, headers=HEADERS)

    async def landing(self, request: Request) -> Response:
        """The garden's front door: a walled client is sent to its own case's page."""
        client = self._client(request)
        case = await self._walled_case_of(client) if client else None
        if case is not None:
            url = self.links.url(case.id) if self.links.base_url else self.links.token(case.id)
            return RedirectResponse(
                url if self.links.base_url else PATH + url, 303, headers=HEADERS
            )
        return self._plain(
            200,
            "This is the walled garden of your provider. If your connection was placed "
            "here, the mail we sent you has the link to your own page."
            + (
                f"\nSupport: {self.settings.support_contact}"
                if self.settings.support_contact
                else ""
            ),
        )

    def _client(self, request: Request) -> str:
        """The client's address; behind a trusted proxy, the one the proxy appended."""
        peer = request.client.host if request.client else ""
        forwarded = request.headers.get("x-forwarded-for", "")
        if peer and forwarded and self.proxies.contains(peer):
            last = forwarded.rsplit(",", 1)[-1].strip()
            address = parse_ip(last)
            return str(address) if address is not None else ""
        return peer

    async def _walled_case_of(self, ip: str) -> Case | None:
        """The walled case whose current address is ``ip``: the account holding it now
        (RADIUS accounting), else a static customer's address case."""
        account = await self.desk.who(ip, time.time()) if self.desk.who else None
        if account:  # only that account's case: never the page of the address's past
            case = await self.desk.store.find(account=account)
        else:
            case = await self.desk.store.find(ip=ip)
        return case if case is not None and case.state == "walled" else None

    async def zombies(self, request: Request) -> Response:
        now = time.time()
        zombies = await self.desk.store.active_zombies(now)
        prefix = self.config.sharing.zone_ipv6_prefix
        entries = zone_entries(zombies, now) + zone6_entries(zombies, now, prefix)
        wanted = request.query_params.get("class")
        return JSONResponse(
            {
                "generated": now,
                "count": sum(1 for e in entries if not wanted or e.cls == wanted),
                "entries": [
                    {
                        "ip": e.ip,
                        "class": e.cls,
                        "code": e.code,
                        "expires": e.expires,
                        "last_seen": e.last_seen,
                        "campaigns": list(e.campaigns),
                    }
                    for e in entries
                    if not wanted or e.cls == wanted
                ],
            },
            headers={"Cache-Control": "max-age=30"},
        )

    def routes(self) -> list[BaseRoute]:
        return [
            Route(PATH, self.landing, methods=["GET"]),
            Route(PATH + "{token}", self.page, methods=["GET"]),
            Route(PATH + "{token}/release", self.release, methods=["POST"]),
            Route("/api/v1/zombies", self.zombies, methods=["GET"]),
        ]


def garden_routes(config: Config, store: Store | None, desk: Desk | None = None) -> list[BaseRoute]:
    """The garden's routes of a worker (none without a state store or with zombies off);
    ``desk`` is opened from the configuration when None."""
    if store is None or not config.zombies.enabled:
        return []
    if desk is None:
        from seawall.zombies.cases import open_desk

        try:
            desk, _ = open_desk(config)  # lives as long as the worker
        except SeawallError as exc:
            log.error("garden: the zombie cases cannot be opened: %s", exc)
            return []
    links = GardenLinks.from_settings(config.remediation, config.state_dir)
    return Garden(config, desk, store, links).routes()


_ZOMBIE = {
    "type": "object",
    "required": ["ip", "class", "code", "expires"],
    "properties": {
        "ip": {"type": "string"},
        "class": {"type": "string", "enum": ["own", "botnet", "malware"]},
        "code": {"type": "string", "description": "the zone's A answer: 127.0.0.2, .3 or .4"},
        "expires": {"type": "number", "description": "epoch seconds it leaves the zone"},
        "last_seen": {"type": "number"},
        "campaigns": {"type": "array", "items": {"type": "string"}},
    },
}
_HTML = {"description": "The page", "content": {"text/html": {"schema": {"type": "string"}}}}
_TOKEN = {
    "name": "token",
    "in": "path",
    "required": True,
    "description": "the signed case token of the notice's link",
    "schema": {"type": "string"},
}
# The OpenAPI paths of these routes (merged into /openapi.json by openapi.py).
GARDEN_PATHS: dict[str, Any] = {
    "/api/v1/zombies": {
        "get": {
            "summary": "The active zombies of the shared DNS zone (own and external)",
            "parameters": [
                {
                    "name": "class",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "enum": ["own", "botnet", "malware"]},
                }
            ],
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "generated": {"type": "number"},
                                    "count": {"type": "integer"},
                                    "entries": {"type": "array", "items": _ZOMBIE},
                                },
                            }
                        }
                    },
                }
            },
        }
    },
    PATH + "{token}": {
        "get": {
            "summary": "A gardened customer's own page: evidence, cleaning, self-release",
            "parameters": [_TOKEN],
            "responses": {"200": _HTML, "404": {"description": "invalid or expired link"}},
        }
    },
    PATH + "{token}/release": {
        "post": {
            "summary": "Self-release (once per [remediation] self_release_period_s)",
            "parameters": [_TOKEN],
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "required": ["csrf"],
                            "properties": {"csrf": {"type": "string"}},
                        }
                    }
                },
            },
            "responses": {
                "303": {"description": "released; see the page"},
                "403": {"description": "missing or wrong CSRF token"},
                "429": {"description": "self-released within the period"},
            },
        }
    },
}
