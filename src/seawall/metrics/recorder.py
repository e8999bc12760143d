"""Each verdict into the verdict history and the Prometheus counters, off the reply's path.

:meth:`Recorder.observe` is a ``Service`` observer: it only appends the verdict to a queue
of at most ``[serve.history] max_pending`` verdicts and ``max_pending_bytes`` (a verdict
beyond them is dropped and counted in ``seawall_history_dropped``), keeping the message's
header section, or the whole message when ``keep_messages`` is on. A task writes the queue
every ``flush_s`` seconds, or sooner once ``BATCH`` verdicts wait: one ``record_many`` call
(one SQLite transaction, or two Redis round trips) and the Prometheus counters of the
verdicts not counted yet. The verdicts keep the record ids the history gave them
(``assign_ids``) until they are written, so a batch retried after a write whose answer was
lost (Redis applied it, the reply timed out) is written once. A write that fails (a store
down or locked) keeps its batch at the head of the queue, retried at the next flush, logged
once a minute: the bounds cover the verdicts queued and those being written, so a store down
for long fills the queue and only what arrives beyond the bounds is dropped. Each verdict is
counted in the Prometheus counters once, at the first flush that sees it, whether or not its
row is written yet. ``close`` writes what is left, retrying for up to ``CLOSE_RETRY_S``;
rows it still cannot write are counted as dropped.

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
CLOSE_RETRY_S = 5.0  # how long close() retries a failing write before it gives up


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
    record: VerdictRecord | None = None  # made at the first flush, kept for a retry
    counted: bool = False  # in the Prometheus counters already


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
        self._stop = asyncio.Event()  # set by close(): ends a pause after a failed write
        self._dropped = 0
        self._pending_bytes = 0
        self._writing = 0  # verdicts of the batch being written: within the bounds too
        self._writing_bytes = 0
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
            len(self._pending) + self._writing >= settings.max_pending
            or self._pending_bytes + self._writing_bytes + len(held) > settings.max_pending_bytes
        ):
            self._dropped += 1
            return
        self._pending_bytes += len(held)
        self._pending.append(
            _Pending(time.time(), FRONTEND.get(), envelope, held, len(raw), verdict, elapsed_ms)
        )
        if len(self._pending) >= BATCH:
            self._wake.set()

    async def flush(self) -> bool:
        """Write what is queued now, and count what was not counted yet; False when the
        write failed and its batch went back to the head of the queue (see the module
        docstring)."""
        batch, self._pending = self._pending, []
        self._writing, self._writing_bytes = len(batch), self._pending_bytes
        self._pending_bytes = 0
        if not batch and not self._dropped:
            return True
        written = True
        records: list[VerdictRecord] = []
        for p in batch:
            if p.record is None:
                p.record = VerdictRecord.of(
                    p.envelope, p.raw, p.verdict, frontend=p.frontend, now=p.at, size=p.size
                )
            records.append(p.record)
        try:
            if self.history is not None and records:
                keep = self.settings.keep_messages
                try:
                    # The ids are kept with the queued verdicts, so a batch retried after a
                    # write whose answer was lost is not written twice.
                    if any(not r.id for r in records):
                        records = await self.history.assign_ids(records)
                        for p, r in zip(batch, records, strict=True):
                            p.record = r
                    items = [
                        (r, p.raw if keep and len(p.raw) == p.size else None)
                        for r, p in zip(records, batch, strict=True)
                    ]
                    await self.history.record_many(items)
                    self.recorded += len(items)
                except StoreError as exc:
                    written = False
                    # Back to the head of the queue, before what came in meanwhile.
                    self._pending[:0] = batch
                    self._pending_bytes += self._writing_bytes
                    _quiet.warning(
                        "write",
                        "verdict history: %d verdicts not written yet (kept, retried): %s",
                        len(self._pending),
                        exc,
                    )
        finally:
            self._writing = self._writing_bytes = 0
            self._count([p for p in batch if not p.counted])
        return written

    def _count(self, batch: list[_Pending]) -> None:
        """Count ``batch`` (made records) and the drops so far in the Prometheus counters."""
        for p in batch:
            p.counted = True
        metrics = self.metrics
        dropped, self._dropped = self._dropped, 0
        if metrics is None:
            return
        messages: Counter[tuple[str, str]] = Counter()
        symbols: Counter[str] = Counter()
        timeouts: Counter[str] = Counter()
        failures: Counter[str] = Counter()
        infected = 0
        for pending in batch:
            record = pending.record
            assert record is not None
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
                written = await self.flush()
            except Exception:  # a bug here must not stop the recording for good
                log.exception("verdict history: a batch failed")
                written = True
            if not written:  # the next try after flush_s, however full the queue is
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.flush_s):
                        await self._stop.wait()

    async def close(self, retry_s: float = CLOSE_RETRY_S) -> None:
        """Stop the writer, write what is left (retrying a failing write for up to
        ``retry_s`` seconds; what is still not written then is counted as dropped), and
        close the history."""
        self._closing = True
        self._wake.set()
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
        try:
            deadline = time.monotonic() + retry_s
            await self.flush()
            while self._pending and time.monotonic() < deadline:
                await asyncio.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
                await self.flush()
            if self._pending:
                lost, self._pending, self._pending_bytes = len(self._pending), [], 0
                log.error("verdict history: %d verdicts lost at shutdown", lost)
                self._dropped += lost
                self._count([])
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
