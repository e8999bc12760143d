"""What a worker does with each accepted connection: the allow list, the caps, the refusal.

Every front end's connections pass here first.  A client outside the listener's ``allow``
networks is closed before a byte is read.  Then the listener's connection table admits
it, closing idle or slow connections to make room (``frontends/connections.py``); a
connection it cannot admit is answered with the protocol's tempfail and closed.  The
sweeper closes connections past their deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from seawall.addresses import Networks
from seawall.frontends.connections import Conn, Table
from seawall.quietlog import QuietLog
from seawall.serve.balance import Fairness

log = logging.getLogger("seawall.worker")
_quiet = QuietLog(log)

# How long a refused client gets to read its tempfail (and the server to drop its request).
REFUSE_S = 2.0
SWEEP_S = 0.5

# A stream front end: serve one connection, kept in its phase through ``conn``; with
# ``refuse`` set, answer the protocol's tempfail and close.
StreamHandler = Callable[
    [asyncio.StreamReader, asyncio.StreamWriter, Conn | None, bool], Awaitable[None]
]


def client_of(addr: Any) -> str | None:
    """The peer's address from ``accept``; None on a unix socket."""
    return str(addr[0]) if isinstance(addr, tuple) and addr else None


class Gate:
    """One listener in one worker: its allow list, its connection table, its fairness."""

    def __init__(self, name: str, table: Table, allow: Networks | None, fair: Fairness) -> None:
        self.name = name
        self.table = table
        self.allow = allow
        self.fair = fair

    def allowed(self, sock: socket.socket, client: str | None) -> bool:
        """False (and the socket closed, unread) for a client outside the allow list."""
        if self.allow is None or client is None or self.allow.contains(client):
            return True
        _quiet.warning(
            f"deny-{self.name}",
            "%s: connection from %s refused: not in serve.%s.allow",
            self.name,
            client,
            self.name,
        )
        sock.close()
        self.fair.closed()
        return False

    def refused(self, client: str | None, why: str) -> None:
        _quiet.warning(
            f"full-{self.name}",
            "%s: no room for a connection from %s (%s); answered with a tempfail",
            self.name,
            client or "a unix socket",
            why,
        )


class Streams:
    """Connections of a stream front end (milter, spamd, policy), each served by a task."""

    def __init__(self, gate: Gate, handler: StreamHandler) -> None:
        self.gate = gate
        self.handler = handler
        self.tasks: set[asyncio.Task[None]] = set()

    def accept(self, sock: socket.socket, addr: Any) -> None:
        client = client_of(addr)
        if not self.gate.allowed(sock, client):
            return
        why = self.gate.table.admit(client)
        task = asyncio.ensure_future(self._serve(sock, client, why))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _serve(self, sock: socket.socket, client: str | None, why: str) -> None:
        table = self.gate.table
        conn = Conn(client, close=sock.close)
        admitted = not why
        if admitted:
            table.add(conn)
        else:
            self.gate.refused(client, why)
        try:
            reader, writer = await asyncio.open_connection(sock=sock, limit=2**16)
            conn.close = writer.transport.abort
            try:
                if admitted:
                    await self.handler(reader, writer, conn, False)
                else:
                    async with asyncio.timeout(REFUSE_S):
                        await self.handler(reader, writer, None, True)
            finally:
                writer.close()
        except (OSError, TimeoutError) as exc:
            log.debug("%s: connection ended early: %s", self.gate.name, exc)
            sock.close()
        finally:
            table.remove(conn)
            self.gate.fair.closed()


async def refuse_with(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, reply: bytes
) -> None:
    """Answer ``reply`` at once, then read and drop what the client sends until it closes
    (within the caller's deadline): closing with its request unread would reset the
    connection, and the client might never see the reply."""
    writer.write(reply)
    await writer.drain()
    with contextlib.suppress(OSError):
        writer.write_eof()
    while await reader.read(65536):
        pass


async def sweep_forever(tables: list[Table]) -> None:
    """Close the connections past their deadline, twice a second."""
    while True:
        await asyncio.sleep(SWEEP_S)
        for table in tables:
            table.sweep()


def raise_open_files() -> int:
    """Raise this process's open-file limit to the hard limit (as nginx's
    worker_rlimit_nofile): each connection is a descriptor, and a soft limit of 1024
    would stop the worker accepting long before its connection caps."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft
