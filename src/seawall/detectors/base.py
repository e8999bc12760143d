"""The detector interface: a detector looks at a Message and returns Hits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from seawall.message.model import Message
from seawall.policy.model import Action


@dataclass(frozen=True, slots=True)
class Hit:
    """A detector's finding.  The score lives in the scores file, not here."""

    symbol: str  # UPPER_SNAKE with a family prefix: "HDR_MISSING_DATE"
    weight: float = 1.0  # multiplies the score configured in scores.toml
    options: tuple[str, ...] = ()  # evidence shown in logs, replies and the dashboard
    force: Action | None = None  # short-circuit the thresholds (malware, allow-list)


@dataclass(frozen=True, slots=True)
class Context:
    """Per-scan facts that are not in the message itself."""

    now: float  # unix time of the scan
    authenticated: bool = False  # the sender logged in: one of our own users
    language: str | None = None  # ISO 639-1 code of the body, when it could be told


class Detector(Protocol):
    """One family of checks.

    ``io`` is True for detectors that wait on the network; the engine runs those
    concurrently under a time budget and runs CPU-only detectors inline.
    """

    name: ClassVar[str]  # config section [detectors.<name>]
    symbols: ClassVar[Mapping[str, str]]  # symbol -> description
    io: ClassVar[bool]

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]: ...
