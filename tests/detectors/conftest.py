"""Inline messages for detector tests, in Mailman's style: ``msg(b"From: a@b\\n\\nbody")``."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from seawall import corpus
from seawall.detectors.base import Context, Hit
from seawall.message import Envelope, Message, parse_message
from seawall.sources import units_of_file


def msg(raw: bytes, envelope: Envelope | None = None, **changes: Any) -> Message:
    """Parse an inline message; ``changes`` replace Message fields the test pins down."""
    parsed = parse_message(raw, envelope or Envelope())
    return dataclasses.replace(parsed, **changes) if changes else parsed


async def scan(detector: Any, message: Message, ctx: Context | None = None) -> dict[str, Hit]:
    """The detector's hits by symbol (each symbol at most once, each one declared)."""
    hits: Sequence[Hit] = await detector.check(message, ctx or Context(now=0.0))
    by_symbol = {hit.symbol: hit for hit in hits}
    assert len(by_symbol) == len(hits), f"duplicate symbols in {hits}"
    unknown = set(by_symbol) - set(detector.symbols)
    assert not unknown, f"undeclared symbols {unknown}"
    return by_symbol


def corpus_messages(source: str, label: str, step: int = 1) -> list[bytes]:
    """Every ``step``-th message of ``label`` ("ham" or "spam") in a shared corpus, raw;
    an mbox gives each of its messages."""
    units = [
        unit
        for item in corpus.items(source)
        if item.label == label
        for unit in units_of_file(str(item.path))
    ]
    return [unit.read() for unit in units[::step]]
