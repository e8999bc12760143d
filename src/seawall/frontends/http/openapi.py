"""The OpenAPI 3.1 document of Seawall's JSON API (served at /openapi.json)."""

from __future__ import annotations

from typing import Any

from seawall import __version__
from seawall.frontends.http.cases_api import CASES_PATHS
from seawall.frontends.http.garden import GARDEN_PATHS

_RAW = {
    "required": True,
    "description": "The message as received: RFC 5322 bytes, headers and body",
    "content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}},
}
_ERROR = {
    "description": "Error",
    "content": {
        "application/json": {
            "schema": {"type": "object", "properties": {"error": {"type": "string"}}}
        }
    },
}


def _query(name: str, description: str, *, many: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if many:
        schema = {"type": "array", "items": schema}
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


_SYMBOL = {
    "type": "object",
    "required": ["name", "score", "options", "description"],
    "properties": {
        "name": {"type": "string"},
        "score": {"type": "number"},
        "metric_score": {"type": "number"},
        "options": {"type": "array", "items": {"type": "string"}},
        "description": {"type": "string"},
    },
}
_VERDICT = {
    "type": "object",
    "required": ["action", "score", "required_score", "symbols", "language", "campaign"],
    "properties": {
        "action": {
            "type": "string",
            "enum": [
                "reject",
                "quarantine",
                "soft reject",
                "rewrite subject",
                "add header",
                "greylist",
                "no action",
            ],
        },
        "score": {"type": "number"},
        "required_score": {"type": "number"},
        "is_skipped": {"type": "boolean"},
        "skipped": {"type": "string", "description": "why the message was not scanned"},
        "symbols": {"type": "object", "additionalProperties": _SYMBOL},
        "language": {"type": ["string", "null"], "description": "ISO 639-1 code"},
        "campaign": {"type": ["string", "null"], "description": "campaign id, if any"},
        "message-id": {"type": "string"},
        "time_real": {"type": "number", "description": "seconds spent scanning"},
    },
}
_STATS = {
    "type": "object",
    "properties": {
        name: {"type": kind}
        for name, kind in (
            ("version", "string"),
            ("pid", "integer"),
            ("uptime", "number"),
            ("scanned", "integer"),
            ("learned", "integer"),
            ("learned_spam", "integer"),
            ("learned_ham", "integer"),
            ("actions", "object"),
            ("skipped", "object"),
            ("in_flight", "integer"),
            ("avg_ms", "number"),
            ("dnsbl", "object"),  # with the dnsbl detector: its cache and query counters
        )
    },
}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Seawall",
        "version": __version__,
        "description": "Scan, learn and inspect. Rspamd clients use /checkv2, /learnspam, "
        "/learnham, /ping and /stat on the same port.",
    },
    "paths": {
        "/api/v1/scan": {
            "post": {
                "summary": "Scan one message and return its verdict",
                "parameters": [
                    _query("ip", "the SMTP client's IP address"),
                    _query("helo", "the HELO/EHLO name"),
                    _query("from", "the envelope sender"),
                    _query("rcpt", "an envelope recipient (repeat)", many=True),
                    _query("queue_id", "the MTA's queue id, for the logs"),
                    _query("hostname", "the client's reverse DNS name"),
                    _query("user", "the SASL login of an authenticated sender"),
                ],
                "requestBody": _RAW,
                "responses": {"200": _json(_VERDICT), "413": _ERROR},
            }
        },
        "/api/v1/learn/{label}": {
            "post": {
                "summary": "Teach the classifier a message as spam or ham",
                "parameters": [
                    {
                        "name": "label",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": ["spam", "ham"]},
                    }
                ],
                "requestBody": _RAW,
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "learned": {"type": "boolean"},
                                "label": {"type": "string"},
                            },
                        }
                    ),
                    "403": _ERROR,
                    "404": _ERROR,
                    "413": _ERROR,
                    "503": _ERROR,
                },
            }
        },
        "/api/v1/forget": {
            "post": {
                "summary": "Unlearn a message",
                "requestBody": _RAW,
                "responses": {
                    "200": _json(
                        {"type": "object", "properties": {"forgotten": {"type": "boolean"}}}
                    ),
                    "413": _ERROR,
                    "503": _ERROR,
                },
            }
        },
        "/api/v1/stats": {
            "get": {
                "summary": "Counters of the worker that answers",
                "responses": {"200": _json(_STATS)},
            }
        },
        "/api/v1/health": {
            "get": {
                "summary": "Liveness",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "status": {"type": "string"},
                                "version": {"type": "string"},
                            },
                        }
                    )
                },
            }
        },
    },
}
OPENAPI["paths"].update(CASES_PATHS)  # the zombie cases (cases_api.py)
OPENAPI["paths"].update(GARDEN_PATHS)  # the walled garden and the zombie feed (garden.py)
OPENAPI.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
    "type": "http",
    "scheme": "bearer",
    "description": "NAME:PASSWORD of a [users.NAME] user",
}
