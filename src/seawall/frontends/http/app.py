"""The HTTP front end: Rspamd's /checkv2 protocol and Seawall's JSON API, one Starlette app.

Rspamd clients (``rspamc``, Rspamd's milter proxy, Exim's and Haraka's plugins)
send the raw message as the body and the envelope as headers (``IP``, ``Helo``,
``From``, ``Rcpt``, ``Queue-Id``, ``Hostname``, ``User``).  The JSON API is
described by the OpenAPI document at ``/openapi.json``.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from seawall import __version__
from seawall.frontends.http.openapi import OPENAPI
from seawall.frontends.render import rspamd_json
from seawall.message import Envelope

if TYPE_CHECKING:
    from seawall.serve.service import Service

_json = msgspec.json.Encoder()


class MsgspecJSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _json.encode(content)


class TooLarge(Exception):
    """The body is over the size limit."""


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


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused beyond ``limit`` bytes without reading it all into memory."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"error": f"message larger than {limit} bytes"}, status_code=413)


def build_app(service: Service) -> Starlette:
    """The ASGI app serving ``service``."""
    limit = service.max_message_bytes
    allow_learn = service.config.serve.http.allow_learn

    async def checkv2(request: Request) -> Response:
        try:
            raw = await _body(request, limit)
        except TooLarge:
            return _too_large(limit)
        verdict = await service.check(envelope_of(request.headers), raw)
        return MsgspecJSON(rspamd_json(verdict))

    async def learn(request: Request, spam: bool) -> Response:
        if not allow_learn:
            return JSONResponse({"error": "learning is turned off"}, status_code=403)
        try:
            raw = await _body(request, limit)
        except TooLarge:
            return _too_large(limit)
        try:
            changed = await service.learn(raw, spam=spam)
        except RuntimeError as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        if not changed:
            # Rspamd's answer to a message learned before: 208 Already Reported.
            label = "spam" if spam else "ham"
            return JSONResponse(
                {"error": f"message has been already learned as {label}, ignore it"},
                status_code=208,
            )
        return JSONResponse({"success": True})

    async def learnspam(request: Request) -> Response:
        return await learn(request, True)

    async def learnham(request: Request) -> Response:
        return await learn(request, False)

    async def ping(request: Request) -> Response:
        return PlainTextResponse("pong\r\n")

    async def stat(request: Request) -> Response:
        return MsgspecJSON(stat_body(service))

    async def api_scan(request: Request) -> Response:
        try:
            raw = await _body(request, limit)
        except TooLarge:
            return _too_large(limit)
        params = request.query_params
        envelope = Envelope(
            client_ip=params.get("ip"),
            helo=params.get("helo"),
            mail_from=params.get("from"),
            rcpts=tuple(params.getlist("rcpt")),
            queue_id=params.get("queue_id"),
            hostname=params.get("hostname"),
            user=params.get("user"),
        )
        verdict = await service.check(envelope, raw)
        body = rspamd_json(verdict)
        del body["milter"], body["messages"]
        return MsgspecJSON(body)

    async def api_learn(request: Request) -> Response:
        label = request.path_params["label"]
        if label not in ("spam", "ham"):
            return JSONResponse({"error": "label must be spam or ham"}, status_code=404)
        if not allow_learn:
            return JSONResponse({"error": "learning is turned off"}, status_code=403)
        try:
            raw = await _body(request, limit)
        except TooLarge:
            return _too_large(limit)
        try:
            changed = await service.learn(raw, spam=label == "spam")
        except RuntimeError as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        return JSONResponse({"learned": changed, "label": label})

    async def api_forget(request: Request) -> Response:
        try:
            raw = await _body(request, limit)
        except TooLarge:
            return _too_large(limit)
        try:
            changed = await service.forget(raw)
        except RuntimeError as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        return JSONResponse({"forgotten": changed})

    async def api_stats(request: Request) -> Response:
        return MsgspecJSON(stat_body(service))

    async def api_health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__})

    async def openapi(request: Request) -> Response:
        return JSONResponse(OPENAPI)

    return Starlette(
        routes=[
            Route("/checkv2", checkv2, methods=["POST"]),
            Route("/learnspam", learnspam, methods=["POST"]),
            Route("/learnham", learnham, methods=["POST"]),
            Route("/ping", ping, methods=["GET"]),
            Route("/stat", stat, methods=["GET"]),
            Route("/api/v1/scan", api_scan, methods=["POST"]),
            Route("/api/v1/learn/{label}", api_learn, methods=["POST"]),
            Route("/api/v1/forget", api_forget, methods=["POST"]),
            Route("/api/v1/stats", api_stats, methods=["GET"]),
            Route("/api/v1/health", api_health, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
        ]
    )


def stat_body(service: Service) -> dict[str, Any]:
    """Counters of this worker and the classifier's, in Rspamd's /stat names where they exist."""
    stats = service.stats
    spam, ham = service.classifier.counts if service.classifier is not None else (0, 0)
    return {
        "version": __version__,
        "pid": os.getpid(),
        "uptime": round(time.time() - stats.started, 1),
        "scanned": stats.scanned,
        "learned": spam + ham,
        "learned_spam": spam,
        "learned_ham": ham,
        "actions": dict(stats.actions),
        "skipped": dict(stats.skipped),
        "in_flight": stats.in_flight,
        "avg_ms": round(stats.busy_ms / stats.scanned, 3) if stats.scanned else 0.0,
    }
