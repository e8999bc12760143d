"""Learning, unlearning, idempotence, persistence and sharing between processes."""

from __future__ import annotations

import sqlite3
from typing import Any

import numpy as np
import pytest

from seawall.classifier import Classifier
from seawall.errors import ConfigError, StoreError
from seawall.evaluation import roc_auc
from seawall.message import Message

from .conftest import inline, settings


def test_learns_to_separate_held_out_mail(
    open_classifier: Any,
    train_pairs: list[tuple[Message, bool]],
    sa_messages: dict[str, list[Message]],
) -> None:
    clf = open_classifier(hash_bits=18)
    for msg, spam in train_pairs:
        assert clf.learn(msg, spam)
    assert clf.counts == (200, 200)
    spam = [clf.margin(m) for m in sa_messages["test_spam"]]
    ham = [clf.margin(m) for m in sa_messages["test_ham"]]
    assert roc_auc(spam, ham) > 0.98
    assert np.mean([s > 0 for s in spam]) > 0.85
    assert np.mean([h < 0 for h in ham]) > 0.95
    assert (
        0.0 < clf.score(sa_messages["test_ham"][0]) < 0.5 < clf.score(sa_messages["test_spam"][0])
    )


def test_order_does_not_matter_much(
    open_classifier: Any,
    train_pairs: list[tuple[Message, bool]],
    sa_messages: dict[str, list[Message]],
) -> None:
    """All spam, then all ham (``seawall learn --spam A --ham B``): replay keeps it balanced."""
    clf = open_classifier(hash_bits=18)
    clf.learn_many(sorted(train_pairs, key=lambda p: not p[1]))
    spam = [clf.margin(m) for m in sa_messages["test_spam"]]
    ham = [clf.margin(m) for m in sa_messages["test_ham"]]
    assert roc_auc(spam, ham) > 0.97


def test_learning_twice_counts_once(open_classifier: Any) -> None:
    clf = open_classifier()
    msg = inline("Win a prize", "Claim your prize now", "p1@x")
    assert clf.learn(msg, spam=True)
    margin = clf.margin(msg)
    assert not clf.learn(msg, spam=True)
    assert clf.counts == (1, 0)
    assert clf.margin(msg) == margin


def test_relearning_with_the_other_label_moves_the_score(open_classifier: Any) -> None:
    clf = open_classifier()
    for i in range(5):
        clf.learn(inline("Meeting", f"agenda item {i} for monday", f"h{i}@x"), spam=False)
        clf.learn(inline("Cheap pills", f"buy pills now {i}", f"s{i}@x"), spam=True)
    msg = inline("Quarterly report", "numbers for the quarter", "q@x")
    assert clf.learn(msg, spam=True)
    as_spam = clf.margin(msg)
    assert clf.counts == (6, 5)
    assert clf.learn(msg, spam=False)
    assert clf.counts == (5, 6)
    assert clf.margin(msg) < as_spam


def test_unlearn_is_exact(open_classifier: Any) -> None:
    clf = open_classifier(replay=0)
    clf.learn(inline("Meeting", "agenda for monday", "m@x"), spam=False)
    before = clf.model.weights.copy()
    msg = inline("Cheap pills", "buy pills now", "p@x")
    clf.learn(msg, spam=True)
    assert clf.unlearn(msg)
    assert not clf.unlearn(msg)
    assert clf.counts == (0, 1)
    np.testing.assert_allclose(clf.model.weights, before, atol=1e-6)


def test_unlearn_takes_back_replayed_steps(open_classifier: Any) -> None:
    clf = open_classifier(replay=2)
    ham = [inline("Meeting", f"agenda {i}", f"m{i}@x") for i in range(3)]
    for m in ham:
        clf.learn(m, spam=False)
    spam = inline("Cheap pills", "buy pills now", "p@x")
    clf.learn(spam, spam=True)  # replays ham: their coefficients grow
    for m in ham:
        clf.unlearn(m)
    clf.unlearn(spam)
    assert clf.counts == (0, 0)
    np.testing.assert_allclose(clf.model.weights, 0.0, atol=1e-5)


def test_reopening_gives_identical_scores(
    open_classifier: Any,
    train_pairs: list[tuple[Message, bool]],
    sa_messages: dict[str, list[Message]],
) -> None:
    probe = sa_messages["test_spam"][:10] + sa_messages["test_ham"][:10]
    clf = open_classifier()
    clf.learn_many(train_pairs[:100])  # a snapshot
    for msg, spam in train_pairs[100:130]:  # then deltas
        clf.learn(msg, spam)
    clf.unlearn(train_pairs[120][0])
    expected = [clf.margin(m) for m in probe]
    counts = clf.counts
    clf.close()
    again = open_classifier()
    assert [again.margin(m) for m in probe] == expected
    assert again.counts == counts


def test_other_processes_see_learning(
    open_classifier: Any,
    train_pairs: list[tuple[Message, bool]],
    sa_messages: dict[str, list[Message]],
) -> None:
    probe = sa_messages["test_spam"][:5] + sa_messages["test_ham"][:5]
    learner = open_classifier()
    scanner = open_classifier()
    try:
        for msg, spam in train_pairs[:40]:
            learner.learn(msg, spam)
        assert scanner.counts == (20, 20)
        assert [scanner.margin(m) for m in probe] == [learner.margin(m) for m in probe]
        learner.learn_many(train_pairs[40:80])
        assert [scanner.margin(m) for m in probe] == [learner.margin(m) for m in probe]
        # a scanner may learn too: the first learner catches up before its next step
        scanner.learn(*train_pairs[80])
        learner.learn(*train_pairs[81])
        assert [scanner.margin(m) for m in probe] == [learner.margin(m) for m in probe]
    finally:
        learner.close()
        scanner.close()


def test_compaction_keeps_scores(
    open_classifier: Any, train_pairs: list[tuple[Message, bool]]
) -> None:
    probe = [m for m, _ in train_pairs[:5]]
    learner = open_classifier()
    scanner = open_classifier()
    try:
        scanner.margin(probe[0])
        for msg, spam in train_pairs[:230]:  # past one compaction: the scanner reloads
            learner.learn(msg, spam)
        assert [scanner.margin(m) for m in probe] == [learner.margin(m) for m in probe]
    finally:
        learner.close()
        scanner.close()


def test_ready_after_min_learns_of_each_class(open_classifier: Any) -> None:
    clf = open_classifier(min_learns=2)
    clf.learn(inline("a", "spam one", "s1@x"), spam=True)
    clf.learn(inline("a", "spam two", "s2@x"), spam=True)
    clf.learn(inline("b", "ham one", "h1@x"), spam=False)
    assert not clf.ready
    clf.learn(inline("b", "ham two", "h2@x"), spam=False)
    assert clf.ready


def test_bad_settings_are_config_errors(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="hash_bits"):
        Classifier.open(tmp_path, settings(hash_bits=40))
    with pytest.raises(ConfigError, match="learning_rate"):
        Classifier.open(tmp_path, settings(learning_rate=0.0))


def test_changed_hash_bits_is_a_config_error(tmp_path: Any) -> None:
    clf = Classifier.open(tmp_path, settings(hash_bits=16))
    clf.learn(inline("a", "b", "x@x"), spam=True)
    clf.close()
    with pytest.raises(ConfigError, match="hash_bits"):
        Classifier.open(tmp_path, settings(hash_bits=18))


def test_close_twice_is_fine(open_classifier: Any) -> None:
    clf = open_classifier()
    clf.close()
    clf.close()


def test_memory_keeps_only_the_most_recent_examples(open_classifier: Any) -> None:
    clf = open_classifier(memory_messages=3, replay=0)
    msgs = [inline("s", f"message number {i}", f"m{i}@x") for i in range(5)]
    for i, msg in enumerate(msgs):
        clf.learn(msg, spam=i % 2 == 0)
    assert [row for row, _ in clf.store.example_ids()] == [3, 4, 5]
    # an evicted message is unlearned from its recomputed features, still exactly
    assert clf.unlearn(msgs[0])
    for msg in msgs[1:]:
        clf.unlearn(msg)
    np.testing.assert_allclose(clf.model.weights, 0.0, atol=1e-6)


def test_a_failed_write_leaves_memory_and_file_agreeing(
    open_classifier: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clf = open_classifier()
    clf.learn(inline("Meeting", "agenda for monday", "m@x"), spam=False)
    before = clf.model.weights.copy()

    def broken(amounts: list[tuple[float, int]]) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(clf.store, "add_coef", broken)
    # The SQLite store names the failure as a StoreError (a tempfail for the front ends).
    with pytest.raises((sqlite3.OperationalError, StoreError)):
        clf.learn(inline("Cheap pills", "buy pills now", "p@x"), spam=True)
    monkeypatch.undo()
    assert clf.counts == (0, 1)
    probe = inline("Cheap pills", "buy pills now", "p@x")
    clf.margin(probe)  # reloads: the half-applied step is gone
    np.testing.assert_array_equal(clf.model.weights, before)
    assert clf.learn(probe, spam=True)


def test_a_classifier_in_the_old_file_moves_into_state_sqlite(
    tmp_path: Any, train_pairs: list[tuple[Message, bool]]
) -> None:
    from seawall.classifier.store import LEGACY_FILENAME, SqliteWeights

    probe = [m for m, _ in train_pairs[:6]]
    old = Classifier(SqliteWeights(tmp_path / LEGACY_FILENAME), settings())
    old.learn_many(train_pairs[:40])
    old.learn(*train_pairs[40])  # a delta after the snapshot, still in the old WAL
    expected, counts = [old.margin(m) for m in probe], old.counts
    old.close()
    moved = Classifier.open(tmp_path, settings())
    try:
        assert [moved.margin(m) for m in probe] == expected
        assert moved.counts == counts
        assert not (tmp_path / LEGACY_FILENAME).exists()
        assert (tmp_path / f"{LEGACY_FILENAME}.migrated").exists()
        assert moved.unlearn(train_pairs[40][0])  # the learn log came along too
    finally:
        moved.close()
    again = Classifier.open(tmp_path, settings())  # nothing left to move: opens as it is
    assert again.counts == (counts[0] - train_pairs[40][1], counts[1] - (not train_pairs[40][1]))
    again.close()


def test_on_a_redis_cluster_a_learn_commits_in_the_classifier_slot(
    redis_cluster_url: str, train_pairs: list[tuple[Message, bool]]
) -> None:
    from seawall.classifier.redis_weights import RedisWeights

    probe = [m for m, _ in train_pairs[:4]]
    learner = Classifier(RedisWeights(redis_cluster_url), settings())
    scanner = Classifier(RedisWeights(redis_cluster_url), settings())
    try:
        learner.learn_many(train_pairs[:20])
        for msg, spam in train_pairs[20:30]:
            learner.learn(msg, spam)
        assert learner.unlearn(train_pairs[25][0])
        assert scanner.counts == learner.counts
        assert [scanner.margin(m) for m in probe] == [learner.margin(m) for m in probe]
    finally:
        learner.close()
        scanner.close()


def test_a_hung_redis_costs_the_reload_check_a_tenth_of_a_second_then_nothing(
    redis_server: Any, redis_url: str, train_pairs: list[tuple[Message, bool]]
) -> None:
    import time

    from seawall.classifier.redis_weights import RedisWeights

    clf = Classifier(RedisWeights(redis_url), settings())
    clf.learn_many(train_pairs[:10])
    probe = train_pairs[0][0]
    before = clf.margin(probe)
    redis_server.pause()
    try:
        started = time.monotonic()
        assert clf.margin(probe) == before  # the reload check fails: the weights stay
        first = time.monotonic() - started
        started = time.monotonic()
        for _ in range(20):
            assert clf.margin(probe) == before
        later = time.monotonic() - started
    finally:
        redis_server.resume()
        clf.close()
    # Bounds at half of what the unwanted behaviour would take, far above what the wanted
    # one takes, so that load cannot flip them:
    assert first < 5.0 / 2  # one try of 0.1 s, not the learning client's 5 s with retries
    assert later < 20 * 0.1 / 2  # backing off: not a 0.1 s try each of the next 20 calls
