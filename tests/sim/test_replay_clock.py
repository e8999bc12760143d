"""The replay's clock and the policy service's windows, on real time.

``replay`` sends each message at its simulated time divided by ``speed`` and retries a
deferred one after ``RETRY_AFTER_S / speed`` real seconds.  A policy service with
``replay_speed`` set to the same speed counts its windows in simulated seconds: a relay
sending ten messages a simulated minute passes, a bot's burst does not.  On the wall clock
(replay_speed 1) the relay's whole run falls into one window, as in issue 19.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from seawall.config import Config, PolicySettings, ServeSettings
from seawall.frontends.policy import serve_policy_connection
from seawall.message.model import Envelope
from seawall.sim.model import SimMessage, Truth
from seawall.sim.replay import Attempt, Outcome, replay
from seawall.store import MemoryStore

SPEED = 60.0  # a simulated minute a second
START = 1_795_780_800.0
RELAY, BOT = "198.51.100.1", "203.0.113.9"


def message(n: int, at: float, ip: str) -> SimMessage:
    kind = "ham" if ip == RELAY else "spam"
    envelope = Envelope(client_ip=ip, rcpts=("user0001@example.net",), queue_id=f"Q{n}")
    truth = Truth(f"m{n}@sim", kind, None, ip, None, kind == "spam", at)
    return SimMessage(at, envelope, b"Subject: x\n\nx\n", truth)


def schedule() -> list[SimMessage]:
    """Two simulated minutes: the relay every 6 s (10 a minute), a bot's 20 copies in 20 s."""
    relay = [(START + 6.0 * i, RELAY) for i in range(20)]
    bot = [(START + 30.0 + i, BOT) for i in range(20)]
    return [message(n, at, ip) for n, (at, ip) in enumerate(sorted(relay + bot))]


class PolicyTransport:
    """Asks the policy service at each RCPT, as Postfix's smtpd would for the client."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sent: list[tuple[float, float]] = []  # (simulated time, real time)

    def __call__(self, message: SimMessage, rcpts: tuple[str, ...]) -> Attempt:
        self.sent.append((message.at, time.monotonic()))
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            attributes = {
                "request": "smtpd_access_policy",
                "protocol_state": "RCPT",
                "client_address": message.envelope.client_ip,
                "instance": f"{message.envelope.queue_id}.{time.monotonic_ns()}",
                "recipient": rcpts[0],
            }
            sock.sendall(b"".join(f"{k}={v}\n".encode() for k, v in attributes.items()) + b"\n")
            reply = b""
            while not reply.endswith(b"\n\n"):
                reply += sock.recv(4096)
        action = reply.decode().strip().removeprefix("action=")
        if action.startswith("DEFER"):
            return Attempt(deferred={r: (450, action) for r in rcpts}, code=450, text=action)
        return Attempt(accepted=rcpts, code=250, text="ok")

    def close(self) -> None:
        pass


async def run(replay_speed: float) -> tuple[dict[str, list[Outcome]], PolicyTransport]:
    cfg = Config(serve=ServeSettings(policy=PolicySettings(replay_speed=replay_speed)))
    store = MemoryStore()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_policy_connection(reader, writer, store, cfg)  # the wall clock

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    transport = PolicyTransport(int(server.sockets[0].getsockname()[1]))
    outcomes: dict[str, list[Outcome]] = {RELAY: [], BOT: []}

    def record(n: int, msg: SimMessage, outcome: Outcome) -> None:
        outcomes[msg.envelope.client_ip or ""].append(outcome)

    try:
        await asyncio.to_thread(
            replay, schedule(), transport, record, speed=SPEED, workers=4, retry_after_s=(60.0,)
        )
    finally:
        server.close()
        await server.wait_closed()
    return outcomes, transport


@pytest.mark.parametrize("replay_speed", [SPEED, 1.0])
async def test_policy_windows_follow_the_replay(replay_speed: float) -> None:
    outcomes, transport = await run(replay_speed)
    relay = [o.status for o in outcomes[RELAY]]
    bot = [o.retries for o in outcomes[BOT]]
    assert sum(bot) >= 5  # 20 in a simulated minute: 5 over ip_max_connections (15)
    if replay_speed == SPEED:
        assert relay == ["accepted"] * 20
        assert all(o.retries == 0 for o in outcomes[RELAY])
        # Each retry came a simulated minute later and passed: the window had moved on.
        assert [o.status for o in outcomes[BOT]] == ["accepted"] * 20
    else:
        # The wall clock: two simulated minutes in one real window, both senders deferred.
        assert relay.count("tempfailed") >= 4
    # The replay compressed time as the policy assumes: a message goes out at its simulated
    # time / SPEED after the first, never sooner.
    first_sent: dict[float, float] = {}
    for at, real in transport.sent:
        first_sent.setdefault(at, real)
    t0 = first_sent[START]
    assert all(real - t0 >= (at - START) / SPEED - 0.05 for at, real in first_sent.items())
