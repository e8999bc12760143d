"""uvicorn's httptools protocol under Seawall's connection limits.

uvicorn holds a new connection that sends nothing for ever, lets a request's head grow
without bound (one 300 MB header field is 300 MB of memory), and once ``limit_concurrency``
connections are open answers every request 503, the MTA's included.  This subclass moves
each connection through the phases of :mod:`seawall.frontends.connections` (so idle and
slow ones are timed out, and closed first to make room), counts the bytes of each head
before the parser sees them, and counts its header fields.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from seawall.frontends.connections import IDLE, Conn
from seawall.quietlog import QuietLog

log = logging.getLogger("seawall.http")
_quiet = QuietLog(log)

REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n"
    b"content-length: 34\r\nretry-after: 1\r\nconnection: close\r\n\r\n"
    b"too many connections, retry later\n"
)
_REASONS = {400: b"Bad Request", 431: b"Request Header Fields Too Large"}


@dataclass(frozen=True, slots=True)
class HttpLimits:
    header_timeout_s: float = 10.0  # first byte of a request to the end of its head
    body_timeout_s: float = 60.0  # end of the head to the end of the body
    keepalive_s: float = 30.0  # an idle keep-alive connection
    max_header_bytes: int = 65536  # request line and header fields
    max_headers: int = 100


class _Coalescing:
    """A connection's transport whose writes within one turn of the event loop go out as
    one: uvicorn writes a response's head and its body apart, two sends and two segments
    (each waking the client) for every answer; here they are one, sent at the end of the
    turn (``call_soon``), or at once when the connection is closed."""

    __slots__ = ("_transport", "_pending", "_loop")

    def __init__(self, transport: Any) -> None:  # uvloop's is no asyncio.Transport subclass
        self._transport = transport
        self._pending: list[bytes] = []
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        pending = self._pending
        if pending:
            self._pending = []
            if not self._transport.is_closing():
                self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        size: int = self._transport.get_write_buffer_size()
        return size + sum(map(len, self._pending))

    def __getattr__(self, name: str) -> Any:  # the rest as the transport's own
        return getattr(self._transport, name)


class GuardedHttpProtocol(HttpToolsProtocol):
    """One HTTP connection: uvicorn's protocol, with ``conn`` kept in its phase."""

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        *,
        conn: Conn,
        limits: HttpLimits,
        lost: Callable[[], None],
    ) -> None:
        super().__init__(config=config, server_state=server_state, app_state=app_state)
        self._conn = conn
        self._limits = limits
        self._lost = lost
        self._head = 0  # bytes of the current head so far
        self._in_head = True  # bytes fed now belong to a head (not to a body)
        self._fields = 0
        self._too_many = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(_Coalescing(transport))  # type: ignore[arg-type]
        self._conn.close = self._abort
        self._conn.idle(self._limits.header_timeout_s)  # a client connects to send a request

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost()
        super().connection_lost(exc)

    def _abort(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()
        elif self.transport is not None:
            self.transport.abort()  # a close waiting on a client that does not read

    def data_received(self, data: bytes) -> None:
        if self._conn.phase == IDLE:
            self._conn.reading(self._limits.header_timeout_s)
        limit = self._limits.max_header_bytes
        while self._in_head and data:
            room = limit - self._head
            if room <= 0:
                self._refuse(431, f"request head larger than {limit} bytes")
                return
            piece, data = data[:room], data[room:]
            self._head += len(piece)
            if not self._feed(piece):
                return
        if data:
            self._feed(data)

    def _feed(self, data: bytes) -> bool:
        """Parse ``data``; False once the connection is being closed."""
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(400, "protocol upgrades are not served")
        except httptools.HttpParserError as exc:
            if self._too_many:
                self._refuse(431, f"more than {self._limits.max_headers} header fields")
            else:
                self._refuse(400, f"invalid HTTP request: {exc}")
        return self.transport is not None and not self.transport.is_closing()

    def _refuse(self, status: int, why: str) -> None:
        client = self.client[0] if self.client else "-"
        _quiet.warning(f"refused{status}", "http client=%s refused (%d): %s", client, status, why)
        body = why.encode("ascii", "replace") + b"\n"
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (status, _REASONS[status], len(body), body)
        )
        self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._fields = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields += 1
        if self._fields > self._limits.max_headers:
            self._too_many = True
            raise ValueError("too many header fields")  # the parser stops: a 431
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._conn.reading(self._limits.body_timeout_s)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head, self._head = True, 0
        if self.cycle is not None and self.cycle.response_complete:
            # Answered before its body ended (413, 401): nothing more will be sent.
            self._conn.idle(self._limits.keepalive_s)
        else:
            self._conn.busy()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self.pipeline:
            self._conn.idle(self._limits.keepalive_s)
