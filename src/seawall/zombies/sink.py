"""``EvidenceSink``: how a scanning worker or the policy service hands evidence to the desk.

``offer`` never waits: it builds the evidence (pure, microseconds), keeps it in a bounded
buffer, and one background task per process pushes what gathered to the case store's inbox
in one write (an INSERT of many rows, or one RPUSH).  The desk takes it from there.  A
failing store drops the batch with a log line once a minute: the reply to the MTA never
waits on the desk.  One sink per process and configuration (``EvidenceSink.of``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import OrderedDict

from seawall.config import Config
from seawall.errors import StoreError
from seawall.message import Envelope
from seawall.policy.model import Verdict
from seawall.quietlog import QuietLog
from seawall.zombies.evidence import Scope, from_rate_hit, from_verdict
from seawall.zombies.model import Evidence
from seawall.zombies.store import CaseBook, open_case_store

log = logging.getLogger("seawall.zombies")
_quiet = QuietLog(log)

MAX_PENDING = 20_000  # pieces waiting for one push; beyond, new ones are dropped
_RECENT = 4096  # ids pushed lately: a rate hit repeats for every request in its window


class EvidenceSink:
    """Buffered, fire-and-forget evidence for the desk (see the module docstring)."""

    _instances: dict[tuple[int, int], EvidenceSink] = {}

    def __init__(self, config: Config, book: CaseBook | None = None) -> None:
        self.config = config
        self.settings = config.zombies
        self.scope = Scope(config)
        self._book = book
        self._pending: list[Evidence] = []
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.pushed = 0

    @classmethod
    def of(cls, config: Config) -> EvidenceSink:
        """This process's sink for ``config`` (made on first use)."""
        key = (os.getpid(), id(config))
        sink = cls._instances.get(key)
        if sink is None:
            sink = cls._instances[key] = cls(config)
        return sink

    @property
    def enabled(self) -> bool:
        return self.settings.enabled and bool(self.scope.isp.own)

    def verdict(self, envelope: Envelope, verdict: Verdict, raw: bytes) -> None:
        """Offer the evidence of one verdict (nothing when it is not from an own network)."""
        if not self.enabled or not envelope.client_ip:
            return
        evidence = from_verdict(self.scope, self.settings, envelope, verdict, raw, time.time())
        if evidence is not None:
            self.offer(evidence)

    def rate_hit(self, ip: str, reason: str, now: float | None = None) -> None:
        """Offer a policy rate hit (once per address per policy window)."""
        if not self.enabled:
            return
        window = self.config.serve.policy.window_s
        evidence = from_rate_hit(
            self.scope, self.settings, ip, reason, window, time.time() if now is None else now
        )
        if evidence is not None:
            self.offer(evidence)

    def offer(self, evidence: Evidence) -> None:
        if evidence.id in self._recent:
            return
        self._recent[evidence.id] = None
        if len(self._recent) > _RECENT:
            self._recent.popitem(last=False)
        if len(self._pending) >= MAX_PENDING:
            self.dropped += 1
            _quiet.warning("sink", "evidence dropped: %d waiting for the case store", MAX_PENDING)
            return
        self._pending.append(evidence)
        if self._task is None or self._task.done():
            # No loop (a synchronous caller): the next offer on a loop pushes.
            with contextlib.suppress(RuntimeError):
                self._task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let the offers of this turn of the loop gather
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                if self._book is None:
                    # Connecting and checking the schema wait on the file: off the loop.
                    self._book = await asyncio.to_thread(open_case_store, self.config)
                await self._book.push(batch)
                self.pushed += len(batch)
            except StoreError as exc:
                self.dropped += len(batch)
                _quiet.warning("sink", "evidence not handed to the desk: %s", exc)
            except Exception:
                self.dropped += len(batch)
                log.exception("evidence not handed to the desk")

    async def drain(self) -> None:
        """Wait until what was offered is pushed (a worker stopping, tests)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)
