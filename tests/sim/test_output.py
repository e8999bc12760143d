"""Where a run goes: files (--out), a real HTTP /checkv2 server and a real SMTP server (--to)."""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from seawall.cli import main
from seawall.message import parse_message
from seawall.sim import SimMessage, SimSettings, simulate
from seawall.sim.radius import radius_detail
from seawall.sim.smtp import xtext
from seawall.sim.world import build_world

SMALL = ["--hours", "0.05", "--peak-per-hour", "2000", "--ham-per-hour", "400"]
SMALL_SETTINGS = SimSettings(hours=0.05, peak_per_hour=2000, ham_per_hour=400)


@pytest.fixture(scope="module")
def small() -> list[SimMessage]:
    return list(simulate(SMALL_SETTINGS))


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _tempfail_first(message_id: str) -> bool:
    """The messages the test servers defer once (a third of them, fixed by their id)."""
    return zlib.crc32(message_id.encode()) % 3 == 0


def test_out_writes_messages_envelopes_truth_and_radius(
    tmp_path: Path, small: list[SimMessage], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    args = [*SMALL, "--out", str(out), "--truth", str(out / "truth.jsonl")]
    assert main(["simulate", *args, "--radius", str(out / "radius.detail")]) == 0
    summary = capsys.readouterr().out
    assert f"simulated {len(small)} messages" in summary
    assert "campaign-1" in summary
    assert "RADIUS accounting records" in summary
    files = sorted(out.glob("*.eml"))
    envelopes = _lines(out / "envelopes.jsonl")
    truth = _lines(out / "truth.jsonl")
    assert len(files) == len(envelopes) == len(truth) == len(small)
    for path, envelope, record, message in zip(files, envelopes, truth, small, strict=True):
        assert envelope["file"] == path.name == record["file"]
        assert path.read_bytes() == message.raw
        assert envelope["client_ip"] == message.envelope.client_ip == record["ip"]
        assert tuple(envelope["rcpts"]) == message.envelope.rcpts
        assert (envelope["helo"], envelope["hostname"]) == (
            message.envelope.helo,
            message.envelope.hostname,
        )
        assert parse_message(path.read_bytes()).received[0].ip == envelope["client_ip"]
        assert record["message_id"] == message.truth.message_id
        assert record["kind"] == message.truth.kind
    assert (out / "radius.detail").read_text(encoding="ascii").count("Acct-Status-Type") > 100


@dataclass
class CheckV2Log:
    requests: list[tuple[list[tuple[str, str]], bytes]] = field(default_factory=list)
    tries: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def checkv2_server() -> Iterator[tuple[CheckV2Log, int]]:
    """A tiny /checkv2 server: answers "no action", and 503 to the first try of some."""
    log = CheckV2Log()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the client expects
        disable_nagle_algorithm = True  # headers and body go out in two writes

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            queue_id = self.headers["Queue-Id"]
            message_id = parse_message(body).headers["Message-ID"].strip("<>")
            with log.lock:
                log.tries[queue_id] += 1
                first = log.tries[queue_id] == 1
                if not (first and _tempfail_first(message_id)):
                    log.requests.append((list(self.headers.items()), body))
            if first and _tempfail_first(message_id):
                answer, status = b'{"error": "busy"}', 503
            else:
                answer, status = b'{"action": "no action", "score": 0, "symbols": {}}', 200
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield log, server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join()


def test_to_http_posts_each_message_with_rspamd_headers(
    checkv2_server: tuple[CheckV2Log, int], tmp_path: Path, small: list[SimMessage]
) -> None:
    log, port = checkv2_server
    truth_path = tmp_path / "truth.jsonl"
    speed = 180.0  # the run's 3 simulated minutes in about a second
    started = time.monotonic()
    args = [*SMALL, "--speed", str(speed), "--to", f"http://127.0.0.1:{port}"]
    assert main(["simulate", *args, "--truth", str(truth_path), "--workers", "4"]) == 0
    elapsed = time.monotonic() - started
    span = (small[-1].at - small[0].at) / speed
    assert elapsed >= span - 0.2  # paced: not faster than the compressed clock
    assert elapsed < span + 30  # a hang guard
    assert len(log.requests) == len(small)
    by_queue_id = {m.envelope.queue_id: m for m in small}
    for headers, body in log.requests:
        names = Counter(name for name, _ in headers)
        fields = dict(headers)
        message = by_queue_id[fields["Queue-Id"]]
        envelope = message.envelope
        assert body == message.raw
        assert fields["IP"] == envelope.client_ip
        assert fields["Helo"] == envelope.helo
        assert fields["From"] == envelope.mail_from
        assert [v for n, v in headers if n == "Rcpt"] == list(envelope.rcpts)
        assert names["Rcpt"] == len(envelope.rcpts)
        assert fields.get("Hostname") == envelope.hostname
    truth = _lines(truth_path)
    assert [r["message_id"] for r in truth] == [m.truth.message_id for m in small]
    for record in truth:
        assert record["verdict"] == {
            "action": "no action",
            "score": 0,
            "symbols": {},
            "campaign": None,
        }
        assert record["outcome"]["status"] == "accepted"
        assert record["outcome"]["retries"] == int(_tempfail_first(record["message_id"]))
    assert any(r["outcome"]["retries"] for r in truth)


@dataclass
class Delivery:
    xclient: dict[str, str]
    helo: str | None
    mail_from: str | None
    rcpts: list[str]
    content: bytes


@dataclass
class Mailbox:
    """What the test MTA saw: deliveries, and how often each message was tried."""

    deliveries: list[Delivery] = field(default_factory=list)
    tries: Counter[str] = field(default_factory=Counter)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-XCLIENT ADDR NAME HELO", responses[-1]]

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if not address.startswith("user"):  # harvested guesses: no such mailbox here
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message_id = parse_message(content).headers["Message-ID"].strip("<>")
        self.tries[message_id] += 1
        if self.tries[message_id] == 1 and _tempfail_first(message_id):
            return "451 4.7.1 Service unavailable - try again later"
        xclient = getattr(session, "xclient", {})
        mail_from = envelope.mail_from
        self.deliveries.append(
            Delivery(xclient, session.host_name, mail_from, list(envelope.rcpt_tos), content)
        )
        return "250 2.0.0 Ok: queued"


class XclientSMTP(SMTP):
    """aiosmtpd with Postfix's XCLIENT: the client names the address, name and HELO to use."""

    async def smtp_XCLIENT(self, arg: str) -> None:
        assert self.session is not None
        attributes: dict[str, str] = {}
        for item in arg.split():
            name, _, value = item.partition("=")
            attributes[name] = _unxtext(value)
        self.session.xclient = attributes  # type: ignore[attr-defined]
        self.session.host_name = None  # a new session: EHLO again (XCLIENT_README)
        self._set_rset_state()
        await self.push(f"220 {self.hostname} ESMTP")


def _unxtext(value: str) -> str:
    out, i = bytearray(), 0
    while i < len(value):
        if value[i] == "+":
            out.append(int(value[i + 1 : i + 3], 16))
            i += 3
        else:
            out += value[i].encode()
            i += 1
    return out.decode()


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    """aiosmtpd on 127.0.0.1:0 in its own event loop thread."""
    mailbox = Mailbox()
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(lambda: XclientSMTP(mailbox, hostname="mx.test"), "127.0.0.1", 0)
    )
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield mailbox, server.sockets[0].getsockname()[1]

    async def close() -> None:
        server.close()
        await server.wait_closed()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(close(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()


def test_to_smtp_sends_as_the_bot_and_retries_deferred_mail(
    smtp_server: tuple[Mailbox, int], tmp_path: Path, small: list[SimMessage]
) -> None:
    mailbox, port = smtp_server
    truth_path = tmp_path / "truth.jsonl"
    args = [*SMALL, "--speed", "1e6", "--to", f"smtp://127.0.0.1:{port}"]
    assert main(["simulate", *args, "--truth", str(truth_path), "--workers", "6"]) == 0
    truth = _lines(truth_path)
    assert [r["message_id"] for r in truth] == [m.truth.message_id for m in small]
    by_id = {m.truth.message_id: m for m in small}
    delivered = {}
    for delivery in mailbox.deliveries:
        message_id = parse_message(delivery.content).headers["Message-ID"].strip("<>")
        delivered[message_id] = delivery
    for record in truth:
        message = by_id[record["message_id"]]
        envelope = message.envelope
        outcome = record["outcome"]
        good = [r for r in envelope.rcpts if r.startswith("user")]
        bad = [r for r in envelope.rcpts if not r.startswith("user")]
        assert sorted(outcome.get("rejected", {})) == sorted(bad)
        assert all(code == 550 for code, _ in outcome.get("rejected", {}).values())
        assert "deferred" not in outcome  # every deferral was retried until it went through
        if not good:
            assert outcome["status"] == "rejected"
            assert record["message_id"] not in delivered
            continue
        assert outcome["status"] == ("partial" if bad else "accepted")
        assert outcome["code"] == 250
        assert outcome["retries"] == int(_tempfail_first(record["message_id"]))
        delivery = delivered[record["message_id"]]
        assert delivery.xclient == {
            "ADDR": envelope.client_ip,
            "NAME": envelope.hostname or "[UNAVAILABLE]",
            "HELO": envelope.helo,
        }
        assert delivery.helo == envelope.helo
        assert delivery.mail_from == envelope.mail_from
        assert delivery.rcpts == good
        assert delivery.content.replace(b"\r\n", b"\n") == message.raw
    statuses = Counter(r["outcome"]["status"] for r in truth)
    assert statuses["accepted"]
    assert statuses["partial"]
    assert sum(r["outcome"]["retries"] for r in truth) > 10


def test_unreachable_server_is_retried_then_reported_not_dropped(tmp_path: Path) -> None:
    truth_path = tmp_path / "truth.jsonl"
    args = ["--hours", "0.01", "--peak-per-hour", "1000", "--ham-per-hour", "300"]
    # Port 9 (discard) on loopback: nothing listens, every connection is refused.
    target = ["--speed", "1e6", "--to", "smtp://127.0.0.1:9", "--truth", str(truth_path)]
    assert main(["simulate", *args, *target]) == 0
    truth = _lines(truth_path)
    assert truth
    for record in truth:
        assert record["outcome"]["status"] == "tempfailed"
        assert record["outcome"]["retries"] == 4
        assert "ConnectionRefusedError" in record["outcome"]["text"]


def test_xtext() -> None:
    assert xtext("[UNAVAILABLE]") == "[UNAVAILABLE]"
    assert xtext("a+b=c d") == "a+2Bb+3Dc+20d"
    assert _unxtext(xtext("mail.example+x=1")) == "mail.example+x=1"


def test_bad_target_is_a_configuration_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--to", "ftp://127.0.0.1:21"]) == 2
    assert "smtp://host:port" in capsys.readouterr().err


def test_to_smtp_writes_the_accounting_live_in_replay_wall_time(
    smtp_server: tuple[Mailbox, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, port = smtp_server
    truth_path, detail = tmp_path / "truth.jsonl", tmp_path / "radius.detail"
    # 3 simulated minutes at 180x: one wall second.
    args = ["--hours", "0.05", "--peak-per-hour", "600", "--ham-per-hour", "200"]
    target = ["--speed", "180", "--to", f"smtp://127.0.0.1:{port}", "--truth", str(truth_path)]
    before = time.time()
    assert main(["simulate", *args, *target, "--radius", str(detail)]) == 0
    after = time.time()
    summary = capsys.readouterr().out
    assert "RADIUS accounting records live, in replay wall time" in summary
    clock_line = next(x for x in summary.splitlines() if x.startswith("replay clock:"))
    parts = clock_line.split()
    base, wall0 = float(parts[3]), float(parts[6].rstrip(","))
    assert before < wall0 < after
    truth = _lines(truth_path)
    for record in truth:  # each message's due wall time, by the same clock
        assert record["wall_at"] == pytest.approx(wall0 + (record["at"] - base) / 180, abs=0.002)
    offline = build_world(SimSettings(hours=0.05, peak_per_hour=600, ham_per_hour=200))
    text = detail.read_text()
    assert text.count("\n\n") == radius_detail(offline).count("\n\n")
    stamps = [int(x.split("=")[1]) for x in text.splitlines() if x.startswith("\tTimestamp =")]
    # The sessions of the run start and stop in wall time: none later than the run's end
    # (plus a rounded-up second), and the ones from before the run mapped into the past.
    assert max(stamps) <= math.ceil(wall0 + (offline.end - base) / 180) + 1
    assert min(stamps) < wall0 - 3600 / 180
