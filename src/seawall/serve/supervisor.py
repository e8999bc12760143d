"""The supervisor: bind the sockets, fork N workers, restart crashed ones, reload, drain.

Signals (as nginx and Postfix's master do it):
    SIGHUP   re-read the config, scores and classifier; start new workers with them and
             drain the old ones.  A config that does not load is logged and ignored.
    SIGTERM  (or SIGINT) stop accepting, let in-flight messages finish, exit 0.
    SIGUSR1  reopen the log file (logrotate), here and in every worker and the tracker.
A worker that dies is replaced at once; its open connections are closed by the
kernel, which the MTA answers with a tempfail (Postfix's milter_default_action).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from seawall import logs
from seawall.config import Config, describe_state, validate
from seawall.engine import Engine, build_engine
from seawall.errors import SeawallError
from seawall.metrics.prom import mark_dead, metrics_dir, prepare_dir
from seawall.serve import lifecycle, worker
from seawall.serve import tracker as campaign_tracker
from seawall.serve.accounting import AccountingProcess
from seawall.serve.balance import Slots
from seawall.serve.desk import DeskProcess
from seawall.serve.heap import tune_malloc
from seawall.serve.listeners import (
    Address,
    addresses,
    bind,
    bound_address,
    exposed,
    settings_of,
)

log = logging.getLogger("seawall.serve")

SIGNALS = {signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGUSR1}
KILL_GRACE_S = 5.0  # after drain_s, a worker that still runs is killed
RESTART_BACKOFF_S = 1.0  # a worker dying this soon after its start is restarted after a pause


@dataclass
class Generation:
    """The workers started from one configuration."""

    config: Config
    engine: Engine
    workers: dict[int, float] = field(default_factory=dict)  # pid -> start time


def workers_wanted(config: Config) -> int:
    if config.serve.workers:
        return config.serve.workers
    return len(os.sched_getaffinity(0)) or 1


def prepare(config: Config) -> Engine:
    """Everything that can fail loudly, checked before a worker is started.

    The Engine's campaign detector talks to the tracker process (started separately), so
    every worker sees the same campaigns.
    """
    validate(config)  # load_config did; a Config changed in code is checked again
    addresses(config)
    for warning in exposed(config):
        log.warning("WARNING: %s", warning)
    tracker = None
    if config.detectors.campaigns.enabled:
        tracker = campaign_tracker.client(config)
    return build_engine(config, tracker=tracker)


class Supervisor:
    """Runs ``seawall serve`` until SIGTERM.

    ``load`` reads the configuration; it is called again on SIGHUP.  Nothing it starts
    outlives it: a start that fails stops what it had started before the error goes on, and
    every child gets SIGTERM from the kernel when the supervisor dies (``lifecycle.py``).
    """

    def __init__(self, load: Callable[[], Config]) -> None:
        self.load = load
        self.sockets: dict[Address, socket.socket] = {}
        self.current: Generation | None = None
        self.retiring: dict[int, float] = {}  # pid -> deadline of old-generation workers
        self.balance = Slots()
        self.slot_of: dict[int, int] = {}  # every live worker's slot, old generations' too
        self.tracker: int | None = None  # the campaign tracker's pid
        self.tracker_started = 0.0
        self.tracker_due: float | None = None  # when to start a tracker that died again
        self.accounting = AccountingProcess()  # detail files and the RADIUS listener
        self.desk = DeskProcess()  # the zombie desk: evidence into cases

    def run(self) -> int:
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        try:
            config = self.load()
            tuned = tune_malloc(config.serve.malloc_arena_max, config.serve.malloc_mmap_threshold)
            if config.serve.metrics.enabled:  # before any worker: /metrics sums their files
                prepare_dir(metrics_dir(config))
            engine = prepare(config)
            self.current = Generation(config, engine)
            self._start_tracker(config)
            self.accounting.start(config)
            self.desk.start(config)
            for name, sock in self._bind(config).items():
                log.info("%s listening on %s", name, bound_address(sock))
            for _ in range(workers_wanted(config)):
                self._spawn(self.current)
            log.info(
                "seawall serve: %d workers, state in %s, malloc %s",
                len(self.current.workers),
                describe_state(config),
                " ".join(f"{k}={v}" for k, v in tuned.items()) or "as glibc's defaults",
            )
            return self._loop()
        except BaseException:
            self._abort()
            raise

    def _abort(self) -> None:
        """Stop every process started and close the sockets: a start that failed (a port in
        use, a tracker that did not start) or a bug in the loop leaves nothing behind."""
        workers = [*self.retiring]
        if self.current is not None:
            workers += self.current.workers
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in workers:
            lifecycle.stop(pid, KILL_GRACE_S)
        self._stop_tracker()
        self.accounting.stop()
        self.desk.stop()
        for sock in self.sockets.values():
            sock.close()
        self.sockets = {}
        if self.current is not None:
            with contextlib.suppress(Exception):
                self.current.engine.close()

    def _start_tracker(self, config: Config) -> None:
        """Start the tracker and wait until it serves; TrackerError if it does not (the
        process, if still there, is ``self.tracker`` for the caller to stop or reap)."""
        if config.detectors.campaigns.enabled:
            self.tracker = campaign_tracker.spawn(config)
            self.tracker_started = time.monotonic()
            campaign_tracker.wait_ready(config, pid=self.tracker)
            log.info("campaign tracker %d started", self.tracker)

    def _restart_tracker(self, config: Config) -> None:
        """Start the tracker while serving: a failure is logged, and a tracker that exited
        is started again after a pause (``_reap``)."""
        try:
            self._start_tracker(config)
        except SeawallError as exc:
            log.error("campaign tracker: %s", exc)

    def _stop_tracker(self) -> None:
        """Stop the tracker (it saves its state) and wait for it."""
        self.tracker_due = None
        if self.tracker is None:
            return
        pid, self.tracker = self.tracker, None
        lifecycle.stop(pid, campaign_tracker.STOP_GRACE_S)

    def _bind(self, config: Config) -> dict[str, socket.socket]:
        wanted = addresses(config)
        fresh: dict[Address, socket.socket] = {}
        try:
            for name, address in wanted.items():
                sock = self.sockets.get(address)
                group = settings_of(config, name).socket_group
                fresh[address] = sock if sock is not None else bind(address, group=group)
        except BaseException:
            for address, sock in fresh.items():
                if address not in self.sockets:
                    sock.close()
            raise
        for address, sock in self.sockets.items():
            if address not in fresh:
                sock.close()
        self.sockets = fresh
        return {name: fresh[address] for name, address in wanted.items()}

    def _spawn(self, gen: Generation) -> None:
        named = {name: self.sockets[address] for name, address in addresses(gen.config).items()}
        slot = self.balance.claim(set(self.slot_of.values()))
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 70
            try:
                lifecycle.die_with_parent(parent)
                for sig in SIGNALS:
                    signal.signal(sig, signal.SIG_DFL)
                # SIGUSR1 stays blocked until the worker's loop handles it: one sent before
                # then would kill the worker, and is taken then instead.
                signal.pthread_sigmask(signal.SIG_SETMASK, {signal.SIGUSR1})
                fair = self.balance.fair(slot)
                code = worker.run(gen.config, gen.engine, gen.engine.classifier, named, fair)
            except BaseException:
                log.exception("worker %d failed", os.getpid())
            finally:
                logging.shutdown()
                os._exit(code)
        gen.workers[pid] = time.monotonic()
        self.slot_of[pid] = slot

    def _loop(self) -> int:
        assert self.current is not None
        stopping_since: float | None = None
        while True:
            info = signal.sigtimedwait(SIGNALS, 0.5)
            signo = info.si_signo if info is not None else None
            if signo in (signal.SIGTERM, signal.SIGINT) and stopping_since is None:
                log.info("stopping: draining %d workers", len(self.current.workers))
                stopping_since = time.monotonic()
                self._signal_all(signal.SIGTERM)
            elif signo == signal.SIGHUP and stopping_since is None:
                self._reload()
            elif signo == signal.SIGUSR1:
                self._reopen_logs()
            self._reap(restart=stopping_since is None)
            due = self.tracker_due
            if due is not None and time.monotonic() >= due and stopping_since is None:
                self.tracker_due = None
                self._restart_tracker(self.current.config)
            if stopping_since is None:
                self.accounting.tick(self.current.config)
                self.desk.tick(self.current.config)
            if stopping_since is not None:
                if not self.current.workers and not self.retiring:
                    self._stop_tracker()
                    self.accounting.stop()
                    self.desk.stop()
                    log.info("stopped")
                    return 0
                if (
                    time.monotonic() - stopping_since
                    > self.current.config.serve.drain_s + KILL_GRACE_S
                ):
                    self._signal_all(signal.SIGKILL)
            self._kill_overdue()

    def _reopen_logs(self) -> None:
        """SIGUSR1: reopen the log file here, and pass the signal on to every child (each
        holds the file open on its own)."""
        logs.reopen()
        children = [*self.current.workers, *self.retiring] if self.current else []
        if self.tracker is not None:
            children.append(self.tracker)
        children += self.accounting.children()
        children += self.desk.children()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGUSR1)

    def _signal_all(self, signo: int) -> None:
        assert self.current is not None
        for pid in [*self.current.workers, *self.retiring]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signo)

    def _reap(self, *, restart: bool) -> None:
        assert self.current is not None
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.tracker:
                clean = not restart and os.waitstatus_to_exitcode(status) == 0
                level = logging.INFO if clean else logging.ERROR  # stopped with the rest
                log.log(level, "campaign tracker %d exited (%s)", pid, _describe(status))
                self.tracker = None
                if restart:  # by the loop, after a pause if it died young
                    young = time.monotonic() - self.tracker_started < RESTART_BACKOFF_S
                    self.tracker_due = time.monotonic() + (RESTART_BACKOFF_S if young else 0)
                continue
            if self.accounting.reaped(pid, status, restart=restart):
                continue
            if self.desk.reaped(pid, status, restart=restart):
                continue
            slot = self.slot_of.pop(pid, None)
            if slot is not None:
                self.balance.free(slot)
            mark_dead(pid)  # its live gauges leave the /metrics sums, its counters stay
            if self.retiring.pop(pid, None) is not None:
                continue
            started = self.current.workers.pop(pid, None)
            if started is None:
                continue
            if os.waitstatus_to_exitcode(status) != 0 or restart:
                log.error("worker %d exited (%s)", pid, _describe(status))
            if restart:
                if time.monotonic() - started < RESTART_BACKOFF_S:
                    time.sleep(RESTART_BACKOFF_S)
                self._spawn(self.current)
                log.info("worker restarted")

    def _reload(self) -> None:
        assert self.current is not None
        log.info("SIGHUP: reloading the configuration")
        engine: Engine | None = None
        try:
            config = self.load()
            engine = prepare(config)
            self._bind(config)
        except Exception as exc:  # whatever it is, the running configuration goes on
            if engine is not None:
                with contextlib.suppress(Exception):
                    engine.close()
            if isinstance(exc, SeawallError):
                log.error("reload failed, keeping the running configuration: %s", exc)
            else:
                log.exception("reload failed, keeping the running configuration")
            return
        old = self.current
        self.current = Generation(config, engine)
        if config.detectors.campaigns != old.config.detectors.campaigns or (
            (config.state, config.state_dir) != (old.config.state, old.config.state_dir)
        ):
            self._stop_tracker()
            self._restart_tracker(config)
        self.accounting.reload(old.config, config)
        self.desk.reload(old.config, config)
        for _ in range(workers_wanted(config)):
            self._spawn(self.current)
        deadline = time.monotonic() + old.config.serve.drain_s + KILL_GRACE_S
        for pid in old.workers:
            self.retiring[pid] = deadline
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        old.engine.close()
        log.info(
            "reloaded: %d new workers, %d draining", len(self.current.workers), len(old.workers)
        )

    def _kill_overdue(self) -> None:
        now = time.monotonic()
        for pid, deadline in list(self.retiring.items()):
            if now > deadline:
                log.warning("worker %d did not drain in time; killing it", pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    self.retiring.pop(pid, None)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"status {os.waitstatus_to_exitcode(status)}"
