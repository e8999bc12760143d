"""The HTTP front end: Rspamd's /checkv2 protocol and Seawall's JSON API, one Starlette app.

Rspamd clients (``rspamc``, Rspamd's milter proxy, Exim's and Haraka's plugins)
send the raw message as the body and the envelope as headers (``IP``, ``Helo``,
``From``, ``Rcpt``, ``Queue-Id``, ``Hostname``, ``User``).  The JSON API is
described by the OpenAPI document at ``/openapi.json``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from seawall import __version__
from seawall.errors import LearningDisabled, StoreError
from seawall.frontends.access import Denied, LearnAccess, bearer
from seawall.frontends.budget import UNLIMITED, Budget, Held, OverBudget
from seawall.frontends.http.openapi import OPENAPI
from seawall.frontends.render import rspamd_json
from seawall.message import Envelope

if TYPE_CHECKING:
    from seawall.frontends.base import Scanner

log = logging.getLogger("seawall.http")
_json = msgspec.json.Encoder()
# A refusal of learning, as HTTP says it.
_DENIED = {"off": 403, "network": 403, "token": 401, "role": 403}


class MsgspecJSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _json.encode(content)


class Refused(Exception):
    """A request answered with an error: its status and message."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": 'Bearer realm="seawall"'} if self.status == 401 else None
        if self.status == 503:
            headers = {"Retry-After": "5"}
        return JSONResponse({"error": str(self)}, status_code=self.status, headers=headers)


Handler = Callable[[Request], Awaitable[Response]]


def _answering_refusals(handler: Handler) -> Handler:
    async def handle(request: Request) -> Response:
        try:
            return await handler(request)
        except Refused as refused:
            return refused.response()
        except OverBudget:
            return Refused(503, "too many messages in flight; try again later").response()
        except ClientDisconnect:
            # The client gave up in the middle of its upload: nobody is left to answer.
            log.debug(
                "%s %s: the client went away before its body ended",
                request.method,
                request.url.path,
            )
            return Response(status_code=400)

    return handle


def envelope_of(headers: Headers) -> Envelope:
    """Rspamd's request headers as an Envelope."""
    get = headers.get
    rcpts = tuple(
        r.strip().strip("<>") for value in headers.getlist("rcpt") for r in value.split(",")
    )
    mail_from = get("from")
    return Envelope(
        client_ip=get("ip") or None,
        helo=get("helo") or None,
        mail_from=mail_from.strip().strip("<>") if mail_from is not None else None,
        rcpts=tuple(r for r in rcpts if r),
        queue_id=get("queue-id") or None,
        hostname=get("hostname") or None,
        user=get("user") or None,
    )


def _query_envelope(request: Request) -> Envelope:
    params = request.query_params
    return Envelope(
        client_ip=params.get("ip"),
        helo=params.get("helo"),
        mail_from=params.get("from"),
        rcpts=tuple(params.getlist("rcpt")),
        queue_id=params.get("queue_id"),
        hostname=params.get("hostname"),
        user=params.get("user"),
    )


async def _body(request: Request, limit: int, held: Held) -> bytes:
    """The request body, refused beyond ``limit`` bytes without reading it all into memory;
    its bytes are taken from the worker's budget (``held``), at once if it says its length.
    """
    return await _read_body(request.headers, request.receive, limit, held)


async def _read_body(headers: Headers, receive: Receive, limit: int, held: Held) -> bytes:
    """:func:`_body` from the ASGI messages themselves (``ClientDisconnect`` when the client
    goes away first, as Starlette's ``Request.stream``)."""
    too_large = Refused(413, f"message larger than {limit} bytes")
    length = headers.get("content-length")
    declared = int(length) if length is not None and length.isdigit() else None
    if declared is not None:
        if declared > limit:
            raise too_large
        held.take(declared)
    buffer = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        if len(buffer) + len(chunk) > limit:
            raise too_large
        if declared is None or len(buffer) + len(chunk) > declared:
            held.take(len(chunk))
        buffer += chunk
        if not message.get("more_body", False):
            return bytes(buffer)


_JSON_HEADERS = [(b"content-type", b"application/json")]


def _checkv2_fast(
    service: Scanner, app: ASGIApp, *, limit: int, budget: Budget, authserv_id: str
) -> ASGIApp:
    """``app`` with ``POST /checkv2`` answered before Starlette's middleware and router.

    Every MTA's message comes this way; the answer is the one the routed handler gives
    (the same body, status and refusals), without a Request, a Response and five layers of
    calls around each message."""

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/checkv2" or scope["method"] != "POST":
            await app(scope, receive, send)  # other methods: Starlette's 405
            return
        headers = Headers(scope=scope)
        refusal: Response
        try:
            with budget.hold() as held:
                raw = await _read_body(headers, receive, limit, held)
                verdict = await service.check(envelope_of(headers), raw)
        except Refused as refused:
            refusal = refused.response()
        except OverBudget:
            refusal = Refused(503, "too many messages in flight; try again later").response()
        except ClientDisconnect:
            log.debug("POST /checkv2: the client went away before its body ended")
            refusal = Response(status_code=400)
        else:
            body = _json.encode(rspamd_json(verdict, authserv_id=authserv_id))
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"%d" % len(body)), *_JSON_HEADERS],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await refusal(scope, receive, send)

    return serve


def build_app(
    service: Scanner,
    *,
    allow_learn: bool,
    authserv_id: str = "",
    extra_routes: Sequence[BaseRoute] = (),
    learn_access: LearnAccess | None = None,
    budget: Budget = UNLIMITED,
) -> ASGIApp:
    """The ASGI app serving ``service``; ``allow_learn`` is ``[serve.http] allow_learn``,
    ``authserv_id`` the id of the Authentication-Results header it asks the MTA to add
    (``[serve.milter] authserv_id``; "" is the host name).  ``extra_routes`` are served
    beside the scanning protocol: the pages and APIs of the layers that own them (the
    worker collects them).  ``learn_access`` is the gate in front of learning (the learn
    networks and the users' tokens; None: ``allow_learn`` alone decides, for an embedder
    that guards the app itself), ``budget`` the worker's bytes of messages in flight."""
    limit = service.max_message_bytes

    async def authorize(request: Request) -> None:
        """Refused unless this request may learn, forget or mark."""
        if learn_access is None:
            if not allow_learn:
                raise Refused(403, "learning is turned off")
            return
        client = request.client.host if request.client is not None else None
        try:
            # Rspamd's clients send the controller's password as "Password" (rspamc -P):
            # NAME:PASSWORD there stands for the Bearer token.
            token = bearer(request.headers.get("authorization")) or request.headers.get("password")
            await learn_access.check(client, token)
        except Denied as denied:
            raise Refused(_DENIED[denied.status], str(denied)) from None

    async def teach(request: Request, spam: bool | None) -> bool:
        """Learn (spam True/False) or forget (None) the body; whether anything changed."""
        await authorize(request)
        with budget.hold() as held:
            raw = await _body(request, limit, held)
            try:
                if spam is None:
                    return await service.forget(raw)
                return await service.learn(raw, spam=spam)
            except LearningDisabled as exc:
                raise Refused(503, str(exc)) from None
            except StoreError:
                # Logged once a minute by the service; the client is told to come back.
                raise Refused(
                    503, "the state store is busy or unavailable; try again later"
                ) from None

    async def checkv2(request: Request) -> Response:
        with budget.hold() as held:
            raw = await _body(request, limit, held)
            verdict = await service.check(envelope_of(request.headers), raw)
        return MsgspecJSON(rspamd_json(verdict, authserv_id=authserv_id))

    async def learn(request: Request, spam: bool) -> Response:
        if not await teach(request, spam):
            # Rspamd's answer to a message learned before: 208 Already Reported.
            label = "spam" if spam else "ham"
            raise Refused(208, f"message has been already learned as {label}, ignore it")
        return JSONResponse({"success": True})

    async def learnspam(request: Request) -> Response:
        return await learn(request, True)

    async def learnham(request: Request) -> Response:
        return await learn(request, False)

    async def ping(request: Request) -> Response:
        return PlainTextResponse("pong\r\n")

    async def stat(request: Request) -> Response:
        return MsgspecJSON(service.stat())

    async def api_scan(request: Request) -> Response:
        with budget.hold() as held:
            raw = await _body(request, limit, held)
            verdict = await service.check(_query_envelope(request), raw)
        body = rspamd_json(verdict, authserv_id=authserv_id)
        del body["milter"], body["messages"]
        return MsgspecJSON(body)

    async def api_learn(request: Request) -> Response:
        label = request.path_params["label"]
        if label not in ("spam", "ham"):
            raise Refused(404, "label must be spam or ham")
        return JSONResponse({"learned": await teach(request, label == "spam"), "label": label})

    async def api_forget(request: Request) -> Response:
        return JSONResponse({"forgotten": await teach(request, None)})

    async def api_health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__})

    async def openapi(request: Request) -> Response:
        return JSONResponse(OPENAPI)

    routes = {
        ("/checkv2", "POST"): checkv2,
        ("/learnspam", "POST"): learnspam,
        ("/learnham", "POST"): learnham,
        ("/ping", "GET"): ping,
        ("/stat", "GET"): stat,
        ("/api/v1/scan", "POST"): api_scan,
        ("/api/v1/learn/{label}", "POST"): api_learn,
        ("/api/v1/forget", "POST"): api_forget,
        ("/api/v1/stats", "GET"): stat,
        ("/api/v1/health", "GET"): api_health,
        ("/openapi.json", "GET"): openapi,
    }
    app = Starlette(
        routes=[
            *(
                Route(path, _answering_refusals(handler), methods=[method])
                for (path, method), handler in routes.items()
            ),
            *extra_routes,
        ]
    )
    return _checkv2_fast(service, app, limit=limit, budget=budget, authserv_id=authserv_id)
