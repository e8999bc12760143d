"""``seawall scan --workers N``: forked workers, each with the engine it inherits, fed
batches of ``BATCH`` and keeping up to ``WINDOW`` messages in flight; and the scan's private
campaign tracker process.  Results come back in input order (:func:`_scan_forked`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
import os
import secrets
import signal
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

import msgspec

from seawall.batch.core import (
    BATCH,
    DEPTH,
    SCAN_GC_YOUNG,
    WINDOW,
    WINDOW_BYTES,
    Record,
    _frozen_engine,
    _overlay,
    cohorts,
    scan_cohort,
    scan_gc,
)
from seawall.campaigns.client import TrackerClient
from seawall.campaigns.remote import RemoteTracker
from seawall.campaigns.server import TrackerServer
from seawall.campaigns.tracker import Tracker
from seawall.config import Config
from seawall.engine import Engine, StageTimes, build_engine
from seawall.errors import ScanError, TrackerError
from seawall.serve import tracker as campaign_tracker
from seawall.sources import Unit


class PrivateTracker:
    """A scan's own tracker process, as :func:`_private_tracker` started it: its socket
    ``name``, and :meth:`wait` for it to serve."""

    def __init__(self, name: str, ready: Connection, process: BaseProcess) -> None:
        self.name = name
        self._ready = ready
        self._process = process
        self._serving = False

    def wait(self, timeout_s: float = 30.0) -> str:
        """Block until the tracker serves its socket (at once when it does already); its
        name.  :class:`TrackerError` when it exited or did not start in ``timeout_s``."""
        if self._serving:
            return self.name
        try:
            if not self._ready.poll(timeout_s):
                raise TrackerError(f"the scan's campaign tracker did not start in {timeout_s:g} s")
            self._ready.recv()
        except EOFError:
            self._process.join(1.0)
            raise TrackerError(
                f"the scan's campaign tracker exited with {self._process.exitcode}"
            ) from None
        self._serving = True
        return self.name


@contextlib.contextmanager
def _private_tracker(tracker: Tracker) -> Iterator[PrivateTracker]:
    """A tracker process of this scan's own for the length of the block: it serves
    ``tracker`` on a socket name nobody else uses, saves nothing, and stops with the block
    (or when this process dies).  Yields it at once: it starts while this process goes on
    (the engine's load), and :meth:`PrivateTracker.wait` waits for it before the workers
    that use it fork."""
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
        yield PrivateTracker(name, ready, process)
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
    gc.freeze()  # the tracker as loaded and what the parent imported: never walked again

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
    # The workers inherit it: their collections skip the engine (its pages stay shared).
    collecting = contextlib.ExitStack()
    collecting.enter_context(scan_gc())
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
        collecting.close()
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
    young, *older = gc.get_threshold()  # inherited from _scan_forked, unless spawned
    gc.set_threshold(max(young, SCAN_GC_YOUNG), *older)
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
