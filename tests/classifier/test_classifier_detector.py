"""The detector: silent until trained, then one hit whose weight follows the margin."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import msgspec
import pytest

from seawall.classifier import Classifier
from seawall.config import load_config
from seawall.detectors.base import Context, Hit, Parts
from seawall.detectors.classifier import ClassifierDetector
from seawall.message import Message, parse_message
from seawall.policy.decide import decide
from seawall.policy.model import Action
from seawall.policy.scores import load_scores

from .conftest import inline, settings


async def hits(detector: ClassifierDetector, msg: Message) -> dict[str, Hit]:
    found = await detector.check(msg, Context(now=0.0))
    assert len(found) <= 1
    assert {h.symbol for h in found} <= set(detector.symbols)
    return {h.symbol: h for h in found}


async def test_silent_until_min_learns_of_each_class(open_classifier: Any) -> None:
    clf = open_classifier(min_learns=3)
    detector = ClassifierDetector(settings(min_learns=3), clf)
    for i in range(3):
        clf.learn(inline("Cheap pills", f"buy pills {i}", f"s{i}@x"), spam=True)
    clf.learn(inline("Lunch", "see you at noon", "h0@x"), spam=False)
    assert await hits(detector, inline("Cheap pills", "buy pills now")) == {}
    for i in range(1, 3):
        clf.learn(inline("Lunch", f"see you at {i}", f"h{i}@x"), spam=False)
    assert set(await hits(detector, inline("Cheap pills", "buy pills now"))) == {"CLASSIFIER_SPAM"}


async def test_weight_follows_the_margin(
    open_classifier: Any,
    train_pairs: list[tuple[Message, bool]],
    sa_messages: dict[str, list[Message]],
) -> None:
    clf = open_classifier(hash_bits=18)
    clf.learn_many(train_pairs)
    config = settings(hash_bits=18)
    detector = ClassifierDetector(config, clf)
    scores = load_scores()
    signed = []
    for msg in sa_messages["test_spam"][:20] + sa_messages["test_ham"][:20]:
        found = await hits(detector, msg)
        ((symbol, hit),) = found.items()
        margin = clf.margin(msg)
        assert symbol == ("CLASSIFIER_SPAM" if margin > 0 else "CLASSIFIER_HAM")
        assert 0.0 <= hit.weight < 1.0
        assert math.isclose(hit.weight, abs(math.tanh(margin / config.margin_scale)))
        verdict = decide([hit], scores)
        signed.append((margin, verdict.score))
        if margin > 2 * config.margin_scale:
            assert verdict.action is Action.REJECT
    signed.sort()
    totals = [total for _, total in signed]
    assert totals == sorted(totals)  # the verdict keeps the classifier's ranking
    assert any(total >= 6.0 for total in totals)  # confident spam: "add header" on its own
    assert any(total < 0 for total in totals)


def test_scores_file_defines_the_symbols() -> None:
    scores = load_scores()
    spam, ham = scores.symbols["CLASSIFIER_SPAM"], scores.symbols["CLASSIFIER_HAM"]
    assert spam.group == ham.group == "classifier"
    assert spam.score >= 6.0 > 0 > ham.score
    assert scores.groups["classifier"].max_score is not None


def test_a_state_that_learned_too_little_is_named_once_at_build(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = load_config(state_dir=str(tmp_path))
    config = msgspec.structs.replace(
        config,
        detectors=msgspec.structs.replace(config.detectors, classifier=settings(min_learns=3)),
    )
    clf = Classifier.open(tmp_path, config.detectors.classifier)
    try:
        clf.learn(inline("Cheap pills", "buy pills now", "s0@x"), spam=True)
        with caplog.at_level(logging.WARNING, logger="seawall.classifier"):
            detector = ClassifierDetector.build(Parts(config, clf))
        assert detector is not None
        [record] = caplog.records
        assert record.getMessage() == (
            f"the classifier in {tmp_path} has learned 1 spam and 0 ham (needs 3 of each): "
            "its symbol is left out until then"
        )
        for i in range(1, 3):
            clf.learn(inline("Cheap pills", f"buy pills {i}", f"s{i}@x"), spam=True)
        for i in range(3):
            clf.learn(inline("Lunch", f"see you at {i}", f"h{i}@x"), spam=False)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="seawall.classifier"):
            ClassifierDetector.build(Parts(config, clf))
        assert caplog.records == []  # ready: nothing to say
    finally:
        clf.close()


async def test_no_hit_when_the_margin_is_exactly_zero(open_classifier: Any) -> None:
    clf = open_classifier(min_learns=1)
    detector = ClassifierDetector(settings(min_learns=1), clf)
    clf.learn(inline("Cheap pills", "buy pills now", "s@x"), spam=True)
    clf.learn(inline("Lunch", "see you at noon", "h@x"), spam=False)
    empty = parse_message(b"")
    assert clf.margin(empty) == 0.0  # no feature: the model knows nothing of it
    assert await hits(detector, empty) == {}  # not CLASSIFIER_HAM scored 0
    assert set(await hits(detector, inline("Cheap pills", "buy pills today"))) == {
        "CLASSIFIER_SPAM"
    }
