"""The full and the content model side by side: what each sees, the margin they give,
exact unlearning of both, and every process with the same two models."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np

from seawall.classifier import Classifier, pair
from seawall.classifier.features import features, parts
from seawall.message import Message, parse_message

from .conftest import settings

OLD_RELAY = (
    "Received: from mail.oldrelay.example (mail.oldrelay.example [192.0.2.7])\n"
    "\tby mx.isp.example (8.11.6/8.11.6) with ESMTP id g6LAbc123 for <u@isp.example>\n"
    "X-Mailer: Old Mail Client 4.72.3110\n"
    "Content-Type: text/plain; charset=us-ascii\n"
)
NEW_RELAY = (
    "Received: from [203.0.113.9] (helo=smtp.bulk-sender.example)\n"
    "\tby mx.isp.example with esmtps (TLS1.3) id 1tXyZ-0004Ab-Cd for <u@isp.example>\n"
    "X-Mailer: MassMailer Pro 9\n"
    "Content-Type: text/html; charset=utf-8\n"
)
HAM_TEXT = [
    "Hi team, the minutes of Tuesday's meeting are attached; the build moves to Friday.",
    "Can you review the patch for the parser before lunch? It fixes the folding bug.",
    "Dinner on Saturday at seven, bring the slides from the conference if you have them.",
    "The release notes need one more pass; I left comments on the second section.",
]
SPAM_TEXT = [
    "CHEAP MEDS online!!! Viagra Cialis 90% OFF, no prescription, order now at our pharmacy",
    "You have WON $1,000,000 in the international lottery, claim your prize money today",
    "Earn $5000 a week from home!!! Limited offer, click here now, act fast, free bonus",
    "Lose 30 pounds in 30 days with our miracle pill, guaranteed results, order today",
]


def message(head: str, subject: str, body: str, n: int) -> Message:
    raw = f"From: someone{n}@example.com\nTo: u@isp.example\nSubject: {subject}\n{head}"
    return parse_message(
        f"{raw}Message-ID: <{n}.{hash(body) & 0xFFFF}@example>\n\n{body}\n".encode()
    )


def stream() -> list[tuple[Message, bool]]:
    """Ham with the old relay's headers and spam with the new one's, interleaved."""
    out = []
    for n in range(120):
        out.append((message(OLD_RELAY, f"re: notes {n}", HAM_TEXT[n % 4] + f" ({n})", n), False))
        spam = message(NEW_RELAY, f"offer {n}", SPAM_TEXT[n % 4] + f" #{n}", 1000 + n)
        out.append((spam, True))
    return out


def test_spam_in_the_headers_of_learned_ham_is_spam_to_the_content_model(
    open_classifier: Any,
) -> None:
    clf = open_classifier(min_learns=5)
    clf.learn_many(stream())
    disguised = message(OLD_RELAY, "offer 7", SPAM_TEXT[1] + " #7777", 9999)
    full, content = pair.margins(clf.model, features(disguised, bits=clf.bits), bits=clf.bits)
    assert content is not None
    assert content > 0
    assert content - pair.CONTENT_OFFSET > full  # the full model hears the ham's relay
    assert clf.margin(disguised) == content - pair.CONTENT_OFFSET > 0
    plain_ham = message(OLD_RELAY, "re: notes", HAM_TEXT[2] + " (again)", 8888)
    assert clf.margin(plain_ham) < 0  # ham in ham's headers stays ham for both


def test_keys_without_content_features_have_the_full_margin(open_classifier: Any) -> None:
    clf = open_classifier(min_learns=5)
    clf.learn_many(stream()[:60])
    keys = features(message(OLD_RELAY, "re: notes", HAM_TEXT[0], 5555), bits=clf.bits)
    full_keys, content_keys = parts(keys, bits=clf.bits)
    assert full_keys.size
    assert content_keys.size
    full, content = pair.margins(clf.model, full_keys, bits=clf.bits)
    assert content is None
    assert pair.margin(clf.model, full_keys, bits=clf.bits) == full != 0.0
    assert pair.margins(clf.model, keys, bits=clf.bits)[0] == full  # the same with both


def test_both_models_learn_and_unlearn_exactly(open_classifier: Any) -> None:
    clf = open_classifier(min_learns=5)
    pairs = stream()[:40]
    clf.learn_many(pairs)
    half = clf.model.weights.size // 2
    assert np.abs(clf.model.weights[:half]).sum() > 0  # the full model
    assert np.abs(clf.model.weights[half:]).sum() > 0  # the content model
    clf.learn(pairs[0][0], spam=not pairs[0][1])  # relabelled: both lessons taken back first
    for msg, _ in pairs:
        assert clf.unlearn(msg)
    np.testing.assert_allclose(clf.model.weights, 0.0, atol=1e-5)


def test_every_process_has_the_same_two_models(open_classifier: Any) -> None:
    learner = open_classifier(min_learns=5, reload_interval_s=0.0)
    reader = open_classifier(min_learns=5, reload_interval_s=0.0)
    pairs = stream()
    learner.learn_many(pairs[:100])  # a snapshot
    for msg, spam in pairs[100:120]:  # deltas, each a step of each model
        learner.learn(msg, spam)
    learner.unlearn(pairs[101][0])
    probes = [m for m, _ in pairs[120:140]]
    bits = learner.bits
    expected = [pair.margins(learner.model, features(m, bits=bits), bits=bits) for m in probes]
    assert [reader.margin(m) for m in probes] == [learner.margin(m) for m in probes]
    got = [pair.margins(reader.model, features(m, bits=bits), bits=bits) for m in probes]
    assert got == expected
    np.testing.assert_array_equal(reader.model.weights, learner.model.weights)


def test_held_out_corpus_spam_is_spam_to_the_content_model(
    open_classifier: Any,
    train_pairs: list[tuple[Message, bool]],
    sa_messages: dict[str, list[Message]],
) -> None:
    clf = open_classifier(hash_bits=18)
    clf.learn_many(train_pairs)
    spam = [
        pair.margins(clf.model, features(m, bits=18), bits=18) for m in sa_messages["test_spam"]
    ]
    ham = [pair.margins(clf.model, features(m, bits=18), bits=18) for m in sa_messages["test_ham"]]
    assert np.mean([c is not None and c > 0 for _, c in spam]) > 0.8
    assert np.mean([c is not None and c < 0 for _, c in ham]) > 0.8


def test_a_store_of_an_earlier_release_gets_the_content_coefficient(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    db = sqlite3.connect(path)
    db.execute(  # the table as features v3 made it
        "CREATE TABLE classifier_messages (id INTEGER PRIMARY KEY, digest BLOB NOT NULL UNIQUE,"
        " spam INTEGER NOT NULL, coef REAL NOT NULL, learned_at REAL NOT NULL)"
    )
    db.execute("INSERT INTO classifier_messages VALUES (1, x'01', 1, 2.5, 0.0)")
    db.commit()
    db.close()
    clf = Classifier.open(tmp_path, settings())
    try:
        with clf.store.read():
            found = clf.store.find(b"\x01")
        assert found is not None
        assert found.coef == (2.5, 0.0)
    finally:
        clf.close()


def _hits(clf: Classifier, msg: Message) -> dict[str, Any]:
    import asyncio

    from seawall.config import load_config
    from seawall.detectors.base import Context, Parts
    from seawall.detectors.classifier import ClassifierDetector

    detector = ClassifierDetector.build(Parts(load_config(None), classifier=clf))
    assert detector is not None
    return {hit.symbol: hit for hit in asyncio.run(detector.check(msg, Context(0.0)))}


BULK_RELAY = NEW_RELAY + "".join(
    f"X-Bulk-{name}: {value}\n"
    for name, value in (
        ("Campaign", "spring-offer-7731"),
        ("Queue", "mx-out-17.bulk-sender.example"),
        ("Tracking", "a9f3c2e1-77b0-4d1e-9c3a-5be0d4f1c2aa"),
        ("Sender-Id", "bulk-sender-42"),
        ("Feedback", "fbl.bulk-sender.example"),
        ("Priority", "bulk-high"),
    )
)


def test_certain_only_where_the_text_agrees(open_classifier: Any) -> None:
    """Ham text in the headers of learned spam: the full model alone is past the reject
    margin, and the classifier is not certain; spam text there is."""
    clf = open_classifier(min_learns=5, calibration_min_ham=20, calibration_min_spam=0)
    pairs = []
    for n in range(150):
        ham = f"From: a{n}@example.com\nSubject: re: notes {n}\n{OLD_RELAY}Message-ID: <h{n}@x>"
        spam = f"From: s{n}@example.com\nSubject: offer {n}\n{BULK_RELAY}Message-ID: <s{n}@x>"
        pairs.append((parse_message(f"{ham}\n\n{HAM_TEXT[n % 4]} ({n})\n".encode()), False))
        pairs.append((parse_message(f"{spam}\n\n{SPAM_TEXT[n % 4]} #{n}\n".encode()), True))
    clf.learn_many(pairs)
    reject = clf.reject_margin
    assert reject is not None
    head = f"From: p@example.com\nSubject: re: notes\n{BULK_RELAY}Message-ID: <p1@x>"
    ham_in_spam_headers = parse_message(f"{head}\n\n{HAM_TEXT[3]} (late)\n".encode())
    margin, content = clf.margins(ham_in_spam_headers)
    assert margin >= reject.margin  # the headers alone would make it certain
    assert content is not None
    assert content <= 0  # what the sender wrote reads as ham
    hits = _hits(clf, ham_in_spam_headers)
    assert "CLASSIFIER_CERTAIN" not in hits
    held = hits["CLASSIFIER_SPAM"]
    assert held.weight < 15.0 / 16.0  # under the reject threshold's share of its 16 points
    assert any("held under the calibrated reject margin" in o for o in held.options)
    head = f"From: q@example.com\nSubject: offer\n{BULK_RELAY}Message-ID: <p2@x>"
    spam = parse_message(f"{head}\n\n{SPAM_TEXT[0]} #9999\n".encode())
    margin, content = clf.margins(spam)
    assert margin >= reject.margin
    assert content is not None
    assert content > 0
    assert "CLASSIFIER_CERTAIN" in _hits(clf, spam)
