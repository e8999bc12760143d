"""The one scan path: parse -> language -> detectors -> decide -> Verdict.

Every entry point (``seawall scan``, the milter, spamd, HTTP) calls
:meth:`Engine.scan`.  A detector that fails is logged, becomes the symbol
``DETECTOR_FAILED`` scored 0, and never stops the others.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from seawall.config import Config
from seawall.detectors import build_detectors
from seawall.detectors.base import Closes, Context, Detector, Flushes, Hit, Learns, Starts
from seawall.detectors.campaign import CAMPAIGN
from seawall.errors import SeawallError
from seawall.language import identify, preload
from seawall.message import Envelope, Message, ParseLimits, parse_message
from seawall.policy.decide import decide
from seawall.policy.model import Action, Verdict
from seawall.policy.scores import Scores, load_scores
from seawall.quietlog import QuietLog

if TYPE_CHECKING:
    from seawall.campaigns.client import TrackerClient
    from seawall.classifier import Classifier
    from seawall.store import Store

log = logging.getLogger("seawall.engine")
_quiet = QuietLog(log)

_WARM_UP = (
    b"From: a@example.co.uk\nContent-Type: text/html\n\n"
    b'<a href="http://www.example.com.au/x">https://example.org/</a> www.example.de\n'
)

# Symbols of the scan path itself rather than of one detector (scored in the "engine" group).
SYMBOLS: Mapping[str, str] = {
    "DETECTOR_FAILED": "A detector raised an error; it was skipped for this message",
    "DETECTOR_TIMEOUT": "A network-bound detector ran out of its time budget",
    "PARSE_FAILED": "The parser failed on this message; it is tempfailed so the MTA retries",
    "READ_ERROR": "The message file could not be read",
}

# Stages that include waiting (network answers, the campaign tracker): when scans overlap,
# other messages' work runs meanwhile, so these are not this message's CPU time.
WAIT_STAGES = frozenset({"io start", "io", "feedback"})


@dataclass
class StageTimes:
    """Cumulative seconds spent per stage, for the per-stage profile."""

    seconds: dict[str, float] = field(default_factory=dict)
    messages: int = 0

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def merge(self, other: StageTimes) -> None:
        for stage, value in other.seconds.items():
            self.add(stage, value)
        self.messages += other.messages


def _failed(name: str, exc: Exception, when: str = "") -> None:
    """A detector's failure: a bug is logged with its traceback every time; a state store
    or tracker that is down (a SeawallError) fails every message alike, so it is one line
    a minute."""
    what = f"detector {name} failed{' ' + when if when else ''}"
    if isinstance(exc, SeawallError):
        _quiet.warning(f"{name}:{when}:{type(exc).__name__}", "%s: %s", what, exc)
    else:
        log.error("%s", what, exc_info=exc)


def _answered(pending: Awaitable[Sequence[Hit]] | None) -> bool:
    """A failed start, or an answer already there after ``start()`` (a warm cache): taken
    as it is, with no timer armed for it (4 us a detector a message)."""
    return pending is None or (
        isinstance(pending, asyncio.Future)
        and pending.done()
        and not pending.cancelled()
        and pending.exception() is None
    )


class BudgetExceeded(TimeoutError):
    """The message's time budget ran out; the argument names the stage that finished last."""


_Pending = list[tuple[Detector, Awaitable[Sequence[Hit]] | None]]
_NO_ENVELOPE = Envelope()


@dataclass(slots=True)
class _Scanning:
    """One message between the stages of its scan."""

    msg: Message
    hits: list[Hit]
    t0: float  # when its parse started
    language: str | None = None
    io: _Pending = field(default_factory=list)  # the I/O detectors started, with what they return
    io_deadline: float = 0.0


def _cancel(io: _Pending) -> None:
    """Cancel the I/O detectors never awaited: a spent budget or a cancelled scan."""
    for _, pending in io:
        if isinstance(pending, asyncio.Future):
            pending.cancel()
        elif inspect.iscoroutine(pending):
            pending.close()


@dataclass(frozen=True, slots=True)
class Scan:
    """A verdict with the parsed message it was made from."""

    verdict: Verdict
    message: Message


class Engine:
    """Parse, detect, decide.

    >>> engine = build_engine(load_config())          # doctest: +SKIP
    >>> verdict = engine.scan_sync(Envelope(), raw).verdict    # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        scores: Scores,
        detectors: Sequence[Detector],
        limits: ParseLimits,
        identify_language: Callable[[str], str | None] | None = None,
        io_timeout_s: float = 2.0,
        classifier: Classifier | None = None,
    ) -> None:
        self.scores = scores
        self.classifier = classifier  # learned by the front ends' learn commands
        self.detectors = tuple(detectors)
        self._cpu = tuple(d for d in self.detectors if not d.io)
        self._io = tuple((d, d if isinstance(d, Starts) else None) for d in self.detectors if d.io)
        self._after = tuple((d, d) for d in self.detectors if isinstance(d, Learns))
        self._flush = tuple((d, d) for d in self.detectors if isinstance(d, Flushes))
        self._close = tuple(d for d in self.detectors if isinstance(d, Closes))
        self.limits = limits
        self.identify_language = identify_language
        self.io_timeout_s = io_timeout_s
        self.times = StageTimes()
        self._loop: asyncio.AbstractEventLoop | None = None

    def freeze(self) -> None:
        """Stop the detectors learning from verdicts (``seawall scan --frozen``): no
        campaign judgement, reputation or sender-domain count comes from what is scanned."""
        self._after = ()

    async def scan(
        self,
        envelope: Envelope,
        raw: bytes,
        *,
        now: float | None = None,
        deadline: float | None = None,
    ) -> Verdict:
        return (await self.scan_message(envelope, raw, now=now, deadline=deadline)).verdict

    async def scan_message(
        self,
        envelope: Envelope,
        raw: bytes,
        *,
        now: float | None = None,
        deadline: float | None = None,
    ) -> Scan:
        """Scan one message.

        ``deadline`` (a ``time.perf_counter()`` value) is checked between stages:
        past it, the scan stops with :class:`BudgetExceeded` instead of running the
        remaining detectors, so one huge message cannot hold a worker for long.
        """
        clock = time.perf_counter
        scan = self._parse(envelope, raw)
        t1 = clock()
        times = self.times
        times.add("parse", t1 - scan.t0)
        if deadline is not None and t1 > deadline:
            raise BudgetExceeded("parse")
        language = None
        if self.identify_language is not None:
            language = self._language(scan.msg)
            t2 = clock()
            times.add("language", t2 - t1)
            t1 = t2
        ctx = self._context(scan, envelope, language, now)
        try:
            if self._io:
                await self._start_io(scan, ctx)
            if scan.io:  # the I/O detectors' first step (their CPU work up to their first wait)
                t2 = clock()
                times.add("io start", t2 - t1)
                t1 = t2
            for detector in self._cpu:
                await self._check(detector, scan, ctx)
                t2 = clock()
                times.add(detector.name, t2 - t1)
                t1 = t2
                if deadline is not None and t1 > deadline:
                    raise BudgetExceeded(detector.name)
            return await self._finish(scan, ctx, t1)
        finally:
            _cancel(scan.io)

    async def scan_many(
        self, raws: Sequence[bytes], envelope: Envelope = _NO_ENVELOPE
    ) -> list[Scan | BaseException]:
        """Scan messages that come together (a batch scan's cohort) stage by stage.

        Each stage (the parse, the language, each detector) runs over all of them in a row
        before the next one starts, so its code and tables (fastText's model, the
        classifier's weights) stay in the CPU's caches: one message's whole scan after
        another evicts them (docs/benchmarks.md, issue 14).  Each message gets the verdict
        :meth:`scan_message` gives it; the waits (the I/O detectors' answers, the
        feedback) overlap.  A message whose scan raises gets the exception in its place.
        There is no deadline: batch scans have none.
        """
        clock = time.perf_counter
        times = self.times
        t1 = clock()
        scans = [self._parse(envelope, raw) for raw in raws]
        t2 = clock()
        times.add("parse", t2 - t1)
        t1 = t2
        if self.identify_language is not None:
            languages = [self._language(scan.msg) for scan in scans]
            t2 = clock()
            times.add("language", t2 - t1)
            t1 = t2
        else:
            languages = [None] * len(scans)
        contexts = [
            self._context(scan, envelope, language, None)
            for scan, language in zip(scans, languages, strict=True)
        ]
        try:
            if self._io:
                if self._start_all(scans, contexts):
                    await asyncio.sleep(0)  # one turn of the loop for all their tasks
                t2 = clock()
                times.add("io start", t2 - t1)
                t1 = t2
            for detector in self._cpu:
                for scan, ctx in zip(scans, contexts, strict=True):
                    await self._check(detector, scan, ctx)
                t2 = clock()
                times.add(detector.name, t2 - t1)
                t1 = t2
        except BaseException:
            for scan in scans:
                _cancel(scan.io)
            raise
        finish = (self._finish(s, c, t1) for s, c in zip(scans, contexts, strict=True))
        return await asyncio.gather(*finish, return_exceptions=True)

    def _parse(self, envelope: Envelope, raw: bytes) -> _Scanning:
        t0 = time.perf_counter()
        hits: list[Hit] = []
        try:
            msg = parse_message(raw, envelope, self.limits)
        except Exception:
            # parse_message records defects instead of raising; if it raises anyway, the
            # message is not lost: it is tempfailed (the MTA retries) and the bug is logged.
            log.exception("parser failed on a %d-byte message", len(raw))
            msg = parse_message(b"", envelope, self.limits)
            hits.append(Hit("PARSE_FAILED", force=Action.SOFT_REJECT))
        return _Scanning(msg, hits, t0)

    def _language(self, msg: Message) -> str | None:
        assert self.identify_language is not None
        try:
            return self.identify_language(msg.text)
        except Exception:
            log.exception("language identification failed")
            return None

    @staticmethod
    def _context(
        scan: _Scanning, envelope: Envelope, language: str | None, now: float | None
    ) -> Context:
        scan.language = language
        scan.hits.extend(Hit(f"DEFECT_{d.upper()}") for d in scan.msg.defects)
        return Context(
            now=time.time() if now is None else now,
            authenticated=envelope.user is not None,
            language=language,
        )

    async def _check(self, detector: Detector, scan: _Scanning, ctx: Context) -> None:
        """One CPU-bound detector on one message; its failure is a symbol."""
        try:
            scan.hits.extend(await detector.check(scan.msg, ctx))
        except Exception as exc:
            _failed(detector.name, exc)
            scan.hits.append(Hit("DETECTOR_FAILED", options=(detector.name,)))

    async def _finish(self, scan: _Scanning, ctx: Context, t1: float) -> Scan:
        """The I/O detectors' answers, the verdict and the feedback (``t1``: when the CPU
        stages ended)."""
        clock = time.perf_counter
        times = self.times
        hits = scan.hits
        try:
            if scan.io:
                hits.extend(await self._collect_io(scan.io, scan.io_deadline))
                t2 = clock()
                times.add("io", t2 - t1)  # what is left of the waits once the CPU work is done
                t1 = t2
        finally:
            _cancel(scan.io)
        campaign = next((h.options[0] for h in hits if h.symbol == CAMPAIGN and h.options), None)
        scores = self.scores
        if self.classifier is not None:  # learned symbol scores, once enough mail is learned
            scores = self.classifier.scores_over(scores)
        msg = scan.msg
        verdict = decide(
            hits,
            scores,
            language=scan.language,
            elapsed_ms=round((clock() - scan.t0) * 1000, 3),
            campaign=campaign,
            message_id=msg.headers.get("Message-ID"),
        )
        t2 = clock()
        times.add("policy", t2 - t1)
        if self._after:
            await self._feedback(msg, verdict, ctx.now)
            times.add("feedback", clock() - t2)
        times.messages += 1
        return Scan(verdict, msg)

    async def _feedback(self, msg: Message, verdict: Verdict, now: float) -> None:
        """Detectors that learn from verdicts (campaigns) hear how the message was judged.

        They share one ``io_timeout_s``: one timer a message rather than one a detector,
        since most of them only queue what they learned.  One still waiting when it runs
        out is cancelled, and those after it do not hear of this message.
        """
        current = ""
        try:
            async with asyncio.timeout(self.io_timeout_s):
                for detector, learns in self._after:
                    current = detector.name
                    try:
                        await learns.after_verdict(msg, verdict, now)
                    except Exception as exc:
                        _failed(detector.name, exc, "after the verdict")
        except TimeoutError as exc:
            _failed(current, exc, "after the verdict")

    async def _start_io(self, scan: _Scanning, ctx: Context) -> None:
        """Start the network-bound detectors before the CPU ones, so their waits overlap.

        A task that was only created has not run yet, so a detector with a synchronous
        ``start(msg, ctx) -> Awaitable[hits]`` sends its requests inside that call (DNS
        lists do; what it returns is awaited after the CPU work, with no task of its own);
        the others run as tasks and get one turn of the loop here to send theirs.  All of
        them share one deadline, ``io_timeout_s`` from now.
        """
        if self._start_all((scan,), (ctx,)):
            await asyncio.sleep(0)

    def _start_all(self, scans: Sequence[_Scanning], contexts: Sequence[Context]) -> bool:
        """:meth:`_start_io` for messages scanned together, up to the turn of the loop their
        tasks need (returned: whether they need one).  Detector by detector, as the CPU
        stages: each one's ``start()`` over every message before the next detector's."""
        loop = asyncio.get_running_loop()
        for scan in scans:
            scan.io_deadline = loop.time() + self.io_timeout_s
        turn = False
        for detector, starts in self._io:
            for scan, ctx in zip(scans, contexts, strict=True):
                pending: Awaitable[Sequence[Hit]] | None
                if starts is None:
                    turn = True
                    pending = loop.create_task(detector.check(scan.msg, ctx))
                else:
                    try:
                        pending = starts.start(scan.msg, ctx)
                    except Exception as exc:
                        _failed(detector.name, exc)
                        pending = None
                scan.io.append((detector, pending))
        return turn

    async def _collect_io(
        self,
        io: Sequence[tuple[Detector, Awaitable[Sequence[Hit]] | None]],
        deadline: float,
    ) -> list[Hit]:
        """The network-bound detectors' hits.  They all ran meanwhile: the wait is the
        longest one's, under their one deadline with one timer, armed only if an answer is
        still missing (answers from a warm cache are taken as they are).  Once the deadline
        passes, the detector waited for and every later one not answered yet become
        ``DETECTOR_TIMEOUT`` (and are cancelled by the caller).
        """
        hits: list[Hit] = []
        first = 0
        while first < len(io) and _answered(io[first][1]):
            hits.extend(self._take(*io[first]))
            first += 1
        if first == len(io):
            return hits
        waiting = first
        try:
            async with asyncio.timeout_at(deadline):
                for waiting in range(first, len(io)):
                    detector, pending = io[waiting]
                    hits.extend(await self._answer(detector, pending))
        except TimeoutError:
            for detector, pending in io[waiting:]:
                if _answered(pending):
                    hits.extend(self._take(detector, pending))
                    continue
                log.warning("detector %s timed out after %.1fs", detector.name, self.io_timeout_s)
                hits.append(Hit("DETECTOR_TIMEOUT", options=(detector.name,)))
        return hits

    @staticmethod
    def _take(detector: Detector, pending: Awaitable[Sequence[Hit]] | None) -> Sequence[Hit]:
        """An answer already there (``_answered``), or DETECTOR_FAILED for a failed start."""
        if pending is None:
            return (Hit("DETECTOR_FAILED", options=(detector.name,)),)
        assert isinstance(pending, asyncio.Future)
        return pending.result()  # type: ignore[no-any-return]

    async def _answer(
        self, detector: Detector, pending: Awaitable[Sequence[Hit]] | None
    ) -> Sequence[Hit]:
        """One detector's hits, awaited under the caller's deadline; its own failures and
        timeouts become symbols here (the deadline's expiry reaches the caller)."""
        if pending is None:
            return (Hit("DETECTOR_FAILED", options=(detector.name,)),)
        try:
            return await pending
        except TimeoutError:  # the detector's own (the deadline's is a cancellation here)
            log.warning("detector %s timed out after %.1fs", detector.name, self.io_timeout_s)
            return (Hit("DETECTOR_TIMEOUT", options=(detector.name,)),)
        except Exception as exc:
            _failed(detector.name, exc)
            return (Hit("DETECTOR_FAILED", options=(detector.name,)),)

    def event_loop(self) -> asyncio.AbstractEventLoop:
        """The private event loop that synchronous callers (CLI scans) run scans on."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.new_event_loop()
        return loop

    def scan_sync(self, envelope: Envelope, raw: bytes, *, now: float | None = None) -> Scan:
        """Scan from synchronous code (CLI workers) on :meth:`event_loop`."""
        return self.event_loop().run_until_complete(self.scan_message(envelope, raw, now=now))

    async def flush(self) -> None:
        """Write what detectors keep pending (reputation counts); at batch ends and on close."""
        for detector, flushes in self._flush:
            try:
                await flushes.flush()
            except Exception as exc:
                _failed(detector.name, exc, "to flush")

    def flush_sync(self) -> None:
        """:meth:`flush` from synchronous code, on the loop of :meth:`scan_sync`."""
        if self._loop is not None:
            self._loop.run_until_complete(self.flush())

    def close(self) -> None:
        if self._loop is not None:
            self._loop.run_until_complete(self.flush())
        for detector in self._close:  # before the loop closes: their sockets live on it
            detector.close()
        loop = self._loop
        if loop is not None:
            # What the closers left running (a client's reader task) ends before the loop.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()
            self._loop = None


def build_engine(
    config: Config,
    *,
    classifier: Classifier | None = None,
    tracker: TrackerClient | None = None,
    store: Store | None = None,
) -> Engine:
    """An Engine for ``config``.  The classifier is opened from the state dir unless given;
    without a ``tracker`` the campaigns are tracked in this process; without a ``store``
    the detectors that keep state (reputation) open the configured one.

    Raises ConfigError when the scores file or a detector's settings cannot work.
    """
    if classifier is None and config.detectors.classifier.enabled:
        from seawall.classifier import Classifier

        classifier = Classifier.from_config(config)
    scores = load_scores(Path(config.scores_file) if config.scores_file else None)
    preload()
    # Load the Public Suffix List and the parser's lazy tables now, once: forked workers
    # then share them instead of each paying for them on its first message.
    parse_message(_WARM_UP, Envelope(), ParseLimits())
    return Engine(
        scores=scores,
        detectors=build_detectors(config, classifier, scores=scores, tracker=tracker, store=store),
        limits=ParseLimits.from_config(config),
        identify_language=partial(identify, sample_chars=config.detectors.language.sample_chars),
        io_timeout_s=config.engine.io_timeout_s,
        classifier=classifier,
    )
