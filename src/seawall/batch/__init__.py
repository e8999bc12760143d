"""Scan many messages with worker processes, each with its own Engine.

Used by ``seawall scan``, ``eval`` and ``demo``.  Results come back in input order.

Each worker keeps up to ``WINDOW`` messages (and ``WINDOW_BYTES`` of them) in flight on its
event loop, so a message waiting on the network (DNS lists, clamd, the campaign tracker)
does not hold the worker: the others' CPU work fills the wait.  The parent streams small
batches to the workers and keeps ``DEPTH`` of them queued at each, so a worker never idles
at a batch's end waiting for the slowest answer of the batch.

Nothing is dropped: a message that cannot even be read (a vanished file) is reported with
the action "soft reject" and the symbol ``READ_ERROR``, one whose scan raised with
``SCAN_FAILED``; a worker that dies stops the run with :class:`ScanError`, naming how many
messages it took with it.  Input that is not mail (an archive, a program) is scanned and
marked ``DEFECT_NOT_MAIL``, with what it is as the symbol's option.

A scan reads the state (the classifier, the saved campaigns, sender reputation) but, unless
``feed`` is set, writes nothing back into it: campaigns are tracked within the run by a
private tracker that starts from the saved snapshot and is never saved, and reputation
counts within the run are kept over what the store holds (``store.overlay``): in memory
with one worker, in a throw-away SQLite file that the forked workers share with several.  An
offline scan of an old mailbox then cannot make campaigns, blocklist entries or reputation
in the state that ``seawall serve`` uses.  With ``frozen`` nothing is learned even within
the run (``seawall scan --frozen``): each message is scored against the state as saved.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections import deque
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path

from seawall.batch.core import (
    BATCH,
    BATCH_HOLD_S,
    BATCH_IO_TIMEOUT_S,
    COHORT,
    COHORT_BYTES,
    DEPTH,
    NOT_MAIL,
    WINDOW,
    WINDOW_BYTES,
    Record,
    _for_batch,
    _frozen_engine,
    _overlay,
    cohorts,
    scan_cohort,
    scan_gc,
    scan_unit,
    to_record,
)
from seawall.batch.workers import _dispatch, _private_tracker, _scan_forked, _Window, _Worker
from seawall.campaigns.client import LocalTracker, TrackerClient
from seawall.campaigns.remote import RemoteTracker
from seawall.config import Config, state_url
from seawall.engine import Engine, StageTimes, build_engine
from seawall.serve import tracker as campaign_tracker
from seawall.sources import Unit
from seawall.store import FILENAME, SqliteStore, Store

__all__ = [
    "BATCH",
    "BATCH_HOLD_S",
    "BATCH_IO_TIMEOUT_S",
    "COHORT",
    "COHORT_BYTES",
    "DEPTH",
    "NOT_MAIL",
    "WINDOW",
    "WINDOW_BYTES",
    "Record",
    "_Window",
    "_Worker",
    "_dispatch",
    "_for_batch",
    "_frozen_engine",
    "_overlay",
    "_private_tracker",
    "_shared_counts",
    "cohorts",
    "scan_cohort",
    "scan_gc",
    "scan_unit",
    "scan_units",
    "to_record",
]


def scan_units(
    units: Sequence[Unit],
    config: Config,
    *,
    workers: int,
    times: StageTimes | None = None,
    feed: bool = False,
    frozen: bool = False,
) -> Generator[Record, None, None]:
    """Scan ``units`` in order with ``workers`` processes (1: in this process).

    Campaigns are tracked across the whole run.  With ``feed`` (``seawall scan
    --feed-state``; ``eval`` and ``demo``, which measure what learns within the run), what
    the scan sees goes into the state as in ``seawall serve``: campaigns are tracked by the
    state's tracker (a tracker process when there are several workers, or the one every
    node shares on a Redis state) and saved at the end, and reputation is counted in the
    store.  Without it, the scan reads the state and writes nothing back (the module's
    docstring says how).  With ``frozen`` (``seawall scan --frozen``), nothing is learned
    from the scan even within the run: each message is scored against the state as saved
    (:mod:`seawall.campaigns.frozen`), whatever the order and the number of workers.
    """
    here = workers <= 1 or len(units) <= BATCH
    config = _for_batch(config)
    if feed and frozen:
        raise ValueError("a scan cannot both feed the state and be frozen")
    if feed:
        yield from _scan_feeding(units, config, workers, times, here)
        return
    if frozen:
        yield from _scan_frozen(units, config, workers, times, here)
        return
    with contextlib.ExitStack() as stack:
        client: TrackerClient | None = None
        private = None
        if config.detectors.campaigns.enabled:
            tracker = campaign_tracker.load(config)
            tracker.events = None  # the state's event log is the live tracker's
            if here:
                client = LocalTracker(tracker)
            else:
                private = stack.enter_context(_private_tracker(tracker))
                client = RemoteTracker(private.name)
        counts = None
        if not here and config.detectors.reputation.enabled:
            counts = _shared_counts(stack)
        engine = build_engine(config, tracker=client, store=_overlay(config, counts))
        stack.callback(engine.close)
        if not here:
            name = private.wait() if private is not None else None
            yield from _scan_forked(units, config, workers, times, engine, tracker=name)
            return
        yield from _scan_here(engine, units, times)


def _scan_frozen(
    units: Sequence[Unit],
    config: Config,
    workers: int,
    times: StageTimes | None,
    here: bool,
) -> Iterator[Record]:
    """:func:`scan_units` with ``frozen``: the state read, nothing learned."""
    engine = _frozen_engine(config)
    try:
        if not here:
            yield from _scan_forked(units, config, workers, times, engine, frozen=True)
            return
        yield from _scan_here(engine, units, times)
    finally:
        engine.close()


def _shared_counts(stack: contextlib.ExitStack) -> Store:
    """A throw-away SQLite store, removed with ``stack``, for what the scan's forked workers
    count (reputation): each sees the others' counts, as serve's workers do, instead of
    only its own (with two workers a source's record held half its mail, and what a
    message got depended on the worker it went to)."""
    root = stack.enter_context(tempfile.TemporaryDirectory(prefix="seawall-scan-"))
    return SqliteStore.open(Path(root) / FILENAME)


def _scan_feeding(
    units: Sequence[Unit],
    config: Config,
    workers: int,
    times: StageTimes | None,
    here: bool,
) -> Iterator[Record]:
    """:func:`scan_units` with ``feed``: what the scan sees goes into the state."""
    campaigns = config.detectors.campaigns.enabled
    shared = campaigns and state_url(config) is not None
    if here:
        with contextlib.ExitStack() as stack:
            tracker = None
            client: TrackerClient | None = None
            if shared:  # the tracker every node shares (this one's, if no other runs)
                stack.enter_context(campaign_tracker.tracker_process(config))
                client = campaign_tracker.client(config)
            elif campaigns:
                tracker = campaign_tracker.load(config)
                client = LocalTracker(tracker)
            engine = build_engine(config, tracker=client)
            try:
                yield from _scan_here(engine, units, times)
            finally:
                engine.close()
                if tracker is not None:
                    campaign_tracker.save(config, tracker)
        return
    with contextlib.ExitStack() as stack:
        remote = None
        if campaigns:
            stack.enter_context(campaign_tracker.tracker_process(config))
            remote = campaign_tracker.client(config)
        engine = build_engine(config, tracker=remote)
        stack.callback(engine.close)
        yield from _scan_forked(units, config, workers, times, engine, feed=True)


def _scan_here(engine: Engine, units: Sequence[Unit], times: StageTimes | None) -> Iterator[Record]:
    """In this process, a window at a time, yielding each record once it is next in order;
    the engine's stage times go into ``times`` at the end."""
    try:
        with scan_gc():
            yield from _in_order(engine, units)
    finally:
        if times is not None:
            times.merge(engine.times)


def _in_order(engine: Engine, units: Sequence[Unit]) -> Iterator[Record]:
    loop = engine.event_loop()
    ahead: deque[tuple[asyncio.Task[list[Record]], int, int]] = deque()
    held = 0  # bytes of the messages in ``ahead``
    count = 0  # and how many they are
    at = 0
    groups: Iterator[tuple[list[Unit], int]] = iter(())
    group: tuple[list[Unit], int] | None = None  # the next cohort to start

    def next_group() -> tuple[list[Unit], int] | None:
        nonlocal at, groups
        found = next(groups, None)
        if found is None and at < len(units):  # sizes read a batch at a time, not all first
            batch = units[at : at + WINDOW]
            at += len(batch)
            groups = cohorts(batch, [unit.size() for unit in batch])
            found = next(groups, None)
        return found

    def top_up() -> None:
        nonlocal held, count, group
        group = group or next_group()
        while group is not None and (
            not ahead or (count + len(group[0]) <= WINDOW and held + group[1] <= WINDOW_BYTES)
        ):
            members, size = group
            ahead.append((loop.create_task(scan_cohort(engine, members)), len(members), size))
            held += size
            count += len(members)
            group = next_group()

    try:
        top_up()
        while ahead:
            records = loop.run_until_complete(ahead[0][0])
            _, members, size = ahead.popleft()
            held -= size
            count -= members
            top_up()
            yield from records
    finally:
        for task, _, _ in ahead:  # the caller stopped early
            task.cancel()
        if ahead:
            loop.run_until_complete(
                asyncio.gather(*(t for t, _, _ in ahead), return_exceptions=True)
            )
