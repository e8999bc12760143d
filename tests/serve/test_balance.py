"""Fair accepting: a worker ahead of the least loaded live worker defers, briefly."""

from __future__ import annotations

import asyncio
import os
import socket
import time

from seawall.serve.balance import MAX_DEFER_S, Slots, accept_forever


def test_a_worker_with_more_connections_is_ahead() -> None:
    slots = Slots()
    a, b = slots.fair(slots.claim(set())), slots.fair(slots.claim({0}))
    assert (a.slot, b.slot) == (0, 1)
    assert not a.ahead()
    assert not b.ahead()
    a.opened()
    assert a.ahead()
    assert not b.ahead()
    b.opened()
    assert not a.ahead()
    slots.free(b.slot)  # a dead worker no longer counts
    assert not a.ahead()


def test_counts_are_shared_with_forked_workers() -> None:
    slots = Slots()
    fair = slots.fair(slots.claim(set()))
    pid = os.fork()
    if pid == 0:
        fair.opened()
        fair.opened()
        os._exit(0)
    os.waitpid(pid, 0)
    other = slots.fair(slots.claim({fair.slot}))
    assert other.ahead() is False
    assert fair.ahead() is True


async def test_turn_waits_at_most_max_defer() -> None:
    slots = Slots()
    busy = slots.fair(slots.claim(set()))
    slots.claim({0})
    busy.opened()
    started = time.perf_counter()
    await asyncio.wait_for(busy.turn(), 30)  # a hang guard
    assert time.perf_counter() - started >= MAX_DEFER_S * 0.9  # it waited its turn,
    assert busy.ahead()  # then gave up waiting though the other worker is still behind


async def test_accept_forever_counts_and_hands_over_connections() -> None:
    slots = Slots()
    fair = slots.fair(slots.claim(set()))
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    got: list[socket.socket] = []
    task = asyncio.ensure_future(accept_forever(listener, fair, lambda c, _: got.append(c)))
    clients = [socket.create_connection(listener.getsockname()) for _ in range(3)]
    for _ in range(100):
        if len(got) == 3:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    assert len(got) == 3
    assert slots.fair(fair.slot)._counts[fair.slot] == 3
    for conn in (*got, *clients, listener):
        conn.close()
