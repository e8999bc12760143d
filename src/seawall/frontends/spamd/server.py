"""The spamd front end: one SPAMC request per connection, answered from the Scanner's Verdict."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from seawall.config import SpamdSettings
from seawall.errors import SpamdViolation, StoreError
from seawall.frontends.access import Denied, LearnAccess
from seawall.frontends.base import Scanner
from seawall.frontends.budget import UNLIMITED, Budget, Held, OverBudget
from seawall.frontends.connections import Conn
from seawall.frontends.logsafe import printable
from seawall.frontends.render import (
    HEADER_NAMES,
    report,
    rewrite_message,
    smtp_reply,
    spam_headers,
)
from seawall.frontends.spamd.codec import (
    Command,
    ExitCode,
    Request,
    RequestParser,
    ScanReply,
    encode_error,
    encode_pong,
    encode_result,
    encode_tell,
)
from seawall.message import Envelope
from seawall.policy.model import Action, Verdict
from seawall.quietlog import QuietLog

log = logging.getLogger("seawall.spamd")
_quiet = QuietLog(log)

# spamd's --timeout-tcp: a client silent this long (or not reading its reply) holds a
# connection slot for nothing.
IO_TIMEOUT_S = 30.0
_READ_BYTES = 64 * 1024


async def serve_spamd_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    scanner: Scanner,
    settings: SpamdSettings,
    *,
    log_message: Callable[[Envelope, Verdict], None] | None = None,
    timeout_s: float = IO_TIMEOUT_S,
    conn: Conn | None = None,
    header_timeout_s: float = 10.0,
    body_timeout_s: float = 60.0,
    tell_access: LearnAccess | None = None,
    budget: Budget = UNLIMITED,
) -> None:
    """Read one request, answer it, close.  Never raises for a client's doing.

    ``timeout_s`` bounds each silence (spamd's --timeout-tcp); ``conn``, when given, is
    kept in its phase, so the worker closes a request whose headers are not in within
    ``header_timeout_s`` of its first byte, or its body within ``body_timeout_s`` after.
    ``tell_access`` gates TELL (None: ``settings.allow_tell`` alone); the message's bytes
    are taken from ``budget`` (past it: EX_TEMPFAIL).

    >>> server = await asyncio.start_server(                    # doctest: +SKIP
    ...     lambda r, w: serve_spamd_connection(r, w, service, config.serve.spamd),
    ...     "127.0.0.1", 783)
    """
    phases = _Phases(conn, header_timeout_s, body_timeout_s)
    try:
        with budget.hold() as held:
            reply = await _reply(
                reader,
                writer,
                scanner,
                settings,
                log_message,
                timeout_s,
                phases,
                held,
                tell_access,
            )
            # A connection the worker closed at its deadline has no one left to answer
            # (and uvloop raises on a write to a closed transport).
            if reply and not writer.transport.is_closing():
                writer.write(reply)
                async with asyncio.timeout(timeout_s):
                    await writer.drain()
        writer.close()  # spamc reads the reply to EOF: closing is part of it
        async with asyncio.timeout(timeout_s):
            await writer.wait_closed()
    except (ConnectionError, TimeoutError) as exc:
        log.debug("connection with %s ended early: %s", _peer(writer), exc)
    finally:
        writer.close()  # again, for the early ends and a cancellation at shutdown


async def _reply(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    scanner: Scanner,
    settings: SpamdSettings,
    log_message: Callable[[Envelope, Verdict], None] | None,
    timeout_s: float,
    phases: _Phases,
    held: Held,
    tell_access: LearnAccess | None,
) -> bytes | None:
    """The bytes to answer with, whatever happens; None for nothing at all."""
    try:
        parser = RequestParser(scan_bytes=scanner.max_message_bytes)
        try:
            request = await _read_request(reader, parser, timeout_s, phases, held)
        except TimeoutError:
            return encode_error(ExitCode.EX_TIMEOUT, f"client silent for {timeout_s:g}s")
        if request is None:
            return None
        phases.busy()
        if request.command is Command.TELL:
            client = _client(writer)
            try:
                if tell_access is not None:
                    await tell_access.check(client, request.user)
            except Denied as denied:
                _quiet.warning(
                    f"tell-{denied.status}", "spamd TELL from %s refused: %s", client, denied
                )
                code = ExitCode.EX_UNAVAILABLE if denied.status == "off" else ExitCode.EX_NOPERM
                return encode_error(code, f"TELL refused: {denied}")
        return await answer(request, scanner, settings, log_message=log_message)
    except OverBudget as exc:
        _quiet.warning("budget", "spamd: tempfailing a request: %s", exc)
        return encode_error(ExitCode.EX_TEMPFAIL, "too many messages in flight, try again later")
    except SpamdViolation as exc:
        _quiet.warning("violation", "spamd: bad request from %s: %s", _peer(writer), printable(exc))
        return encode_error(ExitCode.EX_PROTOCOL, f"Bad request: {exc}")
    except ConnectionError as exc:
        log.debug("client %s went away: %s", _peer(writer), exc)
        return None
    except StoreError as exc:
        # The classifier's database is busy or unreachable: worth a retry, not a bug.
        _quiet.warning("store", "spamd request failed on the store: %s", exc)
        return encode_error(ExitCode.EX_TEMPFAIL, "state store unavailable, try again later")
    except Exception:
        log.exception("spamd request from %s failed", _peer(writer))
        return encode_error(ExitCode.EX_SOFTWARE, "internal error")


async def answer(
    request: Request,
    scanner: Scanner,
    settings: SpamdSettings,
    *,
    log_message: Callable[[Envelope, Verdict], None] | None = None,
) -> bytes | None:
    """The reply to one request (None: SKIP, close without a word)."""
    command = request.command
    if command is Command.SKIP:
        return None
    if command is Command.PING:
        return encode_pong()
    if command is Command.TELL:
        return await _tell(request, scanner, settings)
    # spamd has no envelope: the MTA or MDA that runs spamc keeps it.  The User header
    # names the mailbox owner, which is not an authenticated sender (Envelope.user).
    envelope = Envelope()
    raw = request.body
    if len(raw) > scanner.max_message_bytes:  # only PROCESS keeps more: it returns it all
        raw = raw[: scanner.max_message_bytes]
    verdict = await scanner.check(envelope, raw)
    if log_message is not None:
        log_message(envelope, verdict)
    if verdict.action is Action.SOFT_REJECT:
        # spamd cannot say "not now" in a Spam: header.  An error makes spamc -x exit
        # non-zero, so the MTA retries, and plain spamc passes the message through unchanged.
        deferred = smtp_reply(verdict)  # the milter's and the SMTP proxy's words
        return encode_error(ExitCode.EX_TEMPFAIL, deferred[2] if deferred else "try again later")
    return encode_result(
        request,
        ScanReply(verdict.is_spam, verdict.score, verdict.required, _body(request, verdict)),
    )


def _body(request: Request, verdict: Verdict) -> bytes:
    command = request.command
    if command is Command.SYMBOLS:
        return ",".join(sorted(verdict.symbols)).encode()
    if command is Command.REPORT or (command is Command.REPORT_IFSPAM and verdict.is_spam):
        return report(verdict).encode()
    if command in (Command.PROCESS, Command.HEADERS):
        return rewrite_message(
            request.body,
            spam_headers(verdict),
            remove=HEADER_NAMES,
            headers_only=command is Command.HEADERS,
        )
    return b""


async def _tell(request: Request, scanner: Scanner, settings: SpamdSettings) -> bytes:
    """spamc -L spam|ham|forget: Set: local learns, Remove: local forgets.  Remote is ignored."""
    if not settings.allow_tell:
        # spamd's own answer without --allow-tell: EX_UNAVAILABLE.
        return encode_error(ExitCode.EX_UNAVAILABLE, "TELL is off (serve.spamd.allow_tell)")
    # The User header carried the learner's credentials (spamc -u NAME:PASSWORD): checked
    # by the caller; never logged.
    # A message that went through PROCESS carries our X-Spam-* headers: learn the
    # message as it was, as spamd does (remove_spamassassin_markup).
    raw = rewrite_message(request.body, (), remove=HEADER_NAMES)
    did_set: list[str] = []
    did_remove: list[str] = []
    if "local" in request.sets and await scanner.learn(raw, spam=request.message_class == "spam"):
        did_set.append("local")
    if "local" in request.removes and await scanner.forget(raw):
        did_remove.append("local")
    log.debug("TELL %s: set=%s removed=%s", request.message_class, did_set, did_remove)
    return encode_tell(did_set, did_remove)


async def _read_request(
    reader: asyncio.StreamReader,
    parser: RequestParser,
    timeout_s: float,
    phases: _Phases,
    held: Held,
) -> Request | None:
    """The next request; None if the client closed without sending anything (a port probe).

    ``timeout_s`` bounds each read (a silence); ``phases`` the head and the body as a
    whole, whatever trickles in.
    """
    phases.idle(timeout_s)
    while True:
        async with asyncio.timeout(timeout_s):
            data = await reader.read(_READ_BYTES)
        if not data:
            return None if parser.idle else parser.feed_eof()
        held.take(len(data))
        phases.head()
        request = parser.feed(data)
        if request is not None:
            return request
        if parser.in_body:
            phases.body()


class _Phases:
    """The connection's phase for the worker's limits: one deadline for the head from its
    first byte, one for the body from the end of the head."""

    def __init__(self, conn: Conn | None, header_s: float, body_s: float) -> None:
        self.conn = conn
        self.header_s = header_s
        self.body_s = body_s
        self._at = ""

    def _enter(self, phase: str, timeout_s: float | None) -> None:
        if self.conn is None or self._at == phase:
            return
        self._at = phase
        if timeout_s is None:
            self.conn.busy()
        elif phase == "idle":
            self.conn.idle(timeout_s)
        else:
            self.conn.reading(timeout_s)

    def idle(self, timeout_s: float) -> None:
        self._enter("idle", timeout_s)

    def head(self) -> None:
        if self._at == "idle" or self.conn is None:
            self._enter("head", self.header_s)

    def body(self) -> None:
        self._enter("body", self.body_s)

    def busy(self) -> None:
        self._enter("busy", None)


def _client(writer: asyncio.StreamWriter) -> str | None:
    """The peer's address; None on a unix socket."""
    peer = writer.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) else None


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple):
        return f"{peer[0]}:{peer[1]}"
    return str(peer or "unix socket")
