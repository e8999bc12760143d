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
import gc
import logging
import multiprocessing
import os
import secrets
import signal
import tempfile
from collections import deque
from collections.abc import Generator, Iterator, Sequence
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import msgspec

from seawall.campaigns.client import LocalTracker, TrackerClient
from seawall.campaigns.frozen import FrozenTracker
from seawall.campaigns.remote import RemoteTracker
from seawall.campaigns.server import TrackerServer
from seawall.campaigns.tracker import Tracker
from seawall.config import Config, state_url
from seawall.engine import Engine, StageTimes, build_engine
from seawall.errors import ScanError, TrackerError
from seawall.message import Envelope
from seawall.message.sniff import kind_of
from seawall.policy.model import Verdict
from seawall.serve import tracker as campaign_tracker
from seawall.sources import Unit
from seawall.store import FILENAME, SqliteStore, Store, open_store
from seawall.store.overlay import Overlay

log = logging.getLogger("seawall.scan")

BATCH = 16  # messages per batch sent to a worker
# Messages scanned together, stage by stage (Engine.scan_many): a cohort of 16 spent 15-25%
# less CPU in the scan's stages than the same messages one by one (docs/benchmarks.md).
COHORT = 16
COHORT_BYTES = 4 << 20  # and at most this much raw mail (one message always fits)
# Messages in flight per worker.  Little's law asks for rate x wait (300 msg/s x 0.1 s =
# 30) on average, but answers come in bursts and a batch returns with its slowest message:
# with 64, a worker behind a 100 ms resolver still fell idle and scanned 13-30% slower than
# without lists; with 256, a median 7% (docs/benchmarks.md).
WINDOW = 256
WINDOW_BYTES = 64 << 20  # and at most this much raw mail in flight (one message always fits)
DEPTH = 20  # batches queued per worker (DEPTH * BATCH >= WINDOW keeps the window full)
NOT_MAIL = "DEFECT_NOT_MAIL"
BATCH_IO_TIMEOUT_S = 30.0  # the engine's I/O budget in a batch scan, at least (_for_batch)
# How long a campaign copy's answer may wait for its campaign's first judgements in a batch
# scan, at least (_for_batch; off stays off).  A copy's judgement comes back once the CPU
# work of the WINDOW messages ahead of it is done: up to 1.7 s at p99 on a loaded 2-core
# host, past the live default of 1 s (docs/benchmarks.md, "Verdicts and scan order").
BATCH_HOLD_S = 10.0


class Record(msgspec.Struct, frozen=True, gc=False):
    """One scanned message, as ``seawall scan --json`` prints it."""

    path: str
    score: float
    required: float
    action: str
    symbols: dict[str, float]
    options: dict[str, list[str]]
    language: str | None
    campaign: str | None
    elapsed_ms: float
    size: int


def _failed(engine: Engine, unit: Unit, symbol: str, why: str) -> Record:
    return Record(
        path=unit.path,
        score=0.0,
        required=engine.scores.required,
        action="soft reject",
        symbols={symbol: 0.0},
        options={symbol: [why]},
        language=None,
        campaign=None,
        elapsed_ms=0.0,
        size=0,
    )


async def scan_unit(engine: Engine, unit: Unit) -> Record:
    """Read and scan one message; never raises (a failure is a "soft reject" record)."""
    try:
        raw = unit.read()
    except OSError as exc:
        return _failed(engine, unit, "READ_ERROR", exc.strerror or str(exc))
    try:
        scan = await engine.scan_message(Envelope(), raw)
    except Exception as exc:
        log.exception("scanning %s failed", unit.path)
        return _failed(engine, unit, "SCAN_FAILED", f"{type(exc).__name__}: {exc}")
    return _record(unit, raw, scan.verdict)


async def scan_cohort(engine: Engine, units: Sequence[Unit]) -> list[Record]:
    """Read and scan ``units`` together, stage by stage (:meth:`Engine.scan_many`), a
    record for each in order; never raises for one message's failure (its record is a
    "soft reject", as with :func:`scan_unit`)."""
    raws: list[bytes] = []
    records: list[Record | None] = []
    for unit in units:
        try:
            raws.append(unit.read())
            records.append(None)
        except OSError as exc:
            records.append(_failed(engine, unit, "READ_ERROR", exc.strerror or str(exc)))
    scans = iter(await engine.scan_many(raws) if raws else ())
    read = iter(raws)
    out: list[Record] = []
    for unit, record in zip(units, records, strict=True):
        if record is None:
            raw, scan = next(read), next(scans)
            if isinstance(scan, Exception):
                log.error("scanning %s failed", unit.path, exc_info=scan)
                why = f"{type(scan).__name__}: {scan}"
                record = _failed(engine, unit, "SCAN_FAILED", why)
            elif isinstance(scan, BaseException):
                raise scan
            else:
                record = _record(unit, raw, scan.verdict)
        out.append(record)
    return out


def cohorts(units: Sequence[Unit], sizes: Sequence[int]) -> Iterator[tuple[list[Unit], int]]:
    """``units`` cut into cohorts scanned together: ``COHORT`` messages and
    ``COHORT_BYTES`` at most (one message always fits), with their size in bytes."""
    group: list[Unit] = []
    held = 0
    for unit, size in zip(units, sizes, strict=True):
        if group and (len(group) >= COHORT or held + size > COHORT_BYTES):
            yield group, held
            group, held = [], 0
        group.append(unit)
        held += size
    if group:
        yield group, held


def _record(unit: Unit, raw: bytes, verdict: Verdict) -> Record:
    record = to_record(unit.path, verdict, len(raw))
    if NOT_MAIL in record.symbols:  # what it is instead: "xz archive", "ELF binary", ...
        record = msgspec.structs.replace(
            record, options={**record.options, NOT_MAIL: [kind_of(raw)]}
        )
    return record


def to_record(path: str, verdict: Verdict, size: int) -> Record:
    return Record(
        path=path,
        score=verdict.score,
        required=verdict.required,
        action=verdict.action.value,
        symbols={name: s.score for name, s in verdict.symbols.items()},
        options={name: list(s.options) for name, s in verdict.symbols.items() if s.options},
        language=verdict.language,
        campaign=verdict.campaign,
        elapsed_ms=verdict.elapsed_ms,
        size=size,
    )


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
        name = None
        if config.detectors.campaigns.enabled:
            tracker = campaign_tracker.load(config)
            tracker.events = None  # the state's event log is the live tracker's
            if here:
                client = LocalTracker(tracker)
            else:
                name = stack.enter_context(_private_tracker(tracker))
                client = RemoteTracker(name)
        counts = None
        if not here and config.detectors.reputation.enabled:
            counts = _shared_counts(stack)
        engine = build_engine(config, tracker=client, store=_overlay(config, counts))
        stack.callback(engine.close)
        if not here:
            yield from _scan_forked(units, config, workers, times, engine, tracker=name)
            return
        yield from _scan_here(engine, units, times)


def _for_batch(config: Config) -> Config:
    """``config`` with the I/O budget and the campaign hold a batch scan needs.

    No client waits on a batch: the budget only guards against a peer that hangs, and each
    network detector keeps its own bound below ``engine.io_timeout_s`` (the DNS lists'
    wait, clamd's timeout).  What the engine's deadline would cut in a scan is the wait
    for a local peer (the campaign tracker, the store) behind the CPU work of the
    ``WINDOW`` messages in flight: on a loaded machine, that took the campaign and
    reputation symbols from some messages and not others, run to run.  The campaign hold
    (``detectors.campaigns.hold_s``) waits behind the same work, so a scan's is longer too.
    """
    engine = config.engine
    if engine.io_timeout_s < BATCH_IO_TIMEOUT_S:
        engine = msgspec.structs.replace(engine, io_timeout_s=BATCH_IO_TIMEOUT_S)
    campaigns = config.detectors.campaigns
    if 0 < campaigns.hold_s < BATCH_HOLD_S:
        campaigns = msgspec.structs.replace(
            campaigns, hold_s=min(BATCH_HOLD_S, engine.io_timeout_s / 2)
        )
    if engine is config.engine and campaigns is config.detectors.campaigns:
        return config
    detectors = msgspec.structs.replace(config.detectors, campaigns=campaigns)
    return msgspec.structs.replace(config, engine=engine, detectors=detectors)


def _frozen_engine(config: Config) -> Engine:
    """An engine that reads the state and learns nothing (each forked worker its copy)."""
    client = None
    if config.detectors.campaigns.enabled:
        tracker = campaign_tracker.load(config)
        tracker.events = None
        client = FrozenTracker(tracker)
    engine = build_engine(config, tracker=client, store=_overlay(config))
    engine.freeze()
    return engine


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


def _overlay(config: Config, own: Store | None = None) -> Overlay:
    """The state's store read through, this scan's own counts kept in memory (or in
    ``own``)."""
    return Overlay(lambda: open_store(config), own)


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


@contextlib.contextmanager
def _private_tracker(tracker: Tracker) -> Iterator[str]:
    """A tracker process of this scan's own for the length of the block: it serves
    ``tracker`` on a socket name nobody else uses, saves nothing, and stops with the block
    (or when this process dies).  Yields the socket name."""
    name = f"\0seawall-scan-{os.getpid()}-{secrets.token_hex(8)}"
    context = multiprocessing.get_context("fork")  # the tracker is inherited, not pickled
    ready, child = context.Pipe(duplex=False)
    process = context.Process(
        target=_serve_tracker,
        args=(tracker, name, child, os.getpid()),
        name="seawall-scan-campaigns",
        daemon=True,
    )
    process.start()
    child.close()
    try:
        try:
            if not ready.poll(30.0):
                raise TrackerError("the scan's campaign tracker did not start in 30 s")
            ready.recv()
        except EOFError:
            process.join(1.0)
            raise TrackerError(
                f"the scan's campaign tracker exited with {process.exitcode}"
            ) from None
        yield name
    finally:
        ready.close()
        process.terminate()
        process.join(5.0)
        if process.is_alive():
            process.kill()
            process.join()


def _serve_tracker(tracker: Tracker, name: str, ready: Connection, parent: int) -> None:
    """The body of :func:`_private_tracker`'s process."""
    import uvloop

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a ^C stops the scan, and the scan stops us

    async def serve() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        server = await asyncio.start_unix_server(TrackerServer(tracker).connection, path=name)
        ready.send(True)
        ready.close()
        while not stop.is_set() and os.getppid() == parent:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
        server.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve())


def _scan_here(engine: Engine, units: Sequence[Unit], times: StageTimes | None) -> Iterator[Record]:
    """In this process, a window at a time, yielding each record once it is next in order;
    the engine's stage times go into ``times`` at the end."""
    gc.freeze()  # what start-up loaded: no collection walks it again during the scan
    try:
        yield from _in_order(engine, units)
    finally:
        gc.unfreeze()
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


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(list[Record])
_engine: Engine | None = None  # what a forked worker inherits


class _Worker:
    def __init__(
        self,
        context: Any,
        config: Config,
        *,
        tracker: str | None = None,
        feed: bool = True,
        frozen: bool = False,
    ) -> None:
        self.conn: Connection
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_worker_main,
            args=(child, config, tracker, feed, frozen),
            name="seawall-scan",
            daemon=True,
        )
        self.process.start()
        child.close()
        self.held: dict[int, int] = {}  # batch number -> messages in it

    def describe(self) -> str:
        self.process.join(1.0)
        code = self.process.exitcode
        how = "is still running" if code is None else f"exited with {code}"
        return f"scan worker {self.process.pid} {how}"


def _scan_forked(
    units: Sequence[Unit],
    config: Config,
    workers: int,
    times: StageTimes | None,
    engine: Engine,
    *,
    tracker: str | None = None,
    feed: bool = False,
    frozen: bool = False,
) -> Iterator[Record]:
    """``tracker``: the socket name of the scan's private campaign tracker, if any."""
    global _engine
    batches = [units[i : i + BATCH] for i in range(0, len(units), BATCH)]
    # fork: the workers inherit the loaded engine (language model, classifier weights)
    # and start in milliseconds; its pages stay shared until written.
    method = "fork" if hasattr(os, "fork") else "spawn"
    _engine = engine if method == "fork" else None
    gc.freeze()  # the workers' collections skip the engine (and leave its pages shared)
    pool: list[_Worker] = []
    try:
        context = multiprocessing.get_context(method)
        pool = [
            _Worker(context, config, tracker=tracker, feed=feed, frozen=frozen)
            for _ in range(workers)
        ]
        sent = 0
        finished: dict[int, bytes] = {}
        for turn in range(len(batches)):
            while turn not in finished:
                sent = _dispatch(pool, batches, sent)
                ready = wait([w.conn for w in pool])
                for worker in [w for w in pool if w.conn in ready]:
                    try:
                        number, blob, delta = worker.conn.recv()
                    except (EOFError, OSError):
                        lost = sum(worker.held.values())
                        raise ScanError(
                            f"{worker.describe()} while holding {lost} messages"
                        ) from None
                    del worker.held[number]
                    finished[number] = blob
                    if times is not None:
                        times.merge(delta)
            yield from _DECODER.decode(finished.pop(turn))
        for worker in pool:
            worker.conn.send(None)  # no more work: flush and exit
        for worker in pool:
            worker.process.join(30.0)
    finally:
        _engine = None
        gc.unfreeze()
        for worker in pool:
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(5.0)
            worker.conn.close()


def _dispatch(pool: Sequence[_Worker], batches: Sequence[Sequence[Unit]], sent: int) -> int:
    """Deal batches to the workers in turn until each holds ``DEPTH`` (so a short run is
    shared, not left to the first worker); returns the next batch to send."""
    dealt = True
    while dealt and sent < len(batches):
        dealt = False
        for worker in pool:
            if len(worker.held) < DEPTH and sent < len(batches):
                worker.conn.send((sent, list(batches[sent])))
                worker.held[sent] = len(batches[sent])
                sent += 1
                dealt = True
    return sent


def _worker_main(
    conn: Connection,
    config: Config,
    tracker_name: str | None = None,
    feed: bool = True,
    frozen: bool = False,
) -> None:
    """A worker: scan the batches that come down ``conn``, send each back when done."""
    engine = _engine
    if engine is None and frozen:  # spawn start method: load the state again
        engine = _frozen_engine(config)
    elif engine is None:  # spawn start method: nothing was inherited
        tracker: TrackerClient | None = None
        if tracker_name is not None:
            tracker = RemoteTracker(tracker_name)
        elif feed and config.detectors.campaigns.enabled:
            tracker = campaign_tracker.client(config)
        engine = build_engine(config, tracker=tracker, store=None if feed else _overlay(config))
    try:
        engine.event_loop().run_until_complete(_work(conn, engine))
    finally:
        engine.close()  # writes what is pending (reputation counts)
        conn.close()


class _Window:
    """At most ``WINDOW`` messages and ``WINDOW_BYTES`` in flight; one message always fits.

    :meth:`enter` has one caller at a time (the worker's feeding loop).
    """

    def __init__(self) -> None:
        self.count = 0
        self.bytes = 0
        self._waiter: asyncio.Future[None] | None = None

    async def enter(self, count: int, size: int) -> None:
        """Room for ``count`` messages of ``size`` bytes in all (a cohort)."""
        while self.count and (self.count + count > WINDOW or self.bytes + size > WINDOW_BYTES):
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        self.count += count
        self.bytes += size

    def leave(self, count: int, size: int) -> None:
        self.count -= count
        self.bytes -= size
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


async def _work(conn: Connection, engine: Engine) -> None:
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[tuple[int, list[Unit]] | None] = asyncio.Queue()
    fd = conn.fileno()

    def readable() -> None:
        try:
            inbox.put_nowait(conn.recv())
        except (EOFError, OSError):  # the parent is gone
            loop.remove_reader(fd)
            inbox.put_nowait(None)

    loop.add_reader(fd, readable)
    window = _Window()
    reported = StageTimes(dict(engine.times.seconds), engine.times.messages)
    senders: set[asyncio.Task[None]] = set()

    async def finish(number: int, tasks: list[asyncio.Task[list[Record]]]) -> None:
        records = [record for task in tasks for record in await task]
        await engine.flush()  # the batch's reputation counts, before the worker may exit
        now = engine.times
        delta = StageTimes(
            {k: v - reported.seconds.get(k, 0.0) for k, v in now.seconds.items()},
            now.messages - reported.messages,
        )
        reported.seconds, reported.messages = dict(now.seconds), now.messages
        # The records travel as one MessagePack blob: far cheaper for the parent to decode
        # than a pickle of each record.
        conn.send((number, _ENCODER.encode(records), delta))

    async def scan_within(members: list[Unit], size: int) -> list[Record]:
        try:
            return await scan_cohort(engine, members)
        finally:
            window.leave(len(members), size)

    try:
        while (job := await inbox.get()) is not None:
            number, units = job
            tasks = []
            for members, size in cohorts(units, [unit.size() for unit in units]):
                await window.enter(len(members), size)
                tasks.append(loop.create_task(scan_within(members, size)))
            sender = loop.create_task(finish(number, tasks))
            senders.add(sender)
            sender.add_done_callback(senders.discard)
        if senders:
            await asyncio.gather(*senders)
    finally:
        loop.remove_reader(fd)
