"""Oddities (symbols shipped at 0) learn a spam weight only from ham they were seen on: a
trait the training ham never carried (its era, its software, its lists) does not lift mail
the classifier only half suspects over the lowest action."""

from __future__ import annotations

import random

from seawall.classifier.calibration import RejectMargin
from seawall.classifier.scores import MIN_HAM_EVENTS, apply, fit
from seawall.config import LearnedScoresSettings
from seawall.detectors.base import Hit
from seawall.detectors.classifier import Grading, classifier_hits
from seawall.policy.decide import decide
from seawall.policy.model import Action
from seawall.policy.scores import load_scores

BASE = load_scores()
SETTINGS = LearnedScoresSettings(min_messages=100)
ODDITIES = ("HDR_PRECEDENCE_BULK", "LANGUAGE_UNKNOWN", "HDR_MID_RHS_NOT_FQDN")


def era_stream(n: int, ham_events: int, seed: int = 7) -> list[tuple[bool, dict[str, float]]]:
    """Training mail whose spam carries the oddities as often as HDR_MID_MALFORMED (shipped
    as evidence, 1.5), and whose ham carries each oddity ``ham_events`` times."""
    rng = random.Random(seed)
    rows: list[tuple[bool, dict[str, float]]] = []
    ham_seen = 0
    for i in range(n):
        spam = i % 2 == 0
        vector: dict[str, float] = {"CLASSIFIER_SPAM" if spam else "CLASSIFIER_HAM": 0.2}
        if spam and rng.random() < 0.4:
            vector["HDR_MID_MALFORMED"] = 1.0
            vector.update(dict.fromkeys(ODDITIES, 1.0))
        if not spam and ham_seen < ham_events:
            ham_seen += 1
            vector.update(dict.fromkeys(ODDITIES, 1.0))
        rows.append((spam, vector))
    return rows


def test_an_oddity_never_seen_on_enough_ham_stays_at_zero() -> None:
    for events in (0, 1, MIN_HAM_EVENTS - 1):
        table = fit(era_stream(4000, events), BASE, SETTINGS)
        for name in ODDITIES:
            assert table.seen[name] > 700, name  # plenty of spam: the ham side is thin
            assert table.scores[name] == 0.0, (name, events)
        # Evidence shipped as such learns from the same stream.
        assert table.scores["HDR_MID_MALFORMED"] > BASE.symbols["HDR_MID_MALFORMED"].score


def test_an_oddity_seen_on_enough_ham_learns_its_weight() -> None:
    table = fit(era_stream(4000, 4 * MIN_HAM_EVENTS), BASE, SETTINGS)
    for name in ODDITIES:
        assert 0.0 < table.scores[name] <= SETTINGS.cap, name


def test_a_site_can_still_pin_an_oddity() -> None:
    settings = LearnedScoresSettings(min_messages=100, pinned={"HDR_PRECEDENCE_BULK": 1.0})
    table = fit(era_stream(400, 0), BASE, settings)
    assert "HDR_PRECEDENCE_BULK" not in table.scores
    assert apply(BASE, table, settings).symbols["HDR_PRECEDENCE_BULK"].score == 1.0


def test_at_and_around_the_ceiling_unmeasured_oddities_add_nothing() -> None:
    """Just under the graded margin the classifier's points sit just under greylist: with the
    learned table the unmeasured oddities leave the message there, a symbol shipped as
    evidence still lifts it over greylist, and from the graded margin on the classifier
    flags it alone."""
    table = fit(era_stream(4000, 0), BASE, SETTINGS)
    scores = apply(BASE, table, SETTINGS)
    grading = Grading.of(scores)
    assert grading is not None
    reject = RejectMargin(9.0, 1e-4, 2000, 7.5, 9.0, graded=5.0)
    oddities = tuple(Hit(name) for name in ODDITIES)
    for margin in (4.0, 4.5, 4.9, 4.99):
        hits = classifier_hits(margin, reject, 12.0, grading)
        alone = decide(hits, scores)
        assert alone.action is Action.NO_ACTION, margin
        odd = decide((*hits, *oddities), scores)
        assert odd.action is Action.NO_ACTION, margin
        assert odd.score == alone.score
        flagged = decide((*hits, Hit("HDR_MID_MALFORMED")), scores)
        assert flagged.action in (Action.GREYLIST, Action.ADD_HEADER), margin
    at = decide((*classifier_hits(5.0, reject, 12.0, grading), *oddities), scores)
    assert at.action in (Action.GREYLIST, Action.ADD_HEADER)
    assert at.score == decide(classifier_hits(5.0, reject, 12.0, grading), scores).score
