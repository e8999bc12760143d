"""The calibrated reject margin: derived conservatively, monotone in the verdict, kept in the
classifier's store (SQLite and Redis), seen by every process and reload, never undone by the
learned second stage."""

from __future__ import annotations

import math
import multiprocessing
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from seawall.classifier import Classifier
from seawall.classifier import calibration as cal
from seawall.classifier.calibration import Calibration, RejectMargin
from seawall.classifier.scores import apply, bounds, fit
from seawall.config import LearnedScoresSettings, load_config
from seawall.detectors.classifier import (
    ClassifierDetector,
    Grading,
    classifier_hits,
    spam_weight,
)
from seawall.policy.decide import decide
from seawall.policy.model import Action
from seawall.policy.scores import load_scores

from .conftest import inline, settings


def filled(ham: np.ndarray, spam: np.ndarray | None = None) -> Calibration:
    calibration = Calibration()
    for m in ham:
        calibration.add(float(m), spam=False)
    for m in () if spam is None else spam:
        calibration.add(float(m), spam=True)
    return calibration


def test_no_reject_margin_before_enough_ham() -> None:
    rng = np.random.default_rng(1)
    calibration = filled(rng.normal(-6, 2, 999), rng.normal(8, 3, 500))
    assert calibration.reject_margin(fpr=1e-4, min_ham=1000) is None
    calibration.add(-6.0, spam=False)
    assert calibration.reject_margin(fpr=1e-4, min_ham=1000) is not None


def test_no_reject_margin_before_enough_spam() -> None:
    """A model that has learned little spam says little with its ham margins."""
    rng = np.random.default_rng(2)
    calibration = filled(rng.normal(-6, 2, 2000), rng.normal(8, 3, 499))
    assert calibration.reject_margin(fpr=1e-4, min_ham=1000, min_spam=500) is None
    calibration.add(8.0, spam=True)
    assert calibration.reject_margin(fpr=1e-4, min_ham=1000, min_spam=500) is not None


@pytest.mark.parametrize(
    "draw",
    [
        lambda rng, n: rng.normal(-6.0, 2.0, n),
        lambda rng, n: rng.normal(-3.0, 3.0, n),
        lambda rng, n: rng.logistic(-5.0, 1.5, n),  # an exponential tail, as margins have
    ],
    ids=["normal", "wide-normal", "logistic"],
)
def test_reject_margin_keeps_the_ham_rate_under_the_target(draw: Any) -> None:
    """Derived from 3,000 unseen ham margins, checked against 2,000,000 more of the same
    kind, for twenty samples: on average at most 0.01% of ham reaches the margin, most samples
    stay under it and none goes far over, and the margin is beyond every ham seen plus
    the gap."""
    reference = np.sort(draw(np.random.default_rng(99), 2_000_000))
    rates = []
    for seed in range(20):
        seen = draw(np.random.default_rng(seed), 3000)
        found = filled(seen).reject_margin(fpr=1e-4, min_ham=1000)
        assert found is not None
        assert found.margin >= float(seen.max()) + cal.GAP
        rates.append(1.0 - np.searchsorted(reference, found.margin) / reference.size)
    assert np.mean(rates) <= 1e-4, rates
    assert sum(rate > 1e-4 for rate in rates) <= 10, rates  # most samples stay under it
    assert max(rates) <= 5e-4, rates


def test_more_ham_high_up_never_lowers_the_margin() -> None:
    rng = np.random.default_rng(3)
    calibration = filled(rng.normal(-6, 2, 2000))
    before = calibration.reject_margin(fpr=1e-4, min_ham=1000)
    assert before is not None
    calibration.add(before.margin + 3.0, spam=False)  # a ham the margin would have rejected
    after = calibration.reject_margin(fpr=1e-4, min_ham=1000)
    assert after is not None
    assert after.margin >= before.margin + 3.0
    calibration.add(cal.LOW + cal.BINS * cal.WIDTH + 5, spam=False)  # beyond the range
    assert calibration.reject_margin(fpr=1e-4, min_ham=1000) is None


def test_old_margins_fade_after_a_half_life() -> None:
    calibration = filled(np.full(100, -5.0))
    calibration.add(20.0, spam=False)  # one ham far up, long ago
    for _ in range(cal.HALF_LIFE + 10):
        calibration.add(-5.0, spam=False)
    found = calibration.reject_margin(fpr=1e-4, min_ham=1000)
    assert found is not None
    assert found.largest_ham < 0


def test_encoding_round_trips_and_rejects_other_bytes() -> None:
    rng = np.random.default_rng(5)
    calibration = filled(rng.normal(-6, 2, 1500), rng.normal(8, 3, 700))
    again = Calibration.decode(calibration.encode())
    assert again.scored == calibration.scored == (700, 1500)
    assert np.array_equal(again.ham, calibration.ham)
    assert again.reject_margin(fpr=1e-4, min_ham=1000) == calibration.reject_margin(
        fpr=1e-4, min_ham=1000
    )
    for bad in (b"", b"SWC1" + b"\0" * 40, calibration.encode()[:-8], b"x" * 8300):
        with pytest.raises(ValueError, match="calibration"):
            Calibration.decode(bad)


def test_points_never_fall_as_the_margin_grows_and_reach_reject_at_the_margin() -> None:
    scores = load_scores()
    reject = RejectMargin(margin=9.0, fpr=1e-4, ham=2000, largest_ham=7.5, tail=9.0)
    totals = []
    for margin in np.arange(-30.0, 40.0, 0.05).tolist():
        if margin == 0:
            continue
        verdict = decide(classifier_hits(float(margin), reject, 12.0), scores)
        totals.append(verdict.score)
        beyond = bool(margin >= reject.margin)
        assert (verdict.action is Action.REJECT) is beyond, margin
        if beyond:
            (note,) = verdict.symbols["CLASSIFIER_CERTAIN"].options
            assert "beyond the calibrated reject margin 9.0" in note
            assert note in verdict.symbols["CLASSIFIER_SPAM"].options
    assert totals == sorted(totals)
    # Without a calibration the graded weight alone: far beyond, as before.
    uncalibrated = decide(classifier_hits(20.0, None, 12.0), scores)
    assert uncalibrated.action is Action.ADD_HEADER
    assert "CLASSIFIER_CERTAIN" not in uncalibrated.symbols


def test_the_learned_stage_never_fits_certain_and_a_pin_still_wins() -> None:
    base = load_scores()
    learned = LearnedScoresSettings(min_messages=1)
    box = bounds(base, learned)
    assert "CLASSIFIER_CERTAIN" not in box.names
    assert box.pinned["CLASSIFIER_CERTAIN"] == base.symbols["CLASSIFIER_CERTAIN"].score
    rows = [(True, {"CLASSIFIER_SPAM": 0.9, "CLASSIFIER_CERTAIN": 1.0})] * 50
    rows += [(False, {"CLASSIFIER_SPAM": 0.9, "CLASSIFIER_CERTAIN": 1.0})] * 5  # costly FPs
    rows += [(False, {"CLASSIFIER_HAM": 0.5})] * 50
    table = fit(rows, base, learned)
    assert "CLASSIFIER_CERTAIN" not in table.scores
    applied = apply(base, table, learned)
    assert applied.symbols["CLASSIFIER_CERTAIN"].score == base.symbols["CLASSIFIER_CERTAIN"].score
    reject = RejectMargin(margin=9.0, fpr=1e-4, ham=2000, largest_ham=7.5, tail=9.0)
    assert decide(classifier_hits(9.5, reject, 12.0), applied).action is Action.REJECT
    pinned = LearnedScoresSettings(min_messages=1, pinned={"CLASSIFIER_CERTAIN": 0.0})
    site = apply(base, table, pinned)
    assert site.symbols["CLASSIFIER_CERTAIN"].score == 0.0
    assert decide(classifier_hits(9.5, reject, 12.0), site).action is not Action.REJECT


def _learn_stream(clf: Classifier, n: int) -> None:
    """Spam and ham interleaved, each a new message (so each is scored unseen)."""
    pairs = []
    for i in range(n):
        pairs.append(
            (inline("Cheap pills now", f"buy cheap pills {i} viagra offer", f"s{i}@x"), True)
        )
        pairs.append((inline(f"Lunch {i}", f"see you at noon, table {i}", f"h{i}@x"), False))
    for msg, spam in pairs:
        clf.learn(msg, spam)


def test_learning_scores_each_message_before_it_learns_it(open_classifier: Any) -> None:
    clf = open_classifier(min_learns=5, calibration_min_ham=20, calibration_min_spam=0)
    _learn_stream(clf, 30)
    spam, ham = clf.calibration.scored
    assert (spam, ham) == (25, 25)  # from the sixth of each class on
    assert clf.learn(inline("Lunch 3", "see you at noon, table 3", "h3@x"), False) is False
    assert clf.calibration.scored == (25, 25)  # a message known already is not scored again
    reject = clf.reject_margin
    assert reject is not None
    assert reject.ham == 25
    spam_msg = inline("Cheap pills now", "buy cheap pills viagra offer today")
    assert clf.margin(spam_msg) > 0


def test_calibration_is_persisted_and_every_view_reloads_it(open_classifier: Any) -> None:
    """Another process's view, opened before and after the learns: the same reject margin,
    after its reload; and the stored one survives reopening (SQLite and Redis)."""
    early = open_classifier(min_learns=5, calibration_min_ham=20, calibration_min_spam=0)
    assert early.reject_margin is None
    learner = open_classifier(min_learns=5, calibration_min_ham=20, calibration_min_spam=0)
    _learn_stream(learner, 30)
    assert learner.reject_margin is not None
    assert early.reject_margin == learner.reject_margin  # reload_interval_s = 0: at once
    later = open_classifier(min_learns=5, calibration_min_ham=20, calibration_min_spam=0)
    assert later.reject_margin == learner.reject_margin
    assert later.calibration.scored == learner.calibration.scored
    for i in range(5):
        learner.learn(inline(f"Lunch b{i}", f"noon again {i}", f"hb{i}@x"), False)
    assert early.calibration.scored == later.calibration.scored == (25, 30)


def test_a_state_learned_before_the_calibration_builds_one_on_its_next_learns(
    tmp_path: Path,
) -> None:
    clf = Classifier.open(tmp_path, settings(calibration_min_ham=20, calibration_min_spam=0))
    _learn_stream(clf, 30)
    clf.store.close()
    import sqlite3

    db = sqlite3.connect(tmp_path / "state.sqlite")  # as a release before the calibration
    db.execute("DROP TABLE classifier_calibration")
    db.execute("DELETE FROM classifier_meta WHERE key = 'calibration'")
    db.commit()
    db.close()
    old = Classifier.open(tmp_path, settings(calibration_min_ham=20, calibration_min_spam=0))
    assert old.reject_margin is None
    assert old.calibration.scored == (0, 0)
    assert old.ready
    for i in range(20):
        old.learn(inline(f"Dinner {i}", f"see you tonight, {i}", f"n{i}@x"), False)
    assert old.calibration.scored == (0, 20)
    assert old.reject_margin is not None
    old.close()


def _worker_view(config_file: str, paths: list[str], queue: Any) -> None:
    """What a scan worker does: open the state the configuration names, build the detector
    and score; it reports its reject and graded margins and the hits of each message."""
    import asyncio

    from seawall.detectors.base import Context, Parts
    from seawall.message import parse_message

    config = load_config(Path(config_file))
    clf = Classifier.from_config(config)
    detector = ClassifierDetector.build(Parts(config, classifier=clf))
    assert detector is not None

    async def scan() -> list[list[tuple[str, float]]]:
        out = []
        for path in paths:
            found = await detector.check(parse_message(Path(path).read_bytes()), Context(0.0))
            out.append(sorted((h.symbol, round(h.weight, 9)) for h in found))
        return out

    reject = clf.reject_margin
    margins = (reject.margin, reject.graded) if reject else None
    queue.put((margins, asyncio.run(scan())))
    clf.close()


def test_every_worker_process_reads_the_same_calibration(
    tmp_path: Path, sa_subset: dict[str, list[Path]]
) -> None:
    """Two worker processes (forked, as serve's are) open the learned state on their own and
    reject the same test spam on the same calibrated margin."""
    config_file = tmp_path / "seawall.toml"
    config_file.write_text(
        f'state_dir = "{tmp_path}"\n[detectors.classifier]\n'
        "calibration_min_ham = 100\ncalibration_min_spam = 100\n"
    )
    config = load_config(config_file)
    clf = Classifier.from_config(config)
    from seawall.message import parse_message

    for spam_path, ham_path in zip(sa_subset["train_spam"], sa_subset["train_ham"], strict=True):
        clf.learn(parse_message(spam_path.read_bytes()), True)
        clf.learn(parse_message(ham_path.read_bytes()), False)
    reject = clf.reject_margin
    clf.close()
    assert reject is not None
    assert reject.ham == 150  # scored from the 51st ham on
    paths = [str(p) for p in sa_subset["test_spam"][:30] + sa_subset["test_ham"][:30]]
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [
        context.Process(target=_worker_view, args=(str(config_file), paths, queue))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    views = [queue.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert views[0] == views[1]
    margins, hits = views[0]
    assert margins == (reject.margin, reject.graded)  # the graded points' margins too
    symbols = [[symbol for symbol, _ in found] for found in hits]
    certain = [s for s in symbols[:30] if "CLASSIFIER_CERTAIN" in s]
    assert certain, "no test spam beyond the reject margin: the check would prove nothing"
    assert not any("CLASSIFIER_CERTAIN" in s for s in symbols[30:])


def test_margins_are_finite() -> None:
    calibration = Calibration()
    calibration.add(math.nan, spam=False)
    assert calibration.scored == (0, 0)


def test_scores_show_tells_where_the_classifier_rejects_alone(
    tmp_path: Path, sa_subset: dict[str, list[Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    from seawall.cli import main

    state = tmp_path / "state"
    trees = {label: tmp_path / label for label in ("spam", "ham")}
    for label, folder in trees.items():
        folder.mkdir()
        for path in sa_subset[f"train_{label}"]:
            (folder / path.name).symlink_to(path)
    learn = ["learn", "--spam", str(trees["spam"]), "--ham", str(trees["ham"])]
    assert main([*learn, "--state", str(state)]) == 0
    capsys.readouterr()
    assert main(["scores", "show", "--state", str(state)]) == 0
    out = capsys.readouterr().out
    # Scored from when both classes reached min_learns (50): 150 ham or a few fewer.
    assert re.search(r"no calibrated reject margin yet \(1[0-5]\d of 1000 unseen ham", out)
    config = tmp_path / "seawall.toml"
    config.write_text(
        f'state_dir = "{state}"\n[detectors.classifier]\n'
        "calibration_min_ham = 50\ncalibration_min_spam = 50\n"
    )
    assert main(["scores", "show", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "classifier: rejects alone at margin" in out
    assert re.search(r"ham FPR <= 0\.01% on 1[0-5]\d unseen ham", out)


@pytest.mark.parametrize(
    "draw",
    [
        lambda rng, n: rng.normal(-6.0, 2.0, n),
        lambda rng, n: rng.logistic(-5.0, 1.5, n),
    ],
    ids=["normal", "logistic"],
)
def test_graded_margin_keeps_the_ham_rate_near_its_target(draw: Any) -> None:
    """The graded margin (greylist by the classifier alone) lets through at most about
    GRADE_FPR of ham, never more than a few times it, lies beyond every ham seen plus the
    gap, and not beyond the reject margin."""
    reference = np.sort(draw(np.random.default_rng(98), 2_000_000))
    rates = []
    for seed in range(20):
        found = filled(draw(np.random.default_rng(seed), 3000)).reject_margin(
            fpr=1e-4, min_ham=1000
        )
        assert found is not None
        assert found.graded is not None
        assert 0 < found.graded <= found.margin
        assert found.graded >= found.largest_ham + cal.GAP
        rates.append(1.0 - np.searchsorted(reference, found.graded) / reference.size)
    assert np.mean(rates) <= cal.GRADE_FPR, rates
    assert max(rates) <= 3 * cal.GRADE_FPR, rates


def test_graded_points_follow_the_calibration_and_never_fall() -> None:
    """Calibrated, the classifier alone stays under greylist below the graded margin, has
    at least the straight line from greylist there to reject at the reject margin above
    it (and at least the uncalibrated tanh points), and rejects only at the reject margin;
    the points never fall as the margin grows."""
    scores = load_scores()
    grading = Grading.of(scores)
    assert grading == Grading(4.0 / 16.0, 15.0 / 16.0)
    reject = RejectMargin(9.0, 1e-4, 2000, 7.5, 9.0, graded=5.0)
    totals = []
    for margin in np.arange(0.05, 40.0, 0.05).tolist():
        verdict = decide(classifier_hits(margin, reject, 12.0, grading), scores)
        totals.append(verdict.score)
        shape = 16.0 * math.tanh(margin / 12.0)
        if margin < 5.0:
            assert verdict.action is Action.NO_ACTION, margin
            assert verdict.score <= shape + 1e-3
        elif margin < 9.0:
            line = 4.0 + 11.0 * (margin - 5.0) / 4.0
            assert verdict.score >= max(line, shape) - 1e-3, margin
            assert verdict.action in (Action.GREYLIST, Action.ADD_HEADER), margin
        else:
            assert verdict.action is Action.REJECT, margin
    assert totals == sorted(totals)
    below_margin = totals[: int(9.0 / 0.05) - 1]
    assert len(set(below_margin)) == len(below_margin)  # strictly rising: the ranking is kept
    under = decide(classifier_hits(4.99, reject, 12.0, grading), scores)
    assert 3.9 < under.score < 4.0  # just short of greylist, by the classifier alone
    below = decide(classifier_hits(8.999, reject, 12.0, grading), scores)
    assert 14.9 < below.score < 15.0  # just short of reject, by the classifier alone
    # Without a graded margin (a margin made before it existed): the tanh weight below.
    old = RejectMargin(9.0, 1e-4, 2000, 7.5, 9.0)
    assert decide(classifier_hits(8.0, old, 12.0, grading), scores).score == pytest.approx(
        16.0 * math.tanh(8.0 / 12.0), abs=1e-3
    )


def test_grading_follows_the_sites_thresholds() -> None:
    """A site's own thresholds move the points at the calibrated margins with them; without
    a reject threshold or a lower one, the tanh weight applies."""
    scores = load_scores()
    site = replace(scores, thresholds=((Action.REJECT, 20.0), (Action.ADD_HEADER, 8.0)))
    grading = Grading.of(site)
    assert grading == Grading(8.0 / 16.0, 1.0)
    reject = RejectMargin(9.0, 1e-4, 2000, 7.5, 9.0, graded=5.0)
    at = decide(classifier_hits(5.0, reject, 12.0, grading), site)
    assert at.action is Action.ADD_HEADER
    assert at.score == pytest.approx(8.0)
    assert Grading.of(replace(scores, thresholds=((Action.REJECT, 15.0),))) is None
    assert Grading.of(replace(scores, thresholds=((Action.ADD_HEADER, 6.0),))) is None
    weight = spam_weight(3.0, reject, 12.0, None)
    assert weight == pytest.approx(math.tanh(3.0 / 12.0))


def test_a_learned_calibration_gives_a_graded_margin_below_the_reject_margin() -> None:
    rng = np.random.default_rng(7)
    calibration = filled(rng.logistic(-5.0, 1.5, 3000), rng.normal(8, 3, 700))
    found = Calibration.decode(calibration.encode()).reject_margin(
        fpr=1e-4, min_ham=1000, min_spam=500
    )
    assert found is not None
    assert found.graded is not None
    ham = np.sort(rng.logistic(-5.0, 1.5, 3000))
    assert found.graded > float(np.quantile(ham, 0.99))  # far beyond ordinary ham
    assert found.graded < found.margin
