"""Reject what is certain, through a real Postfix: a fresh server learned on the SpamAssassin
train half rejects most test-half spam at SMTP time with 550 5.7.1 and its reason, sent one
message at a time, and rejects no test-half ham.

The classifier's calibrated reject margin (classifier/calibration.py) is built by the learn
itself, each message scored before it is learned; the server runs two workers, and each
loads it with the weights.
"""

from __future__ import annotations

import shutil
import smtplib
from collections.abc import Iterator

import pytest
from tests.integration.seawall_proc import Seawall
from tests.integration.test_postfix import Mta, running, world_readable_dir

from seawall import corpus, evaluation
from seawall.classifier import Classifier
from seawall.config import load_config
from seawall.sources import units_of_file

SENT = 20  # of each class, one message at a time


def _split(items: list[corpus.Item]) -> tuple[list[evaluation.Labelled], list[evaluation.Labelled]]:
    labelled = [
        evaluation.Labelled(unit, item.label == "spam")
        for item in items
        for unit in units_of_file(str(item.path))
    ]
    return evaluation.split(labelled, 0.5, 0)


def _wire(raw: bytes) -> bytes:
    """The message as a client sends it: without the corpus's mbox ``From `` line."""
    if raw.startswith(b"From "):
        raw = raw.split(b"\n", 1)[1]
    return raw


def _picks(test: list[evaluation.Labelled], spam: bool) -> list[bytes]:
    """The first SENT of a class in the test half's (seeded) order, each under 200 KB."""
    out: list[bytes] = []
    for item in test:
        if item.spam is spam and len(raw := item.unit.read()) < 200_000:
            out.append(_wire(raw))
        if len(out) == SENT:
            break
    return out


@pytest.fixture(scope="module")
def reject_mta(sa_items: list[corpus.Item]) -> Iterator[tuple[Mta, list[bytes], list[bytes]]]:
    train, test = _split(sa_items)
    root = world_readable_dir("seawall-reject-")
    state = root / "state"
    try:
        config = load_config(None, state_dir=str(state))
        evaluation.learn_all(train, config)  # `seawall learn`'s path
        classifier = Classifier.from_config(config)
        try:
            assert classifier.reject_margin is not None, "the learn left no calibration"
        finally:
            classifier.close()
        sw = Seawall(root=root / "sw", state=state, workers=2)
        with running(sw, root, policy=False, picks={}) as mta:
            yield mta, _picks(test, True), _picks(test, False)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _send(mta: Mta, raw: bytes) -> tuple[int, str]:
    """One message in its own SMTP session: the DATA reply's code and text."""
    with smtplib.SMTP("127.0.0.1", mta.postfix.smtp_port, timeout=120) as smtp:
        smtp.ehlo("client.example.net")
        smtp.mail("sender@example.net")
        smtp.rcpt("bob@example.org")
        code, text = smtp.data(raw)
    return code, text.decode(errors="replace")


def test_most_test_spam_is_rejected_with_seawalls_reason(
    reject_mta: tuple[Mta, list[bytes], list[bytes]],
) -> None:
    mta, spam, _ = reject_mta
    replies = [_send(mta, raw) for raw in spam]
    rejected = [text for code, text in replies if code == 550]
    print(f"test spam rejected at SMTP time: {len(rejected)} of {len(spam)}")
    assert len(rejected) > len(spam) // 2, replies
    for text in rejected:
        assert text.startswith("5.7.1 Spam message rejected; score"), text
    assert any("CLASSIFIER_CERTAIN" in text for text in rejected), rejected
    assert "milter-reject: END-OF-MESSAGE" in mta.postfix.log()


def test_test_ham_is_not_rejected(reject_mta: tuple[Mta, list[bytes], list[bytes]]) -> None:
    mta, _, ham = reject_mta
    replies = [_send(mta, raw) for raw in ham]
    assert not [(code, text) for code, text in replies if code >= 500], replies
    assert sum(code == 250 for code, _ in replies) >= len(ham) - 2, replies
