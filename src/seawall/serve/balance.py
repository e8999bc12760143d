"""Spread connections evenly over the workers that share a listening socket.

Left to the kernel, whichever worker wakes first accepts every connection
waiting in the backlog, so a burst of keep-alive connections (an HTTP client
pool, Postfix's smtpd processes) can pile onto one worker while another idles.
Here each worker accepts one connection at a time, and while it holds more
open connections than the least loaded live worker it waits a moment (at most
``MAX_DEFER_S``) so that one can take the next.  The counts live in shared
memory that the supervisor creates before forking.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from multiprocessing.sharedctypes import RawArray
from typing import Any

from seawall.quietlog import QuietLog

log = logging.getLogger("seawall.worker")
_quiet = QuietLog(log)

MAX_SLOTS = 128
MAX_DEFER_S = 0.005
_STEP_S = 0.0005


class Slots:
    """Per-worker open-connection counts, and which slots hold a live worker."""

    def __init__(self) -> None:
        self._counts: Any = RawArray("q", MAX_SLOTS)
        self._live: Any = RawArray("b", MAX_SLOTS)

    def claim(self, taken: set[int]) -> int:
        """A free slot for a new worker (the supervisor calls this before forking)."""
        for slot in range(MAX_SLOTS):
            if slot not in taken:
                self._counts[slot] = 0
                self._live[slot] = 1
                return slot
        raise RuntimeError(f"more than {MAX_SLOTS} workers")

    def free(self, slot: int) -> None:
        """The worker in ``slot`` exited: it no longer counts."""
        self._live[slot] = 0
        self._counts[slot] = 0

    def fair(self, slot: int) -> Fairness:
        return Fairness(self, slot)


class Fairness:
    """One worker's view: count its connections, and defer accepting while it has more."""

    def __init__(self, slots: Slots, slot: int) -> None:
        self._counts = slots._counts
        self._live = slots._live
        self.slot = slot

    def opened(self) -> None:
        self._counts[self.slot] += 1

    def closed(self) -> None:
        self._counts[self.slot] -= 1

    def ahead(self) -> bool:
        """True while another live worker has fewer open connections than this one."""
        mine = self._counts[self.slot]
        live, counts = self._live, self._counts
        return any(live[i] and counts[i] < mine for i in range(MAX_SLOTS) if i != self.slot)

    async def turn(self) -> None:
        waited = 0.0
        while waited < MAX_DEFER_S and self.ahead():
            await asyncio.sleep(_STEP_S)
            waited += _STEP_S


async def accept_forever(
    sock: socket.socket, fair: Fairness, on_accept: Callable[[socket.socket, Any], None]
) -> None:
    """Accept connections on a shared listening socket one at a time, fairly;
    ``on_accept(conn, address)`` takes each."""
    loop = asyncio.get_running_loop()
    while True:
        await fair.turn()
        try:
            conn, address = await loop.sock_accept(sock)
        except OSError as exc:
            # EMFILE and friends: the kernel keeps the connection queued; try again soon.
            _quiet.warning("accept", "accept on %s failed: %s", sock.getsockname(), exc)
            await asyncio.sleep(0.1)
            continue
        fair.opened()
        try:
            on_accept(conn, address)
        except Exception:
            fair.closed()
            conn.close()
            log.exception("could not start serving a connection")
