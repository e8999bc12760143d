"""One worker process: an event loop serving every enabled front end on inherited sockets.

SIGTERM stops accepting, lets the messages being scanned finish (up to
``serve.drain_s``), then closes what is left: a connection closed in the middle
of a message is tempfailed by the MTA and retried, never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

import uvicorn
import uvloop

from seawall.frontends.http import build_app
from seawall.frontends.milter.server import serve_milter_connection
from seawall.frontends.policy.server import serve_policy_connection
from seawall.frontends.spamd.server import serve_spamd_connection
from seawall.serve.service import Service
from seawall.store import open_store

if TYPE_CHECKING:
    from seawall.classifier import Classifier
    from seawall.config import Config
    from seawall.engine import Engine
    from seawall.store import Store

log = logging.getLogger("seawall.worker")
logging.getLogger("uvicorn.error").setLevel(logging.WARNING)  # its start-up chatter

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the worker owns SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _Connections:
    """Bounds open connections per listener; the rest wait unread (TCP backpressure)."""

    def __init__(self, limit: int) -> None:
        self.slots = asyncio.Semaphore(limit)
        self.tasks: set[asyncio.Task[None]] = set()

    def wrap(self, handler: Handler) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self.tasks.add(task)
            try:
                async with self.slots:
                    await handler(reader, writer)
            finally:
                self.tasks.discard(task)
                writer.close()

        return handle


def run(
    config: Config, engine: Engine, classifier: Classifier | None, sockets: dict[str, socket.socket]
) -> int:
    """The body of a forked worker; returns its exit status."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_main(config, engine, classifier, sockets))


async def _main(
    config: Config,
    engine: Engine,
    classifier: Classifier | None,
    sockets: dict[str, socket.socket],
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # The supervisor handles SIGHUP by replacing the workers; a worker ignores it.
    loop.add_signal_handler(signal.SIGHUP, lambda: None)
    store = open_store(config)
    service = Service(engine, config, classifier=classifier, store=store)
    servers, connections, http = await _listen(config, service, store, sockets)
    log.info("worker %d serving %s", os.getpid(), ", ".join(sorted(sockets)))
    await stop.wait()
    log.info("worker %d draining", os.getpid())
    for server in servers:
        server.close()
    if http is not None:
        http[0].should_exit = True
    await _drain(service, connections, config.serve.drain_s)
    if http is not None:
        await http[1]
    await service.drain()
    await store.close()
    log.info("worker %d stopped", os.getpid())
    return 0


async def _listen(
    config: Config,
    service: Service,
    store: Store,
    sockets: dict[str, socket.socket],
) -> tuple[list[asyncio.Server], list[_Connections], tuple[_Uvicorn, asyncio.Task[None]] | None]:
    serve = config.serve
    handlers: dict[str, Handler] = {
        "milter": lambda r, w: serve_milter_connection(r, w, service, serve.milter),
        "spamd": lambda r, w: serve_spamd_connection(r, w, service, serve.spamd),
        "policy": lambda r, w: serve_policy_connection(r, w, store, config),
    }
    servers: list[asyncio.Server] = []
    connections: list[_Connections] = []
    http = None
    for name, sock in sockets.items():
        if name == "http":
            server = _Uvicorn(
                uvicorn.Config(
                    build_app(service),
                    http="httptools",
                    loop="none",
                    lifespan="off",
                    access_log=False,
                    log_config=None,
                    server_header=False,
                    timeout_keep_alive=int(serve.http.keepalive_s),
                    limit_concurrency=serve.max_connections,
                    timeout_graceful_shutdown=int(serve.drain_s),
                )
            )
            http = (server, asyncio.ensure_future(server.serve(sockets=[sock])))
            continue
        bounded = _Connections(serve.max_connections)
        connections.append(bounded)
        servers.append(await asyncio.start_server(bounded.wrap(handlers[name]), sock=sock))
    return servers, connections, http


async def _drain(service: Service, connections: list[_Connections], drain_s: float) -> None:
    """Wait for the messages being scanned, then close the connections left open."""
    deadline = time.monotonic() + drain_s
    while service.stats.in_flight and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.1)  # let the last replies reach their sockets
    tasks = [task for bounded in connections for task in bounded.tasks]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
