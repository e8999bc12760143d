"""The campaign tracker's process: its state in the store, its start, and how a command
reaches it.

``seawall serve`` forks one tracker per host beside its workers (``spawn``, then
``wait_ready``); ``seawall scan`` with several workers runs one for the length of the scan
(``tracker_process``).  The tracker saves its snapshot into the store every
``snapshot_interval_s`` and when it stops, when something changed since its last save,
and starts from the last one.  A command
(``seawall campaigns``) talks to the live tracker when ``seawall serve`` is up and to the
saved state otherwise (``connect``), through the same client protocol.  On a shared (Redis)
state the process is a candidate for the one tracker that serves every node
(``tracker_lease.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from seawall import logs
from seawall.campaigns.client import LocalTracker, TrackerClient
from seawall.campaigns.protocol import address
from seawall.campaigns.remote import RemoteTracker
from seawall.campaigns.server import TrackerServer
from seawall.campaigns.tracker import Tracker
from seawall.config import Config, state_url
from seawall.errors import StoreError, TrackerError
from seawall.serve import lifecycle

if TYPE_CHECKING:
    from seawall.store.base import Store

log = logging.getLogger("seawall.campaigns")

SNAPSHOT_KEY = "campaigns:snapshot"
STOP_GRACE_S = 30.0  # a stopping tracker saves its state; after this long it is killed


def load(config: Config) -> Tracker:
    """The tracker saved in the store, or a new one."""
    from seawall.store import open_store

    async def get() -> bytes | None:
        store = open_store(config)
        try:
            return await store.get(SNAPSHOT_KEY)
        finally:
            await store.close()

    try:
        data = asyncio.run(get())
    except StoreError as exc:
        log.error("campaign state unreadable, starting empty: %s", exc)
        data = None
    return restored(config, data)


def restored(config: Config, data: bytes | None) -> Tracker:
    """The tracker a saved snapshot holds, or a new one (when there is none, or it is of an
    older version)."""
    events = Path(config.state_dir) / "events.jsonl"
    settings = config.detectors.campaigns
    if data:
        try:
            return Tracker.restore(data, settings, events=events)
        except (ValueError, TypeError, KeyError) as exc:  # DecodeError is a ValueError
            log.error("campaign state could not be restored, starting empty: %s", exc)
    return Tracker(settings, events=events)


def save(config: Config, tracker: Tracker) -> None:
    """Write the tracker into the store (``seawall scan`` in one process)."""
    from seawall.store import open_store

    async def put() -> None:
        store = open_store(config)
        try:
            await store.put(SNAPSHOT_KEY, tracker.snapshot())
        finally:
            await store.close()

    try:
        asyncio.run(put())
    except StoreError as exc:
        log.error("could not save the campaign state: %s", exc)


async def save_changed(store: Store, tracker: Tracker, saved: int) -> int:
    """Save the tracker's snapshot unless nothing changed since the save made at its
    ``changes`` count ``saved`` (an idle tracker writes nothing); the count saved now."""
    changes = tracker.changes
    if changes == saved:
        return saved
    try:
        await store.put(SNAPSHOT_KEY, tracker.snapshot())
    except StoreError as exc:
        log.error("could not save the campaign state: %s", exc)
        return saved
    return changes


async def _serve(config: Config, tracker: Tracker) -> None:
    from seawall.store import open_store

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: None)
    _reopen_on_sigusr1(loop)
    server = TrackerServer(tracker)
    unix = await asyncio.start_unix_server(server.connection, path=address(config))
    store = open_store(config)
    every = config.detectors.campaigns.snapshot_interval_s
    saved = tracker.changes  # what it loaded is what the store holds

    log.info("campaign tracker %d serving", os.getpid())
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        saved = await save_changed(store, tracker, saved)
    unix.close()
    await store.close()


async def _serve_shared(config: Config) -> None:
    from seawall.serve import tracker_lease

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: None)
    _reopen_on_sigusr1(loop)
    await tracker_lease.serve(config, stop)


def _reopen_on_sigusr1(loop: asyncio.AbstractEventLoop) -> None:
    """SIGUSR1 reopens the log file (logrotate); blocked since the fork (``spawn``), so one
    sent meanwhile is taken now."""
    loop.add_signal_handler(signal.SIGUSR1, logs.reopen)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})


def run(config: Config) -> int:
    """The body of the tracker process: this host's tracker, or on a shared state a
    candidate for the one that serves every node."""
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        if state_url(config) is not None:
            runner.run(_serve_shared(config))
        else:
            runner.run(_serve(config, load(config)))
    return 0


@contextlib.contextmanager
def tracker_process(config: Config) -> Iterator[int]:
    """A forked tracker process for the duration of a block (``seawall scan``): stopped
    (and its state saved) when the block ends, however it ends; it also stops when this
    process dies (``spawn``)."""
    pid = spawn(config)
    try:
        wait_ready(config, pid=pid)
        yield pid
    finally:
        lifecycle.stop(pid, STOP_GRACE_S)


def spawn(config: Config) -> int:
    """Fork the tracker process; its pid.  It gets SIGTERM when this process dies."""
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            lifecycle.die_with_parent(parent)
            for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            # SIGUSR1 (reopen the log file) waits until the loop handles it.
            signal.pthread_sigmask(signal.SIG_SETMASK, {signal.SIGUSR1})
            code = run(config)
        except BaseException:
            log.exception("campaign tracker failed")
        finally:
            logging.shutdown()
            os._exit(code)
    return pid


def running(config: Config) -> bool:
    """Whether a tracker serves this state: this host's, or on a shared state any node's."""
    if state_url(config) is not None:
        from seawall.serve.tracker_lease import lease_held

        return lease_held(config)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(address(config))
        except OSError:
            return False
    return True


def wait_ready(config: Config, timeout: float = 30.0, *, pid: int | None = None) -> None:
    """Wait until the tracker accepts connections; TrackerError after ``timeout`` s, or as
    soon as the process ``pid`` (our child, left unreaped) exits."""
    deadline = time.monotonic() + timeout
    while not running(config):
        if pid is not None and lifecycle.exited(pid):
            raise TrackerError(f"the campaign tracker {pid} exited before it was ready")
        if time.monotonic() > deadline:
            raise TrackerError("the campaign tracker did not start")
        time.sleep(0.02)


def client(config: Config) -> RemoteTracker:
    """The client of the tracker that serves this node's workers."""
    if state_url(config) is None:
        return RemoteTracker(address(config))
    from seawall.serve.tracker_lease import locator

    return RemoteTracker(locator(config))


@contextlib.contextmanager
def connect(config: Config) -> Iterator[TrackerClient]:
    """The live tracker of ``seawall serve`` on this state dir, else the saved state in this
    process, saved again on the way out when something changed."""
    if running(config):
        remote = client(config)
        try:
            yield remote
        finally:
            remote.close()
        return
    local = LocalTracker(load(config))
    yield local
    if local.changed:
        save(config, local.tracker)
