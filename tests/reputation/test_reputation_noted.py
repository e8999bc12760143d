"""The sender is worked out once a message: start(), a store read on a cache miss and
after_verdict() share it, and nothing of a message outlives it in the detector."""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from seawall.config import Config
from seawall.detectors import reputation as module
from seawall.detectors.base import Context
from seawall.detectors.reputation import ReputationDetector
from seawall.message import Envelope, Message, parse_message
from seawall.policy.model import Action, SymbolResult, Verdict
from seawall.store import MemoryStore

T0 = 1_800_000_000.0


def mail(ip: str, *, list_id: bool = False) -> bytes:
    return (
        f"Received: from relay.example.org (relay.example.org [{ip}])\n"
        "\tby mx.example.net with ESMTP id 1; Sat, 3 Aug 2002 05:04:03 +0100\n"
        + ("List-Id: <users.lists.example.org>\n" if list_id else "")
        + "Subject: x\n\nbody\n"
    ).encode()


def verdict(score: float) -> Verdict:
    return Verdict(
        score=score,
        required=15.0,
        action=Action.NO_ACTION,
        symbols={"X": SymbolResult("X", score)},
        language=None,
        elapsed_ms=0.0,
    )


def detector(tmp_path: Path) -> ReputationDetector:
    config = msgspec.convert(
        {"state_dir": str(tmp_path), "detectors": {"reputation": {"flush_s": 0}}}, Config
    )
    store = MemoryStore()
    return ReputationDetector(config, lambda: store, spam_threshold=6.0)


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


async def test_start_check_and_after_verdict_work_it_out_once(
    tmp_path: Path, senders: list[Message]
) -> None:
    det = detector(tmp_path)
    ctx = Context(now=T0)
    msg = parse_message(mail("198.51.100.7"))
    assert not await det.start(msg, ctx)  # a cache miss: read from the store
    assert not await det.check(msg, ctx)
    await det.after_verdict(msg, verdict(9.0), T0)
    assert senders == [msg]
    assert det._noted == {}  # used up by after_verdict
    for _ in range(9):  # its spam is counted under the address worked out (10 of 12)
        again = parse_message(mail("198.51.100.7"))
        await det.start(again, ctx)
        await det.after_verdict(again, verdict(9.0), T0)
    await det.flush()
    hits = await det.check(parse_message(mail("198.51.100.7")), ctx)
    assert [h.symbol for h in hits] == ["REP_IP_SPAM"]
    assert hits[0].options[0] == "198.51.100.7"


async def test_an_authenticated_scan_is_told_apart(tmp_path: Path, senders: list[Message]) -> None:
    det = detector(tmp_path)
    msg = parse_message(mail("198.51.100.8"), Envelope(user="alice"))
    assert det.source(msg, Context(now=T0)) == "198.51.100.8"
    assert det.source(msg, Context(now=T0, authenticated=True)) is None
    assert det.source(msg, Context(now=T0, authenticated=True)) is None
    assert len(senders) == 1  # the authenticated answer needs no Received field
    await det.after_verdict(msg, verdict(30.0), T0)  # from our own user: not counted
    await det.flush()
    assert not await det.check(parse_message(mail("198.51.100.8")), Context(now=T0))


async def test_list_mail_is_counted_not_judged(tmp_path: Path, senders: list[Message]) -> None:
    det = detector(tmp_path)
    ctx = Context(now=T0)
    posted = parse_message(mail("198.51.100.9", list_id=True))
    assert det.judged(posted, ctx) is None
    assert det.source(posted, ctx) == "198.51.100.9"
    assert len(senders) == 1


def test_nothing_outlives_its_message(tmp_path: Path) -> None:
    det = detector(tmp_path)
    ctx = Context(now=T0)
    # Unscanned to the end (a frozen scan has no after_verdict): each entry goes with its
    # message, and an address reused by a later message never answers for the earlier.
    for n in range(200):
        msg = parse_message(mail(f"198.51.100.{n % 250 + 1}"))
        assert det.source(msg, ctx) == f"198.51.100.{n % 250 + 1}"
        del msg
    gc.collect()
    assert det._noted == {}
    kept = [parse_message(mail(f"203.0.113.{n}")) for n in range(1, 6)]
    assert [det.source(m, ctx) for m in kept] == [f"203.0.113.{n}" for n in range(1, 6)]
    assert len(det._noted) == 5
