"""Replaying a run in compressed real time, retrying what was deferred, like an MTA's queue.

The transport is a callable (:class:`Transport`), so the pacing, the thread pool and the
retry bookkeeping are the same for SMTP and for HTTP.  Nothing is dropped: every message
ends with an :class:`Outcome`, "tempfailed" included when its retries ran out.
"""

from __future__ import annotations

import heapq
import math
import queue
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from seawall.sim.model import SimMessage

# Simulated seconds before retry 1, 2, ... (Postfix's minimal_backoff_time is 300 s).
RETRY_AFTER_S = (300.0, 600.0, 1200.0, 2400.0)


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one delivery attempt did for each recipient it was given."""

    accepted: tuple[str, ...] = ()
    rejected: dict[str, tuple[int, str]] = field(default_factory=dict)  # 5xx and the like
    deferred: dict[str, tuple[int, str]] = field(default_factory=dict)  # 4xx, lost connection
    code: int = 0  # the reply that settled the attempt
    text: str = ""
    verdict: dict[str, Any] | None = None  # what an HTTP scanner answered


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a message ended, over all its attempts."""

    status: str  # "accepted" | "rejected" | "tempfailed" | "partial"
    code: int
    text: str
    retries: int
    rejected: dict[str, tuple[int, str]]
    deferred: dict[str, tuple[int, str]]  # recipients still deferred when retries ran out
    verdict: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status,
            "code": self.code,
            "text": self.text,
            "retries": self.retries,
        }
        if self.rejected:
            out["rejected"] = {r: list(v) for r, v in self.rejected.items()}
        if self.deferred:
            out["deferred"] = {r: list(v) for r, v in self.deferred.items()}
        return out


class Transport(Protocol):
    """Delivers to ``rcpts`` (all or some of the envelope's); called from worker threads."""

    def __call__(self, message: SimMessage, rcpts: tuple[str, ...]) -> Attempt: ...

    def close(self) -> None:
        """Release connections kept between calls."""


@dataclass(slots=True)
class _Pending:
    message: SimMessage
    rcpts: tuple[str, ...]
    tries: int = 0
    accepted: list[str] = field(default_factory=list)
    rejected: dict[str, tuple[int, str]] = field(default_factory=dict)
    last: Attempt | None = None

    def outcome(self, deferred: dict[str, tuple[int, str]]) -> Outcome:
        last = self.last or Attempt()
        if deferred and (self.accepted or self.rejected):
            status = "partial"
        elif deferred:
            status = "tempfailed"
        elif self.rejected:
            status = "partial" if self.accepted else "rejected"
        else:
            status = "accepted"
        return Outcome(
            status, last.code, last.text, self.tries - 1, self.rejected, deferred, last.verdict
        )


@dataclass(frozen=True, slots=True)
class ReplayClock:
    """How a replay maps simulated time to the wall clock: ``base`` (simulated epoch
    seconds) is due at ``wall0`` (wall epoch seconds), and ``speed`` simulated seconds pass
    per real one.  The RADIUS accounting written beside a live replay uses it too, so an
    address's holder at a message's wall time is the one the simulation had."""

    base: float
    wall0: float
    speed: float

    def wall(self, at: float) -> float:
        return self.wall0 + (at - self.base) / self.speed

    def sim(self, wall: float) -> float:
        return self.base + (wall - self.wall0) * self.speed


@dataclass(frozen=True, slots=True)
class ReplayStats:
    messages: int
    attempts: int
    seconds: float
    max_lag_s: float  # how far behind the compressed schedule a send started, at worst


def replay(
    messages: Iterable[SimMessage],
    transport: Transport,
    on_outcome: Callable[[int, SimMessage, Outcome], None],
    *,
    speed: float,
    workers: int = 8,
    retry_after_s: tuple[float, ...] = RETRY_AFTER_S,
    clock: ReplayClock | None = None,
) -> ReplayStats:
    """Send ``messages`` at their simulated times divided by ``speed``; report each outcome.

    ``on_outcome(n, message, outcome)`` runs in this thread, in completion order (``n``
    is the message's position in ``messages``).  With a ``clock`` the messages are due at
    its wall times (its speed wins); without, the first one is due at once.
    """
    started = time.monotonic()
    done: queue.SimpleQueue[tuple[int, Future[Attempt]]] = queue.SimpleQueue()
    states: dict[int, _Pending] = {}
    retries: list[tuple[float, int]] = []  # (due, n)
    limit = max(1, workers) * 2  # queued sends, so a worker never waits for the next one
    inflight = attempts = taken = 0
    max_lag = 0.0
    source = enumerate(messages)
    upcoming = next(source, None)
    t0 = time.monotonic()
    base = upcoming[1].at if upcoming else 0.0
    if clock is not None:
        t0 += clock.wall0 - time.time()
        base, speed = clock.base, clock.speed

    def due(item: tuple[int, SimMessage] | None) -> float:
        return math.inf if item is None else t0 + (item[1].at - base) / speed

    def launch(n: int) -> None:
        state = states[n]
        state.tries += 1
        future = pool.submit(transport, state.message, state.rcpts)
        future.add_done_callback(lambda f: done.put((n, f)))

    def finish(n: int, future: Future[Attempt]) -> None:
        state = states[n]
        attempt = future.result()  # a transport reports failures; an exception is a bug
        state.last = attempt
        state.accepted += attempt.accepted
        state.rejected.update(attempt.rejected)
        if attempt.deferred and state.tries <= len(retry_after_s):
            state.rcpts = tuple(attempt.deferred)
            delay = retry_after_s[state.tries - 1] / speed
            heapq.heappush(retries, (time.monotonic() + delay, n))
            return
        del states[n]
        on_outcome(n, state.message, state.outcome(attempt.deferred))

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="sim-send") as pool:
        while upcoming is not None or retries or inflight:
            now = time.monotonic()
            while inflight < limit:
                retry_due = retries[0][0] if retries else math.inf
                message_due = due(upcoming)
                if min(retry_due, message_due) > now:
                    break
                if retry_due <= message_due:
                    launch(heapq.heappop(retries)[1])
                elif upcoming is not None:
                    n, message = upcoming
                    max_lag = max(max_lag, now - message_due)
                    states[n] = _Pending(message, message.envelope.rcpts)
                    launch(n)
                    taken += 1
                    upcoming = next(source, None)
                inflight += 1
                attempts += 1
            next_due = min(retries[0][0] if retries else math.inf, due(upcoming))
            wait = None if inflight >= limit or next_due == math.inf else next_due - now
            if wait is not None and wait <= 0:
                continue
            try:
                n, future = done.get(timeout=wait)
            except queue.Empty:
                continue
            inflight -= 1
            finish(n, future)
            while True:  # everything else that finished meanwhile
                try:
                    n, future = done.get_nowait()
                except queue.Empty:
                    break
                inflight -= 1
                finish(n, future)
    return ReplayStats(taken, attempts, time.monotonic() - started, max_lag)
