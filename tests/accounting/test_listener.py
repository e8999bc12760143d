"""The RFC 2866 listener against FreeRADIUS's own radclient, over loopback."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from seawall.accounting import Record
from seawall.accounting.clients import NasSecrets, nas_secrets
from seawall.accounting.listener import AccountingProtocol, listen
from seawall.accounting.sqlite import SqliteSessions
from seawall.config import AccountingClient, AccountingSettings, load_config
from seawall.errors import ConfigError, StoreError
from seawall.serve.accounting import listening

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


async def test_a_secret_per_nas_by_its_address(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """[[accounting.clients]]: the most specific entry holding the source address gives
    the secret; a NAS using another's secret, or one no entry holds, is dropped."""
    secrets = NasSecrets([("127.0.0.2", b"nas-two"), ("127.0.0.0/24", b"the-pool")])
    sessions = SqliteSessions.open(tmp_path / "state.sqlite", retention_s=86400.0 * 30)
    port = free_udp_port()
    transport, protocol = await listen("127.0.0.1", port, secrets, sessions.add)

    def sent_from(source: str, sid: str, ip: str) -> str:
        return f"Packet-Src-IP-Address = {source}\n" + request("Start", sid, sid, ip, T)

    try:
        code, out = await radclient(port, sent_from("127.0.0.2", "two", "198.19.0.2"), "nas-two")
        assert code == 0, out
        code, out = await radclient(port, sent_from("127.0.0.3", "three", "198.19.0.3"), "the-pool")
        assert code == 0, out
        # The pool's secret is not 127.0.0.2's: its own entry wins.
        code, out = await radclient(port, sent_from("127.0.0.2", "x2", "198.19.0.4"), "the-pool")
        assert code != 0
        assert "No reply" in out
        assert "authenticator does not verify" in caplog.text
        # No entry holds 127.0.1.5, and there is no default secret.
        code, out = await radclient(port, sent_from("127.0.1.5", "x5", "198.19.0.5"), "the-pool")
        assert code != 0
        assert "no [[accounting.clients]] entry holds its address" in caplog.text
        assert (protocol.answered, protocol.dropped) == (2, 2)
        assert (await sessions.who("198.19.0.2", T + 1)).account == "two"  # type: ignore[union-attr]
        assert (await sessions.who("198.19.0.3", T + 1)).account == "three"  # type: ignore[union-attr]
        assert await sessions.who("198.19.0.4", T + 1) is None
        assert await sessions.who("198.19.0.5", T + 1) is None
    finally:
        transport.close()
        await sessions.close()


def test_secrets_by_address() -> None:
    secrets = NasSecrets(
        [("192.0.2.0/24", b"pool"), ("192.0.2.7", b"seven"), ("2001:db8::/64", b"six")],
        b"default",
    )
    assert secrets.secret_for("192.0.2.7") == b"seven"
    assert secrets.secret_for("192.0.2.8") == b"pool"
    assert secrets.secret_for("::ffff:192.0.2.7") == b"seven"  # a dual-stack socket's view
    assert secrets.secret_for("2001:db8::1") == b"six"
    assert secrets.secret_for("198.51.100.1") == b"default"
    assert secrets.secret_for("not an address") is None
    assert NasSecrets([("192.0.2.7", b"seven")]).secret_for("192.0.2.8") is None
    assert not NasSecrets([])
    with pytest.raises(ConfigError, match="not an address or network"):
        NasSecrets([("nas.example", b"x")])


def test_clients_from_the_config_and_config_check(tmp_path: Path) -> None:
    (tmp_path / "nas.secret").write_text("from-the-file\n")
    toml = tmp_path / "seawall.toml"
    toml.write_text(
        f'state_dir = "{tmp_path}"\n[accounting]\nsecret = "others"\n'
        '[[accounting.clients]]\naddress = "192.0.2.0/28"\nsecret = "pool"\n'
        f'[[accounting.clients]]\naddress = "192.0.2.1"\nsecret_file = "{tmp_path}/nas.secret"\n'
    )
    config = load_config(toml)
    secrets = nas_secrets(config.accounting)
    assert secrets.secret_for("192.0.2.1") == b"from-the-file"
    assert secrets.secret_for("192.0.2.2") == b"pool"
    assert secrets.secret_for("192.0.2.99") == b"others"
    assert listening(config.accounting)
    bad = (
        f'state_dir = "{tmp_path}"\n'
        '[[accounting.clients]]\naddress = "nas1"\nsecret = "x"\n'
        '[[accounting.clients]]\naddress = "192.0.2.1"\n'
        '[[accounting.clients]]\naddress = "192.0.2.1/32"\nsecret = "a"\nsecret_file = "/x"\n'
        '[[accounting.clients]]\naddress = "192.0.2.9"\nsecret_file = "/nonexistent/secret"\n'
    )
    toml.write_text(bad)
    with pytest.raises(ConfigError) as raised:
        load_config(toml)
    message = str(raised.value)
    assert "accounting.clients[0].address: 'nas1' is not an address or network" in message
    assert "accounting.clients[1]: give secret or secret_file (one of them)" in message
    assert "accounting.clients[2].address: 192.0.2.1/32 is listed twice" in message
    assert "accounting.clients[3].secret_file: no such file: /nonexistent/secret" in message
    # Clients alone turn the listener on; no secret and no client leave it off.
    assert listening(
        AccountingSettings(clients=(AccountingClient(address="192.0.2.1", secret="s"),))
    )
    assert not listening(AccountingSettings())
