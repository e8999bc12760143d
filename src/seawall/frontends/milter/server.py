"""The milter front end: one MTA connection served over its sans-I/O session (session.py).

The MTA (Postfix ``smtpd_milters``, Sendmail ``INPUT_MAIL_FILTER``) opens one connection per
SMTP session.  This module reads and decodes its bytes, hands each command to the connection's
``Session`` and writes the responses back; the Session holds the state and the decisions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable

from seawall.config import MilterSettings
from seawall.errors import MilterViolation
from seawall.frontends.base import Scanner
from seawall.frontends.milter.codec import MAX_PACKET_BYTES, MilterCodec, encode
from seawall.frontends.milter.session import Session
from seawall.message import Envelope
from seawall.policy.model import Verdict

log = logging.getLogger(__name__)

READ_BYTES = 256 * 1024


def _quickack(writer: asyncio.StreamWriter) -> Callable[[], None]:
    """Acknowledge each read at once (Linux TCP_QUICKACK; the kernel resets it after use).

    Events the MTA sends without waiting for a reply (headers, macros) are small
    writes; with Nagle's algorithm on the MTA's side, the next one waits for our
    ACK, which a delayed ACK holds for 40 ms: a 40 ms stall on every message.
    """
    sock = writer.get_extra_info("socket")
    option = getattr(socket, "TCP_QUICKACK", None)
    if sock is None or option is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return lambda: None

    def ack() -> None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, option, 1)

    return ack


async def serve_milter_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    scanner: Scanner,
    settings: MilterSettings,
    *,
    log_message: Callable[[Envelope, Verdict], None] | None = None,
    max_packet_bytes: int = MAX_PACKET_BYTES,
) -> None:
    """Serve one MTA connection until it quits or closes; never raises.

    A protocol violation closes the connection (the MTA applies its
    ``milter_default_action``).  Any other error is logged and the current
    message gets a tempfail, so the MTA never waits on a reply that is not coming.
    """
    codec = MilterCodec(max_packet_bytes=max_packet_bytes)
    peer = writer.get_extra_info("peername")
    quickack = _quickack(writer)
    try:
        session = Session(scanner, settings, log_message)
        while not session.closed:
            data = await reader.read(READ_BYTES)
            if not data:
                break
            quickack()
            for command in codec.feed(data):
                try:
                    out = b"".join(map(encode, await session.handle(command)))
                except MilterViolation:
                    raise
                except Exception:
                    log.exception("milter %s: error handling %s", peer, type(command).__name__)
                    out = b"".join(map(encode, session.fail(command)))
                if out:
                    writer.write(out)
                    await writer.drain()
                if session.closed:
                    break
    except MilterViolation as exc:
        log.warning("milter %s: protocol violation, closing: %s", peer, exc)
    except ConnectionError as exc:
        log.debug("milter %s: connection lost: %s", peer, exc)
    except Exception:
        # Not even a tempfail could be sent: closing makes the MTA apply milter_default_action.
        log.exception("milter %s: closing after an internal error", peer)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
