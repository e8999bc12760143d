"""One worker process: an event loop serving every enabled front end on inherited sockets.

SIGTERM stops accepting, lets the messages being scanned finish (up to
``serve.drain_s``), then closes what is left: a connection closed in the middle
of a message is tempfailed by the MTA and retried, never lost.  The kernel sends
SIGTERM when the supervisor dies (``lifecycle.die_with_parent``), so a worker never
goes on serving an old configuration on its own.
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
from typing import TYPE_CHECKING, Any

import uvicorn
import uvloop
from starlette.routing import BaseRoute

from seawall import logs
from seawall.frontends.http import build_app
from seawall.frontends.milter.server import serve_milter_connection
from seawall.frontends.policy.server import serve_policy_connection
from seawall.frontends.spamd.server import serve_spamd_connection
from seawall.metrics.prom import active_dir
from seawall.metrics.recorder import TaggedApp, open_recorder, tagged
from seawall.metrics.routes import metrics_routes
from seawall.serve.balance import Fairness, accept_forever
from seawall.serve.service import Service
from seawall.store import open_store

if TYPE_CHECKING:
    from seawall.classifier import Classifier
    from seawall.config import Config
    from seawall.engine import Engine

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

    def __init__(self, limit: int, fair: Fairness, handler: Handler) -> None:
        self.slots = asyncio.Semaphore(limit)
        self.tasks: set[asyncio.Task[None]] = set()
        self.fair = fair
        self.handler = handler

    def accept(self, conn: socket.socket) -> None:
        task = asyncio.ensure_future(self._serve(conn))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _serve(self, conn: socket.socket) -> None:
        try:
            async with self.slots:
                reader, writer = await asyncio.open_connection(sock=conn)
                try:
                    await self.handler(reader, writer)
                finally:
                    writer.close()
        except OSError as exc:
            log.debug("connection lost before it was served: %s", exc)
            conn.close()
        finally:
            self.fair.closed()


def run(
    config: Config,
    engine: Engine,
    classifier: Classifier | None,
    sockets: dict[str, socket.socket],
    fair: Fairness,
) -> int:
    """The body of a forked worker; returns its exit status."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_main(config, engine, classifier, sockets, fair))


async def _main(
    config: Config,
    engine: Engine,
    classifier: Classifier | None,
    sockets: dict[str, socket.socket],
    fair: Fairness,
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    supervisor = os.getppid()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # The supervisor handles SIGHUP by replacing the workers; a worker ignores it.
    loop.add_signal_handler(signal.SIGHUP, lambda: None)
    # SIGUSR1 reopens the log file (logrotate); blocked since the fork, so one sent
    # meanwhile is taken now.
    loop.add_signal_handler(signal.SIGUSR1, logs.reopen)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
    store = open_store(config)
    service = Service(engine, config, classifier=classifier, store=store)
    recorder = open_recorder(config)  # the verdict history and the Prometheus counters
    service.observers.append(recorder.observe)
    recorder.start()
    serve = config.serve
    handlers: dict[str, Handler] = {
        "milter": lambda r, w: serve_milter_connection(r, w, service, serve.milter),
        "spamd": lambda r, w: serve_spamd_connection(r, w, service, serve.spamd),
        "policy": lambda r, w: serve_policy_connection(r, w, store, config),
    }
    handlers = {name: tagged(name, handler) for name, handler in handlers.items()}
    acceptors: list[asyncio.Task[None]] = []
    connections: list[_Connections] = []
    http: tuple[_Uvicorn, asyncio.Task[None]] | None = None
    for name, sock in sockets.items():
        if name == "http":
            http = await _start_http(service, sock, fair, acceptors)
            continue
        bounded = _Connections(serve.max_connections, fair, handlers[name])
        connections.append(bounded)
        acceptors.append(asyncio.ensure_future(accept_forever(sock, fair, bounded.accept)))
    log.info("worker %d serving %s", os.getpid(), ", ".join(sorted(sockets)))
    await stop.wait()
    if os.getppid() != supervisor:  # SIGTERM from the kernel: the supervisor died
        log.warning("worker %d: supervisor %d is gone; draining", os.getpid(), supervisor)
    else:
        log.info("worker %d draining", os.getpid())
    for task in acceptors:
        task.cancel()
    if http is not None:
        http[0].should_exit = True
    await _drain(service, connections, serve.drain_s)
    if http is not None:
        await http[1]
    await service.drain()
    await recorder.close()
    await engine.flush()  # the reputation counts still pending
    await store.close()
    log.info("worker %d stopped", os.getpid())
    return 0


async def _start_http(
    service: Service, sock: socket.socket, fair: Fairness, acceptors: list[asyncio.Task[None]]
) -> tuple[_Uvicorn, asyncio.Task[None]]:
    """uvicorn with no listener of its own: connections come from the fair accept loop."""
    serve = service.config.serve
    config = uvicorn.Config(
        TaggedApp(
            build_app(
                service,
                allow_learn=serve.http.allow_learn,
                authserv_id=serve.milter.authserv_id,
                extra_routes=_extra_routes(service),
            )
        ),
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
    server = _Uvicorn(config)
    task = asyncio.ensure_future(server.serve(sockets=[]))
    while not server.started:
        if task.done():
            task.result()  # raises what stopped it
        await asyncio.sleep(0.01)
    loop = asyncio.get_running_loop()
    protocol_class: Any = config.http_protocol_class

    def protocol() -> asyncio.Protocol:
        proto: asyncio.Protocol = protocol_class(
            config=config, server_state=server.server_state, app_state=server.lifespan.state
        )
        lost = proto.connection_lost

        def connection_lost(exc: Exception | None) -> None:
            fair.closed()
            lost(exc)

        proto.connection_lost = connection_lost  # type: ignore[method-assign]
        return proto

    def accept(conn: socket.socket) -> None:
        future = asyncio.ensure_future(loop.connect_accepted_socket(protocol, conn))

        def failed(done: asyncio.Future[Any]) -> None:
            if not done.cancelled() and done.exception() is not None:
                fair.closed()
                conn.close()

        future.add_done_callback(failed)

    acceptors.append(asyncio.ensure_future(accept_forever(sock, fair, accept)))
    return server, task


def _extra_routes(service: Service) -> list[BaseRoute]:
    """The pages and APIs served beside the scanning protocol on the HTTP listener, each
    built by the layer that owns it."""
    from seawall.dashboard import dashboard_routes
    from seawall.serve.tracker import client as tracker_client

    routes: list[BaseRoute] = []
    routes += dashboard_routes(service, tracker=tracker_client(service.config))
    routes += metrics_routes(service.config, active_dir(), tracker=tracker_client(service.config))
    return routes


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
