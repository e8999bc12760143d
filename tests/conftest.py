from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from seawall import corpus, quietlog
from seawall.config import load_config
from seawall.evaluation import Labelled, learn_all
from seawall.sources import iter_units


@pytest.fixture(autouse=True)
def _each_test_sees_its_own_failures_logged() -> None:
    """Recurring failures are logged once a minute; each test starts that minute afresh."""
    quietlog.reset()


CHECKOUT_STATE = Path(__file__).resolve().parents[1] / "var"


@pytest.fixture(autouse=True)
def _no_test_makes_the_default_state_in_the_checkout() -> Iterator[None]:
    """A command without --state (or a Config without state_dir) uses ./var: run from the
    checkout, as make test does, it would leave a state there.  Each test gets its own."""
    existed = CHECKOUT_STATE.exists()
    yield
    if not existed and CHECKOUT_STATE.exists():
        pytest.fail(f"this test made {CHECKOUT_STATE}: give it a state dir of its own")


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


@pytest.fixture(scope="session")
def sa_learned(sa_subset: dict[str, list[Path]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state dir whose classifier learned ``sa_subset``'s 200 spam and 200 ham, as
    `seawall learn` does; learned once a session.  Copy it before a test changes it."""
    root = tmp_path_factory.mktemp("sa-learned")
    items = [Labelled(u, True) for u in iter_units(map(str, sa_subset["train_spam"]))]
    items += [Labelled(u, False) for u in iter_units(map(str, sa_subset["train_ham"]))]
    learn_all(items, load_config(state_dir=str(root)))
    return root
