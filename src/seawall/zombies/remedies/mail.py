"""Sending a message over SMTP without blocking the event loop (stdlib smtplib in a thread).

Notices and abuse reports are few and each is one short SMTP session, so a thread per
message is enough; the MTA (the ISP's own relay) queues and retries delivery.
"""

from __future__ import annotations

import asyncio
import smtplib
from email.message import Message

from seawall.addresses import parse_listen
from seawall.errors import SeawallError


class MailError(SeawallError):
    """The MTA refused the message or could not be reached."""


def _send(smtp: str, message: Message, timeout_s: float) -> None:
    address = parse_listen(smtp, "smtp")
    if address.path:
        raise MailError(f"smtp: a host:port, not a unix socket ({smtp!r})")
    try:
        with smtplib.SMTP(address.host, address.port, timeout=timeout_s) as client:
            refused = client.send_message(message)
    except (OSError, smtplib.SMTPException, UnicodeError, ValueError) as exc:
        raise MailError(f"{smtp}: {exc}") from exc
    if refused:
        raise MailError(f"{smtp}: recipients refused: {sorted(refused)}")


async def send_message(smtp: str, message: Message, *, timeout_s: float = 30.0) -> None:
    """Hand ``message`` to the MTA at ``smtp`` ("host:port"); MailError if it is not taken."""
    await asyncio.to_thread(_send, smtp, message, timeout_s)
