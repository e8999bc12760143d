"""The policy's DEFER and REJECT lines: one per address per minute, with the count held back."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest

from seawall import quietlog
from seawall.config import Config, PolicySettings, ServeSettings
from seawall.frontends.policy import serve_policy_connection
from seawall.frontends.policy.server import RepeatLog
from seawall.store import MemoryStore


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    return now


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "test.policy"]


def test_one_line_per_address_per_interval(
    clock: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    repeats = RepeatLog(logging.getLogger("test.policy"), interval_s=60.0)
    with caplog.at_level(logging.INFO, logger="test.policy"):
        for n in range(100):  # a zombie retrying every half second, and a neighbour
            repeats.info("198.51.100.7", "DEFER %s #%d", "198.51.100.7", n)
            repeats.info("198.51.100.8", "DEFER %s", "198.51.100.8")
            clock[0] += 0.5
        clock[0] += 10.0
        repeats.info("198.51.100.7", "DEFER %s #%d", "198.51.100.7", 100)
    assert lines(caplog) == [
        "DEFER 198.51.100.7 #0",
        "DEFER 198.51.100.8",
        "DEFER 198.51.100.7 #100 (and 99 more from this address since the last report)",
        # The neighbour went quiet: its count comes with the sweep, a minute after its line.
        "policy client=198.51.100.8: 99 more answers like the last one logged, 60s ago",
    ]


def test_addresses_that_stop_are_summed_up_and_forgotten(
    clock: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    repeats = RepeatLog(logging.getLogger("test.policy"), interval_s=60.0)
    with caplog.at_level(logging.INFO, logger="test.policy"):
        for _ in range(5):
            repeats.info("192.0.2.1", "DEFER 192.0.2.1")
            repeats.info("192.0.2.2", "DEFER 192.0.2.2")  # once more than it is logged
            clock[0] += 1.0
        repeats.info("192.0.2.3", "DEFER 192.0.2.3")
        clock[0] += 70.0
        repeats.info("192.0.2.4", "DEFER 192.0.2.4")  # the first answer after a minute
    assert lines(caplog) == [
        "DEFER 192.0.2.1",
        "DEFER 192.0.2.2",
        "DEFER 192.0.2.3",
        "DEFER 192.0.2.4",
        "policy client=192.0.2.1: 4 more answers like the last one logged, 75s ago",
        "policy client=192.0.2.2: 4 more answers like the last one logged, 75s ago",
    ]
    assert set(repeats._kinds) == {"192.0.2.4"}  # the table holds about one interval


def test_reset_clears_it(clock: list[float], caplog: pytest.LogCaptureFixture) -> None:
    repeats = RepeatLog(logging.getLogger("test.policy"))
    with caplog.at_level(logging.INFO, logger="test.policy"):
        repeats.info("a", "one")
        repeats.info("a", "two")
        quietlog.reset()
        repeats.info("a", "three")
    assert lines(caplog) == ["one", "three"]


async def test_a_flood_from_one_address_logs_one_line(caplog: pytest.LogCaptureFixture) -> None:
    """The postmaster's replay: 68,479 DEFER lines for 8,901 messages.  Now a flood of one
    address is one line a minute, and every other address still gets its own line."""
    caplog.set_level(logging.INFO, "seawall.policy")
    config = Config(serve=ServeSettings(policy=PolicySettings(ip_max_connections=2)))
    store = MemoryStore()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_policy_connection(reader, writer, store, config, clock=lambda: 1e6)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    def smtpd() -> list[str]:
        answers = []
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            pending = b""
            for n in range(50):
                ip = "198.51.100.7" if n < 40 else "198.51.100.8"
                request = (
                    f"request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address={ip}\n"
                    f"instance=t{n}\n\n"
                )
                sock.sendall(request.encode())
                while b"\n\n" not in pending:
                    pending += sock.recv(4096)
                reply, _, pending = pending.partition(b"\n\n")
                answers.append(reply.decode())
        return answers

    answers = await asyncio.to_thread(smtpd)
    server.close()
    await server.wait_closed()
    assert sum(a.startswith("action=DEFER") for a in answers) == 38 + 8
    logged = [r.getMessage() for r in caplog.records if "action=DEFER" in r.getMessage()]
    assert len(logged) == 2
    assert "client=198.51.100.7 reason=ip_connections ip_conn=3" in logged[0]
    assert "client=198.51.100.8 reason=ip_connections ip_conn=3" in logged[1]
