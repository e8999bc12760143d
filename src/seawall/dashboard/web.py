"""What every dashboard page shares: templates, security headers, and the login check.

``Web.page(role, handler)`` wraps a page: no session sends the browser to the login form
(a JSON or form request gets 401), a user without ``role`` gets 403, a POST without its
session's CSRF token gets 403, and every answer carries the Content-Security-Policy and
the other headers below.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, quote

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from seawall import __version__
from seawall.config import Config, Role
from seawall.dashboard.auth import COOKIE, Session, Sessions

log = logging.getLogger("seawall.dashboard")

PREFIX = "/ui"
LIVE_HEADER = "x-seawall-live"  # sent by the pages' live updates (static/dashboard.js)
# No inline script, no inline style attribute, nothing from another origin: every script
# and stylesheet is a file of the package served under /ui/static/.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
NAV = (
    ("overview", "Overview", "/"),
    ("campaigns", "Campaigns", "/campaigns"),
    ("sources", "Sources", "/sources"),
    ("cases", "Zombie cases", "/cases"),
    ("history", "History", "/history"),
    ("domains", "Domains", "/domains"),
    ("users", "Users", "/users"),
)

Handler = Callable[[Request, Session], Awaitable[Response]]
MAX_FORM_BYTES = 64 * 1024


async def form_of(request: Request) -> dict[str, str]:
    """The fields of a url-encoded form (every form of the dashboard is one), the first
    value of each; an oversized or undecodable body reads as no fields."""
    if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
        return {}
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_FORM_BYTES:
        return {}
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=100)
    except (UnicodeDecodeError, ValueError):
        return {}
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields


def _iso(when: float | None) -> str:
    if not when:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(when))


def _clock(when: float | None) -> str:
    if not when:
        return "-"
    return time.strftime("%H:%M:%S", time.gmtime(when))


def _share(value: object) -> str:
    return f"{float(value):.0%}" if isinstance(value, int | float) else "-"


def _number(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "-"


def templates() -> Environment:
    """The page templates, autoescaped (every string from mail or a user is text)."""
    env = Environment(
        loader=PackageLoader("seawall.dashboard", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(iso=_iso, clock=_clock, share=_share, number=_number, q=quote)
    env.globals.update(prefix=PREFIX, nav=NAV, version=__version__)
    return env


class Web:
    """Renders pages and guards them (see the module docstring)."""

    def __init__(self, config: Config, sessions: Sessions) -> None:
        self.config = config
        self.sessions = sessions
        self.env = templates()

    def secure(self, request: Request) -> bool:
        mode = self.config.dashboard.secure_cookie
        return mode == "always" or (mode == "auto" and request.url.scheme == "https")

    def render(
        self,
        request: Request,
        template: str,
        session: Session | None,
        *,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        context.setdefault("active", "")
        html = self.env.get_template(template).render(
            session=session,
            user=session.user if session else None,
            csrf=session.csrf if session else "",
            refresh_s=self.config.dashboard.refresh_s,
            path=request.url.path,
            **context,
        )
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def error(
        self, request: Request, session: Session | None, status: int, message: str
    ) -> HTMLResponse:
        return self.render(request, "error.html", session, status=status, message=message)

    def page(self, role: Role, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` behind the login, for users holding ``role``."""

        async def guarded(request: Request) -> Response:
            session = await self.sessions.read(request.cookies.get(COOKIE))
            if session is None:
                if request.method == "GET" and LIVE_HEADER not in request.headers:
                    target = request.url.path + (
                        f"?{request.url.query}" if request.url.query else ""
                    )
                    return RedirectResponse(
                        f"{PREFIX}/login?next={quote(target, safe='')}",
                        status_code=303,
                        headers=SECURITY_HEADERS,
                    )
                return self.error(request, None, 401, "Your session has ended: log in again.")
            if not session.user.may(role):
                return self.error(
                    request, session, 403, f"This needs the {role!r} role, which you lack."
                )
            if request.method == "POST":
                form = await form_of(request)
                request.state.form = form
                if not self.sessions.csrf_ok(session, form.get("csrf")):
                    log.warning(
                        "dashboard: %s %s by %s refused: bad CSRF token",
                        request.method,
                        request.url.path,
                        session.user.name,
                    )
                    return self.error(
                        request, session, 403, "The form's security token is missing or wrong."
                    )
            return await handler(request, session)

        return guarded
