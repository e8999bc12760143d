"""The learned symbol scores: bounded, monotone, pinned, persisted and shared, applied late."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import msgspec
import pytest

from seawall.classifier import Classifier
from seawall.classifier.scores import Table, apply, fit, symbol_vector
from seawall.config import ClassifierSettings, LearnedScoresSettings, load_config
from seawall.engine import build_engine
from seawall.message import Envelope
from seawall.policy.model import SymbolResult
from seawall.policy.scores import load_scores

BASE = load_scores()
SETTINGS = LearnedScoresSettings()


def stream(n: int, seed: int = 1) -> list[tuple[bool, dict[str, float]]]:
    """URL_IP marks spam strongly, HDR_PRECEDENCE_BULK marks ham, REP_IP_HAM is noise."""
    rng = random.Random(seed)
    rows: list[tuple[bool, dict[str, float]]] = []
    for i in range(n):
        spam = i % 2 == 0
        vector: dict[str, float] = {}
        if spam and rng.random() < 0.9:
            vector["URL_IP"] = 1.0
        if not spam and rng.random() < 0.8:
            vector["HDR_PRECEDENCE_BULK"] = 1.0
        if rng.random() < 0.5:
            vector["REP_IP_HAM"] = 1.0
        rows.append((spam, vector))
    return rows


def test_scores_are_capped_and_monotone() -> None:
    table = fit(stream(4000), BASE, SETTINGS)
    assert table.spam == table.ham == 2000
    # URL_IP explains spam alone: it grows, but never past the cap.
    assert BASE.symbols["URL_IP"].score < table.scores["URL_IP"] <= SETTINGS.cap
    # HDR_PRECEDENCE_BULK is shipped at 0, an oddity: it may not become a ham credit.
    assert table.scores["HDR_PRECEDENCE_BULK"] == 0.0
    # REP_IP_HAM is shipped negative: it may not become evidence of spam.
    assert table.scores["REP_IP_HAM"] <= 0.0
    for name, score in table.scores.items():
        shipped = BASE.symbols[name].score
        cap = max(SETTINGS.cap, abs(shipped))
        assert -cap <= score <= cap
        assert score >= 0 if shipped >= 0 else shipped <= score <= 0  # credits never grow


def test_a_symbol_never_seen_keeps_its_shipped_score() -> None:
    table = fit(stream(400), BASE, SETTINGS)
    assert table.seen["URIBL_DBL_PHISH"] == 0
    assert table.scores["URIBL_DBL_PHISH"] == BASE.symbols["URIBL_DBL_PHISH"].score


def test_regularisation_pulls_towards_the_shipped_score() -> None:
    loose = fit(stream(2000), BASE, LearnedScoresSettings(l2=0.0))
    tight = fit(stream(2000), BASE, LearnedScoresSettings(l2=1.0))
    shipped = BASE.symbols["URL_IP"].score
    assert abs(tight.scores["URL_IP"] - shipped) < abs(loose.scores["URL_IP"] - shipped)


def test_pinned_scores_are_not_fitted_and_win() -> None:
    settings = LearnedScoresSettings(pinned={"URL_IP": 0.5}, min_messages=10)
    table = fit(stream(400), BASE, settings)
    assert "URL_IP" not in table.scores
    applied = apply(BASE, table, settings)
    assert applied.symbols["URL_IP"].score == 0.5
    assert applied.symbols["URL_IP"].description.endswith("[pinned]")


def test_learned_scores_apply_only_past_min_messages() -> None:
    table = fit(stream(400), BASE, SETTINGS)  # 200 of each
    assert apply(BASE, table, LearnedScoresSettings(min_messages=500)) is BASE
    applied = apply(BASE, table, LearnedScoresSettings(min_messages=200))
    learned = applied.symbols["URL_IP"]
    assert learned.score == table.scores["URL_IP"]
    assert "[learned" in learned.description
    assert "shipped +1.5]" in learned.description
    assert apply(BASE, table, LearnedScoresSettings(min_messages=200, enabled=False)) is BASE


def test_symbol_vector_reads_the_weights_back() -> None:
    symbols = {
        "CLASSIFIER_SPAM": SymbolResult("CLASSIFIER_SPAM", 8.0),
        "URL_MANY": SymbolResult("URL_MANY", 0.0),
        "DETECTOR_FAILED": SymbolResult("DETECTOR_FAILED", 0.0),
    }
    assert symbol_vector(symbols, BASE) == {"CLASSIFIER_SPAM": 0.5, "URL_MANY": 1.0}


def test_a_table_survives_encoding() -> None:
    table = fit(stream(100), BASE, SETTINGS)
    assert Table.decode(table.encode()) == table


def test_persisted_and_shared_by_every_process(tmp_path: Path) -> None:
    settings = ClassifierSettings(reload_interval_s=0.0)
    writer = Classifier.open(tmp_path, settings)
    reader = Classifier.open(tmp_path, settings)  # another worker on the same state
    try:
        rows = [(bytes([i % 256, i // 256]), spam, v) for i, (spam, v) in enumerate(stream(600))]
        assert writer.record(rows) == 600
        assert writer.record(rows[:10]) == 10  # the same messages again: replaced, not added
        table = writer.refit(BASE)
        assert (table.spam, table.ham) == (300, 300)
        assert reader.table == table
        over = reader.scores_over(BASE)
        assert over is BASE  # 300 of each is below min_messages (500)
    finally:
        writer.close()
        reader.close()
    again = Classifier.open(
        tmp_path, ClassifierSettings(scores=LearnedScoresSettings(min_messages=300))
    )
    try:
        assert again.scores_over(BASE).symbols["URL_IP"].score == table.scores["URL_IP"]
    finally:
        again.close()


def test_vectors_kept_are_bounded(tmp_path: Path) -> None:
    clf = Classifier.open(
        tmp_path, ClassifierSettings(scores=LearnedScoresSettings(max_messages=50))
    )
    try:
        clf.record([(bytes([i]), i % 2 == 0, {"URL_IP": 1.0}) for i in range(120)])
        assert clf.refit(BASE).spam + clf.refit(BASE).ham == 50
    finally:
        clf.close()


def test_learn_records_and_the_engine_explains_the_learned_weight(
    tmp_path: Path, sa_subset: dict[str, list[Path]], sa_learned: Path
) -> None:
    """`seawall learn` keeps the second stage current; the verdict names the learned score.
    (``sa_learned`` is ``learn_all`` over the subset's 200 spam and 200 ham.)"""
    shutil.copytree(sa_learned, tmp_path / "state")
    config = load_config(None, state_dir=str(tmp_path / "state"))
    clf = Classifier.from_config(config)
    try:
        table = clf.table
        assert table is not None
        assert (table.spam, table.ham) == (200, 200)
        assert table.seen["CLASSIFIER_SPAM"] > 0
        assert table.seen["CLASSIFIER_HAM"] > 0
    finally:
        clf.close()
    low = msgspec.structs.replace(
        config.detectors.classifier, scores=LearnedScoresSettings(min_messages=200)
    )
    config = msgspec.structs.replace(
        config, detectors=msgspec.structs.replace(config.detectors, classifier=low)
    )
    engine = build_engine(config)
    try:
        verdict = engine.scan_sync(Envelope(), sa_subset["test_spam"][0].read_bytes()).verdict
    finally:
        engine.close()
    described = [s.description for s in verdict.symbols.values() if "[learned" in s.description]
    assert described, verdict.symbols


@pytest.mark.parametrize("n", [0, 1])
def test_tiny_or_empty_input_fits(n: int) -> None:
    table = fit(stream(n), BASE, SETTINGS)
    assert table.scores["URL_IP"] == BASE.symbols["URL_IP"].score or n
