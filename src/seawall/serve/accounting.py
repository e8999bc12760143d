"""The accounting process of ``seawall serve``: the detail files followed and the RFC 2866
listener, in one process beside the workers, storing into the state everyone reads.

It runs when ``[accounting] files`` names a file, or when the listener has an address and
a secret.  The listener's UDP socket is bound by the supervisor before the fork, so a port
in use stops ``seawall serve`` at its start.  Records that the store refuses (Redis down)
are kept and tried again every poll; the tailers pause while more than ``MAX_PENDING`` wait,
and the listener does not answer what it could not store, so nothing is lost.  The process
dies with its parent (``lifecycle.py``), and the supervisor restarts it when it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Sequence

from seawall import logs
from seawall.accounting import Record, Sessions, open_sessions
from seawall.accounting.clients import nas_secrets, read_secret
from seawall.accounting.detail import Problem
from seawall.accounting.listener import AccountingProtocol
from seawall.accounting.tail import DetailTail
from seawall.addresses import parse_listen
from seawall.config import AccountingSettings, Config
from seawall.errors import ConfigError, SeawallError
from seawall.quietlog import QuietLog
from seawall.serve import lifecycle

log = logging.getLogger("seawall.accounting")
quiet = QuietLog(log)

STOP_GRACE_S = 10.0
RESTART_BACKOFF_S = 1.0
BATCH = 1000  # records stored in one call
MAX_PENDING = 100_000  # records waiting for the store before the tailers pause


def secret_of(settings: AccountingSettings) -> bytes:
    """The listener's shared secret: ``secret``, else the first line of ``secret_file``;
    b"" when neither is set.  ConfigError when the file cannot be read."""
    return read_secret(settings.secret, settings.secret_file, "accounting")


def listening(settings: AccountingSettings) -> bool:
    """Whether the listener runs: an address, and a secret to check requests with."""
    return bool(settings.listen and (settings.secret or settings.secret_file or settings.clients))


def wanted(config: Config) -> bool:
    settings = config.accounting
    return bool(settings.files) or listening(settings)


def bind(settings: AccountingSettings) -> socket.socket | None:
    """The listener's UDP socket, bound; None when the listener is off.  ConfigError for
    an address that does not parse or cannot be bound."""
    if not listening(settings):
        return None
    address = parse_listen(settings.listen, "accounting.listen")
    if address.path:
        raise ConfigError("accounting.listen: a UDP host:port, not a unix socket")
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((address.host, address.port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"accounting.listen {settings.listen}: {exc}") from None
    return sock


class Feeder:
    """Records from the tailers into the store, in batches, kept while the store fails."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions
        self.pending: list[Record] = []
        self.stored = 0

    async def flush(self) -> None:
        while self.pending:
            batch = self.pending[:BATCH]
            try:
                await self.sessions.add(batch)
            except SeawallError as exc:
                quiet.warning("store", "accounting: %d records wait: %s", len(self.pending), exc)
                return
            del self.pending[: len(batch)]
            self.stored += len(batch)

    def take(self, items: Sequence[Record | Problem]) -> None:
        for item in items:
            if isinstance(item, Problem):
                quiet.warning(f"problem:{item.where}", "accounting: skipped a record: %s", item)
            else:
                self.pending.append(item)


async def serve(config: Config, sock: socket.socket | None, stop: asyncio.Event) -> None:
    """Follow the files and answer the listener until ``stop`` is set."""
    settings = config.accounting
    sessions = open_sessions(config, timeout_s=2.0)
    feeder = Feeder(sessions)
    tails = [DetailTail(path) for path in settings.files]
    transport = None
    try:
        if sock is not None:
            loop = asyncio.get_running_loop()
            secrets = nas_secrets(settings)
            transport, _ = await loop.create_datagram_endpoint(
                lambda: AccountingProtocol(secrets, sessions.add), sock=sock
            )
            log.info("accounting listener on %s (UDP)", settings.listen)
        while not stop.is_set():
            if len(feeder.pending) < MAX_PENDING:
                for tail in tails:
                    feeder.take(tail.poll())
            await feeder.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.poll_s)
        await feeder.flush()
    finally:
        if transport is not None:
            transport.close()
        for tail in tails:
            tail.close()
        await sessions.close()


def run(config: Config, sock: socket.socket | None) -> int:
    """The body of the accounting process."""
    import uvloop

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: None)
        loop.add_signal_handler(signal.SIGUSR1, logs.reopen)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
        await serve(config, sock, stop)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
    return 0


class AccountingProcess:
    """The supervisor's handle on the accounting process: start, stop, reap, restart."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.started = 0.0
        self.due: float | None = None  # when to start again one that exited

    def start(self, config: Config) -> None:
        """Fork the process when the configuration wants it; ConfigError when its listener
        cannot be bound (or its secret read)."""
        if not wanted(config):
            return
        nas_secrets(config.accounting)  # loud at the start: an unreadable secret file
        sock = bind(config.accounting)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                lifecycle.die_with_parent(parent)
                for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                    signal.signal(sig, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_SETMASK, {signal.SIGUSR1})
                code = run(config, sock)
            except BaseException:
                log.exception("accounting process failed")
            finally:
                logging.shutdown()
                os._exit(code)
        if sock is not None:
            sock.close()
        self.pid, self.started, self.due = pid, time.monotonic(), None
        log.info("accounting process %d started", pid)

    def stop(self) -> None:
        self.due = None
        if self.pid is not None:
            pid, self.pid = self.pid, None
            lifecycle.stop(pid, STOP_GRACE_S)

    def reaped(self, pid: int, status: int, *, restart: bool) -> bool:
        """Whether ``pid`` was the accounting process (then restarted later if wanted)."""
        if pid != self.pid:
            return False
        self.pid = None
        clean = not restart and os.waitstatus_to_exitcode(status) == 0
        log.log(logging.INFO if clean else logging.ERROR, "accounting process %d exited", pid)
        if restart:
            young = time.monotonic() - self.started < RESTART_BACKOFF_S
            self.due = time.monotonic() + (RESTART_BACKOFF_S if young else 0)
        return True

    def tick(self, config: Config) -> None:
        """Start again one that exited, once its pause is over (errors logged)."""
        if self.due is not None and time.monotonic() >= self.due:
            self.due = None
            try:
                self.start(config)
            except SeawallError as exc:
                log.error("accounting process: %s", exc)
                self.due = time.monotonic() + 10 * RESTART_BACKOFF_S

    def reload(self, old: Config, new: Config) -> None:
        """SIGHUP: restart it when its settings or the state changed."""
        if (new.accounting, new.state, new.state_dir) != (
            old.accounting,
            old.state,
            old.state_dir,
        ):
            self.stop()
            self.tick_now(new)

    def tick_now(self, config: Config) -> None:
        self.due = time.monotonic()
        self.tick(config)

    def children(self) -> list[int]:
        return [] if self.pid is None else [self.pid]
