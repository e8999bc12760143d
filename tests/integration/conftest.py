"""Fixtures that start real peers on loopback: Seawall, Postfix and an SMTP sink."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from tests.integration.postfix import free_port


@dataclass
class Sink:
    """Messages Postfix delivered, as parsed email.Message objects."""

    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.messages.append(message_from_bytes(content))
        return "250 OK"

    def with_subject(self, subject: str) -> list[Message]:
        return [m for m in self.messages if m.get("Subject") == subject]


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    handler = Sink()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A world-readable scratch dir (Postfix's own user must reach its queue)."""
    root = Path(tempfile.mkdtemp(prefix="seawall-it-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)
