"""The Scanner every front end calls: the Engine under a time budget and a fail policy.

A message always gets a Verdict.  When its budget (queueing for a scan slot
included) is spent, or the scan fails inside Seawall, the configured policy
applies: "tempfail" answers soft reject (the MTA keeps the message and
retries), "accept" passes it with ``skipped`` set, which the front ends render
as an ``X-Seawall-Skipped`` header.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from seawall import __version__
from seawall.addresses import network_of
from seawall.detectors.base import Reports
from seawall.errors import LearningDisabled, StoreError
from seawall.frontends.logsafe import printable
from seawall.message import Envelope, parse_message
from seawall.policy.model import Action, SymbolResult, Verdict
from seawall.quietlog import QuietLog
from seawall.store.history import record_verdict
from seawall.zombies.sink import EvidenceSink

if TYPE_CHECKING:
    from seawall.classifier import Classifier
    from seawall.config import Config
    from seawall.engine import Engine
    from seawall.store import Store

log = logging.getLogger("seawall.scan")
_quiet = QuietLog(log)

SKIP_SYMBOLS = {
    "timeout": "SCAN_TIMEOUT",
    "error": "SCAN_FAILED",
}
_PASSED = SymbolResult(
    "GREYLIST_PASSED", 0.0, (), "Greylisted before; the sender retried after the delay"
)
# How long the spam history's verdicts are gathered before they are written together.
HISTORY_FLUSH_S = 0.2
_SKIPPED = "At the greylist threshold but not greylisted: nothing to remember it by"
_DESCRIPTIONS = {
    "SCAN_TIMEOUT": "The message's time budget ran out before it was scanned",
    "SCAN_FAILED": "Seawall failed inside; the message was not scanned",
}


@dataclass
class Stats:
    """Counters of one worker, served by /stat and the JSON API."""

    started: float = field(default_factory=time.time)
    scanned: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    learned: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    busy_ms: float = 0.0


class Service:
    """The Engine as the front ends see it (the ``Scanner`` protocol)."""

    def __init__(
        self,
        engine: Engine,
        config: Config,
        *,
        classifier: Classifier | None = None,
        store: Store | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        self.classifier = classifier
        self.store = store
        self.stats = Stats()
        self._budget_s = config.serve.budget_s
        self._fail_policy = config.serve.fail_policy
        self._slots = asyncio.Semaphore(config.serve.max_scans)
        self._background: set[asyncio.Task[None]] = set()
        # Verdicts for the spam history not written yet: (ip, spam) -> [count, latest time].
        self._history: dict[tuple[str, bool], list[float]] = {}
        self._history_due: asyncio.TimerHandle | None = None
        self._log_messages = config.serve.log_messages
        # Called with each verdict (envelope, raw, verdict, ms); each must return at once and
        # do its work off the reply's path (the verdict history and the metrics).
        self.observers: list[Callable[[Envelope, bytes, Verdict, float], None]] = []
        # The worker's connection tables by front end (open, evicted, timed out, refused).
        self.connection_stats: Callable[[], dict[str, dict[str, int]]] | None = None

    @property
    def max_message_bytes(self) -> int:
        return self.config.limits.max_message_bytes

    async def check(self, envelope: Envelope, raw: bytes) -> Verdict:
        t0 = time.perf_counter()
        self.stats.in_flight += 1
        try:
            # The timeout interrupts waits (a scan slot, network detectors); the deadline
            # stops CPU work between stages.
            async with asyncio.timeout(self._budget_s), self._slots:
                verdict = await self.engine.scan(envelope, raw, deadline=t0 + self._budget_s)
        except TimeoutError:
            log.warning(
                "budget of %.1fs spent: queue_id=%s client=%s",
                self._budget_s,
                printable(envelope.queue_id),
                printable(envelope.client_ip),
            )
            verdict = self.unscanned("timeout", t0)
        except Exception:
            log.exception("scan failed: queue_id=%s", printable(envelope.queue_id))
            verdict = self.unscanned("error", t0)
        finally:
            self.stats.in_flight -= 1
        if verdict.action is Action.GREYLIST:
            verdict = await self._greylist(envelope, verdict, t0 + self._budget_s)
        elapsed = (time.perf_counter() - t0) * 1000
        stats = self.stats
        stats.scanned += 1
        stats.busy_ms += elapsed
        stats.actions[verdict.action.value] += 1
        if verdict.skipped:
            stats.skipped[verdict.skipped] += 1
        elif self.store is not None and envelope.client_ip:
            self._remember(envelope.client_ip, verdict.is_spam)
        if not verdict.skipped and envelope.client_ip:
            # Evidence against the ISP's own zombies, handed to the desk off the reply's path.
            EvidenceSink.of(self.config).verdict(envelope, verdict, raw)
        for observe in self.observers:
            observe(envelope, raw, verdict, elapsed)
        if self._log_messages:
            log_verdict(envelope, verdict, elapsed)
        return verdict

    def unscanned(self, why: str, t0: float) -> Verdict:
        """The Verdict of a message that could not be scanned, under the fail policy."""
        symbol = SKIP_SYMBOLS[why]
        result = SymbolResult(symbol, 0.0, (), _DESCRIPTIONS[symbol])
        accept = self._fail_policy == "accept"
        return Verdict(
            score=0.0,
            required=self.engine.scores.required,
            action=Action.NO_ACTION if accept else Action.SOFT_REJECT,
            symbols={symbol: result},
            language=None,
            elapsed_ms=round((time.perf_counter() - t0) * 1000, 3),
            forced_by=None if accept else symbol,
            skipped=why if accept else None,
        )

    async def _greylist(self, envelope: Envelope, verdict: Verdict, deadline: float) -> Verdict:
        """Tempfail a new (client /24, sender, recipient) triplet; pass a patient retry
        (``GREYLIST_PASSED``).

        Without a client address (spamc, rspamc without ``IP``), a store, or when the store
        fails, there is nothing to remember: the message passes, since a greylist that never
        lets go would lose mail, marked ``GREYLIST_SKIPPED`` with why (no retry happened).
        """
        serve = self.config.serve
        passed = dataclasses.replace(
            verdict,
            action=Action.NO_ACTION,
            symbols={**verdict.symbols, "GREYLIST_PASSED": _PASSED},
        )

        def skipped(why: str) -> Verdict:
            result = SymbolResult("GREYLIST_SKIPPED", 0.0, (why,), _SKIPPED)
            symbols = {**verdict.symbols, "GREYLIST_SKIPPED": result}
            return dataclasses.replace(verdict, action=Action.NO_ACTION, symbols=symbols)

        if not envelope.client_ip:
            return skipped("no client address")
        if self.store is None:
            return skipped("no state store")
        key = (
            "grey:"
            + hashlib.sha1(
                "\0".join(
                    (
                        network_of(envelope.client_ip),
                        envelope.mail_from or "",
                        ",".join(envelope.rcpts),
                    )
                ).encode()
            ).hexdigest()
        )
        now = time.time()
        try:
            # Within what is left of the message's budget (``deadline``, perf_counter): a
            # locked store must not hold the reply beyond it.
            async with asyncio.timeout(max(deadline - time.perf_counter(), 0.0)):
                first = await self.store.get(key)
                if first is None:
                    await self.store.put(key, repr(now).encode(), ttl_s=serve.greylist_expire_s)
                    return verdict
            # A replay compresses time: the delay is greylist_delay_s simulated seconds.
            if now - float(first) >= serve.greylist_delay_s / serve.policy.replay_speed:
                return passed
        except TimeoutError:
            _quiet.warning("greylist", "greylisting skipped: the state store is too slow")
            return skipped("state store too slow")
        except (StoreError, ValueError) as exc:
            _quiet.warning("greylist", "greylisting skipped: %s", exc)
            return skipped("state store failed")
        return verdict

    def _remember(self, ip: str, spam: bool) -> None:
        """Feed the policy service's spam history, off the reply's path.

        The verdicts of ``HISTORY_FLUSH_S`` are written together, one store call per address
        and label with their count, all in flight at once: a store call a message through
        the store's thread cost about a tenth of a worker's time (its thread's wake-ups).
        """
        now = time.time()
        pending = self._history.get((ip, spam))
        if pending is None:
            self._history[(ip, spam)] = [1, now]
        else:
            pending[0] += 1
            pending[1] = now
        if self._history_due is None:
            loop = asyncio.get_running_loop()
            self._history_due = loop.call_later(HISTORY_FLUSH_S, self._write_history)

    def _write_history(self) -> None:
        """Start writing the gathered verdicts (a background task, awaited by ``drain``)."""
        if self._history_due is not None:
            self._history_due.cancel()
            self._history_due = None
        if not self._history:
            return
        assert self.store is not None
        pending, self._history = self._history, {}
        window_s = self.config.serve.policy.history_window_s
        store = self.store

        async def write() -> None:
            results = await asyncio.gather(
                *(
                    record_verdict(
                        store, ip, spam=spam, now=at, window_s=window_s, count=int(count)
                    )
                    for (ip, spam), (count, at) in pending.items()
                ),
                return_exceptions=True,
            )
            failed = [r for r in results if isinstance(r, BaseException)]
            if failed:
                raise failed[0]

        task = asyncio.ensure_future(write())
        self._background.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _quiet.warning("history", "could not record the verdict: %s", task.exception())

    async def learn(self, raw: bytes, *, spam: bool) -> bool:
        if self.classifier is None:
            raise LearningDisabled("the classifier is disabled in the configuration")
        msg = parse_message(raw, Envelope(), self.engine.limits)
        wait_s = self.config.serve.learn_wait_s
        try:
            changed = await asyncio.to_thread(self.classifier.learn, msg, spam, wait_s=wait_s)
        except StoreError as exc:
            _quiet.warning("learn", "learning failed on the state store: %s", exc)
            raise
        self.stats.learned["spam" if spam else "ham"] += changed
        return changed

    async def forget(self, raw: bytes) -> bool:
        if self.classifier is None:
            raise LearningDisabled("the classifier is disabled in the configuration")
        msg = parse_message(raw, Envelope(), self.engine.limits)
        wait_s = self.config.serve.learn_wait_s
        try:
            return await asyncio.to_thread(self.classifier.unlearn, msg, wait_s=wait_s)
        except StoreError as exc:
            _quiet.warning("learn", "forgetting failed on the state store: %s", exc)
            raise

    def stat(self) -> dict[str, Any]:
        """Counters of this worker and the classifier's, in Rspamd's /stat names where they
        exist, with each reporting detector's own under its name (``dnsbl``)."""
        stats = self.stats
        spam, ham = self.classifier.counts if self.classifier is not None else (0, 0)
        body: dict[str, Any] = {
            "version": __version__,
            "pid": os.getpid(),
            "uptime": round(time.time() - stats.started, 1),
            "scanned": stats.scanned,
            "learned": spam + ham,
            "learned_spam": spam,
            "learned_ham": ham,
            "actions": dict(stats.actions),
            "skipped": dict(stats.skipped),
            "in_flight": stats.in_flight,
            "avg_ms": round(stats.busy_ms / stats.scanned, 3) if stats.scanned else 0.0,
        }
        for detector in self.engine.detectors:
            if isinstance(detector, Reports):
                body[detector.name] = dict(detector.stats())
        if self.connection_stats is not None:
            body["connections"] = self.connection_stats()
        return body

    async def drain(self) -> None:
        """Write what waits and wait for background writes (spam history) to finish."""
        self._write_history()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await EvidenceSink.of(self.config).drain()  # the zombie desk's evidence


def log_verdict(envelope: Envelope, verdict: Verdict, elapsed_ms: float) -> None:
    """One line per message: queue id, client IP, score, action, symbols, ms."""
    symbols = ",".join(
        f"{s.name}({s.score:g})"
        for s in sorted(verdict.symbols.values(), key=lambda s: (-abs(s.score), s.name))
    )
    log.info(
        "queue_id=%s client=%s score=%.2f/%.2f action=%s%s symbols=[%s] ms=%.1f",
        printable(envelope.queue_id),  # client values: escaped, so no line can be forged
        printable(envelope.client_ip),
        verdict.score,
        verdict.required,
        verdict.action.value.replace(" ", "_"),
        f" skipped={verdict.skipped}" if verdict.skipped else "",
        symbols,
        elapsed_ms,
    )
