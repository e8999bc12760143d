"""The policy's table (remedies/policy.py), move by move, on cases built by hand."""

from __future__ import annotations

import pytest

from seawall.config import RemediationSettings
from seawall.zombies.model import Case, Transition
from seawall.zombies.remedies.policy import decide, entered, is_relapse

NOW = 1_800_000_000.0
HOUR = 3600.0
SETTINGS = RemediationSettings(
    notify_score=10,
    wall_score=30,
    wall_after_notified_s=24 * HOUR,
    release_clean_s=72 * HOUR,
    release_clean_messages=3,
)


def case(state: str, score: float, *, notified_at: float | None = None, **kw: object) -> Case:
    transitions = [
        Transition(at=NOW - 100 * HOUR, from_state=None, to_state="open", who="s", why="")
    ]
    if notified_at is not None:
        transitions.append(
            Transition(at=notified_at, from_state="open", to_state="notified", who="policy", why="")
        )
        transitions.append(
            Transition(
                at=notified_at + 1,
                from_state="notified",
                to_state="notified",
                who="remedies",
                why="note",
            )
        )
    fields: dict[str, object] = {
        "id": "c1",
        "account": "alice",
        "ip": None,
        "ips": ("192.0.2.10",),
        "state": state,
        "opened_at": NOW - 100 * HOUR,
        "updated_at": NOW,
        "score": score,
        "score_at": NOW,
        "evidence_count": 5,
        "kinds": {"spam": 5},
        "campaigns": (),
        "first_seen": NOW - 100 * HOUR,
        "last_seen": NOW,
        "transitions": tuple(transitions),
    }
    return Case(**(fields | kw))  # type: ignore[arg-type]


def move(c: Case, now: float = NOW) -> str | None:
    got = decide(c, SETTINGS, now=now, half_life_s=86400.0)
    return None if got is None else got[0]


@pytest.mark.parametrize(
    ("state", "score", "expected"),
    [
        ("open", 9.9, None),
        ("open", 10, "notified"),
        ("open", 30, "walled"),
        ("notified", 30, "walled"),
        ("notified", 29, None),
    ],
)
def test_scores(state: str, score: float, expected: str | None) -> None:
    assert move(case(state, score)) == expected


def test_wall_when_still_sending_long_after_the_notice() -> None:
    notified = NOW - 25 * HOUR
    assert move(case("notified", 12, notified_at=notified, last_seen=NOW - HOUR)) == "walled"
    # Quiet since the notice: not walled (and not released: no clean mail of its own).
    assert move(case("notified", 12, notified_at=notified, last_seen=notified - 60)) is None
    # Still sending, but the notice is recent.
    assert move(case("notified", 12, notified_at=NOW - 2 * HOUR, last_seen=NOW)) is None
    assert (
        entered(case("notified", 12, notified_at=notified), "notified") == notified
    )  # notes do not count


@pytest.mark.parametrize("state", ["walled", "notified"])
def test_release_needs_time_and_its_own_clean_mail(state: str) -> None:
    quiet = NOW - 73 * HOUR
    assert (
        move(case(state, 1, last_seen=quiet, clean_count=3, notified_at=NOW - 90 * HOUR))
        == "released"
    )
    assert (
        move(case(state, 1, last_seen=quiet, clean_count=2, notified_at=NOW - 90 * HOUR)) is None
    )  # silence
    assert (
        move(case(state, 1, last_seen=NOW - 71 * HOUR, clean_count=9, notified_at=NOW - 90 * HOUR))
        is None
    )


def test_scores_decay_with_time() -> None:
    c = case("open", 12)
    assert move(c) == "notified"
    assert move(c, now=NOW + 86400) is None  # 6 a day later


def test_relapse_is_a_released_case_reopened() -> None:
    assert is_relapse(Transition(at=NOW, from_state="released", to_state="open", who="s", why=""))
    assert not is_relapse(Transition(at=NOW, from_state="closed", to_state="open", who="s", why=""))
    assert not is_relapse(Transition(at=NOW, from_state=None, to_state="open", who="s", why=""))
