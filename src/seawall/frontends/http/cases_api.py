"""The zombie cases in the JSON API: ``/api/v1/cases`` and ``/api/v1/cases/{id}``.

Every request carries ``Authorization: Bearer NAME:PASSWORD`` of a ``[users.NAME]`` user:
reading needs the role ``view``, moving a case ``admin`` (401 without valid credentials,
403 without the role).  The cases are those of the state every worker and ``seawall
cases`` share; a move runs the remedies as ``seawall cases`` does, ``who`` being the user.

=======================================  ====  =========================================
``GET /api/v1/cases``                    view  cases, newest first: ``state`` (repeat),
                                               ``account``, ``ip``, ``campaign``, ``limit``
``GET /api/v1/cases/{id}``               view  one case with its transitions and evidence
                                               (``evidence``: how many, default 50)
``GET /api/v1/cases/{id}/raw/{ref}``     view  an evidence's raw original (the report)
``POST /api/v1/cases/{id}/transition``   admin ``{"state": "walled", "reason": "..."}``
``POST /api/v1/cases/{id}/note``         admin ``{"reason": "..."}``
=======================================  ====  =========================================
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from seawall.config import Config, Role
from seawall.errors import StoreError
from seawall.users import User, Users
from seawall.zombies.cases import Desk, load_remedies
from seawall.zombies.model import STATES, Case, CaseError, Evidence, State
from seawall.zombies.store import open_case_store

MAX_BODY = 64 * 1024
MAX_LIMIT = 10_000


def _error(status: int, text: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="seawall"'} if status == 401 else None
    return JSONResponse({"error": text}, status_code=status, headers=headers)


def case_body(case: Case, now: float, half_life_s: float) -> dict[str, Any]:
    return {
        "id": case.id,
        "account": case.account,
        "ip": case.ip,
        "ips": list(case.ips),
        "state": case.state,
        "opened_at": case.opened_at,
        "updated_at": case.updated_at,
        "score": round(case.score_now(now, half_life_s), 3),
        "evidence_count": case.evidence_count,
        "kinds": dict(sorted(case.kinds.items())),
        "campaigns": list(case.campaigns),
        "first_seen": case.first_seen,
        "last_seen": case.last_seen,
        "clean_count": case.clean_count,
    }


def _transitions(case: Case) -> list[dict[str, Any]]:
    return [
        {"at": t.at, "from": t.from_state, "to": t.to_state, "who": t.who, "why": t.why}
        for t in case.transitions
    ]


def _evidence(e: Evidence) -> dict[str, Any]:
    return {
        "id": e.id,
        "source": e.source,
        "kind": e.kind,
        "at": e.at,
        "ip": e.ip,
        "account": e.account,
        "own": e.own,
        "queue_id": e.queue_id,
        "message_id": e.message_id,
        "campaign": e.campaign,
        "symbols": list(e.symbols),
        "subject": e.subject,
        "infection": e.infection,
        "weight": e.weight,
        "raw_ref": e.raw_ref,
    }


class CasesApi:
    """The handlers, over one Desk per worker process (opened on first use)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.users = Users(config.users)
        self._desk: Desk | None = None
        self._pid = 0

    @property
    def desk(self) -> Desk:
        if self._desk is None or self._pid != os.getpid():
            store = open_case_store(self.config)
            self._desk = Desk(store, remedies=load_remedies(self.config, store))
            self._pid = os.getpid()
        return self._desk

    async def _user(self, request: Request, role: Role) -> User | JSONResponse:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _error(401, "credentials needed: Authorization: Bearer NAME:PASSWORD")
        user = await asyncio.to_thread(self.users.check_token, token.strip())
        if user is None:
            return _error(401, "wrong credentials")
        if not user.may(role):
            return _error(403, f"{user.name} lacks the role {role}")
        return user

    async def list_cases(self, request: Request) -> Response:
        user = await self._user(request, "view")
        if isinstance(user, Response):
            return user
        query = request.query_params
        states = query.getlist("state")
        bad = [s for s in states if s not in STATES]
        if bad:
            return _error(400, f"state: one of {', '.join(STATES)}, not {bad[0]!r}")
        try:
            limit = int(query["limit"]) if "limit" in query else None
        except ValueError:
            return _error(400, "limit: a whole number")
        if limit is not None and not 0 < limit <= MAX_LIMIT:
            return _error(400, f"limit: from 1 to {MAX_LIMIT}")
        try:
            cases = await self.desk.store.list(
                states=[cast(State, s) for s in states],
                account=query.get("account"),
                ip=query.get("ip"),
                campaign=query.get("campaign"),
                limit=limit,
            )
        except StoreError as exc:
            return _error(503, str(exc))
        now, half = time.time(), self.config.zombies.half_life_s
        return JSONResponse({"cases": [case_body(c, now, half) for c in cases]})

    async def get_case(self, request: Request) -> Response:
        user = await self._user(request, "view")
        if isinstance(user, Response):
            return user
        try:
            count = min(int(request.query_params.get("evidence", "50")), MAX_LIMIT)
        except ValueError:
            return _error(400, "evidence: a whole number")
        try:
            case = await self.desk.store.get(request.path_params["case_id"])
            if case is None:
                return _error(404, "no such case")
            evidence = await self.desk.store.evidence(case.id, limit=max(0, count))
        except StoreError as exc:
            return _error(503, str(exc))
        body = case_body(case, time.time(), self.config.zombies.half_life_s)
        body["transitions"] = _transitions(case)
        body["evidence"] = [_evidence(e) for e in evidence]
        return JSONResponse(body)

    async def raw(self, request: Request) -> Response:
        user = await self._user(request, "view")
        if isinstance(user, Response):
            return user
        case_id, ref = request.path_params["case_id"], request.path_params["ref"]
        try:
            case = await self.desk.store.get(case_id)
            refs = {e.raw_ref for e in await self.desk.store.evidence(case_id)} if case else set()
            data = await self.desk.store.raw(ref) if ref in refs else None
        except StoreError as exc:
            return _error(503, str(exc))
        if data is None:  # only this case's own originals
            return _error(404, "no such original on this case")
        return Response(data, media_type="message/rfc822")

    async def _body(self, request: Request) -> dict[str, Any] | JSONResponse:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return _error(413, "body too large")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return _error(400, "the body is not JSON")
        if not isinstance(body, dict) or not isinstance(body.get("reason", ""), str):
            return _error(400, 'expected {"state": ..., "reason": "..."}')
        if not str(body.get("reason", "")).strip():
            return _error(400, "reason: say why (it is logged on the case)")
        return body

    async def transition(self, request: Request) -> Response:
        user = await self._user(request, "admin")
        if isinstance(user, Response):
            return user
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        state = body.get("state")
        if state not in STATES:
            return _error(400, f"state: one of {', '.join(STATES)}")
        case_id = request.path_params["case_id"]
        try:
            case = await self.desk.transition(case_id, state, user.name, body["reason"].strip())
        except CaseError as exc:
            status = 404 if "no case" in str(exc) else 409
            return _error(status, str(exc))
        except StoreError as exc:
            return _error(503, str(exc))
        out = case_body(case, time.time(), self.config.zombies.half_life_s)
        out["transitions"] = _transitions(case)
        return JSONResponse(out)

    async def note(self, request: Request) -> Response:
        user = await self._user(request, "admin")
        if isinstance(user, Response):
            return user
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        try:
            case = await self.desk.note(
                request.path_params["case_id"], user.name, body["reason"].strip()
            )
        except CaseError as exc:
            return _error(404, str(exc))
        except StoreError as exc:
            return _error(503, str(exc))
        out = case_body(case, time.time(), self.config.zombies.half_life_s)
        out["transitions"] = _transitions(case)
        return JSONResponse(out)


def cases_routes(config: Config) -> list[BaseRoute]:
    """The routes of the cases API, for the HTTP listener's ``extra_routes``."""
    api = CasesApi(config)
    return [
        Route("/api/v1/cases", api.list_cases, methods=["GET"]),
        Route("/api/v1/cases/{case_id}", api.get_case, methods=["GET"]),
        Route("/api/v1/cases/{case_id}/raw/{ref}", api.raw, methods=["GET"]),
        Route("/api/v1/cases/{case_id}/transition", api.transition, methods=["POST"]),
        Route("/api/v1/cases/{case_id}/note", api.note, methods=["POST"]),
    ]


_CASE = {
    "type": "object",
    "required": ["id", "account", "ips", "state", "opened_at", "score", "evidence_count"],
    "properties": {
        "id": {"type": "string"},
        "account": {"type": ["string", "null"]},
        "ip": {"type": ["string", "null"], "description": "the address of an address case"},
        "ips": {"type": "array", "items": {"type": "string"}},
        "state": {"type": "string", "enum": list(STATES)},
        "opened_at": {"type": "number", "description": "epoch seconds"},
        "updated_at": {"type": "number"},
        "score": {"type": "number", "description": "decayed to now"},
        "evidence_count": {"type": "integer"},
        "kinds": {"type": "object", "additionalProperties": {"type": "integer"}},
        "campaigns": {"type": "array", "items": {"type": "string"}},
        "first_seen": {"type": "number"},
        "last_seen": {"type": "number"},
        "clean_count": {"type": "integer"},
    },
}
_DETAIL = {
    "allOf": [
        _CASE,
        {
            "type": "object",
            "properties": {
                "transitions": {"type": "array", "items": {"type": "object"}},
                "evidence": {"type": "array", "items": {"type": "object"}},
            },
        },
    ]
}


def _ok(schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": "OK", "content": {"application/json": {"schema": schema}}}


def _param(name: str, where: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": {"type": "string"},
    }


_ERRORS = {code: {"description": why} for code, why in (("401", "no or wrong credentials"),)}
_ID = _param("case_id", "path", "the case id")
_MOVE = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["reason"],
                "properties": {
                    "state": {"type": "string", "enum": list(STATES)},
                    "reason": {"type": "string"},
                },
            }
        }
    },
}

# The cases' part of the OpenAPI document (merged into /openapi.json).
CASES_PATHS: dict[str, Any] = {
    "/api/v1/cases": {
        "get": {
            "summary": "Zombie cases, newest first (role view)",
            "security": [{"bearer": []}],
            "parameters": [
                _param("state", "query", "open, notified, walled, released, closed (repeat)"),
                _param("account", "query", "the case of this account"),
                _param("ip", "query", "cases that used this address"),
                _param("campaign", "query", "cases that sent this campaign"),
                _param("limit", "query", "at most this many"),
            ],
            "responses": {
                "200": _ok(
                    {"type": "object", "properties": {"cases": {"type": "array", "items": _CASE}}}
                ),
                **_ERRORS,
                "403": {"description": "the user lacks the role view"},
            },
        }
    },
    "/api/v1/cases/{case_id}": {
        "get": {
            "summary": "One case: its transitions and evidence (role view)",
            "security": [{"bearer": []}],
            "parameters": [_ID, _param("evidence", "query", "pieces of evidence (50)")],
            "responses": {"200": _ok(_DETAIL), **_ERRORS, "404": {"description": "no case"}},
        }
    },
    "/api/v1/cases/{case_id}/raw/{ref}": {
        "get": {
            "summary": "The raw original of one piece of the case's evidence (role view)",
            "security": [{"bearer": []}],
            "parameters": [_ID, _param("ref", "path", "the evidence's raw_ref")],
            "responses": {
                "200": {"description": "the report", "content": {"message/rfc822": {}}},
                **_ERRORS,
                "404": {"description": "no such original on this case"},
            },
        }
    },
    "/api/v1/cases/{case_id}/transition": {
        "post": {
            "summary": "Move a case (notify, wall, release, close) and run its remedy (admin)",
            "security": [{"bearer": []}],
            "parameters": [_ID],
            "requestBody": _MOVE,
            "responses": {
                "200": _ok(_DETAIL),
                **_ERRORS,
                "403": {"description": "the user lacks the role admin"},
                "404": {"description": "no case"},
                "409": {"description": "the case's state does not allow the move"},
            },
        }
    },
    "/api/v1/cases/{case_id}/note": {
        "post": {
            "summary": "Log a note on a case (admin)",
            "security": [{"bearer": []}],
            "parameters": [_ID],
            "requestBody": _MOVE,
            "responses": {"200": _ok(_DETAIL), **_ERRORS, "404": {"description": "no case"}},
        }
    },
}
