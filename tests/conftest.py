from __future__ import annotations

from pathlib import Path

import pytest

from seawall import corpus, quietlog


@pytest.fixture(autouse=True)
def _each_test_sees_its_own_failures_logged() -> None:
    """Recurring failures are logged once a minute; each test starts that minute afresh."""
    quietlog.reset()


@pytest.fixture(scope="session")
def sa_items() -> list[corpus.Item]:
    """The SpamAssassin public corpus, unpacked from ../shared/corpora into the cache."""
    return corpus.items(corpus.SPAMASSASSIN)


@pytest.fixture(scope="session")
def sa_subset(sa_items: list[corpus.Item]) -> dict[str, list[Path]]:
    """A small deterministic subset: 200 spam + 200 ham to learn, 60 + 60 to scan."""
    out: dict[str, list[Path]] = {
        "train_spam": [],
        "train_ham": [],
        "test_spam": [],
        "test_ham": [],
    }
    for item in sa_items:
        part = "train" if corpus.in_train_split(item.path) else "test"
        bucket = out[f"{part}_{item.label}"]
        if len(bucket) < (200 if part == "train" else 60):
            bucket.append(item.path)
    return out
