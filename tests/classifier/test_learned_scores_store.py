"""The learned symbol scores in the classifier's state, on SQLite and on a real Redis: one
process records and fits, another sees the table; learning and scanning go on alongside."""

from __future__ import annotations

from typing import Any

from seawall.classifier.scores import Table
from seawall.config import LearnedScoresSettings
from seawall.message import Message
from seawall.policy.scores import load_scores

BASE = load_scores()


def _rows(n: int) -> list[tuple[bytes, bool, dict[str, float]]]:
    rows = []
    for i in range(n):
        spam = i % 2 == 0
        vector = {"URL_IP": 1.0} if spam else {"REP_IP_HAM": 1.0}
        rows.append((i.to_bytes(4, "big"), spam, vector))
    return rows


def test_a_fit_is_seen_by_every_process(
    open_classifier: Any, train_pairs: list[tuple[Message, bool]]
) -> None:
    scores = LearnedScoresSettings(min_messages=100, max_messages=400)
    writer = open_classifier(reload_interval_s=0.0, scores=scores)
    reader = open_classifier(reload_interval_s=0.0, scores=scores)
    assert reader.table is None
    assert reader.scores_over(BASE) is BASE
    writer.record(_rows(600))  # beyond max_messages: the oldest 200 go
    table = writer.refit(BASE)
    assert (table.spam, table.ham) == (200, 200)
    assert table.scores["URL_IP"] > BASE.symbols["URL_IP"].score
    assert reader.table == table
    over = reader.scores_over(BASE)
    assert over.symbols["URL_IP"].score == table.scores["URL_IP"]
    assert "[learned" in over.symbols["URL_IP"].description
    # The classifier's own learning is untouched by the table's generation.
    message, spam = train_pairs[0]
    assert writer.learn(message, spam)
    assert reader.margin(message) == writer.margin(message)
    assert Table.decode(table.encode()) == reader.table
