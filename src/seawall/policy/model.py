"""Verdict values: a detector's finding (Hit), actions, symbol results and the verdict itself."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


class Action(enum.StrEnum):
    """What the MTA should do.  Values are Rspamd's wire words, most severe first."""

    REJECT = "reject"
    QUARANTINE = "quarantine"  # accept into the MTA's hold queue for an admin to review
    SOFT_REJECT = "soft reject"
    REWRITE_SUBJECT = "rewrite subject"
    ADD_HEADER = "add header"
    GREYLIST = "greylist"
    NO_ACTION = "no action"

    @property
    def is_spam(self) -> bool:
        """Actions that say "this is spam" (soft reject and greylist say "not now")."""
        return self in (
            Action.REJECT,
            Action.QUARANTINE,
            Action.REWRITE_SUBJECT,
            Action.ADD_HEADER,
        )


@dataclass(frozen=True, slots=True)
class Hit:
    """A detector's finding.  The score lives in the scores file, not here."""

    symbol: str  # UPPER_SNAKE with a family prefix: "HDR_MISSING_DATE"
    weight: float = 1.0  # multiplies the score configured in scores.toml
    options: tuple[str, ...] = ()  # evidence shown in logs, replies and the dashboard
    force: Action | None = None  # short-circuit the thresholds (malware, allow-list)


@dataclass(frozen=True, slots=True)
class SymbolResult:
    """One symbol as scored by the policy."""

    name: str
    score: float
    options: tuple[str, ...] = ()
    description: str = ""
    # The detector's weight behind the score (score = the symbol's score x weight): what
    # the learned scores record, even for a symbol that scores 0.
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """Everything a front end needs to answer the MTA, and to explain why."""

    score: float
    required: float  # the score at which the spam action starts (Rspamd's required_score)
    action: Action
    symbols: Mapping[str, SymbolResult]
    language: str | None
    elapsed_ms: float
    campaign: str | None = None
    forced_by: str | None = None  # the symbol whose force decided the action
    message_id: str | None = None
    # Why the message was not scanned (time budget spent, internal error) and passed
    # under the "accept" fail policy; None for a scanned message.
    skipped: str | None = None

    @property
    def is_spam(self) -> bool:
        return self.action.is_spam
