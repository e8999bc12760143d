"""The ClamAV detector without clamd: settings, scores, what is sent, and peers that fail."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from email.message import EmailMessage
from pathlib import Path

import msgspec
import pytest

from seawall.clamd import Clamd, ClamdReplyError
from seawall.config import ClamavSettings, Config, load_config
from seawall.detectors import build_detectors
from seawall.detectors.base import Context
from seawall.detectors.clamav import MAX_PARTS, ClamavDetector, decoded_attachments
from seawall.errors import ConfigError
from seawall.message import parse_message
from seawall.policy.model import Action
from seawall.policy.scores import load_scores


def settings(**changes: object) -> ClamavSettings:
    return msgspec.convert({"enabled": True, **changes}, ClamavSettings)


def mail(*attachments: tuple[str, str, bytes]) -> bytes:
    msg = EmailMessage()
    msg["From"] = "alice@example.org"
    msg["Subject"] = "files"
    msg.set_content("Hello, the files.")
    for filename, ctype, data in attachments:
        main, sub = ctype.split("/")
        if main == "text":
            msg.add_attachment(data.decode(), subtype=sub, filename=filename)
        else:
            msg.add_attachment(data, main, sub, filename=filename)
    return msg.as_bytes()


def test_symbols_are_scored() -> None:
    scores = load_scores()
    for symbol, description in ClamavDetector.symbols.items():
        definition = scores.symbols[symbol]
        assert definition.group == "clamav"
        assert definition.description == description
    # A virus scores at least the reject threshold it forces; not scanning says nothing.
    assert scores.symbols["CLAMAV_VIRUS"].score >= scores.required
    assert scores.symbols["CLAMAV_FAILED"].score == 0.0
    assert scores.symbols["CLAMAV_TOO_LARGE"].score == 0.0
    assert scores.groups["clamav"].max_score is None


def test_off_by_default_and_built_when_enabled(tmp_path: Path) -> None:
    assert not Config().detectors.clamav.enabled
    assert not any(d.name == "clamav" for d in build_detectors(Config(), None))
    conf = tmp_path / "c.toml"
    conf.write_text(
        '[detectors.clamav]\nenabled = true\naddress = "127.0.0.1:3310"\n'
        "[detectors.campaigns]\nenabled = false\n"
    )
    detectors = build_detectors(load_config(conf), None)
    (clamav,) = [d for d in detectors if d.name == "clamav"]
    assert clamav.io
    clamav.close()  # type: ignore[attr-defined]


def test_timeout_must_be_below_the_engines_io_budget() -> None:
    with pytest.raises(ConfigError, match=r"timeout_s \(2\) must be below engine.io_timeout_s"):
        ClamavDetector(settings(timeout_s=2.0), io_timeout_s=2.0)


@pytest.mark.parametrize("address", ["", "clamd", "127.0.0.1:99999", "no-such-host.invalid:3310"])
def test_bad_address_is_a_config_error(address: str) -> None:
    with pytest.raises(ConfigError, match="detectors.clamav.address"):
        ClamavDetector(settings(address=address), io_timeout_s=2.0)


@pytest.mark.parametrize(
    ("key", "value"), [("max_bytes", 0), ("max_connections", 0), ("on_failure", "accept")]
)
def test_bad_settings_are_rejected(key: str, value: object) -> None:
    with pytest.raises(msgspec.ValidationError, match=key):
        settings(**{key: value})


def test_decoded_attachments_skip_text_and_keep_named_parts() -> None:
    raw = mail(
        ("a.pdf", "application/pdf", b"%PDF-1.4 one"),
        ("notes.txt", "text/plain", b"named text is an attachment"),
        ("b.zip", "application/zip", b"PK\x03\x04two"),
    )
    assert decoded_attachments(raw) == [
        b"%PDF-1.4 one",
        b"named text is an attachment\n",
        b"PK\x03\x04two",
    ]
    assert decoded_attachments(b"From: a@b\n\nno attachments\n") == []


def test_many_attachments_are_sent_as_one_message() -> None:
    raw = mail(*[(f"f{i}.bin", "application/octet-stream", b"x") for i in range(MAX_PARTS + 1)])
    assert decoded_attachments(raw) is None
    assert len(decoded_attachments(mail(("f.bin", "application/octet-stream", b"x")))) == 1


async def test_nothing_is_sent_without_attachments_or_over_max_bytes() -> None:
    # Nothing listens on port 9 of a TEST-NET address: any send would be CLAMAV_FAILED.
    det = ClamavDetector(
        settings(address="192.0.2.1:9", max_bytes=500, connect_timeout_s=0.2, timeout_s=0.5),
        io_timeout_s=2.0,
    )
    ctx = Context(now=0.0)
    assert await det.check(parse_message(b"From: a@b\n\ntext only\n"), ctx) == ()
    raw = mail(("a.bin", "application/octet-stream", bytes(1000)))
    (hit,) = await det.check(parse_message(raw), ctx)
    assert hit.symbol == "CLAMAV_TOO_LARGE"
    assert hit.options == (f"{len(raw)} bytes",)
    det.close()


async def test_unreachable_clamd_times_out_on_connect() -> None:
    # 192.0.2.1 (TEST-NET-1) is never routed: the connection attempt hangs until its timeout.
    # The other timeouts are long: the answer names the connect timeout, or (where the route
    # is refused) the refusal, and it comes long before those could have ended the wait.
    io_timeout_s = 60.0
    det = ClamavDetector(
        settings(
            address="192.0.2.1:3310", connect_timeout_s=0.2, timeout_s=30.0, on_failure="continue"
        ),
        io_timeout_s=io_timeout_s,
    )
    raw = mail(("a.bin", "application/octet-stream", b"data"))
    t0 = time.perf_counter()
    (hit,) = await det.check(parse_message(raw), Context(now=0.0))
    assert time.perf_counter() - t0 < io_timeout_s / 4  # a hang guard, not a speed figure
    assert hit.symbol == "CLAMAV_FAILED"
    assert hit.force is None
    why = hit.options[0]
    assert why == "no connection to 192.0.2.1:3310 in 0.2s" or why.startswith("cannot connect")

    det.close()


Peer = Callable[[bytes], Awaitable[str]]


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    """A loopback peer that is not clamd: it reads a request, answers ``reply`` and closes."""
    servers: list[asyncio.Server] = []

    async def start(reply: bytes) -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(100)
            writer.write(reply)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        return f"127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", "another request"),
        (b"1: " + b"x" * 5000, "longer than 4096"),
        (b"1: stream: Out of memory ERROR\0", "Out of memory"),
    ],
)
async def test_a_peer_that_is_not_clamd(peer: Peer, reply: bytes, message: str) -> None:
    client = Clamd(await peer(reply), timeout_s=2.0)
    with pytest.raises(ClamdReplyError, match=message):
        await client.instream(b"data")
    assert client._idle == []  # never reused
    client.close()


async def test_failed_reply_applies_the_policy(peer: Peer) -> None:
    det = ClamavDetector(
        settings(address=await peer(b"1: stream: Out of memory ERROR\0")), io_timeout_s=2.0
    )
    raw = mail(("a.bin", "application/octet-stream", b"data"))
    (hit,) = await det.check(parse_message(raw), Context(now=0.0))
    assert (hit.symbol, hit.options, hit.force) == (
        "CLAMAV_FAILED",
        ("Out of memory",),
        Action.SOFT_REJECT,
    )
    det.close()
