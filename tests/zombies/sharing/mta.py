"""A private Postfix relaying to an SMTP sink on loopback, for the notice and report tests.

Seawall hands its mail to Postfix (as it hands it to the ISP's relay); Postfix delivers it
to the sink, an aiosmtpd server that keeps the bytes it received, so a test reads back what
crossed a real MTA.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from tests.integration.postfix import Postfix, free_port


@dataclass
class Sink:
    received: list[tuple[list[str], bytes]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.received.append((list(envelope.rcpt_tos), envelope.original_content or b""))
        return "250 OK"

    def wait(self, count: int, timeout_s: float = 60.0) -> list[tuple[list[str], Message]]:
        """The first ``count`` messages delivered, parsed, once they have all arrived."""
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(self.received) >= count, f"{len(self.received)} of {count} delivered"
        return [(rcpt, message_from_bytes(raw)) for rcpt, raw in self.received[:count]]


@dataclass
class Mta:
    postfix: Postfix
    sink: Sink

    @property
    def smtp(self) -> str:
        return f"127.0.0.1:{self.postfix.smtp_port}"


@contextmanager
def postfix_with_sink() -> Iterator[Mta]:
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    root = Path(tempfile.mkdtemp(prefix="seawall-mta-"))
    root.chmod(0o755)
    postfix = Postfix(root / "postfix", sink_port=port)
    try:
        postfix.start()
        yield Mta(postfix, sink)
    finally:
        postfix.stop()
        controller.stop()
        shutil.rmtree(root, ignore_errors=True)
