"""The desk process of ``seawall serve``: the case engine, in exactly one process.

It takes the evidence the workers push (their verdicts on mail from the ISP's networks,
the policy service's rate hits), attributes it to accounts by RADIUS accounting, opens and
reopens cases, runs the remedies, and reads the abuse Maildir (``[zombies]
abuse_maildir``).  Embedded there is one per host; on a shared (Redis) state each node's
desk process is a candidate, and only the holder of a lease in the store (``claim`` on
``LEASE_KEY``, renewed every third of ``desk_lease_s``) works: when its node dies the lease
expires and another node's desk takes over where the inbox stands.  The process dies with
its parent (``lifecycle.py``) and the supervisor restarts it when it exits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
import uuid

from seawall import logs
from seawall.config import Config, state_url
from seawall.errors import SeawallError, StoreError
from seawall.quietlog import QuietLog
from seawall.serve import lifecycle
from seawall.store import open_store
from seawall.zombies.cases import open_desk
from seawall.zombies.engine import CaseEngine

log = logging.getLogger("seawall.zombies")
quiet = QuietLog(log)

LEASE_KEY = "zombies:desk"
STOP_GRACE_S = 10.0
RESTART_BACKOFF_S = 1.0


def wanted(config: Config) -> bool:
    """The desk runs when zombies are on and there is something to find them in."""
    zombies = config.zombies
    return zombies.enabled and (bool(config.isp.networks) or bool(zombies.abuse_maildir))


class Lease:
    """The desk's lease on a shared state: ``holds()`` is True while this process holds it
    (claimed or renewed every third of ``desk_lease_s``); ``holder`` is who held it last."""

    def __init__(self, config: Config) -> None:
        self.store = open_store(config)
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}".encode()
        self.ttl = config.zombies.desk_lease_s
        self.until = 0.0
        self.held = False
        self.holder = ""

    async def holds(self) -> bool:
        now = time.monotonic()
        if now < self.until:
            return self.held
        try:
            value = await self.store.claim(LEASE_KEY, self.token, ttl_s=self.ttl)
        except StoreError as exc:
            quiet.warning("lease", "desk lease: %s", exc)
            self.until, self.held = now + 1.0, False
            return False
        held = value == self.token
        if held != self.held:
            log.info("desk %s the lease", "holds" if held else "does not hold")
        self.holder = value.decode(errors="replace")
        self.until, self.held = now + self.ttl / 3, held
        return held

    async def close(self) -> None:
        await self.store.close()


async def serve(config: Config, stop: asyncio.Event) -> None:
    """Run the case engine until ``stop`` is set."""
    desk, accounts = open_desk(config, rebuild=True)  # the tables of earlier releases
    lease = Lease(config) if state_url(config) is not None else None
    log.info("zombie desk %d serving", os.getpid())
    try:
        await CaseEngine(config, desk).run(stop, lease.holds if lease is not None else None)
    finally:
        await desk.store.close()
        await accounts.close()
        if lease is not None:
            await lease.close()


def run(config: Config) -> int:
    """The body of the desk process."""
    import uvloop

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: None)
        loop.add_signal_handler(signal.SIGUSR1, logs.reopen)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
        await serve(config, stop)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
    return 0


class DeskProcess:
    """The supervisor's handle on the desk process: start, stop, reap, restart."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.started = 0.0
        self.due: float | None = None  # when to start again one that exited

    def start(self, config: Config) -> None:
        """Fork the desk when the configuration wants it."""
        if not wanted(config):
            return
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                lifecycle.die_with_parent(parent)
                for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                    signal.signal(sig, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_SETMASK, {signal.SIGUSR1})
                code = run(config)
            except BaseException:
                log.exception("zombie desk failed")
            finally:
                logging.shutdown()
                os._exit(code)
        self.pid, self.started, self.due = pid, time.monotonic(), None
        log.info("zombie desk %d started", pid)

    def stop(self) -> None:
        self.due = None
        if self.pid is not None:
            pid, self.pid = self.pid, None
            lifecycle.stop(pid, STOP_GRACE_S)

    def reaped(self, pid: int, status: int, *, restart: bool) -> bool:
        """Whether ``pid`` was the desk (then restarted after a pause)."""
        if pid != self.pid:
            return False
        self.pid = None
        clean = not restart and os.waitstatus_to_exitcode(status) == 0
        log.log(logging.INFO if clean else logging.ERROR, "zombie desk %d exited", pid)
        if restart:
            young = time.monotonic() - self.started < RESTART_BACKOFF_S
            self.due = time.monotonic() + (RESTART_BACKOFF_S if young else 0)
        return True

    def tick(self, config: Config) -> None:
        """Start again a desk that exited, once its pause is over."""
        if self.due is not None and time.monotonic() >= self.due:
            self.due = None
            try:
                self.start(config)
            except (SeawallError, OSError) as exc:
                log.error("zombie desk: %s", exc)
                self.due = time.monotonic() + 10 * RESTART_BACKOFF_S

    def reload(self, old: Config, new: Config) -> None:
        """SIGHUP: a new desk on the new configuration (the inbox keeps what waits)."""
        if (new.zombies, new.isp, new.accounting, new.remediation, new.sharing, new.state) != (
            old.zombies,
            old.isp,
            old.accounting,
            old.remediation,
            old.sharing,
            old.state,
        ) or new.state_dir != old.state_dir:
            self.stop()
            self.due = time.monotonic()
            self.tick(new)

    def children(self) -> list[int]:
        return [] if self.pid is None else [self.pid]
