"""Logging in and out of the dashboard.

The login form carries a CSRF token bound to a random nonce in a short-lived cookie, so a
page elsewhere cannot log a browser in under the attacker's name.  Failed logins from one
address are limited (``[dashboard] login_attempts`` per ``login_window_s``); once limited,
the password is not even checked.  Passwords are checked in a thread (Argon2id costs tens
of milliseconds of CPU by design).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from seawall.dashboard.auth import COOKIE, Session
from seawall.dashboard.parts import Parts
from seawall.dashboard.web import PREFIX, SECURITY_HEADERS, form_of

log = logging.getLogger("seawall.dashboard")

NONCE_COOKIE = "seawall_login"


def _next(value: object) -> str:
    """Where to go after logging in: a dashboard path, never another site."""
    if (
        isinstance(value, str)
        and value.startswith(PREFIX + "/")
        and "//" not in value
        and "\\" not in value
        and all(ch.isprintable() for ch in value)
    ):
        return value
    return PREFIX + "/"


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def routes(parts: Parts) -> list[Route]:
    web = parts.web
    sessions = web.sessions
    settings = parts.config.dashboard

    def form(request: Request, *, status: int = 200, message: str = "") -> Response:
        nonce = secrets.token_urlsafe(16)
        response = web.render(
            request,
            "login.html",
            None,
            status=status,
            login_csrf=sessions.login_token(nonce),
            next=_next(request.query_params.get("next")),
            message=message,
            no_users=not sessions.users,
            username="",
        )
        response.set_cookie(
            NONCE_COOKIE,
            nonce,
            max_age=3600,
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=web.secure(request),
        )
        return response

    async def login_form(request: Request) -> Response:
        if await sessions.read(request.cookies.get(COOKIE)) is not None:
            return RedirectResponse(
                _next(request.query_params.get("next")), 303, headers=SECURITY_HEADERS
            )
        return form(request)

    async def login(request: Request) -> Response:
        data = await form_of(request)
        nonce = request.cookies.get(NONCE_COOKIE, "")
        token = data.get("csrf")
        if not nonce or not isinstance(token, str) or not _same(token, sessions.login_token(nonce)):
            return form(request, status=403, message="The form expired: try again.")
        address = _client(request)
        if await sessions.limited(address):
            log.warning("dashboard: login from %s refused: too many failures", address)
            return form(
                request,
                status=429,
                message="Too many failed logins from your address: wait a few minutes.",
            )
        name, password = data.get("username"), data.get("password")
        user = None
        if isinstance(name, str) and isinstance(password, str) and name and password:
            user = await asyncio.to_thread(sessions.users.check, name[:64], password[:1024])
        if user is None:
            await sessions.failed(address)
            log.warning("dashboard: failed login from %s", address)
            return form(request, status=401, message="Wrong name or password.")
        log.info("dashboard: %s logged in from %s", user.name, address)
        response = RedirectResponse(_next(data.get("next")), 303, headers=SECURITY_HEADERS)
        response.set_cookie(
            COOKIE,
            sessions.issue(user.name),
            max_age=int(settings.session_s),
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=web.secure(request),
        )
        response.delete_cookie(NONCE_COOKIE, path=PREFIX)
        return response

    async def logout(request: Request, session: Session) -> Response:
        await sessions.end(session)
        log.info("dashboard: %s logged out", session.user.name)
        response = RedirectResponse(f"{PREFIX}/login", 303, headers=SECURITY_HEADERS)
        response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict")
        return response

    return [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", web.page("view", logout), methods=["POST"]),
    ]
