"""A slow resolver for benchmarks: a UDP proxy on loopback that holds every query a while.

    .venv/bin/python -m bench.dnsdelay LISTEN_PORT UPSTREAM_PORT DELAY_MS

Each query to 127.0.0.1:LISTEN_PORT is forwarded to 127.0.0.1:UPSTREAM_PORT (rbldnsd)
DELAY_MS later, under an ID of the proxy's own; the answer goes back at once under the
client's ID.  So every answer arrives DELAY_MS later than it would, as from a distant
resolver, without touching the host's network settings.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import Any

import uvloop


class DelayProxy(asyncio.DatagramProtocol):
    def __init__(self, upstream: tuple[str, int], delay_s: float) -> None:
        self.upstream = upstream
        self.delay_s = delay_s
        self.waiting: dict[int, tuple[Any, bytes]] = {}  # proxy ID -> (client, client's ID)
        self.next = 0
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if len(data) < 12:
            return
        if addr == self.upstream:
            entry = self.waiting.pop(int.from_bytes(data[:2], "big"), None)
            if entry is not None:
                self.transport.sendto(entry[1] + data[2:], entry[0])
            return
        self.next = (self.next + 1) & 0xFFFF
        self.waiting[self.next] = (addr, data[:2])
        wire = self.next.to_bytes(2, "big") + data[2:]
        asyncio.get_running_loop().call_later(
            self.delay_s, self.transport.sendto, wire, self.upstream
        )


async def serve(listen: int, upstream: int, delay_ms: int) -> None:
    loop = asyncio.get_running_loop()
    target = ("127.0.0.1", upstream)
    await loop.create_datagram_endpoint(
        lambda: DelayProxy(target, delay_ms / 1000), local_addr=("127.0.0.1", listen)
    )
    await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> int:
    listen, upstream, delay_ms = (int(a) for a in (argv or sys.argv[1:]))
    uvloop.run(serve(listen, upstream, delay_ms))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
