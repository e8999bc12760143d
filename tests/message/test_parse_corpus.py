"""The SpamAssassin corpus end to end: every message parses into sane values.

How fast is measured, not tested: ``python -m bench.hostile input --corpus`` prints the mean,
p99 and slowest parse of the corpus in CPU time.
"""

from __future__ import annotations

import re

import pytest

from seawall import corpus
from seawall.message import Message, parse_message
from seawall.message.defects import ATTACHMENT_DESCRIPTIONS, DESCRIPTIONS


@pytest.mark.slow
def test_spamassassin_corpus_parses() -> None:
    items = corpus.items(corpus.SPAMASSASSIN)
    assert len(items) == 6046
    messages: list[Message] = [parse_message(item.path.read_bytes()) for item in items]
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
