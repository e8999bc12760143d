"""The spamd front end: one SPAMC request per connection, answered from the Scanner's Verdict."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from seawall.config import SpamdSettings
from seawall.errors import SpamdViolation, StoreError
from seawall.frontends.base import Scanner
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
) -> None:
    """Read one request, answer it, close.  Never raises for a client's doing.

    >>> server = await asyncio.start_server(                    # doctest: +SKIP
    ...     lambda r, w: serve_spamd_connection(r, w, service, config.serve.spamd),
    ...     "127.0.0.1", 783)
    """
    try:
        reply = await _reply(reader, writer, scanner, settings, log_message, timeout_s)
        if reply:
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
) -> bytes | None:
    """The bytes to answer with, whatever happens; None for nothing at all."""
    try:
        parser = RequestParser(scan_bytes=scanner.max_message_bytes)
        try:
            request = await _read_request(reader, parser, timeout_s)
        except TimeoutError:
            return encode_error(ExitCode.EX_TIMEOUT, f"client silent for {timeout_s:g}s")
        if request is None:
            return None
        return await answer(request, scanner, settings, log_message=log_message)
    except SpamdViolation as exc:
        log.info("bad request from %s: %s", _peer(writer), exc)
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
    reader: asyncio.StreamReader, parser: RequestParser, timeout_s: float
) -> Request | None:
    """The next request; None if the client closed without sending anything (a port probe).

    ``timeout_s`` bounds each read, not the whole request: a big message from a
    distant spamc -z may take longer than that, but never stalls that long.
    """
    while True:
        async with asyncio.timeout(timeout_s):
            data = await reader.read(_READ_BYTES)
        if not data:
            return None if parser.idle else parser.feed_eof()
        request = parser.feed(data)
        if request is not None:
            return request


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple):
        return f"{peer[0]}:{peer[1]}"
    return str(peer or "unix socket")
