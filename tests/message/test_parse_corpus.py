"""The SpamAssassin corpus end to end: every message parses, quickly, into sane values."""

from __future__ import annotations

import re
import statistics
import time

import pytest

from seawall import corpus
from seawall.message import Message, parse_message
from seawall.message.defects import ATTACHMENT_DESCRIPTIONS, DESCRIPTIONS

# The parse budget is ~0.5 ms a message on the development machine; the bounds here are
# loose enough for a loaded CI runner and tight enough to catch a quadratic path.
MEAN_BOUND_S = 0.005
MAX_BOUND_S = 0.5


@pytest.mark.slow
def test_spamassassin_corpus_parses_fast() -> None:
    items = corpus.items(corpus.SPAMASSASSIN)
    assert len(items) == 6046
    raws = [item.path.read_bytes() for item in items]
    parse_message(raws[0])  # load the Public Suffix List outside the timing
    seconds: list[float] = []
    messages: list[Message] = []
    for raw in raws:
        start = time.process_time()
        messages.append(parse_message(raw))
        seconds.append(time.process_time() - start)
    assert statistics.fmean(seconds) < MEAN_BOUND_S
    assert max(seconds) < MAX_BOUND_S
    for item, msg in zip(items, messages, strict=True):
        assert msg.size == item.path.stat().st_size
        assert set(msg.defects) <= set(DESCRIPTIONS), (item.path.name, msg.defects)
        for attachment in msg.attachments:
            assert set(attachment.defects) <= set(ATTACHMENT_DESCRIPTIONS)
    with_text = sum(1 for msg in messages if msg.text.strip())
    assert with_text / len(messages) > 0.99
    assert sum(1 for msg in messages if msg.has_html) > 1000
    assert sum(1 for msg in messages if msg.urls) > 4000


def test_defect_names_are_stable_snake_case() -> None:
    for name in [*DESCRIPTIONS, *ATTACHMENT_DESCRIPTIONS]:
        assert re.fullmatch(r"[a-z]+(?:_[a-z0-9]+)*", name), name
    assert {"empty", "no_headers", "truncated", "too_large", "bad_base64"} <= set(DESCRIPTIONS)


def test_phishing_corpus_sample_parses() -> None:
    for item in corpus.items(corpus.PHISHING_POT)[::10]:
        msg = parse_message(item.path.read_bytes())
        assert set(msg.defects) <= set(DESCRIPTIONS)
