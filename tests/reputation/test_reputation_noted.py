"""What the detector works out of a message, and how often: a start that reads the store
reads it with the address it found."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from seawall.config import Config
from seawall.detectors import reputation as module
from seawall.detectors.base import Context
from seawall.detectors.reputation import ReputationDetector
from seawall.message import Envelope, Message, parse_message
from seawall.store import MemoryStore

from .verdicts import verdict

T0 = 1_800_000_000.0


def mail(ip: str, *, list_id: bool = False) -> bytes:
    return (
        f"Received: from relay.example.org (relay.example.org [{ip}])\n"
        "\tby mx.example.net with ESMTP id 1; Sat, 3 Aug 2002 05:04:03 +0100\n"
        + ("List-Id: <users.lists.example.org>\n" if list_id else "")
        + "Subject: x\n\nbody\n"
    ).encode()


def detector(tmp_path: Path, store: MemoryStore | None = None) -> ReputationDetector:
    config = msgspec.convert(
        {"state_dir": str(tmp_path), "detectors": {"reputation": {"flush_s": 0}}}, Config
    )
    shared = store if store is not None else MemoryStore()
    return ReputationDetector(config, lambda: shared, spam_threshold=6.0)


@pytest.fixture
def senders(monkeypatch: pytest.MonkeyPatch) -> list[Message]:
    """The messages the real ``_sender`` was asked about, in order."""
    asked: list[Message] = []
    real = module._sender

    def counted(msg: Message, trusted: Callable[[str], bool]) -> str | None:
        asked.append(msg)
        return real(msg, trusted)

    monkeypatch.setattr(module, "_sender", counted)
    return asked


async def test_a_store_read_uses_the_address_the_start_found(
    tmp_path: Path, senders: list[Message]
) -> None:
    store = MemoryStore()
    det = detector(tmp_path, store)
    ctx = Context(now=T0)
    msg = parse_message(mail("198.51.100.7"))
    assert not await det.start(msg, ctx)  # a cache miss: read from the store
    assert senders == [msg]
    await det.after_verdict(msg, verdict(9.0), T0)
    assert senders == [msg, msg]
    for _ in range(9):  # its spam is counted under the address worked out (10 of 12)
        again = parse_message(mail("198.51.100.7"))
        await det.start(again, ctx)
        await det.after_verdict(again, verdict(9.0), T0)
    await det.flush()
    fresh = detector(tmp_path, store)  # another worker: the start reads the store
    hits = await fresh.start(parse_message(mail("198.51.100.7")), ctx)
    assert [h.symbol for h in hits] == ["REP_IP_SPAM"]
    assert hits[0].options[0] == "198.51.100.7"
    assert [h.symbol for h in await det.check(parse_message(mail("198.51.100.7")), ctx)] == [
        "REP_IP_SPAM"
    ]


async def test_authenticated_and_list_mail(tmp_path: Path, senders: list[Message]) -> None:
    det = detector(tmp_path)
    msg = parse_message(mail("198.51.100.8"), Envelope(user="alice"))
    assert det.source(msg, Context(now=T0)) == "198.51.100.8"
    assert det.source(msg, Context(now=T0, authenticated=True)) is None
    assert len(senders) == 1  # the authenticated answer needs no Received field
    await det.after_verdict(msg, verdict(30.0), T0)  # from our own user: not counted
    await det.flush()
    assert not await det.check(parse_message(mail("198.51.100.8")), Context(now=T0))
    posted = parse_message(mail("198.51.100.9", list_id=True))
    assert det.judged(posted, Context(now=T0)) is None  # counted, not judged
    assert det.source(posted, Context(now=T0)) == "198.51.100.9"
