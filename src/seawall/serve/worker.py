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
import gc
import logging
import os
import signal
import socket
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import uvicorn
import uvloop
from starlette.routing import BaseRoute

from seawall import logs
from seawall.addresses import Networks
from seawall.frontends.access import LearnAccess
from seawall.frontends.budget import Budget
from seawall.frontends.connections import Conn, Table
from seawall.frontends.http import build_app
from seawall.frontends.http.protocol import REFUSED, GuardedHttpProtocol, HttpLimits
from seawall.frontends.milter.server import serve_milter_connection
from seawall.frontends.policy.server import serve_policy_connection
from seawall.frontends.spamd.codec import ExitCode, encode_error
from seawall.frontends.spamd.server import serve_spamd_connection
from seawall.metrics.prom import active_dir
from seawall.metrics.recorder import TaggedApp, open_recorder, tagged
from seawall.metrics.routes import metrics_routes
from seawall.serve.accept import (
    REFUSE_S,
    Gate,
    StreamHandler,
    Streams,
    client_of,
    raise_open_files,
    refuse_with,
    sweep_forever,
)
from seawall.serve.balance import Fairness, accept_forever
from seawall.serve.heap import trim_forever, tune_malloc
from seawall.serve.listeners import allowed
from seawall.serve.service import Service
from seawall.store import open_store
from seawall.users import Users

if TYPE_CHECKING:
    from seawall.classifier import Classifier
    from seawall.config import Config
    from seawall.engine import Engine

log = logging.getLogger("seawall.worker")
Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter
logging.getLogger("uvicorn.error").setLevel(logging.WARNING)  # its start-up chatter

# spamd's answer when the worker is full: spamc -x exits 75 and the MTA retries.
_SPAMD_FULL = encode_error(ExitCode.EX_TEMPFAIL, "too many connections, try again later")


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the worker owns SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def run(
    config: Config,
    engine: Engine,
    classifier: Classifier | None,
    sockets: dict[str, socket.socket],
    fair: Fairness,
) -> int:
    """The body of a forked worker; returns its exit status."""
    gc.freeze()  # the engine loaded before the fork: no collection walks it again
    tune_malloc(config.serve.malloc_arena_max, config.serve.malloc_mmap_threshold)
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
    budget = Budget(serve.max_bytes_in_flight)
    users = Users(config.users)
    tell = LearnAccess(
        serve.spamd.allow_tell,
        Networks(serve.spamd.tell_networks),
        users,
        setting="serve.spamd.allow_tell",
    )

    async def milter(r: Reader, w: Writer, conn: Conn | None, refuse: bool) -> None:
        await serve_milter_connection(
            r,
            w,
            service,
            serve.milter,
            conn=conn,
            header_timeout_s=serve.header_timeout_s,
            budget=budget,
            refuse=refuse,
        )

    async def spamd(r: Reader, w: Writer, conn: Conn | None, refuse: bool) -> None:
        if refuse:
            await refuse_with(r, w, _SPAMD_FULL)
            return
        await serve_spamd_connection(
            r,
            w,
            service,
            serve.spamd,
            timeout_s=serve.spamd.idle_timeout_s,
            conn=conn,
            header_timeout_s=serve.header_timeout_s,
            body_timeout_s=serve.body_timeout_s,
            tell_access=tell,
            budget=budget,
        )

    async def policy(r: Reader, w: Writer, conn: Conn | None, refuse: bool) -> None:
        await serve_policy_connection(r, w, store, config, conn=conn, refuse=refuse)

    handlers: dict[str, StreamHandler] = {"milter": milter, "spamd": spamd, "policy": policy}
    handlers = {name: _tagged(name, handler) for name, handler in handlers.items()}
    raise_open_files()
    acceptors: list[asyncio.Task[None]] = []
    connections: list[Streams] = []
    tables: dict[str, Table] = {}
    http: tuple[_Uvicorn, asyncio.Task[None]] | None = None
    for name, sock in sockets.items():
        table = Table(serve.max_connections, serve.max_connections_per_client)
        tables[name] = table
        gate = Gate(name, table, allowed(config, name), fair)
        if name == "http":
            http = await _start_http(service, sock, gate, acceptors, budget, users)
            continue
        streams = Streams(gate, handlers[name])
        connections.append(streams)
        acceptors.append(asyncio.ensure_future(accept_forever(sock, fair, streams.accept)))
    acceptors.append(asyncio.ensure_future(sweep_forever(list(tables.values()))))
    acceptors.append(asyncio.ensure_future(trim_forever(serve.heap_trim_s)))
    service.connection_stats = lambda: {name: t.stats() for name, t in tables.items()}
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


def _tagged(name: str, handler: StreamHandler) -> StreamHandler:
    """``handler`` with its front end named for the metrics (``tagged``)."""

    async def serve(r: Reader, w: Writer, conn: Conn | None, refuse: bool) -> None:
        await tagged(name, lambda r2, w2: handler(r2, w2, conn, refuse))(r, w)

    return serve


async def _start_http(
    service: Service,
    sock: socket.socket,
    gate: Gate,
    acceptors: list[asyncio.Task[None]],
    budget: Budget,
    users: Users,
) -> tuple[_Uvicorn, asyncio.Task[None]]:
    """uvicorn with no listener of its own: connections come from the fair accept loop,
    through the gate, each served by uvicorn's protocol under Seawall's limits."""
    serve = service.config.serve
    learn = LearnAccess(
        serve.http.allow_learn,
        Networks(serve.http.learn_networks),
        users,
        setting="serve.http.allow_learn",
    )
    config = uvicorn.Config(
        TaggedApp(
            build_app(
                service,
                allow_learn=serve.http.allow_learn,
                authserv_id=serve.milter.authserv_id,
                extra_routes=_extra_routes(service),
                learn_access=learn,
                budget=budget,
            )
        ),
        http="httptools",
        loop="none",
        lifespan="off",
        access_log=False,
        log_config=None,
        server_header=False,
        # The client is the socket's peer: uvicorn would otherwise take X-Forwarded-For from
        # any local process, dodging learn_networks and the login limit per address (the
        # garden page reads the header itself, from [trusted] proxies only).
        proxy_headers=False,
        timeout_keep_alive=int(serve.http.keepalive_s),
        limit_concurrency=None,  # the gate's table caps connections, making room first
        timeout_graceful_shutdown=int(serve.drain_s),
    )
    server = _Uvicorn(config)
    task = asyncio.ensure_future(server.serve(sockets=[]))
    while not server.started:
        if task.done():
            task.result()  # raises what stopped it
        await asyncio.sleep(0.01)
    loop = asyncio.get_running_loop()
    limits = HttpLimits(
        header_timeout_s=serve.header_timeout_s,
        body_timeout_s=serve.body_timeout_s,
        keepalive_s=serve.http.keepalive_s,
        max_header_bytes=serve.max_header_bytes,
        max_headers=serve.max_headers,
    )
    table, fair = gate.table, gate.fair
    refusing: set[asyncio.Task[None]] = set()

    def accept(sock: socket.socket, addr: Any) -> None:
        client = client_of(addr)
        if not gate.allowed(sock, client):
            return
        why = table.admit(client)
        if why:
            gate.refused(client, why)
            task = asyncio.ensure_future(_refuse_http(sock, fair))
            refusing.add(task)
            task.add_done_callback(refusing.discard)
            return
        conn = Conn(client, close=sock.close)
        table.add(conn)

        def lost() -> None:
            table.remove(conn)
            fair.closed()

        def protocol() -> asyncio.Protocol:
            return GuardedHttpProtocol(
                config,
                server.server_state,
                server.lifespan.state,
                conn=conn,
                limits=limits,
                lost=lost,
            )

        future = asyncio.ensure_future(loop.connect_accepted_socket(protocol, sock))

        def failed(done: asyncio.Future[Any]) -> None:
            if not done.cancelled() and done.exception() is not None:
                lost()
                sock.close()

        future.add_done_callback(failed)

    acceptors.append(asyncio.ensure_future(accept_forever(sock, fair, accept)))
    return server, task


async def _refuse_http(sock: socket.socket, fair: Fairness) -> None:
    """503 to a connection the worker has no room for."""
    try:
        reader, writer = await asyncio.open_connection(sock=sock)
        try:
            async with asyncio.timeout(REFUSE_S):
                await refuse_with(reader, writer, REFUSED)
        finally:
            writer.close()
    except (OSError, TimeoutError):
        sock.close()
    finally:
        fair.closed()


def _extra_routes(service: Service) -> list[BaseRoute]:
    """The pages and APIs served beside the scanning protocol on the HTTP listener, each
    built by the layer that owns it."""
    from seawall.dashboard import dashboard_routes
    from seawall.frontends.http.cases_api import cases_routes
    from seawall.frontends.http.garden import garden_routes
    from seawall.serve.tracker import client as tracker_client
    from seawall.zombies.store import open_case_store

    routes: list[BaseRoute] = []
    routes += dashboard_routes(service, tracker=tracker_client(service.config))
    routes += metrics_routes(
        service.config,
        active_dir(),
        tracker=tracker_client(service.config),
        cases=lambda: open_case_store(service.config),
    )
    routes += cases_routes(service.config)
    routes += garden_routes(service.config, service.store)
    return routes


async def _drain(service: Service, connections: list[Streams], drain_s: float) -> None:
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
