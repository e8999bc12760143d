"""The detector interface: a detector looks at a Message and returns Hits.

Every detector implements :class:`Detector`.  What else the engine and the front ends may
call on a detector is declared here as one small Protocol per hook, and a detector takes
part in a hook by defining its method:

==============  ===================================================================
``Starts``      ``start(msg, ctx)`` sends its network requests synchronously, before the
                CPU detectors run, and returns what to await (instead of a task per check)
``Learns``      ``after_verdict(msg, verdict, now)`` hears how the message was judged
``Flushes``     ``flush()`` writes what it keeps pending (at batch ends and on close)
``Closes``      ``close()`` releases sockets and files (before the engine's loop closes)
``Reports``     ``stats()`` gives counters for ``/stat``
==============  ===================================================================
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

from seawall.message.model import Message
from seawall.policy.model import Hit, Verdict

if TYPE_CHECKING:
    from seawall.campaigns.client import TrackerClient
    from seawall.classifier import Classifier
    from seawall.config import Config
    from seawall.detectors.hostnames import Providers
    from seawall.policy.scores import Scores
    from seawall.store import Store

__all__ = [
    "Closes",
    "Context",
    "Detector",
    "Flushes",
    "Hit",
    "Learns",
    "Parts",
    "Reports",
    "Starts",
]


@dataclass(frozen=True, slots=True)
class Context:
    """Per-scan facts that are not in the message itself."""

    now: float  # unix time of the scan
    authenticated: bool = False  # the sender logged in: one of our own users
    language: str | None = None  # ISO 639-1 code of the body, when it could be told


@dataclass
class Parts:
    """What detectors are built from: the configuration and what the caller opened."""

    config: Config
    classifier: Classifier | None = None  # None: the classifier detector is left out
    scores: Scores | None = None
    tracker: TrackerClient | None = None  # None: campaigns are tracked in this process
    store: Store | None = None  # None: opened from the configuration when first needed
    _providers: Providers | None = field(default=None, repr=False)

    @property
    def spam_threshold(self) -> float:
        """The lowest score with a spam action: where a message's content counts as spam."""
        scores = self.scores
        if scores is None:
            return 15.0
        spam_actions = [v for a, v in scores.thresholds if a.is_spam]
        return min(spam_actions) if spam_actions else scores.required

    @property
    def providers(self) -> Providers:
        """The mail providers' names (``[detectors.headers] providers``), one per build."""
        if self._providers is None:
            from seawall.detectors.hostnames import Providers

            self._providers = Providers(self.config.detectors.headers.providers)
        return self._providers


class Detector(Protocol):
    """One family of checks.

    ``io`` is True for detectors that wait on the network; the engine runs those
    concurrently under a time budget and runs CPU-only detectors inline.  ``build``
    makes one from the configuration (None when it cannot run, e.g. no classifier).
    """

    name: ClassVar[str]  # config section [detectors.<name>]
    symbols: ClassVar[Mapping[str, str]]  # symbol -> description
    io: ClassVar[bool]

    @classmethod
    def build(cls, parts: Parts) -> Detector | None: ...

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]: ...


@runtime_checkable
class Starts(Protocol):
    """An I/O detector that sends its requests inside a synchronous call (DNS lists)."""

    def start(self, msg: Message, ctx: Context) -> Awaitable[Sequence[Hit]]: ...


@runtime_checkable
class Learns(Protocol):
    """A detector that learns from verdicts (campaigns, reputation)."""

    async def after_verdict(self, msg: Message, verdict: Verdict, now: float) -> None: ...


@runtime_checkable
class Flushes(Protocol):
    """A detector that keeps writes pending and writes them in batches (reputation)."""

    async def flush(self) -> None: ...


@runtime_checkable
class Closes(Protocol):
    """A detector that holds sockets or files."""

    def close(self) -> None: ...


@runtime_checkable
class Reports(Protocol):
    """A detector with counters of its own for ``/stat``."""

    def stats(self) -> Mapping[str, float]: ...
