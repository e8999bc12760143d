"""The spamd server on a real socket, driven by raw SPAMC requests written here."""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from seawall.config import SpamdSettings
from seawall.errors import StoreError
from seawall.frontends import render
from seawall.frontends.spamd import serve_spamd_connection
from seawall.message import Envelope
from seawall.policy.model import Action, SymbolResult, Verdict

RAW = b"From: spammer@example.com\r\nTo: user@isp.example\r\nSubject: Hello\r\n\r\nBuy now\r\n"


def verdict(action: Action = Action.REJECT, score: float = 16.25) -> Verdict:
    symbols = {
        "URL_SHORTENER": SymbolResult("URL_SHORTENER", 4.25, (), "A URL shortener"),
        "RBL_ZOMBIE": SymbolResult("RBL_ZOMBIE", 12.0, ("192.0.2.7",), "Listed zombie"),
    }
    return Verdict(score, 15.0, action, symbols, language="en", elapsed_ms=3.0)


@dataclass
class FakeScanner:
    """Answers every check with ``verdict`` and remembers what it was asked."""

    verdict: Verdict = field(default_factory=verdict)
    max_message_bytes: int = 1_000_000
    failure: Exception | None = None
    checked: list[tuple[Envelope, bytes]] = field(default_factory=list)
    learned: dict[bytes, bool] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    async def check(self, envelope: Envelope, raw: bytes) -> Verdict:
        self.checked.append((envelope, raw))
        if self.failure is not None:
            raise self.failure
        return self.verdict

    async def learn(self, raw: bytes, *, spam: bool) -> bool:
        self.calls.append(f"learn {'spam' if spam else 'ham'}")
        if self.failure is not None:
            raise self.failure
        if self.learned.get(raw) is spam:
            return False
        self.learned[raw] = spam
        return True

    async def forget(self, raw: bytes) -> bool:
        self.calls.append("forget")
        return self.learned.pop(raw, None) is not None


@dataclass
class Spamd:
    scanner: FakeScanner
    port: int
    logged: list[tuple[Envelope, Verdict]]
    settings: SpamdSettings

    async def send(self, data: bytes, *, chunk: int = 0) -> bytes:
        """Send one request (in ``chunk``-byte writes if given), half-close, read to EOF."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        step = chunk or len(data) or 1
        for i in range(0, len(data), step):
            writer.write(data[i : i + step])
            await writer.drain()
            await asyncio.sleep(0)
        writer.write_eof()
        reply = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return reply


@pytest.fixture
async def spamd() -> AsyncIterator[Spamd]:
    scanner = FakeScanner()
    logged: list[tuple[Envelope, Verdict]] = []
    state = Spamd(scanner, 0, logged, SpamdSettings(listen="", allow_tell=True))

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_spamd_connection(
            reader,
            writer,
            state.scanner,
            state.settings,
            log_message=lambda e, v: logged.append((e, v)),
            timeout_s=0.5,
        )

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    async with server:
        yield state


def request(command: str, body: bytes = RAW, *headers: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in (*headers, f"Content-length: {len(body)}"))
    return f"{command} SPAMC/1.5\r\n{head}\r\n".encode() + body


async def test_ping(spamd: Spamd) -> None:
    assert await spamd.send(b"PING SPAMC/1.5\r\n\r\n") == b"SPAMD/1.5 0 PONG\r\n"
    assert await spamd.send(b"PING SPAMC/1.2\r\n") == b"SPAMD/1.5 0 PONG\r\n"
    assert spamd.scanner.checked == []


async def test_check(spamd: Spamd) -> None:
    reply = await spamd.send(request("CHECK", RAW, "User: alice"))
    assert reply == b"SPAMD/1.1 0 EX_OK\r\nSpam: True ; 16.2 / 15.0\r\n\r\n"
    # spamd has no envelope, and "User" is the mailbox owner, not an authenticated sender.
    assert spamd.scanner.checked == [(Envelope(), RAW)]
    assert spamd.logged == [(Envelope(), spamd.scanner.verdict)]


async def test_check_ham_in_one_byte_writes(spamd: Spamd) -> None:
    spamd.scanner.verdict = verdict(Action.GREYLIST, 4.5)
    reply = await spamd.send(request("CHECK"), chunk=1)
    assert reply == b"SPAMD/1.1 0 EX_OK\r\nSpam: False ; 4.5 / 15.0\r\n\r\n"


async def test_symbols(spamd: Spamd) -> None:
    reply = await spamd.send(request("SYMBOLS"))
    body = b"RBL_ZOMBIE,URL_SHORTENER"
    assert reply == (
        b"SPAMD/1.1 0 EX_OK\r\nContent-length: 24\r\nSpam: True ; 16.2 / 15.0\r\n\r\n" + body
    )


async def test_report(spamd: Spamd) -> None:
    reply = await spamd.send(request("REPORT"))
    text = render.report(spamd.scanner.verdict).encode()
    assert reply == b"SPAMD/1.1 0 EX_OK\r\nContent-length: %d\r\n" % len(text) + (
        b"Spam: True ; 16.2 / 15.0\r\n\r\n" + text
    )
    assert b"12.0 RBL_ZOMBIE" in text


async def test_report_ifspam(spamd: Spamd) -> None:
    spam = await spamd.send(request("REPORT_IFSPAM"))
    assert spam.endswith(render.report(spamd.scanner.verdict).encode())
    spamd.scanner.verdict = verdict(Action.NO_ACTION, 1.0)
    ham = await spamd.send(request("REPORT_IFSPAM"))
    assert ham == b"SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\nSpam: False ; 1.0 / 15.0\r\n\r\n"


# render.SPAM_HEADERS as PROCESS adds them: the long status folded at 78 columns.
SPAM_HEADERS = (
    b"X-Spam-Flag: YES\r\n"
    b"X-Spam-Score: 16.25\r\n"
    b"X-Spam-Status: Yes, score=16.2 required=15.0 action=reject\r\n"
    b"\ttests=[RBL_ZOMBIE(12), URL_SHORTENER(4.25)]\r\n"
)


async def test_process_replaces_old_spam_headers(spamd: Spamd) -> None:
    old = b"X-Spam-Flag: NO\r\nX-Spam-Status: No, score=0.0\r\n\ttests=[]\r\n"
    reply = await spamd.send(request("PROCESS", old + RAW))
    head, _, message = reply.partition(b"\r\n\r\n")
    assert head.split(b"\r\n") == [
        b"SPAMD/1.1 0 EX_OK",
        b"Content-length: %d" % len(message),
        b"Spam: True ; 16.2 / 15.0",
    ]
    assert message == SPAM_HEADERS + RAW
    assert spamd.scanner.checked[0][1] == old + RAW  # scanned as the client sent it


async def test_headers(spamd: Spamd) -> None:
    reply = await spamd.send(request("HEADERS"))
    _, _, message = reply.partition(b"\r\n\r\n")
    assert message == SPAM_HEADERS + RAW[: RAW.index(b"\r\n\r\n") + 4]


async def test_zlib_process_reply_is_not_compressed(spamd: Spamd) -> None:
    packed = zlib.compress(RAW, 3)
    reply = await spamd.send(request("PROCESS", packed, "Compress: zlib"))
    assert reply.endswith(b"\r\n\r\n" + SPAM_HEADERS + RAW)
    assert spamd.scanner.checked[0][1] == RAW


async def test_big_message_is_scanned_on_its_start_and_returned_whole(spamd: Spamd) -> None:
    spamd.scanner.max_message_bytes = 100
    big = RAW + b"x" * 1000
    reply = await spamd.send(request("PROCESS", big))
    assert reply.endswith(SPAM_HEADERS + big)
    await spamd.send(request("CHECK", big))
    assert [raw for _, raw in spamd.scanner.checked] == [big[:100], big[:100]]


async def test_tell_learn_and_forget(spamd: Spamd) -> None:
    learn = request("TELL", RAW, "Message-class: spam", "Set: local")
    assert await spamd.send(learn) == b"SPAMD/1.1 0 EX_OK\r\nDidSet: local\r\n\r\n"
    assert await spamd.send(learn) == b"SPAMD/1.1 0 EX_OK\r\n\r\n"  # already learned
    ham = request("TELL", RAW, "Message-class: ham", "Set: local")
    assert await spamd.send(ham) == b"SPAMD/1.1 0 EX_OK\r\nDidSet: local\r\n\r\n"
    forget = request("TELL", RAW, "Remove: local")
    assert await spamd.send(forget) == b"SPAMD/1.1 0 EX_OK\r\nDidRemove: local\r\n\r\n"
    assert await spamd.send(forget) == b"SPAMD/1.1 0 EX_OK\r\n\r\n"
    assert spamd.scanner.calls == ["learn spam", "learn spam", "learn ham", "forget", "forget"]
    assert spamd.scanner.checked == []
    assert spamd.logged == []


async def test_tell_learns_the_message_without_our_headers(spamd: Spamd) -> None:
    processed = SPAM_HEADERS + RAW
    await spamd.send(request("TELL", processed, "Message-class: spam", "Set: local"))
    assert spamd.scanner.learned == {RAW: True}


async def test_tell_refused_when_off(spamd: Spamd) -> None:
    spamd.settings = SpamdSettings(allow_tell=False)
    reply = await spamd.send(request("TELL", RAW, "Message-class: spam", "Set: local"))
    assert reply.startswith(b"SPAMD/1.0 69 EX_UNAVAILABLE ")
    assert reply.endswith(b"\r\n")
    assert reply.count(b"\r\n") == 1
    assert spamd.scanner.calls == []


async def test_skip_closes_quietly(spamd: Spamd) -> None:
    assert await spamd.send(b"SKIP SPAMC/1.5\r\n\r\n") == b""
    assert await spamd.send(b"") == b""  # a port probe
    assert spamd.scanner.checked == []


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"HELO spamd\r\n", id="not-spamc"),
        pytest.param(b"CHECK SPAMC/1.5\r\nContent-length: x\r\n\r\n", id="bad-header"),
        pytest.param(b"CHECK SPAMC/1.5\r\nContent-length: 99\r\n\r\nshort", id="short-body"),
        pytest.param(b"CHECK SPAMC/1.5\r\nCompress: zlib\r\n\r\nnot zlib", id="bad-zlib"),
    ],
)
async def test_protocol_violation(
    spamd: Spamd, data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="seawall.spamd"):
        reply = await spamd.send(data)
    assert reply.startswith(b"SPAMD/1.0 76 EX_PROTOCOL Bad request: ")
    assert reply.count(b"\r\n") == 1
    assert "bad request from 127.0.0.1" in caplog.text
    assert spamd.scanner.checked == []


async def test_soft_reject_is_a_temporary_failure(spamd: Spamd) -> None:
    spamd.scanner.verdict = Verdict(0.0, 15.0, Action.SOFT_REJECT, {}, None, 1.0, forced_by="X")
    reply = await spamd.send(request("PROCESS"))
    assert reply == b"SPAMD/1.0 75 EX_TEMPFAIL Message deferred (X)\r\n"
    assert len(spamd.logged) == 1


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        pytest.param(RuntimeError("bug"), b"SPAMD/1.0 70 EX_SOFTWARE internal error\r\n", id="bug"),
        pytest.param(
            StoreError("locked"),
            b"SPAMD/1.0 75 EX_TEMPFAIL state store unavailable, try again later\r\n",
            id="store",
        ),
    ],
)
async def test_failure_is_answered_and_the_server_goes_on(
    spamd: Spamd, failure: Exception, expected: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    spamd.scanner.failure = failure
    with caplog.at_level(logging.WARNING, logger="seawall.spamd"):
        assert await spamd.send(request("CHECK")) == expected
        assert await spamd.send(request("TELL", RAW, "Message-class: ham", "Set: local")) == (
            expected
        )
    # A bug is logged every time; a store that is down once a minute (seawall.quietlog).
    assert len(caplog.records) == (2 if isinstance(failure, RuntimeError) else 1)
    spamd.scanner.failure = None
    assert (await spamd.send(request("CHECK"))).startswith(b"SPAMD/1.1 0 EX_OK\r\n")


async def test_silent_client_times_out(spamd: Spamd) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", spamd.port)
    writer.write(b"CHECK SPAMC/1.5\r\nContent-length: 10\r\n")
    reply = await asyncio.wait_for(reader.read(), 5)
    assert reply == b"SPAMD/1.0 79 EX_TIMEOUT client silent for 0.5s\r\n"
    writer.close()


async def test_client_that_vanishes_does_not_hurt_the_server(spamd: Spamd) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", spamd.port)
    writer.write(b"CHECK SPAMC/1.5\r\nContent-length: 100000\r\n\r\nabc")
    await writer.drain()
    writer.transport.abort()  # RST: the server's reply has nowhere to go
    await asyncio.sleep(0.05)
    assert await spamd.send(b"PING SPAMC/1.5\r\n\r\n") == b"SPAMD/1.5 0 PONG\r\n"
