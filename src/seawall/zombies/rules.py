"""The rules of the desk, pure: how evidence moves a subject's score and opens its case.

A *subject* is what evidence is counted against: an account (``account:NAME``), else an
own address (``ip:ADDR``), else an external address (``ext:ADDR``, never a case).  Its
``Row`` is kept whether or not a case is open, so evidence counts towards opening one::

    score  = the decayed score at the newest evidence + the new weight (an older report
             adds its weight decayed to the newest time: arrival order does not matter)
    opens  when own, score >= open_score, one kind is not weak, and evidence >= min_evidence
           (or one piece weighs open_score alone: a botnet's spam straight from a pool)
    reopens a released or closed case on evidence of a kind that is not weak
"""

from __future__ import annotations

from typing import Literal

import msgspec

from seawall.config import ZombiesSettings
from seawall.zombies.model import (
    ALLOWED,
    Case,
    CaseError,
    Evidence,
    State,
    Transition,
    case_id,
    decay,
)

MAX_IPS = 64  # addresses kept on one case (the newest)
MAX_CAMPAIGNS = 64
SYSTEM = "seawall"  # who moves a case by the rules


class Row(msgspec.Struct, frozen=True, kw_only=True):
    """Everything counted against one subject; a case when ``state`` is set."""

    key: str
    account: str | None
    ip: str | None
    own: bool
    state: State | None = None
    opened_at: float = 0.0
    updated_at: float = 0.0
    score: float = 0.0
    score_at: float = 0.0
    evidence_count: int = 0
    kinds: dict[str, int] = msgspec.field(default_factory=dict)
    campaigns: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    first_seen: float = 0.0
    last_seen: float = 0.0
    clean_count: int = 0
    last_clean: float = 0.0
    malware: bool = False  # some evidence named malware (the zone's class)
    max_weight: float = 0.0  # the heaviest single piece of evidence
    transitions: tuple[Transition, ...] = ()

    @property
    def case_id(self) -> str:
        return case_id(*subject_of(self.key))


def subject_key(evidence: Evidence) -> str:
    """The subject ``evidence`` counts against."""
    if evidence.account:
        return f"account:{evidence.account}"
    return f"{'ip' if evidence.own else 'ext'}:{evidence.ip}"


def subject_of(key: str) -> tuple[Literal["account", "ip"], str]:
    """(kind, value) of a subject key, for ``case_id``; external addresses count as ip."""
    kind, _, value = key.partition(":")
    return ("account" if kind == "account" else "ip"), value


def new_row(evidence: Evidence) -> Row:
    key = subject_key(evidence)
    return Row(
        key=key,
        account=evidence.account or None,
        ip=None if evidence.account else evidence.ip,
        own=evidence.own or bool(evidence.account),
        first_seen=evidence.at,
    )


def _bounded_add(items: tuple[str, ...], item: str, limit: int) -> tuple[str, ...]:
    if not item or item in items:
        return items
    return (*items, item)[-limit:]


def apply_evidence(
    row: Row | None, evidence: Evidence, settings: ZombiesSettings, now: float
) -> tuple[Row, Transition | None]:
    """``row`` after ``evidence``, and the transition it caused (opened, reopened)."""
    row = row if row is not None else new_row(evidence)
    ips = _bounded_add(row.ips, evidence.ip, MAX_IPS)
    if evidence.kind == "clean":
        row = msgspec.structs.replace(
            row,
            ips=ips,
            clean_count=row.clean_count + 1,
            last_clean=max(row.last_clean, evidence.at),
        )
        return row, None
    newest = max(row.score_at, evidence.at)
    half = settings.half_life_s
    score = decay(row.score, row.score_at, newest, half) + decay(
        evidence.weight, evidence.at, newest, half
    )
    kinds = dict(row.kinds)
    kinds[evidence.kind] = kinds.get(evidence.kind, 0) + 1
    row = msgspec.structs.replace(
        row,
        score=score,
        score_at=newest,
        evidence_count=row.evidence_count + 1,
        kinds=kinds,
        campaigns=_bounded_add(row.campaigns, evidence.campaign, MAX_CAMPAIGNS),
        ips=ips,
        first_seen=min(row.first_seen or evidence.at, evidence.at),
        last_seen=max(row.last_seen, evidence.at),
        malware=row.malware or evidence.kind in ("malware", "worm"),
        max_weight=max(row.max_weight, evidence.weight),
        clean_count=0,  # clean mail counts since the last evidence
        updated_at=now,
    )
    weak = evidence.kind in settings.weak_kinds
    if row.state is None and should_open(row, settings):
        why = f"score {row.score:.1f} from {row.evidence_count} pieces of evidence ({_kinds(row)})"
        return _move(row, "open", SYSTEM, why, now, opening=True)
    if row.state in ("released", "closed") and not weak:
        why = f"new evidence: {evidence.kind} from {evidence.ip} ({evidence.source})"
        return _move(row, "open", SYSTEM, why, now)
    return row, None


def should_open(row: Row, settings: ZombiesSettings) -> bool:
    """Whether ``row``'s evidence is enough to open a case (see the module docstring)."""
    if not row.own or row.score < settings.open_score:
        return False
    if row.evidence_count < settings.min_evidence and row.max_weight < settings.open_score:
        return False  # one piece opens a case only when it weighs open_score alone
    return any(n > 0 and kind not in settings.weak_kinds for kind, n in row.kinds.items())


def apply_transition(row: Row, new_state: State, who: str, why: str, at: float) -> Row:
    """``row`` moved to ``new_state`` (a note when it is the current state)."""
    if row.state is None:
        raise CaseError(f"no case for {row.key}")
    if new_state != row.state and new_state not in ALLOWED[row.state]:
        raise CaseError(f"case {row.case_id} is {row.state}: it cannot be {new_state}")
    return _move(row, new_state, who, why, at)[0]


def _move(
    row: Row, state: State, who: str, why: str, at: float, *, opening: bool = False
) -> tuple[Row, Transition]:
    transition = Transition(
        at=at, from_state=None if opening else row.state, to_state=state, who=who, why=why
    )
    changes: dict[str, object] = {
        "state": state,
        "updated_at": at,
        "transitions": (*row.transitions, transition),
    }
    if opening:  # a reopened case keeps its first opening; its transitions say the rest
        changes["opened_at"] = at
    return msgspec.structs.replace(row, **changes), transition


def _kinds(row: Row) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in sorted(row.kinds.items()))


def to_case(row: Row) -> Case:
    """The public view of a row that is a case."""
    if row.state is None:
        raise CaseError(f"no case for {row.key}")
    return Case(
        id=row.case_id,
        account=row.account,
        ip=row.ip,
        ips=row.ips,
        state=row.state,
        opened_at=row.opened_at,
        updated_at=row.updated_at,
        score=row.score,
        score_at=row.score_at,
        evidence_count=row.evidence_count,
        kinds=dict(row.kinds),
        campaigns=row.campaigns,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        clean_count=row.clean_count,
        last_clean=row.last_clean,
        transitions=row.transitions,
    )
