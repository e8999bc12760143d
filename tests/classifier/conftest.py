"""A small real corpus, parsed once, and helpers to open classifiers in temporary state dirs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from tests.redis_servers import (  # noqa: F401
    redis_cluster,
    redis_cluster_url,
    redis_server,
    redis_url,
)

from seawall.classifier import Classifier
from seawall.config import ClassifierSettings
from seawall.message import Message, parse_message


def settings(**changes: Any) -> ClassifierSettings:
    """Test settings: a small vector (fast to write), reload on every call, few learns to vote."""
    base = ClassifierSettings(hash_bits=16, reload_interval_s=0.0, min_learns=5)
    return msgspec.structs.replace(base, **changes) if changes else base


def inline(subject: str, body: str, message_id: str | None = None, extra: str = "") -> Message:
    head = f"From: a@example.com\nTo: b@example.org\nSubject: {subject}\n{extra}"
    if message_id:
        head += f"Message-ID: <{message_id}>\n"
    return parse_message(f"{head}\n{body}\n".encode())


@pytest.fixture(scope="session")
def sa_messages(sa_subset: dict[str, list[Path]]) -> dict[str, list[Message]]:
    """The conftest subset (200 + 200 to learn, 60 + 60 to scan), parsed."""
    return {key: [parse_message(p.read_bytes()) for p in paths] for key, paths in sa_subset.items()}


@pytest.fixture(scope="session")
def train_pairs(sa_messages: dict[str, list[Message]]) -> list[tuple[Message, bool]]:
    """The training half interleaved spam, ham, spam, ... as an admin's feedback would come."""
    pairs: list[tuple[Message, bool]] = []
    for spam, ham in zip(sa_messages["train_spam"], sa_messages["train_ham"], strict=False):
        pairs += [(spam, True), (ham, False)]
    return pairs


@pytest.fixture(params=["sqlite", "redis"])
def open_classifier(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """``open_classifier(**settings)`` on this test's state, embedded (SQLite in a temporary
    state dir) or on a real Redis; every call opens another process's view of the same
    state, and all are closed at the end."""
    opened: list[Classifier] = []
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None

    def _open(**changes: Any) -> Classifier:
        if url is None:
            clf = Classifier.open(tmp_path, settings(**changes))
        else:
            from seawall.classifier.redis_weights import RedisWeights

            clf = Classifier(RedisWeights(url), settings(**changes))
        opened.append(clf)
        return clf

    yield _open
    for clf in opened:
        clf.close()
