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
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

from seawall.message.model import Message
from seawall.policy.model import Hit, Verdict

__all__ = [
    "Closes",
    "Context",
    "Detector",
    "Flushes",
    "Hit",
    "Learns",
    "Reports",
    "Starts",
]


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
