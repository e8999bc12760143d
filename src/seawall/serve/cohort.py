"""The messages waiting to be scanned at the same moment in a worker, scanned as a cohort.

A busy worker has several requests that arrived in the same turns of its loop.  Scanned one
whole scan after another, each message's parse, language and detectors evict the previous
stage's code and tables (fastText's model, the classifier's weights) from the CPU's caches;
run stage by stage over the waiting messages, as a batch scan's cohorts are
(``Engine.scan_many``), they stay there (docs/benchmarks.md, issue 14).

There is no timer: a message that arrives alone starts at the next turn of the loop, and a
cohort is what is already queued when the scanner takes its next one (at most ``COHORT``
messages and ``COHORT_BYTES`` of mail).  The CPU stages run in one task of their own, so a
caller that goes away (a client gone, a spent budget) never cancels the others' scans; each
message's deadline is checked between the stages, and a message past it gets
:class:`~seawall.engine.BudgetExceeded` alone.  Each caller then waits for its own network
answers and makes its own verdict and feedback in its own task, as ``scan_message`` does,
so its verdict is the one ``scan_message`` gives it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

from seawall.detectors.base import Context
from seawall.engine import BudgetExceeded, Engine, Scan, _cancel, _Scanning
from seawall.frontends.logsafe import printable
from seawall.message import Envelope

log = logging.getLogger("seawall.scan")

COHORT = 16  # messages scanned stage by stage together, as a batch scan's cohorts
COHORT_BYTES = 4 << 20  # and at most this much raw mail (one message always fits)


class ScanStopped(RuntimeError):
    """The worker's scanner was stopped (shutdown) before this message was scanned."""


@dataclass(slots=True, eq=False)
class _Waiting:
    """One caller's message, from its arrival until its CPU stages are done."""

    envelope: Envelope
    raw: bytes
    deadline: float | None
    done: asyncio.Future[tuple[_Scanning, Context, float]]
    scan: _Scanning | None = None
    ctx: Context | None = None

    def drop(self, exc: BaseException | None) -> None:
        """Out of the cohort: its started I/O cancelled, ``exc`` for its caller."""
        if self.scan is not None:
            _cancel(self.scan.io)
        if exc is not None and not self.done.done():
            self.done.set_exception(exc)


class Cohorts:
    """Scans a worker's messages in cohorts (one per :class:`~seawall.serve.service.Service`)."""

    def __init__(
        self, engine: Engine, *, size: int = COHORT, max_bytes: int = COHORT_BYTES
    ) -> None:
        self.engine = engine
        self.size = size
        self.max_bytes = max_bytes
        self._queue: deque[_Waiting] = deque()
        self._runner: asyncio.Task[None] | None = None
        self._alone = False  # a message's stages run in its caller's task (nothing else was)
        self.sizes: Counter[int] = Counter()  # cohorts scanned, by their number of messages

    async def scan(self, envelope: Envelope, raw: bytes, *, deadline: float | None) -> Scan:
        """Scan one message in the next cohort; ``deadline`` as for ``Engine.scan_message``."""
        loop = asyncio.get_running_loop()
        waiting = _Waiting(envelope, raw, deadline, loop.create_future())
        done = waiting.done
        if self._runner is None and not self._alone:
            # Nothing is being scanned: its stages run at once, in its own task (a cohort
            # of one, which only its own caller can cancel).  What arrives meanwhile queues.
            self._alone = True
            self.sizes[1] += 1
            try:
                await self._stages([waiting])
            except BaseException:
                waiting.drop(None)
                raise
            finally:
                self._alone = False
                if self._queue:
                    self._runner = loop.create_task(self._run())
            scan, ctx, t1 = done.result()
            try:
                return await self.engine._finish(scan, ctx, t1)
            finally:
                _cancel(scan.io)
        self._queue.append(waiting)
        if self._runner is None and not self._alone:
            self._runner = loop.create_task(self._run())
        try:
            scan, ctx, t1 = await done
        except asyncio.CancelledError:
            # Cancelled after its stages were done: the I/O it started is its own to cancel.
            if done.done() and not done.cancelled() and done.exception() is None:
                _cancel(done.result()[0].io)
            raise
        try:
            return await self.engine._finish(scan, ctx, t1)
        finally:
            _cancel(scan.io)  # as scan_message: nothing started is left behind, whatever failed

    def _take(self) -> list[_Waiting]:
        """The next cohort: what is queued, callers gone skipped, up to the caps."""
        queue = self._queue
        cohort: list[_Waiting] = []
        held = 0
        while queue and len(cohort) < self.size:
            waiting = queue[0]
            if waiting.done.done():  # its caller went away while it waited
                queue.popleft()
                continue
            if cohort and held + len(waiting.raw) > self.max_bytes:
                break
            queue.popleft()
            cohort.append(waiting)
            held += len(waiting.raw)
        return cohort

    async def _run(self) -> None:
        """Scan cohorts while messages wait; the task ends when none does."""
        cohort: list[_Waiting] = []
        try:
            while cohort := self._take():
                self.sizes[len(cohort)] += 1
                try:
                    await self._stages(cohort)
                except Exception as exc:  # a bug outside one message's own steps
                    log.exception("a cohort of %d messages failed", len(cohort))
                    for waiting in cohort:
                        if not waiting.done.done():
                            waiting.drop(exc)
                # The cohort's callers go on (answers, verdicts, replies), and what arrives
                # meanwhile joins the next cohort: a request read in one turn of the loop
                # starts its handler in the next, so two turns unless a cohort is waiting.
                await asyncio.sleep(0)
                if len(self._queue) < self.size:
                    await asyncio.sleep(0)
        except asyncio.CancelledError:
            stopped = ScanStopped("the scanner was stopped")
            for waiting in (*cohort, *self._queue):
                if not waiting.done.done():
                    waiting.drop(stopped)
            self._queue.clear()
            raise
        finally:
            self._runner = None

    @staticmethod
    def _live(cohort: list[_Waiting], stage: str, now: float) -> list[_Waiting]:
        """Those still scanned after ``stage``: not gone, and within their deadline."""
        live = []
        for waiting in cohort:
            if waiting.done.done():  # cancelled by its caller
                waiting.drop(None)
            elif waiting.deadline is not None and now > waiting.deadline:
                waiting.drop(BudgetExceeded(stage))
            else:
                live.append(waiting)
        return live

    @staticmethod
    def _each(cohort: list[_Waiting], step: Callable[[_Waiting], None]) -> list[_Waiting]:
        """``step`` on each message; one that raises (a bug) leaves the cohort alone."""
        live = []
        for waiting in cohort:
            try:
                step(waiting)
            except Exception as exc:
                log.exception(
                    "scan failed in a cohort: queue_id=%s", printable(waiting.envelope.queue_id)
                )
                waiting.drop(exc)
            else:
                live.append(waiting)
        return live

    async def _stages(self, cohort: list[_Waiting]) -> None:
        """The CPU stages of ``Engine.scan_message`` over a cohort, stage by stage."""
        engine = self.engine
        clock = time.perf_counter
        times = engine.times
        t1 = clock()
        live = self._live(cohort, "queue", t1)

        def parse(waiting: _Waiting) -> None:
            waiting.scan = engine._parse(waiting.envelope, waiting.raw)

        live = self._each(live, parse)
        t2 = clock()
        times.add("parse", t2 - t1)
        t1 = t2
        live = self._live(live, "parse", t1)
        languages: dict[int, str | None] = {}
        if engine.identify_language is not None:
            for waiting in live:
                assert waiting.scan is not None
                languages[id(waiting)] = engine._language(waiting.scan.msg)
            t2 = clock()
            times.add("language", t2 - t1)
            t1 = t2
            live = self._live(live, "language", t1)

        def context(waiting: _Waiting) -> None:
            assert waiting.scan is not None
            language = languages.get(id(waiting))
            waiting.ctx = engine._context(waiting.scan, waiting.envelope, language, None)

        live = self._each(live, context)
        if engine._io:
            turn = False  # one turn of the loop for all their tasks (the campaigns' step)

            def start(waiting: _Waiting) -> None:
                nonlocal turn
                scan = waiting.scan
                assert scan is not None
                assert waiting.ctx is not None
                scan.io_deadline, scan.io, needs = engine._start_all(scan.msg, waiting.ctx)
                turn = turn or needs

            live = self._each(live, start)
            if turn:
                await asyncio.sleep(0)
            t2 = clock()
            times.add("io start", t2 - t1)
            t1 = t2
            live = self._live(live, "io start", t1)
        for detector in engine._cpu:
            for waiting in live:
                assert waiting.scan is not None
                assert waiting.ctx is not None
                await engine._check(detector, waiting.scan, waiting.ctx)
            t2 = clock()
            times.add(detector.name, t2 - t1)
            t1 = t2
            live = self._live(live, detector.name, t1)
        for waiting in live:
            assert waiting.scan is not None
            assert waiting.ctx is not None
            waiting.done.set_result((waiting.scan, waiting.ctx, t1))
