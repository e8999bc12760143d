from __future__ import annotations

import pytest

from seawall.evaluation import recall_at_fpr, received_time, roc_auc


def test_roc_auc_perfect_random_and_ties() -> None:
    assert roc_auc([3, 4, 5], [0, 1, 2]) == 1.0
    assert roc_auc([0, 1], [2, 3]) == 0.0
    assert roc_auc([1, 1], [1, 1]) == 0.5
    assert roc_auc([2, 1], [1, 0]) == pytest.approx((1 + 1 + 0.5 + 1) / 4)


def test_recall_at_fpr_uses_the_kth_highest_ham() -> None:
    ham = list(range(1000))  # 0..999; 0.1% allows 1 ham above the threshold (998)
    spam = [999, 998.5, 997, 1500]
    assert recall_at_fpr(spam, ham, 0.001) == pytest.approx(3 / 4)
    assert recall_at_fpr(spam, ham, 0.0) == pytest.approx(1 / 4)
    assert recall_at_fpr(spam, ham, 0.01) == pytest.approx(1.0)


def test_received_time_prefers_top_received() -> None:
    raw = (
        b"Received: from a (b [1.2.3.4])\n\tby mx; Tue, 3 Sep 2002 10:00:00 +0000\n"
        b"Date: Mon, 1 Jan 2001 00:00:00 +0000\n\nbody"
    )
    assert received_time(raw) == 1031047200.0
    assert received_time(b"Date: Mon, 1 Jan 2001 00:00:00 +0000\n\nx") == 978307200.0
    assert received_time(b"Subject: none\n\nx") is None


def test_split_is_deterministic_and_mixes_the_train_order() -> None:
    from seawall.evaluation import Labelled, split
    from seawall.sources import Unit

    items = [Labelled(Unit(f"spam/{n:05d}", "x"), True) for n in range(200)]
    items += [Labelled(Unit(f"ham/{n:05d}.h", "x"), False) for n in range(200)]
    train, test = split(items, 0.5, 0)
    again, _ = split(items, 0.5, 0)
    assert [i.key for i in train] == [i.key for i in again]
    assert {i.key for i in train}.isdisjoint(i.key for i in test)
    assert 150 < len(train) < 250
    # not "all spam, then all ham": both classes within the first quarter
    head = train[: len(train) // 4]
    assert any(i.spam for i in head)
    assert not all(i.spam for i in head)
