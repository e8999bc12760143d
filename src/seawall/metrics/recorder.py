"""Each verdict into the verdict history and the Prometheus counters, off the reply's path.

:meth:`Recorder.observe` is a ``Service`` observer: it only appends the verdict to a queue
of at most ``[serve.history] max_pending`` verdicts and ``max_pending_bytes`` (a verdict
beyond them is dropped and counted in ``seawall_history_dropped``), keeping the message's
header section, or the whole message when ``keep_messages`` is on.  A task writes the
queue every ``flush_s`` seconds, or sooner once ``BATCH`` verdicts wait: one
``record_many`` call (one SQLite transaction, or two Redis round trips) and the Prometheus
counters of the batch.  A store that fails loses that batch of history rows, logged once a
minute; the counters are kept.  ``close`` writes what is left.

Which front end gave a verdict comes from :data:`FRONTEND`, a context variable that the
worker sets for each connection (:func:`tagged`) and HTTP request (:class:`TaggedApp`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from seawall.errors import ConfigError, StoreError
from seawall.quietlog import QuietLog
from seawall.store.base import ERRORS
from seawall.store.verdicts import HEADER_BYTES, VerdictRecord, Verdicts

if TYPE_CHECKING:
    from seawall.config import Config, HistorySettings
    from seawall.message import Envelope
    from seawall.metrics.prom import Metrics
    from seawall.policy.model import Verdict

log = logging.getLogger("seawall.history")
_quiet = QuietLog(log)

FRONTEND: ContextVar[str] = ContextVar("seawall_frontend", default="other")
BATCH = 500  # verdicts that wake the writer before flush_s


def tagged(
    frontend: str, handler: Callable[[Any, Any], Awaitable[None]]
) -> Callable[[Any, Any], Awaitable[None]]:
    """``handler`` (a stream server's connection handler) with :data:`FRONTEND` set."""

    async def serve(reader: Any, writer: Any) -> None:
        FRONTEND.set(frontend)
        await handler(reader, writer)

    return serve


class TaggedApp:
    """An ASGI app whose requests run with :data:`FRONTEND` set to ``frontend``."""

    def __init__(self, app: Any, frontend: str = "http") -> None:
        self.app = app
        self.frontend = frontend

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        FRONTEND.set(self.frontend)
        await self.app(scope, receive, send)


@dataclass(slots=True)
class _Pending:
    at: float
    frontend: str
    envelope: Envelope
    raw: bytes  # the header section, or the whole message when messages are kept
    size: int
    verdict: Verdict
    elapsed_ms: float


def header_section(raw: bytes) -> bytes:
    """The header section of ``raw`` (what a record reads), at most ``HEADER_BYTES``."""
    head = raw[:HEADER_BYTES]
    end = head.find(b"\n\r\n")
    if end < 0:
        end = head.find(b"\n\n")
    return head if end < 0 else head[: end + 1]


class Recorder:
    """Feeds ``history`` (None: counters only) and ``metrics`` (None: history only)."""

    def __init__(
        self,
        history: Verdicts | None,
        metrics: Metrics | None,
        settings: HistorySettings,
    ) -> None:
        self.history = history
        self.metrics = metrics
        self.settings = settings
        self._pending: list[_Pending] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._dropped = 0
        self._pending_bytes = 0
        self.recorded = 0  # history rows written by this process

    def start(self) -> None:
        """Start the writer task on the running loop."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    def observe(self, envelope: Envelope, raw: bytes, verdict: Verdict, elapsed_ms: float) -> None:
        """Queue one verdict; returns at once (a ``Service`` observer)."""
        if self.history is None and self.metrics is None:
            return
        settings = self.settings
        keep = settings.keep_messages and len(raw) <= settings.keep_message_max_bytes
        held = raw if keep else header_section(raw)
        if (
            len(self._pending) >= settings.max_pending
            or self._pending_bytes + len(held) > settings.max_pending_bytes
        ):
            self._dropped += 1
            return
        self._pending_bytes += len(held)
        self._pending.append(
            _Pending(time.time(), FRONTEND.get(), envelope, held, len(raw), verdict, elapsed_ms)
        )
        if len(self._pending) >= BATCH:
            self._wake.set()

    async def flush(self) -> None:
        """Write and count what is queued now."""
        batch, self._pending, self._pending_bytes = self._pending, [], 0
        if not batch and not self._dropped:
            return
        records = [
            VerdictRecord.of(
                p.envelope, p.raw, p.verdict, frontend=p.frontend, now=p.at, size=p.size
            )
            for p in batch
        ]
        failed = 0
        if self.history is not None and records:
            keep = self.settings.keep_messages
            items = [
                (r, p.raw if keep and len(p.raw) == p.size else None)
                for r, p in zip(records, batch, strict=True)
            ]
            try:
                await self.history.record_many(items)
                self.recorded += len(items)
            except StoreError as exc:
                failed = len(items)
                _quiet.warning("write", "verdict history: %d verdicts lost: %s", failed, exc)
        self._count(records, batch, failed)

    def _count(self, records: list[VerdictRecord], batch: list[_Pending], failed: int) -> None:
        metrics = self.metrics
        dropped, self._dropped = self._dropped + failed, 0
        if metrics is None:
            return
        messages: Counter[tuple[str, str]] = Counter()
        symbols: Counter[str] = Counter()
        timeouts: Counter[str] = Counter()
        failures: Counter[str] = Counter()
        infected = 0
        for record, pending in zip(records, batch, strict=True):
            messages[record.action, record.frontend] += 1
            metrics.latency.labels(record.frontend).observe(pending.elapsed_ms / 1000)
            infected += record.infected
            for symbol in record.symbols:
                symbols[symbol.name] += 1
                if symbol.name == "DETECTOR_TIMEOUT":
                    timeouts.update(symbol.options or ("unknown",))
                elif symbol.name == "DETECTOR_FAILED":
                    failures.update(symbol.options or ("unknown",))
        for (action, frontend), n in messages.items():
            metrics.messages.labels(action, frontend).inc(n)
        for name, n in symbols.items():
            metrics.symbols.labels(name).inc(n)
        for name, n in timeouts.items():
            metrics.timeouts.labels(name).inc(n)
        for name, n in failures.items():
            metrics.failures.labels(name).inc(n)
        if infected:
            metrics.infected.inc(infected)
        if dropped:
            metrics.history_dropped.inc(dropped)
        metrics.sync_store_errors(ERRORS)

    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.flush_s):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # a bug here must not stop the recording for good
                log.exception("verdict history: a batch failed")

    async def close(self) -> None:
        """Stop the writer, write what is left, and close the history."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        try:
            await self.flush()
        finally:
            if self.history is not None:
                await self.history.close()


def open_recorder(config: Config) -> Recorder:
    """The recorder of a ``seawall serve`` worker: the configured verdict history (none
    when disabled or when it cannot be opened, logged) and this worker's Prometheus
    metrics (none unless the supervisor prepared their folder).  Call ``start()`` on the
    worker's loop."""
    from seawall.metrics.prom import Metrics, active_dir
    from seawall.store.verdicts import open_verdicts

    history: Verdicts | None = None
    if config.serve.history.enabled:
        try:
            history = open_verdicts(config)
        except (StoreError, ConfigError) as exc:
            log.error("verdict history disabled: %s", exc)
    metrics = None
    if config.serve.metrics.enabled and active_dir() is not None:
        metrics = Metrics()
    return Recorder(history, metrics, config.serve.history)
