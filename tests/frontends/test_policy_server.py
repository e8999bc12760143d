"""The policy server on 127.0.0.1, driven over raw sockets as Postfix's smtpd drives it."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from seawall.config import Config, PolicySettings, ServeSettings
from seawall.errors import StoreError
from seawall.frontends.policy import serve_policy_connection
from seawall.store import FILENAME, MemoryStore, SqliteStore, Store
from seawall.store.history import record_verdict

NOW = 1_008_000.0
LIMITS = {
    "ip_max_connections": 5,
    "ip_max_recipients": 10,
    "net_max_connections": 20,
    "net_max_recipients": 1000,
    "history_defer_spam": 3,
    "history_reject_spam": 6,
}


def config(**policy: Any) -> Config:
    return Config(serve=ServeSettings(policy=PolicySettings(**{**LIMITS, **policy})))


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


Serve = Callable[..., Awaitable[int]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start a policy server on 127.0.0.1:0 over ``store``; returns its port."""
    servers: list[asyncio.Server] = []

    async def start(store: Store, cfg: Config | None = None, clock: Clock | None = None) -> int:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await serve_policy_connection(
                reader, writer, store, cfg or config(), clock=clock or Clock()
            )

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


class Smtpd:
    """One smtpd process's connection to the policy service (blocking, run in a thread)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.pending = b""

    def ask(self, state: str = "RCPT", **attributes: str) -> str:
        fields = {
            "request": "smtpd_access_policy",
            "protocol_state": state,
            "protocol_name": "ESMTP",
            "client_address": "198.51.100.7",
            "helo_name": "PC-7",
            "sender": "bot@example.org",
            "recipient": "user@example.com",
            "recipient_count": "0",
            "sasl_username": "",
            **attributes,
        }
        self.sock.sendall(b"".join(f"{k}={v}\n".encode() for k, v in fields.items()) + b"\n")
        return self.reply()

    def reply(self) -> str:
        while b"\n\n" not in self.pending:
            data = self.sock.recv(4096)
            if not data:
                raise ConnectionError("closed by the policy server")
            self.pending += data
        reply, _, self.pending = self.pending.partition(b"\n\n")
        assert reply.startswith(b"action=")
        return reply.removeprefix(b"action=").decode()

    def transactions(self, clients: Iterable[str], rcpts: int = 1, **extra: str) -> list[str]:
        """One mail transaction per client address (a new instance), ``rcpts`` RCPTs each."""
        answers = []
        for n, ip in enumerate(clients):
            for r in range(rcpts):
                answers.append(
                    self.ask(client_address=ip, instance=f"{ip}.{n}", recipient=f"u{r}@x", **extra)
                )
        return answers

    def close(self) -> None:
        self.sock.close()


async def smtpd(port: int) -> Smtpd:
    return await asyncio.to_thread(Smtpd, port)


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    backend: Store = (
        MemoryStore() if request.param == "memory" else SqliteStore.open(tmp_path / FILENAME)
    )
    yield backend
    await backend.close()


async def test_flood_from_one_ip_is_deferred_after_the_limit(
    serve: Serve, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "seawall.policy")
    port = await serve(store)
    # Two smtpd processes share the flood, as they would: the counts are the store's.
    one, two = await smtpd(port), await smtpd(port)
    answers = await asyncio.to_thread(one.transactions, ["198.51.100.7"] * 3)
    answers += await asyncio.to_thread(two.transactions, ["198.51.100.7"] * 4)
    assert answers[:5] == ["DUNNO"] * 5
    assert answers[5:] == [
        "DEFER Too many connections from 198.51.100.7 (6 in 60s), try again later",
        "DEFER Too many connections from 198.51.100.7 (7 in 60s), try again later",
    ]
    assert await asyncio.to_thread(two.ask, client_address="198.51.100.8") == "DUNNO"
    assert "client=198.51.100.7 reason=ip_connections ip_conn=6" in caplog.text
    one.close()
    two.close()


async def test_the_window_moves_on(serve: Serve) -> None:
    clock = Clock()
    port = await serve(MemoryStore(), clock=clock)
    client = await smtpd(port)
    answers = await asyncio.to_thread(client.transactions, ["198.51.100.7"] * 6)
    assert answers[-1].startswith("DEFER")
    clock.now += 60.0
    assert await asyncio.to_thread(client.ask, instance="later") == "DUNNO"
    client.close()


async def test_many_recipients_in_one_transaction(serve: Serve) -> None:
    port = await serve(MemoryStore())
    client = await smtpd(port)
    answers = await asyncio.to_thread(client.transactions, ["198.51.100.7"], rcpts=12)
    assert answers[:10] == ["DUNNO"] * 10
    assert answers[10] == (
        "DEFER Too many recipients from 198.51.100.7 (11 in 60s), try again later"
    )
    client.close()


async def test_flood_spread_over_a_slash_24(serve: Serve, store: Store) -> None:
    port = await serve(store)
    client = await smtpd(port)
    zombies = [f"203.0.113.{i}" for i in range(1, 31)]  # 30 PCs of one dial-up pool
    answers = await asyncio.to_thread(client.transactions, zombies)
    assert answers[:20] == ["DUNNO"] * 20  # no address is over its own limit of 5
    assert answers[20] == (
        "DEFER Too many connections from 203.0.113.0/24 (21 in 60s), try again later"
    )
    assert len(set(answers[20:])) == 10  # each names the count it saw
    neighbour = await asyncio.to_thread(client.transactions, ["203.0.114.1"])
    assert neighbour == ["DUNNO"]
    client.close()


async def test_ipv6_clients_are_limited_per_slash_64(serve: Serve) -> None:
    port = await serve(MemoryStore())
    client = await smtpd(port)
    hosts = [f"2001:db8:0:7::{i:x}" for i in range(1, 22)]
    answers = await asyncio.to_thread(client.transactions, hosts)
    assert answers[20] == (
        "DEFER Too many connections from 2001:db8:0:7::/64 (21 in 60s), try again later"
    )
    client.close()


async def test_connect_stage_counts_each_smtp_connection_once(serve: Serve) -> None:
    """Called from smtpd_client_restrictions and smtpd_recipient_restrictions both."""
    port = await serve(MemoryStore(), config(ip_max_recipients=1000))
    client = await smtpd(port)

    def sessions() -> list[str]:
        answers = []
        for n in range(6):
            answers.append(client.ask("CONNECT", instance=""))
            for t in range(2):  # two transactions of two recipients each
                answers += [client.ask(instance=f"{n}.{t}", recipient=f"u{r}@x") for r in (1, 2)]
        return answers

    answers = await asyncio.to_thread(sessions)
    assert answers[:25] == ["DUNNO"] * 25
    # The sixth CONNECT is over the limit, and its RCPTs did not add transactions.
    deferred = "DEFER Too many connections from 198.51.100.7 (6 in 60s), try again later"
    assert answers[25:] == [deferred] * 5
    client.close()


async def test_exempt_clients_are_never_limited(serve: Serve) -> None:
    port = await serve(MemoryStore())
    client = await smtpd(port)
    trusted = await asyncio.to_thread(client.transactions, ["127.0.0.1"] * 20, rcpts=2)
    private = await asyncio.to_thread(client.transactions, ["10.0.0.9"] * 20)
    users = await asyncio.to_thread(
        client.transactions, ["198.51.100.7"] * 20, sasl_username="alice"
    )
    assert set(trusted + private + users) == {"DUNNO"}
    # None of that counted: an outsider at the same address starts from zero.
    assert await asyncio.to_thread(client.transactions, ["198.51.100.7"]) == ["DUNNO"]
    client.close()


async def test_spam_history_defers_then_rejects(serve: Serve, store: Store) -> None:
    port = await serve(store)
    client = await smtpd(port)
    ip = "198.51.100.66"

    async def verdicts(spam: bool, n: int) -> None:
        for _ in range(n):
            await record_verdict(store, ip, spam=spam, now=NOW, window_s=3600.0)

    await verdicts(True, 2)
    assert await asyncio.to_thread(client.ask, client_address=ip) == "DUNNO"
    await verdicts(True, 1)
    assert await asyncio.to_thread(client.ask, client_address=ip) == (
        "DEFER Too much spam from 198.51.100.66 (3 of 3 messages in 3600s), try again later"
    )
    await verdicts(True, 3)
    assert await asyncio.to_thread(client.ask, client_address=ip) == (
        "REJECT 5.7.1 Too much spam from 198.51.100.66 (6 of 6 messages in 3600s)"
    )
    await verdicts(False, 2)  # 6 of 8 = 75%, under the 80% share
    assert await asyncio.to_thread(client.ask, client_address=ip) == "DUNNO"
    client.close()


async def test_two_workers_on_one_sqlite_file(serve: Serve, tmp_path: Path) -> None:
    stores = [SqliteStore.open(tmp_path / FILENAME) for _ in range(2)]
    try:
        clients = [await smtpd(await serve(s)) for s in stores]
        answers = []
        for n in range(7):
            answers.append(await asyncio.to_thread(clients[n % 2].ask, instance=f"t{n}"))
        assert answers[:5] == ["DUNNO"] * 5
        assert answers[5].startswith("DEFER Too many connections from 198.51.100.7 (6 in")
        for c in clients:
            c.close()
    finally:
        for s in stores:
            await s.close()


class BrokenStore(MemoryStore):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def incr(self, key: str, *, window_s: float, now: float, amount: int = 1) -> int:
        raise self.error


@pytest.mark.parametrize(
    ("error", "on_store_error", "action"),
    [
        (StoreError("database is locked"), "dunno", "DUNNO"),
        (StoreError("database is locked"), "defer", "DEFER Policy service unavailable"),
        (RuntimeError("bug"), "dunno", "DUNNO"),
        (RuntimeError("bug"), "defer", "DEFER Policy service unavailable"),
    ],
)
async def test_failures_are_answered_and_the_connection_stays(
    serve: Serve,
    error: Exception,
    on_store_error: str,
    action: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = await serve(BrokenStore(error), config(on_store_error=on_store_error))
    client = await smtpd(port)
    for _ in range(2):
        assert (await asyncio.to_thread(client.ask)).startswith(action)
    assert str(error) in caplog.text
    client.close()


async def test_protocol_violation_closes_without_reply(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    port = await serve(MemoryStore())
    client = await smtpd(port)
    assert await asyncio.to_thread(client.ask) == "DUNNO"
    await asyncio.to_thread(client.sock.sendall, b"request=smtpd_access_policy\ngarbage\n\n")
    with pytest.raises(ConnectionError):
        await asyncio.to_thread(client.reply)
    assert "protocol violation" in caplog.text
    client.close()
    again = await smtpd(port)  # the server itself carries on
    assert await asyncio.to_thread(again.ask) == "DUNNO"
    again.close()


async def test_unknown_request_type_is_answered_dunno(serve: Serve) -> None:
    port = await serve(BrokenStore(RuntimeError("never called")))
    client = await smtpd(port)
    assert await asyncio.to_thread(client.ask, request="junk_policy") == "DUNNO"
    client.close()
