"""When a remedy runs by itself: pure decisions over a case, its score and its clock.

============  =======================================================================
open          notified at ``notify_score``; walled at ``wall_score``
notified      walled at ``wall_score``, or when it is still sending
              ``wall_after_notified_s`` after the notice (evidence that much newer)
notified,     released after ``release_clean_s`` without new evidence *and* with at
walled        least ``release_clean_messages`` clean messages of its own since then:
              silence alone proves nothing (reports may just have stopped coming)
released      a relapse reopens the case (the store does it) and re-gardens it at once
============  =======================================================================

Example::

    move = decide(case, config.remediation, now=now, half_life_s=config.zombies.half_life_s)
    if move is not None:
        state, why = move
"""

from __future__ import annotations

from seawall.config import RemediationSettings
from seawall.zombies.model import Case, State, Transition

HOUR = 3600.0


def entered(case: Case, state: State) -> float | None:
    """When the case last moved into ``state`` (notes do not count), or None."""
    for transition in reversed(case.transitions):
        if transition.to_state == state and transition.from_state != state:
            return transition.at
    return None


def decide(
    case: Case, settings: RemediationSettings, *, now: float, half_life_s: float
) -> tuple[State, str] | None:
    """The move the policy makes on ``case`` now, with why; None for no move."""
    score = case.score_now(now, half_life_s)
    if case.state == "open":
        if score >= settings.wall_score:
            return "walled", f"score {score:.1f} reached wall_score {settings.wall_score:g}"
        if score >= settings.notify_score:
            return "notified", f"score {score:.1f} reached notify_score {settings.notify_score:g}"
        return None
    if case.state == "notified":
        if score >= settings.wall_score:
            return "walled", f"score {score:.1f} reached wall_score {settings.wall_score:g}"
        since = entered(case, "notified")
        if since is not None and case.last_seen - since >= settings.wall_after_notified_s:
            hours = (case.last_seen - since) / HOUR
            return "walled", f"still sending {hours:.0f} h after the notice"
    if case.state in ("notified", "walled"):
        quiet = now - case.last_seen
        if (
            quiet >= settings.release_clean_s
            and case.clean_count >= settings.release_clean_messages
        ):
            return "released", (
                f"clean for {quiet / HOUR:.0f} h with {case.clean_count} clean messages of its own"
            )
        return None
    return None


def is_relapse(transition: Transition) -> bool:
    """A released case reopened by new evidence: re-entry into the garden."""
    return transition.from_state == "released" and transition.to_state == "open"
