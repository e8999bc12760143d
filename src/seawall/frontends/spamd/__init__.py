"""SpamAssassin's spamd protocol, for spamc and the many filters and MDAs that speak it.

codec.py   sans-I/O: RequestParser (bytes -> Request), encode_* (reply -> bytes)
server.py  serve_spamd_connection: read one request, ask the Scanner, reply, close
"""

from __future__ import annotations

from seawall.frontends.spamd.codec import (
    Command,
    ExitCode,
    Request,
    RequestParser,
    ScanReply,
    encode_error,
    encode_pong,
    encode_result,
    encode_tell,
)
from seawall.frontends.spamd.server import answer, serve_spamd_connection

__all__ = [
    "Command",
    "ExitCode",
    "Request",
    "RequestParser",
    "ScanReply",
    "answer",
    "encode_error",
    "encode_pong",
    "encode_result",
    "encode_tell",
    "serve_spamd_connection",
]
