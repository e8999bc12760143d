"""replay_speed: the rate windows in simulated seconds, for replays of `seawall simulate`."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

import pytest

from seawall.config import Config, PolicySettings, ServeSettings
from seawall.frontends.policy import serve_policy_connection
from seawall.store import MemoryStore, Store
from seawall.store.history import record_verdict

NOW = 1_008_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def config(**policy: object) -> Config:
    settings = PolicySettings(ip_max_connections=5, **policy)  # type: ignore[arg-type]
    return Config(serve=ServeSettings(policy=settings))


@asynccontextmanager
async def policy_server(
    store: Store, cfg: Config, clock: Callable[[], float]
) -> AsyncIterator[int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_policy_connection(reader, writer, store, cfg, clock=clock)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


@contextmanager
def smtpd(port: int) -> Iterator[Callable[..., str]]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    pending = [b""]

    def ask(**attributes: str) -> str:
        fields = {"request": "smtpd_access_policy", "protocol_state": "RCPT", **attributes}
        sock.sendall(b"".join(f"{k}={v}\n".encode() for k, v in fields.items()) + b"\n")
        while b"\n\n" not in pending[0]:
            pending[0] += sock.recv(4096)
        reply, _, pending[0] = pending[0].partition(b"\n\n")
        return reply.decode().removeprefix("action=")

    try:
        yield ask
    finally:
        sock.close()


def transactions(ask: Callable[..., str], n: int, start: int = 0) -> list[str]:
    return [ask(client_address="198.51.100.7", instance=f"t{i}") for i in range(start, start + n)]


@pytest.mark.parametrize(("speed", "later"), [(12.0, "DUNNO"), (1.0, "DEFER")])
async def test_windows_follow_the_replay_clock(speed: float, later: str) -> None:
    """At --speed 12 a minute of simulated mail takes five real seconds; with replay_speed
    = 12 the window is those five seconds and the DEFER still says 60 (simulated) seconds."""
    clock = Clock()
    async with policy_server(MemoryStore(), config(replay_speed=speed), clock) as port:
        with smtpd(port) as ask:
            answers = await asyncio.to_thread(transactions, ask, 6)
            assert answers[:5] == ["DUNNO"] * 5
            assert answers[5] == (
                "DEFER Too many connections from 198.51.100.7 (6 in 60s), try again later"
            )
            clock.now += 5.0  # a simulated minute at speed 12
            again = await asyncio.to_thread(transactions, ask, 1, 6)
            assert again[0].split(" ")[0] == later


async def test_the_history_stays_on_the_scanners_clock() -> None:
    """The scanners record verdicts on the wall clock with history_window_s; the policy
    reads them on that clock and window whatever replay_speed says."""
    store = MemoryStore()
    for _ in range(3):
        await record_verdict(store, "198.51.100.66", spam=True, now=NOW - 600, window_s=3600.0)
    async with policy_server(store, config(replay_speed=12.0), Clock()) as port:
        with smtpd(port) as ask:
            answer = await asyncio.to_thread(ask, client_address="198.51.100.66", instance="x")
    assert answer == (
        "DEFER Too much spam from 198.51.100.66 (3 of 3 messages in 3600s), try again later"
    )


async def test_a_replay_speed_is_a_warning_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "seawall.policy")
    async with policy_server(MemoryStore(), config(replay_speed=7.0), Clock()) as port:
        for _ in range(2):
            with smtpd(port) as ask:
                assert await asyncio.to_thread(ask, client_address="192.0.2.1") == "DUNNO"
    warnings = [r.getMessage() for r in caplog.records if "replay_speed = 7" in r.getMessage()]
    assert len(warnings) == 1
    assert "for replays of seawall simulate only" in warnings[0]
