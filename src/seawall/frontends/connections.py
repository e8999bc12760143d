"""Open connections of one listener in one worker: caps, deadlines, and who is closed first.

A couple of thousand sockets that connect and say nothing, or trickle a byte a second,
must not deny service to the MTA.  Each connection is in one phase:

- ``idle``: waiting for a request (a keep-alive HTTP connection, a milter connection
  between SMTP commands, a policy connection between requests);
- ``reading``: a request has begun and must be complete by its deadline (the header
  timeout, then the body timeout): bytes that trickle in never extend it, as nginx's
  ``client_header_timeout``;
- ``busy``: a complete request being answered (its scan is bounded by the budget).

The worker's sweeper closes every idle or reading connection past its deadline.  At the
cap (``max_connections``), a new connection makes room by closing the connection that
has been idle or reading longest; only when every connection is busy is the new one
refused with the protocol's tempfail.  A cap per client address stops one address from
taking every slot, but is no defence alone (a botnet has many addresses): making room is.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

IDLE, READING, BUSY = "idle", "reading", "busy"


@dataclass(eq=False, slots=True)
class Conn:
    """One connection as the limits see it; the front end moves it between phases."""

    client: str | None  # the peer's address; None on a unix socket
    close: Callable[[], None]  # closes the connection now (the sweeper, eviction)
    table: Table | None = None
    phase: str = IDLE
    deadline: float = float("inf")
    closed_by: str = ""  # "timeout" or "evicted" once the limits closed it

    def idle(self, timeout_s: float) -> None:
        """Waiting for the next request, for at most ``timeout_s``."""
        self._enter(IDLE, timeout_s)

    def reading(self, timeout_s: float) -> None:
        """A request (or its next part: the body after the head) has begun: it must be in
        within ``timeout_s``, however slowly its bytes come."""
        self._enter(READING, timeout_s)

    def busy(self) -> None:
        """The request is in and being answered: not closed to make room."""
        self._enter(BUSY, None)

    def _enter(self, phase: str, timeout_s: float | None) -> None:
        self.phase = phase
        self.deadline = float("inf") if timeout_s is None else time.monotonic() + timeout_s
        if self.table is not None:
            self.table._moved(self)


@dataclass(slots=True)
class Table:
    """The connections of one listener in one worker."""

    max_connections: int
    max_per_client: int
    conns: set[Conn] = field(default_factory=set)
    # Idle and reading connections, the longest in their phase first: the eviction order.
    _waiting: OrderedDict[Conn, None] = field(default_factory=OrderedDict)
    _per_client: dict[str | None, int] = field(default_factory=dict)
    evicted: int = 0
    timed_out: int = 0
    refused: int = 0

    def admit(self, client: str | None) -> str:
        """ "" if a new connection from ``client`` may be served (after making room for it
        if the table is full), else why not: refuse it (tempfail and close)."""
        if client is not None and self._per_client.get(client, 0) >= self.max_per_client:
            self.refused += 1
            return f"{self.max_per_client} connections from {client} already"
        while len(self.conns) >= self.max_connections:
            if not self._waiting:
                self.refused += 1
                return f"{len(self.conns)} connections open, every one busy"
            victim = next(iter(self._waiting))
            self.evicted += 1
            self._close(victim, "evicted")
        return ""

    def add(self, conn: Conn) -> None:
        conn.table = self
        self.conns.add(conn)
        self._per_client[conn.client] = self._per_client.get(conn.client, 0) + 1
        self._moved(conn)

    def remove(self, conn: Conn) -> None:
        """The connection ended (whoever closed it); safe to call twice."""
        if conn not in self.conns:
            return
        self.conns.discard(conn)
        self._waiting.pop(conn, None)
        left = self._per_client[conn.client] - 1
        if left:
            self._per_client[conn.client] = left
        else:
            del self._per_client[conn.client]
        conn.table = None

    def sweep(self, now: float | None = None) -> int:
        """Close the idle and reading connections past their deadline; how many."""
        now = time.monotonic() if now is None else now
        late = [conn for conn in self._waiting if conn.deadline <= now]
        for conn in late:
            self.timed_out += 1
            self._close(conn, "timeout")
        return len(late)

    def _moved(self, conn: Conn) -> None:
        if conn not in self.conns:
            return
        self._waiting.pop(conn, None)
        if conn.phase != BUSY:
            self._waiting[conn] = None  # to the end: the newest in its phase

    def _close(self, conn: Conn, why: str) -> None:
        conn.closed_by = why
        self.remove(conn)
        conn.close()

    def stats(self) -> dict[str, int]:
        return {
            "open": len(self.conns),
            "waiting": len(self._waiting),
            "evicted": self.evicted,
            "timed_out": self.timed_out,
            "refused": self.refused,
        }
