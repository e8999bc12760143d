"""The case engine: evidence in (the workers' inbox, abuse Maildirs, feed files), cases out.

``CaseEngine.run`` is the desk process's loop (``serve/desk.py``, one per installation):
it takes what the scanning workers pushed, attributes each piece to the account that held
the address then, and ingests it; every ``scan_interval_s`` it reads the abuse Maildir's
``new/`` (each report moved to ``cur/`` once read, as a mail client would); every hour it
prunes old evidence.  ``import_maildir`` and ``import_feed`` are the same ingestion for
``seawall abuse import`` and ``seawall feeds import``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from seawall.config import Config
from seawall.errors import StoreError
from seawall.quietlog import QuietLog
from seawall.zombies.cases import Desk
from seawall.zombies.evidence import Scope
from seawall.zombies.feeds import kind_of, read_feed
from seawall.zombies.model import KINDS, Evidence, Kind
from seawall.zombies.reports_in import parse_report

log = logging.getLogger("seawall.zombies")
_quiet = QuietLog(log)

Holds = Callable[[], Awaitable[bool]]  # whether this process may run the desk now
INBOX_BATCH = 500
INBOX_IDLE_S = 0.5
PRUNE_INTERVAL_S = 3600.0


@dataclass
class Imported:
    """What one import did."""

    read: int = 0  # reports or rows read
    new: int = 0  # new evidence recorded
    duplicate: int = 0  # evidence recorded before
    external: int = 0  # of the new, against external addresses
    opened: int = 0  # cases opened or reopened
    problems: list[str] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        return (
            f"read {self.read}: {self.new} new evidence ({self.external} external), "
            f"{self.duplicate} already known, {self.opened} cases opened, "
            f"{len(self.problems)} skipped"
        )


class CaseEngine:
    """Evidence into cases (see the module docstring)."""

    def __init__(self, config: Config, desk: Desk) -> None:
        self.config = config
        self.settings = config.zombies
        self.desk = desk
        self.scope = Scope(config)
        self.weights = {kind: self.settings.weight(kind) for kind in KINDS}
        maildir = self.settings.abuse_maildir
        self._maildir = Path(maildir) if maildir else None
        self._next_scan = 0.0
        self._next_prune = time.monotonic() + 60.0
        self._next_tick = 0.0  # the remedies' clock (see step)

    async def drain_inbox(self, batch: int = INBOX_BATCH) -> int:
        """Ingest what the workers pushed, ``batch`` at a time; return how many."""
        done = 0
        while True:
            pieces = await self.desk.store.take(batch)
            for i, evidence in enumerate(pieces):
                try:
                    await self.desk.ingest(evidence)
                except StoreError:
                    # Lose nothing: what is left goes back to the inbox for the next round
                    # (if the store takes it; else it is lost with this error logged).
                    await self.desk.store.push(pieces[i:])
                    raise
            done += len(pieces)
            if len(pieces) < batch:
                return done

    async def import_maildir(self, path: Path, *, move_new: bool = False) -> Imported:
        """Read every report in the Maildir at ``path`` (``new/`` and ``cur/``; a plain
        folder of files too).  With ``move_new`` (the desk), only ``new/`` is read, and each
        report moves to ``cur/`` (``:2,S``) once read, so the next scan reads only new ones."""
        files = await asyncio.to_thread(_maildir_files, path)
        if move_new:  # what was read before lies in cur/
            files = [(f, is_new) for f, is_new in files if is_new]
        out = Imported()
        for file, is_new in files:
            try:
                raw = await asyncio.to_thread(file.read_bytes)
            except OSError as exc:
                out.problems.append(f"{file}: {exc.strerror or exc}")
                continue
            out.read += 1
            parsed = parse_report(raw, self.scope, self.weights, now=time.time())
            if parsed.evidence is None:
                out.problems.append(f"{file.name}: {parsed.problem}")
            else:
                await self._ingest(parsed.evidence, parsed.raw, out)
            if move_new and is_new:
                await asyncio.to_thread(_to_cur, file)
        return out

    async def import_feed(self, path: Path, kind: Kind | None = None) -> Imported:
        """Read one Shadowserver-layout CSV file."""
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            raise StoreError(f"{path}: {exc.strerror or exc}") from None
        text = data.decode("utf-8", "replace").lstrip("\ufeff")
        out = Imported()
        for row in read_feed(text, kind or kind_of(path.name), self.scope, self.weights):
            if row.evidence is None:
                out.problems.append(row.problem)
                continue
            out.read += 1
            await self._ingest(row.evidence, row.raw, out)
        return out

    async def _ingest(self, evidence: Evidence, raw: bytes, out: Imported) -> None:
        got = await self.desk.ingest(evidence, raw)
        if not got.new:
            out.duplicate += 1
            return
        out.new += 1
        out.kinds[evidence.kind] += 1
        out.external += not evidence.own
        out.opened += got.moved is not None

    async def step(self) -> int:
        """One round of the desk: the inbox, the Maildir when due, pruning when due; how
        many pieces of evidence it handled (0: idle)."""
        taken = await self.drain_inbox()
        now = time.monotonic()
        if self._maildir is not None and now >= self._next_scan:
            self._next_scan = now + self.settings.scan_interval_s
            got = await self.import_maildir(self._maildir, move_new=True)
            taken += got.read
            if got.read:
                log.info("abuse Maildir %s: %s", self._maildir, got.summary())
        if now >= self._next_prune:
            self._next_prune = now + PRUNE_INTERVAL_S
            await self.desk.store.prune(time.time())
        # The remedies' clock (remedies/remediation.py): timed moves, the zone, the reports.
        tick = getattr(self.desk.remedies, "tick", None)
        if tick is not None and now >= self._next_tick:
            self._next_tick = now + self.config.sharing.refresh_s
            await tick(time.time())
        return taken

    async def run(self, stop: asyncio.Event, holds: Holds | None = None) -> None:
        """The desk's loop until ``stop`` is set; with ``holds``, a round runs only while it
        answers True (the lease on a shared state).  A failing store is logged and retried."""
        while not stop.is_set():
            taken = 0
            try:
                if holds is None or await holds():
                    taken = await self.step()
            except StoreError as exc:
                _quiet.warning("desk", "the case store failed: %s", exc)
            except Exception:
                log.exception("the case engine failed; retrying")
            if not taken:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), INBOX_IDLE_S)


def _maildir_files(path: Path) -> list[tuple[Path, bool]]:
    """(file, from new/) of a Maildir, oldest name first; a plain folder's own files."""
    if not path.is_dir():
        raise StoreError(f"{path}: not a folder")
    subdirs = [(path / "new", True), (path / "cur", False)]
    out: list[tuple[Path, bool]] = []
    if any(d.is_dir() for d, _ in subdirs):
        for folder, is_new in subdirs:
            if folder.is_dir():
                out += [(f, is_new) for f in sorted(folder.iterdir()) if f.is_file()]
        return out
    return [(f, False) for f in sorted(path.iterdir()) if f.is_file() and f.name[0] != "."]


def _to_cur(file: Path) -> None:
    """Move a read message from new/ to cur/ with the Seen flag."""
    target = file.parent.parent / "cur" / (file.name.split(":", 1)[0] + ":2,S")
    try:
        os.rename(file, target)
    except OSError as exc:
        _quiet.warning("maildir", "cannot move %s to cur/: %s", file, exc)
