"""The milter server on a real socket, driven by a small MTA written here (Postfix's side)."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from seawall.config import MilterSettings
from seawall.frontends import render
from seawall.frontends.milter import serve_milter_connection
from seawall.frontends.milter import session as milter_session
from seawall.message import Envelope
from seawall.policy.model import Action, SymbolResult, Verdict

POSTFIX_ACTIONS = 0x1FF
POSTFIX_PROTOCOL = 0x1FFFFF  # milter_protocol = 6: every event and no-reply flag is offered
LEADSPC = 0x100000
# The flag that spares the reply to, and the flag that suppresses, each event (mfdef.h).
NO_REPLY = {b"C": 0x1000, b"H": 0x2000, b"M": 0x4000, b"R": 0x8000, b"T": 0x10000}
NO_REPLY |= {b"L": 0x80, b"N": 0x40000, b"B": 0x80000, b"U": 0x20000}
NO_SEND = {b"C": 0x1, b"H": 0x2, b"M": 0x4, b"R": 0x8, b"B": 0x10, b"L": 0x20, b"N": 0x40}
NO_SEND |= {b"U": 0x100, b"T": 0x200}

HEADERS = [
    ("From", "Spammer <spammer@example.com>"),
    ("To", "user@isp.example"),
    ("Subject", "Hello"),
    ("X-Folded", "first\n\tsecond"),
]
BODY = [b"Line one\r\n", b"Line two\r\n", b"\r\n", b"Last line\r\n"]
RAW = (
    b"From: Spammer <spammer@example.com>\r\n"
    b"To: user@isp.example\r\n"
    b"Subject: Hello\r\n"
    b"X-Folded: first\r\n\tsecond\r\n"
    b"\r\n" + b"".join(BODY)
)
ENVELOPE = Envelope(
    client_ip="192.0.2.7",
    helo="bot.example",
    mail_from="spammer@example.com",
    rcpts=("user@isp.example", "other@isp.example"),
    queue_id="4XyZ1",
    hostname="dyn-7.pool.example",
    user="alice",
)


def verdict(action: Action) -> Verdict:
    symbols = {
        "RBL_ZOMBIE": SymbolResult("RBL_ZOMBIE", 12.0, ("192.0.2.7",)),
        "URL_SHORTENER": SymbolResult("URL_SHORTENER", 8.0),
    }
    return Verdict(20.0, 15.0, action, symbols, language="en", elapsed_ms=3.0)


class FakeScanner:
    """Returns one Verdict (or raises) and records what it was asked to check."""

    def __init__(self, result: Verdict | Exception, *, max_message_bytes: int = 1 << 20) -> None:
        self.result = result
        self.calls: list[tuple[Envelope, bytes]] = []
        self._max = max_message_bytes

    @property
    def max_message_bytes(self) -> int:
        return self._max

    async def check(self, envelope: Envelope, raw: bytes) -> Verdict:
        self.calls.append((envelope, raw))
        if isinstance(self.result, Exception):
            raise self.result
        return self.result

    async def learn(self, raw: bytes, *, spam: bool) -> bool:
        return False

    async def forget(self, raw: bytes) -> bool:
        return False


def z(text: str) -> bytes:
    return text.encode() + b"\0"


class Mta:
    """The MTA side: sends events as Postfix does and checks the replies it must read."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.protocol = 0
        self.queue_id = "4XyZ1"

    def send(self, code: bytes, *parts: bytes) -> None:
        payload = b"".join(parts)
        self.writer.write(struct.pack(">I", len(payload) + 1) + code + payload)

    async def reply(self) -> tuple[bytes, bytes]:
        head = await asyncio.wait_for(self.reader.readexactly(5), 5)
        (length,) = struct.unpack(">I", head[:4])
        return head[4:], await asyncio.wait_for(self.reader.readexactly(length - 1), 5)

    async def negotiate(self, version: int, actions: int, protocol: int) -> tuple[int, int, int]:
        self.send(b"O", struct.pack(">III", version, actions, protocol))
        code, data = await self.reply()
        assert code == b"O"
        got = struct.unpack(">III", data)
        self.protocol = got[2]
        return got

    async def event(self, code: bytes, *parts: bytes) -> None:
        if self.protocol & NO_SEND.get(code, 0):
            return
        self.send(code, *parts)
        if not self.protocol & NO_REPLY[code]:
            assert await self.reply() == (b"c", b"")

    async def header(self, name: str, value: str) -> None:
        # Postfix eats the space after the colon unless SMFIP_HDR_LEADSPC was negotiated.
        lead = " " if self.protocol & LEADSPC else ""
        self.send(b"D", b"L", z("i"), z(self.queue_id))
        await self.event(b"L", z(name), z(lead + value))

    async def final(self) -> list[tuple[bytes, bytes]]:
        """Replies to end of message: modifications, then one final decision."""
        replies = [await self.reply()]
        while replies[-1][0] in b"hmiqp":
            replies.append(await self.reply())
        return replies

    async def session(self, *, offer: int = POSTFIX_PROTOCOL) -> None:
        await self.negotiate(6, POSTFIX_ACTIONS, offer)
        self.send(b"D", b"C", z("j"), z("mx.isp.example"), z("{daemon_name}"), z("smtpd"))
        self.send(b"D", b"C", z("{client_name}"), z("dyn-7.pool.example"))
        await self.event(b"C", z("dyn-7.pool.example"), b"4", b"\x30\x39", z("192.0.2.7"))
        await self.event(b"H", z("bot.example"))

    async def message(
        self,
        headers: list[tuple[str, str]] = HEADERS,
        body: list[bytes] = BODY,
        *,
        queue_id: str = "4XyZ1",
    ) -> list[tuple[bytes, bytes]]:
        self.queue_id = queue_id
        self.send(b"D", b"M", z("i"), z(queue_id), z("{auth_type}"), z("PLAIN"))
        self.send(b"D", b"M", z("{auth_authen}"), z("alice"))
        await self.event(b"M", z("<spammer@example.com>"), z("SIZE=1234"))
        await self.event(b"R", z("<user@isp.example>"))
        await self.event(b"R", z("<other@isp.example>"), z("NOTIFY=NEVER"))
        await self.event(b"T")
        for name, value in headers:
            await self.header(name, value)
        await self.event(b"N")
        for chunk in body:
            await self.event(b"B", chunk)
        self.send(b"E")
        return await self.final()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


@dataclass
class Harness:
    port: int
    errors: list[BaseException] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def connect(self) -> Mta:
        return Mta(*await asyncio.open_connection("127.0.0.1", self.port))

    async def settle(self) -> None:
        """Wait for every connection handler to return, and check none raised."""
        await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), 5)
        assert self.errors == []


@contextlib.asynccontextmanager
async def milter(
    scanner: FakeScanner,
    settings: MilterSettings | None = None,
    *,
    log_message: Callable[[Envelope, Verdict], None] | None = None,
) -> AsyncIterator[Harness]:
    holder: list[Harness] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        holder[0].tasks.append(task)
        try:
            await serve_milter_connection(
                reader,
                writer,
                scanner,
                settings or MilterSettings(),
                log_message=log_message,
            )
        except BaseException as exc:
            holder[0].errors.append(exc)
            raise

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    holder.append(Harness(server.sockets[0].getsockname()[1]))
    try:
        yield holder[0]
    finally:
        server.close()
        await server.wait_closed()


def added(action: Action, *, lead: str = " ") -> list[tuple[bytes, bytes]]:
    return [
        (b"h", z(name) + z(lead + value)) for name, value in render.spam_headers(verdict(action))
    ]


async def test_negotiation_takes_only_what_postfix_offers() -> None:
    async with milter(FakeScanner(verdict(Action.NO_ACTION))) as harness:
        mta = await harness.connect()
        assert await mta.negotiate(6, POSTFIX_ACTIONS, POSTFIX_PROTOCOL) == (6, 0x31, 0x1FF3C0)
        await mta.close()
        mta = await harness.connect()
        assert await mta.negotiate(2, 0x3F, 0x7F) == (2, 0x31, 0x40)
        await mta.close()
        mta = await harness.connect()
        assert await mta.negotiate(6, 0x01, 0) == (6, 0x01, 0)
        await mta.close()
        await harness.settle()


@pytest.mark.parametrize(
    "offer", [pytest.param(POSTFIX_PROTOCOL, id="postfix-v6"), pytest.param(0x7F, id="v2-flags")]
)
async def test_message_rebuilt_exactly(offer: int) -> None:
    scanner = FakeScanner(verdict(Action.NO_ACTION))
    logged: list[tuple[Envelope, Verdict]] = []
    async with milter(scanner, log_message=lambda e, v: logged.append((e, v))) as harness:
        mta = await harness.connect()
        await mta.session(offer=offer)
        replies = await mta.message()
        lead = " " if offer & LEADSPC else ""
        assert replies == [*added(Action.NO_ACTION, lead=lead), (b"c", b"")]
        assert scanner.calls == [(ENVELOPE, RAW)]
        assert logged == [(ENVELOPE, verdict(Action.NO_ACTION))]
        await mta.close()
        await harness.settle()


@pytest.mark.parametrize(
    ("action", "reply"),
    [
        (Action.REJECT, "550 5.7.1"),
        (Action.SOFT_REJECT, "451 4.7.1"),
        (Action.GREYLIST, "451 4.7.1"),
    ],
)
async def test_refusals_reply_with_a_code(action: Action, reply: str) -> None:
    text = render.smtp_reply(verdict(action))
    assert text is not None
    async with milter(FakeScanner(verdict(action))) as harness:
        mta = await harness.connect()
        await mta.session()
        expected = z(f"{reply} {text[2]}".replace("%", "%%"))
        assert await mta.message() == [(b"y", expected)]
        await mta.close()
        await harness.settle()


async def test_reject_code_from_settings() -> None:
    settings = MilterSettings(reject_code="554 5.7.0")
    async with milter(FakeScanner(verdict(Action.REJECT)), settings) as harness:
        mta = await harness.connect()
        await mta.session()
        [(code, data)] = await mta.message()
        assert (code, data[:10]) == (b"y", b"554 5.7.0 ")
        await mta.close()
        await harness.settle()


async def test_quarantine_then_headers_then_continue() -> None:
    v = verdict(Action.QUARANTINE)
    async with milter(FakeScanner(v)) as harness:
        mta = await harness.connect()
        await mta.session()
        assert await mta.message() == [
            (b"q", z(render.reason(v))),
            *added(Action.QUARANTINE),
            (b"c", b""),
        ]
        await mta.close()
        await harness.settle()


async def test_forged_spam_headers_are_removed_last_first() -> None:
    headers = [
        ("X-Spam-Flag", "NO"),
        *HEADERS,
        ("x-spam-flag", "NO"),
        ("X-Spam-Status", "No, score=-100"),
    ]
    async with milter(FakeScanner(verdict(Action.ADD_HEADER))) as harness:
        mta = await harness.connect()
        await mta.session()
        assert await mta.message(headers) == [
            (b"m", b"\x00\x00\x00\x02" + z("X-Spam-Flag") + b"\0"),
            (b"m", b"\x00\x00\x00\x01" + z("X-Spam-Flag") + b"\0"),
            (b"m", b"\x00\x00\x00\x01" + z("X-Spam-Status") + b"\0"),
            *added(Action.ADD_HEADER),
            (b"c", b""),
        ]
        await mta.close()
        await harness.settle()


@pytest.mark.parametrize(
    ("offer", "value"),
    [
        pytest.param(POSTFIX_PROTOCOL, " *** SPAM *** Hello", id="leadspc"),
        pytest.param(0x7F, "*** SPAM *** Hello", id="no-leadspc"),
    ],
)
async def test_rewrite_subject(offer: int, value: str) -> None:
    async with milter(FakeScanner(verdict(Action.REWRITE_SUBJECT))) as harness:
        mta = await harness.connect()
        await mta.session(offer=offer)
        replies = await mta.message()
        assert replies[0] == (b"m", b"\x00\x00\x00\x01" + z("Subject") + z(value))
        assert replies[-1] == (b"c", b"")
        await mta.close()
        await harness.settle()


async def test_abort_resets_the_message_but_not_the_session() -> None:
    scanner = FakeScanner(verdict(Action.NO_ACTION))
    async with milter(scanner) as harness:
        mta = await harness.connect()
        await mta.session()
        mta.send(b"D", b"M", z("i"), z("OLD1"), z("{auth_authen}"), z("mallory"))
        await mta.event(b"M", z("<old@example.com>"))
        await mta.event(b"R", z("<old-rcpt@isp.example>"))
        await mta.header("Subject", "old")
        await mta.event(b"B", b"old body\r\n")
        mta.send(b"A")
        assert await mta.message() == [*added(Action.NO_ACTION), (b"c", b"")]
        assert scanner.calls == [(ENVELOPE, RAW)]
        # A second message on the same session starts clean as well.
        assert await mta.message(queue_id="5ABC") == [*added(Action.NO_ACTION), (b"c", b"")]
        assert scanner.calls[1][0].queue_id == "5ABC"
        assert scanner.calls[1][0].rcpts == ENVELOPE.rcpts
        await mta.close()
        await harness.settle()


async def test_quit_new_connection_resets_the_session() -> None:
    scanner = FakeScanner(verdict(Action.NO_ACTION))
    async with milter(scanner) as harness:
        mta = await harness.connect()
        await mta.session()
        mta.send(b"K")
        # The socket is reused without a new negotiation; this session has no client name.
        await mta.event(b"C", z("[198.51.100.9]"), b"4", b"\x00\x19", z("198.51.100.9"))
        await mta.message()
        envelope = scanner.calls[0][0]
        assert (envelope.client_ip, envelope.hostname, envelope.helo) == (
            "198.51.100.9",
            None,
            None,
        )
        mta.send(b"Q")
        assert await asyncio.wait_for(mta.reader.read(), 5) == b""
        await mta.close()
        await harness.settle()


async def test_body_over_max_message_bytes_is_cut_and_scanned() -> None:
    scanner = FakeScanner(verdict(Action.NO_ACTION), max_message_bytes=200)
    body = [b"A" * 100 + b"\r\n", b"B" * 100 + b"\r\n", b"C" * 500]
    async with milter(scanner) as harness:
        mta = await harness.connect()
        await mta.session()
        assert await mta.message(body=body) == [*added(Action.NO_ACTION), (b"c", b"")]
        full = RAW.split(b"\r\n\r\n")[0] + b"\r\n\r\n" + b"".join(body)
        assert scanner.calls[0][1] == full[:200]
        await mta.close()
        await harness.settle()


async def test_failing_scanner_tempfails_the_message() -> None:
    scanner = FakeScanner(RuntimeError("engine exploded"))
    async with milter(scanner) as harness:
        mta = await harness.connect()
        await mta.session()
        assert await mta.message() == [(b"t", b"")]
        # The session goes on: the next message is scanned again.
        scanner.result = verdict(Action.NO_ACTION)
        assert await mta.message() == [*added(Action.NO_ACTION), (b"c", b"")]
        await mta.close()
        await harness.settle()


async def test_failing_log_sink_keeps_the_verdict() -> None:
    def log_message(envelope: Envelope, v: Verdict) -> None:
        raise OSError("disk full")

    async with milter(FakeScanner(verdict(Action.REJECT)), log_message=log_message) as harness:
        mta = await harness.connect()
        await mta.session()
        [(code, _)] = await mta.message()
        assert code == b"y"
        await mta.close()
        await harness.settle()


async def test_connection_closed_mid_message_then_next_connection_served() -> None:
    scanner = FakeScanner(verdict(Action.NO_ACTION))
    async with milter(scanner) as harness:
        mta = await harness.connect()
        await mta.session()
        await mta.event(b"M", z("<a@example.com>"))
        mta.writer.write(b"\x00\x00\x01\x00B partial")  # half a body packet, then gone
        await mta.close()
        mta = await harness.connect()
        await mta.session()
        assert await mta.message() == [*added(Action.NO_ACTION), (b"c", b"")]
        await mta.close()
        await harness.settle()
        assert len(scanner.calls) == 1


@pytest.mark.parametrize(
    "packet",
    [
        pytest.param(b"\x00\x00\x00\x01Z", id="unknown-command"),
        pytest.param(b"\x7f\x00\x00\x00B", id="oversize"),
        pytest.param(b"\x00\x00\x00\x03Hab", id="malformed"),
    ],
)
async def test_protocol_violation_closes_the_connection(packet: bytes) -> None:
    async with milter(FakeScanner(verdict(Action.NO_ACTION))) as harness:
        mta = await harness.connect()
        await mta.session()
        mta.writer.write(packet)
        assert await asyncio.wait_for(mta.reader.read(), 5) == b""
        await mta.close()
        await harness.settle()


async def test_command_before_negotiation_closes_the_connection() -> None:
    async with milter(FakeScanner(verdict(Action.NO_ACTION))) as harness:
        mta = await harness.connect()
        mta.send(b"H", z("bot.example"))
        assert await asyncio.wait_for(mta.reader.read(), 5) == b""
        await mta.close()
        await harness.settle()


async def test_unix_socket_client_and_missing_macros() -> None:
    scanner = FakeScanner(verdict(Action.NO_ACTION))
    async with milter(scanner) as harness:
        mta = await harness.connect()
        await mta.negotiate(6, POSTFIX_ACTIONS, POSTFIX_PROTOCOL)
        mta.queue_id = ""  # an empty macro value counts as missing
        await mta.event(b"C", z("localhost"), b"L", b"\x00\x00", z("/run/smtpd"))
        await mta.event(b"M", z("<>"))
        await mta.event(b"R", z("<postmaster@isp.example>"))
        await mta.header("Subject", "bounce")
        mta.send(b"E")
        assert (await mta.final())[-1] == (b"c", b"")
        assert scanner.calls == [
            (
                Envelope(mail_from="", rcpts=("postmaster@isp.example",), hostname="localhost"),
                b"Subject: bounce\r\n\r\n",
            )
        ]
        await mta.close()
        await harness.settle()


@pytest.fixture
def broken_header(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inject an internal error into the handling of every header."""

    def fail(self: object, name: str, value: str) -> None:
        raise RuntimeError("header bug")

    monkeypatch.setattr(milter_session.Session, "_header", fail)


@pytest.mark.usefixtures("broken_header")
async def test_error_without_a_reply_due_tempfails_at_end_of_message() -> None:
    scanner = FakeScanner(verdict(Action.NO_ACTION))
    async with milter(scanner) as harness:
        mta = await harness.connect()
        await mta.session()
        assert await mta.message() == [(b"t", b"")]
        assert scanner.calls == []
        await mta.close()
        await harness.settle()


@pytest.mark.usefixtures("broken_header")
async def test_error_with_a_reply_due_tempfails_at_once() -> None:
    scanner = FakeScanner(verdict(Action.NO_ACTION))
    async with milter(scanner) as harness:
        mta = await harness.connect()
        await mta.session(offer=0x7F)
        await mta.event(b"M", z("<a@example.com>"))
        await mta.event(b"R", z("<b@isp.example>"))
        mta.send(b"L", z("Subject"), z("x"))
        assert await mta.reply() == (b"t", b"")
        mta.send(b"A")  # Postfix aborts the transaction it just saw refused
        await mta.event(b"M", z("<a@example.com>"))
        await mta.event(b"R", z("<b@isp.example>"))
        await mta.event(b"B", b"body\r\n")
        mta.send(b"E")
        assert (await mta.final())[-1] == (b"c", b"")
        assert scanner.calls[0][1] == b"\r\nbody\r\n"
        await mta.close()
        await harness.settle()


def auth_verdict() -> Verdict:
    symbols = {
        "SPF_PASS": SymbolResult("SPF_PASS", -0.2, ("example.com", "ip4:192.0.2.0/24")),
        "DKIM_PASS": SymbolResult("DKIM_PASS", -0.2, ("example.com:s=sel",)),
        "DMARC_PASS": SymbolResult("DMARC_PASS", -0.5, ("example.com", "dkim:example.com")),
    }
    return Verdict(-0.9, 15.0, Action.NO_ACTION, symbols, language="en", elapsed_ms=3.0)


async def test_forged_authentication_results_of_our_id_replaced_by_ours() -> None:
    headers = [
        ("Authentication-Results", "mx.isp.example; dmarc=pass header.from=bank.example"),
        *HEADERS,
        ("Authentication-Results", "other.example; spf=fail smtp.mailfrom=example.com"),
        ("Authentication-Results", "MX.isp.example. (forged) 1; dkim=pass header.d=bank.example"),
    ]
    v = auth_verdict()
    ours = "mx.isp.example; spf=pass smtp.mailfrom=example.com; "
    ours += "dkim=pass header.d=example.com header.s=sel; dmarc=pass header.from=example.com"
    assert render.authentication_results(v, "mx.isp.example") == ours
    settings = MilterSettings(authserv_id="mx.isp.example")
    async with milter(FakeScanner(v), settings) as harness:
        mta = await harness.connect()
        await mta.session()
        assert await mta.message(headers) == [
            (b"m", b"\x00\x00\x00\x03" + z("Authentication-Results") + b"\0"),
            (b"m", b"\x00\x00\x00\x01" + z("Authentication-Results") + b"\0"),
            *[(b"h", z(name) + z(" " + value)) for name, value in render.spam_headers(v)],
            (b"i", b"\x00\x00\x00\x00" + z("Authentication-Results") + z(" " + ours)),
            (b"c", b""),
        ]
        await mta.close()
        await harness.settle()


async def test_authentication_results_appended_before_milter_v3() -> None:
    v = auth_verdict()
    async with milter(FakeScanner(v), MilterSettings(authserv_id="mx")) as harness:
        mta = await harness.connect()
        await mta.negotiate(2, POSTFIX_ACTIONS, 0x7F)
        headers = [*HEADERS, ("Authentication-Results", "mx; spf=pass")]
        replies = await mta.message(headers)
        value = render.authentication_results(v, "mx")
        assert value is not None
        assert replies[0] == (b"m", b"\x00\x00\x00\x01" + z("Authentication-Results") + b"\0")
        assert replies[-2:] == [(b"h", z("Authentication-Results") + z(value)), (b"c", b"")]
        await mta.close()
        await harness.settle()


async def test_no_auth_symbols_no_authentication_results() -> None:
    headers = [*HEADERS, ("Authentication-Results", "other.example; spf=pass")]
    async with milter(FakeScanner(verdict(Action.NO_ACTION))) as harness:
        mta = await harness.connect()
        await mta.session()
        replies = await mta.message(headers)
        assert replies == [*added(Action.NO_ACTION), (b"c", b"")]
        await mta.close()
        await harness.settle()
