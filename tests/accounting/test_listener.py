"""The RFC 2866 listener against FreeRADIUS's own radclient, over loopback."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from seawall.accounting import Record
from seawall.accounting.listener import AccountingProtocol, listen
from seawall.accounting.sqlite import SqliteSessions
from seawall.errors import StoreError

SECRET = "s3cret-of-the-nas"
RADCLIENT = shutil.which("radclient")
pytestmark = pytest.mark.skipif(RADCLIENT is None, reason="radclient (freeradius-utils) missing")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def radclient(port: int, requests: str, secret: str = SECRET) -> tuple[int, str]:
    """Send ``requests`` (attribute lists separated by blank lines) as radclient does; its
    exit status and output.  One try, one second each: a dropped request is no reply."""
    assert RADCLIENT is not None
    proc = await asyncio.create_subprocess_exec(
        RADCLIENT,
        "-x",
        "-r",
        "1",
        "-t",
        "1",
        f"127.0.0.1:{port}",
        "acct",
        secret,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(requests.encode()), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


def request(status: str, sid: str, user: str, ip: str, t: int, extra: str = "") -> str:
    return (
        f'Acct-Status-Type = {status}\nAcct-Session-Id = "{sid}"\nUser-Name = "{user}"\n'
        f"NAS-IP-Address = 192.0.2.1\nFramed-IP-Address = {ip}\nEvent-Timestamp = {t}\n"
        f"{extra}\n"
    )


class Listener:
    def __init__(self, port: int, protocol: AccountingProtocol, sessions: SqliteSessions):
        self.port, self.protocol, self.sessions = port, protocol, sessions


@pytest.fixture
async def listener(tmp_path: Path) -> AsyncIterator[Listener]:
    sessions = SqliteSessions.open(tmp_path / "state.sqlite", retention_s=86400.0 * 30)
    port = free_udp_port()
    transport, protocol = await listen("127.0.0.1", port, SECRET.encode(), sessions.add)
    try:
        yield Listener(port, protocol, sessions)
    finally:
        transport.close()
        await sessions.close()


T = 1795780800


async def test_start_interim_stop_and_accounting_on(listener: Listener) -> None:
    requests = (
        request("Start", "A1", "alice@example.net", "198.19.0.5", T)
        + "\n"
        + request(
            "Interim-Update",
            "B1",
            "bob@example.net",
            "198.19.0.6",
            T + 100,
            "Acct-Session-Time = 40\n",
        )  # fmt: skip
        + "\n"
        + request(
            "Stop",
            "A1",
            "alice@example.net",
            "198.19.0.5",
            T + 300,
            "Acct-Session-Time = 300\nAcct-Terminate-Cause = User-Request\n",
        )  # fmt: skip
        + "\n"
        + request("Start", "C1", "carol@example.net", "198.19.0.5", T + 300)
    )
    code, out = await radclient(listener.port, requests)
    assert code == 0, out
    assert out.count("Received Accounting-Response") == 4
    who = listener.sessions.who
    assert (await who("198.19.0.5", T + 299)).account == "alice@example.net"  # type: ignore[union-attr]
    assert (await who("198.19.0.5", T + 300)).account == "carol@example.net"  # type: ignore[union-attr]
    assert await who("198.19.0.6", T + 59) is None
    assert (await who("198.19.0.6", T + 60)).account == "bob@example.net"  # type: ignore[union-attr]
    code, out = await radclient(
        listener.port,
        "Acct-Status-Type = Accounting-On\nNAS-IP-Address = 192.0.2.1\n"
        f"Event-Timestamp = {T + 500}\n",
    )
    assert code == 0, out
    assert await who("198.19.0.5", T + 500) is None
    assert await who("198.19.0.6", T + 500) is None
    assert listener.protocol.answered == 5


async def test_a_wrong_secret_is_dropped_unanswered(
    listener: Listener, caplog: pytest.LogCaptureFixture
) -> None:
    code, out = await radclient(
        listener.port, request("Start", "A1", "mallory", "198.19.0.9", T), secret="guess"
    )
    assert code != 0
    assert "No reply" in out
    assert await listener.sessions.who("198.19.0.9", T + 1) is None
    assert listener.protocol.dropped == 1
    assert "authenticator does not verify" in caplog.text


async def test_no_answer_for_what_could_not_be_stored(tmp_path: Path) -> None:
    stored: list[Record] = []

    async def failing(records: Sequence[Record]) -> int:
        if not stored:
            stored.append(records[0])  # the first try fails; the NAS's retry is stored
            raise StoreError("the state store is down")
        stored.extend(records)
        return len(records)

    port = free_udp_port()
    transport, protocol = await listen("127.0.0.1", port, SECRET.encode(), failing)
    try:
        code, out = await radclient(port, request("Start", "A1", "alice", "198.19.0.5", T))
        assert code != 0
        assert "No reply" in out
        code, out = await radclient(port, request("Start", "A1", "alice", "198.19.0.5", T))
        assert code == 0, out
        assert protocol.answered == 1
    finally:
        transport.close()


async def test_datagrams_that_are_not_accounting_requests(listener: Listener) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"\x04\x01\x00", ("127.0.0.1", listener.port))  # too short
        sock.sendto(b"\x01" + bytes(40), ("127.0.0.1", listener.port))  # Access-Request
        sock.sendto(b"\x04\x01\x00\x30" + bytes(44), ("127.0.0.1", listener.port))  # bad auth
    # The listener still answers a good request after them.
    code, out = await radclient(listener.port, request("Start", "A1", "a", "198.19.0.5", T))
    assert code == 0, out
    assert listener.protocol.dropped == 3
