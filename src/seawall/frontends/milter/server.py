"""The milter front end: one MTA connection served over its sans-I/O session (session.py).

The MTA (Postfix ``smtpd_milters``, Sendmail ``INPUT_MAIL_FILTER``) opens one connection per
SMTP session.  This module reads and decodes its bytes, hands each command to the connection's
``Session`` and writes the responses back; the Session holds the state and the decisions.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
from collections.abc import Callable, Iterator

from seawall.config import MilterSettings
from seawall.errors import MilterViolation
from seawall.frontends.base import Scanner
from seawall.frontends.budget import UNLIMITED, Budget, Held, OverBudget
from seawall.frontends.connections import BUSY, IDLE, Conn
from seawall.frontends.logsafe import printable
from seawall.frontends.milter.codec import (
    SMFIP,
    Abort,
    Body,
    Command,
    EndOfMessage,
    Header,
    MilterCodec,
    OptionNegotiation,
    Response,
    encode,
)
from seawall.frontends.milter.session import Session
from seawall.message import Envelope
from seawall.policy.model import Verdict
from seawall.quietlog import QuietLog

log = logging.getLogger(__name__)
_quiet = QuietLog(log)

READ_BYTES = 256 * 1024


@contextlib.contextmanager
def _quickack(writer: asyncio.StreamWriter) -> Iterator[Callable[[], None]]:
    """Acknowledge each read at once (Linux TCP_QUICKACK; the kernel resets it after use).

    Events the MTA sends without waiting for a reply (headers, macros) are small
    writes; with Nagle's algorithm on the MTA's side, the next one waits for our
    ACK, which a delayed ACK holds for 40 ms: a 40 ms stall on every message.

    The option is set on a socket object of our own over a duplicate of the connection's
    descriptor, made once: the event loop's socket view builds a new one at every call.
    """
    sock = writer.get_extra_info("socket")
    option = getattr(socket, "TCP_QUICKACK", None)
    if sock is None or option is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        yield lambda: None
        return
    try:
        own = socket.socket(sock.family, sock.type, sock.proto, fileno=os.dup(sock.fileno()))
    except OSError:
        yield lambda: None
        return
    setsockopt, level = own.setsockopt, socket.IPPROTO_TCP

    def ack() -> None:
        with contextlib.suppress(OSError):
            setsockopt(level, option, 1)

    try:
        yield ack
    finally:
        own.close()


async def serve_milter_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    scanner: Scanner,
    settings: MilterSettings,
    *,
    log_message: Callable[[Envelope, Verdict], None] | None = None,
    max_packet_bytes: int | None = None,
    conn: Conn | None = None,
    header_timeout_s: float = 10.0,
    budget: Budget = UNLIMITED,
    refuse: bool = False,
) -> None:
    """Serve one MTA connection until it quits or closes; never raises.

    A protocol violation closes the connection (the MTA applies its
    ``milter_default_action``).  Any other error is logged and the current
    message gets a tempfail, so the MTA never waits on a reply that is not coming.

    ``conn`` is kept in its phase: idle between packets (``settings.idle_timeout_s``),
    reading while a packet is incomplete (``header_timeout_s`` for the whole packet),
    busy while one is handled.  A message's bytes are taken from ``budget``; past it, the
    message is tempfailed.  ``refuse``: the worker is full; negotiate, tempfail the
    first command that wants a reply, and close.
    """
    codec = MilterCodec(max_packet_bytes=max_packet_bytes or settings.max_packet_bytes)
    peer = writer.get_extra_info("peername")
    with _quickack(writer) as quickack, budget.hold() as held:
        try:
            session = Session(scanner, settings, log_message)
            while not session.closed:
                if conn is not None:
                    if not codec.pending:
                        conn.idle(settings.idle_timeout_s)
                    elif conn.phase == BUSY:  # the rest of a packet begun in the last read
                        conn.reading(header_timeout_s)
                data = await reader.read(READ_BYTES)
                if not data:
                    break
                quickack()
                commands = codec.feed(data)
                if conn is not None:
                    if commands:
                        conn.busy()
                    elif conn.phase == IDLE:  # a packet has begun: it has its deadline
                        conn.reading(header_timeout_s)
                for command in commands:
                    if refuse and not isinstance(command, OptionNegotiation):
                        if session.wants_reply(command):
                            writer.write(b"".join(map(encode, session.fail(command))))
                            await writer.drain()
                            return
                        continue
                    try:
                        _budget(held, command, session)
                        step = session.step(command)
                        responses = await session.handle(command) if step is None else step
                        if refuse:  # OptionNegotiation: have the MTA wait on every reply
                            responses = [_waiting_on_all(r) for r in responses]
                            session.protocol = SMFIP(0)
                        out = b"".join(map(encode, responses)) if responses else b""
                    except MilterViolation:
                        raise
                    except OverBudget as exc:
                        _quiet.warning("budget", "milter: tempfailing a message: %s", exc)
                        session.message.room = 0  # keep nothing more of it
                        out = b"".join(map(encode, session.fail(command)))
                    except Exception:
                        log.exception("milter %s: error handling %s", peer, type(command).__name__)
                        out = b"".join(map(encode, session.fail(command)))
                    if isinstance(command, (EndOfMessage, Abort)):
                        held.release()  # the message is answered or dropped
                    if out:
                        writer.write(out)
                        await writer.drain()
                    if session.closed:
                        break
        except MilterViolation as exc:
            _quiet.warning(
                "violation", "milter %s: protocol violation, closing: %s", peer, printable(exc)
            )
        except ConnectionError as exc:
            log.debug("milter %s: connection lost: %s", peer, exc)
        except Exception:
            # Not even a tempfail could be sent: closing makes the MTA apply
            # milter_default_action.
            log.exception("milter %s: closing after an internal error", peer)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


def _waiting_on_all(response: Response) -> Response:
    """A negotiation reply with no "no reply" flags: the MTA then waits on a reply to its
    connect event, and a refused session is tempfailed there."""
    if isinstance(response, OptionNegotiation):
        return dataclasses.replace(response, protocol=SMFIP(0))
    return response


def _budget(held: Held, command: Command, session: Session) -> None:
    """Take a message's bytes from the worker's budget as its head and body arrive."""
    if session.message.room <= 0:
        return  # cut already: nothing more is kept
    if isinstance(command, Header):
        held.take(len(command.name) + len(command.value) + 4)
    elif isinstance(command, (Body, EndOfMessage)):
        held.take(min(len(command.chunk), session.message.room))
