from __future__ import annotations

import lzma
from pathlib import Path

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


def test_learn_all_skips_what_is_not_mail_and_says_what_it_was(tmp_path: Path) -> None:
    from seawall.config import load_config
    from seawall.evaluation import Labelled, learn_all
    from seawall.sources import Unit

    files = {
        "1.eml": b"From: a@example.org\nSubject: cheap pills\n\nbuy pills now\n",
        "2.eml": b"From: b@example.org\nSubject: lunch\n\nsee you at noon\n",
        "backup.tar.xz": lzma.compress(b"From: c@example.org\n\nx\n"),
        "ls": b"\x7fELF\x02\x01\x01\x00" + bytes(200),
        "seawall.toml": b'state_dir = "var"\n[serve]\nworkers = 2\n',
        "old.tar.xz": lzma.compress(b"more"),
        "empty.eml": b"",
    }
    items = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        items.append(Labelled(Unit(name, str(tmp_path / name)), spam=name != "2.eml"))
    learned = learn_all(items, load_config(state_dir=str(tmp_path / "state")))
    assert learned.changed == 2
    assert (learned.spam_total, learned.ham_total) == (1, 1)  # nothing but the two messages
    assert learned.skipped == {
        "xz archive": 2,
        "ELF binary": 1,
        "text without mail headers": 1,
        "empty": 1,
    }
    assert learned.describe_skipped() == (
        "5: 4 not mail (2 x xz archive, ELF binary, text without mail headers), 1 empty"
    )
