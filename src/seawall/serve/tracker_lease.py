"""One campaign tracker for every node on a shared (Redis) state, chosen by a lease.

Each node's tracker process is a candidate.  The one that holds the lease (``claim`` on
``LEASE_KEY`` in the store, renewed every third of ``tracker_lease_s``) loads the campaign
snapshot from the store, listens on ``tracker_listen`` over TCP and publishes its
:class:`~seawall.campaigns.protocol.Endpoint` (address and a fresh secret) as the lease's
value; it saves the snapshot every ``snapshot_interval_s`` and when it stops.  The others
wait; when the holder stops renewing (its node died), the lease expires and one of them
takes over from the last snapshot.  Every worker on every node finds the holder through
:func:`locator` and sends its messages there, so a copy seen by node B joins the campaign
node A opened, and a campaign's spread counts all nodes' sources.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time

from seawall.campaigns.protocol import (
    LEASE_KEY,
    Endpoint,
    decode_endpoint,
    encode_endpoint,
)
from seawall.campaigns.remote import Locate
from seawall.campaigns.server import TrackerServer
from seawall.campaigns.tracker import Tracker
from seawall.config import Config
from seawall.errors import ConfigError, StoreError, TrackerError
from seawall.serve.listeners import parse_listen
from seawall.serve.tracker import SNAPSHOT_KEY, restored, save_changed
from seawall.store import Store, open_store

log = logging.getLogger("seawall.campaigns")


def locator(config: Config) -> Locate:
    """How a worker finds the tracker that holds the lease (its own store per process).

    While the store cannot be read, the last tracker found is tried again: it keeps serving
    through a Redis outage.
    """
    stores: dict[int, Store] = {}
    last: list[Endpoint] = []

    async def locate() -> Endpoint:
        store = stores.get(os.getpid())
        if store is None:
            stores.clear()  # a fork: the parent's store is not ours
            store = stores[os.getpid()] = open_store(config)
        try:
            data = await store.get(LEASE_KEY)
        except StoreError as exc:
            if last:
                return last[0]
            raise TrackerError(f"cannot find the campaign tracker: {exc}") from None
        if data is None:
            raise TrackerError("no campaign tracker holds the lease")
        last[:] = [decode_endpoint(data)]
        return last[0]

    return locate


def advertised(config: Config, port: int) -> tuple[str, int]:
    """The address other nodes reach this node's tracker at."""
    settings = config.detectors.campaigns
    if settings.tracker_advertise:
        where = parse_listen(settings.tracker_advertise, "detectors.campaigns.tracker_advertise")
        return where.host, where.port or port
    host = parse_listen(settings.tracker_listen, "detectors.campaigns.tracker_listen").host
    if host in ("0.0.0.0", "::"):
        host = socket.gethostbyname(socket.gethostname())
    return host, port


class Leader:
    """This node's tracker while it holds the lease: the TCP server, the lease's value."""

    def __init__(self, server: asyncio.Server, tracker: Tracker, value: bytes) -> None:
        self.server = server
        self.tracker = tracker
        self.value = value
        self.saved_at = time.monotonic()
        self.saved = tracker.changes  # what it restored is what the store holds

    async def save(self, store: Store) -> None:
        """Save the snapshot, unless nothing changed since the last save."""
        self.saved = await save_changed(store, self.tracker, self.saved)
        self.saved_at = time.monotonic()

    async def stop(self) -> None:
        self.server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), 2.0)


async def restore(config: Config, store: Store) -> Tracker:
    """The tracker from the snapshot in the store, or a new one."""
    try:
        data = await store.get(SNAPSHOT_KEY)
    except StoreError as exc:
        log.error("campaign state unreadable, starting empty: %s", exc)
        data = None
    return restored(config, data)


async def try_lead(config: Config, store: Store, node: str) -> Leader | None:
    """Take the lease if nobody holds it: listen, publish, and serve from the snapshot."""
    settings = config.detectors.campaigns
    where = parse_listen(settings.tracker_listen, "detectors.campaigns.tracker_listen")
    if where.path:
        raise ConfigError("detectors.campaigns.tracker_listen: a TCP host:port, not a path")
    held = await store.get(LEASE_KEY)
    if held is not None:
        return None  # someone holds it; we try again after it expires
    secret = secrets.token_bytes(16)
    tracker = await restore(config, store)
    server_ = TrackerServer(tracker, secret=secret)
    server = await asyncio.start_server(server_.connection, where.host, where.port)
    port = server.sockets[0].getsockname()[1]
    host, port = advertised(config, port)
    value = encode_endpoint(Endpoint(host=host, port=port, secret=secret, node=node))
    if await store.claim(LEASE_KEY, value, ttl_s=settings.tracker_lease_s) != value:
        server.close()  # another node was quicker
        return None
    log.info("campaign tracker %s serves every node at %s:%d", node, host, port)
    return Leader(server, tracker, value)


async def serve(config: Config, stop: asyncio.Event) -> None:
    """A candidate until ``stop``: lead when the lease is free, renew while leading."""
    settings = config.detectors.campaigns
    store = open_store(config)
    node = f"{socket.gethostname()}/{os.getpid()}"
    leader: Leader | None = None
    complained = 0.0
    try:
        while not stop.is_set():
            try:
                if leader is None:
                    leader = await try_lead(config, store, node)
                else:
                    held = await store.claim(
                        LEASE_KEY, leader.value, ttl_s=settings.tracker_lease_s
                    )
                    if held != leader.value:
                        log.warning("campaign tracker %s lost the lease; standing by", node)
                        await leader.stop()
                        leader = None
                    elif time.monotonic() - leader.saved_at >= settings.snapshot_interval_s:
                        await leader.save(store)
            except StoreError as exc:  # keep serving what we have; say so once a minute
                if time.monotonic() - complained > 60:
                    complained = time.monotonic()
                    log.error("campaign tracker lease: the state store failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.tracker_lease_s / 3)
        if leader is not None:
            await leader.save(store)
            await leader.stop()
            with contextlib.suppress(StoreError):  # let another node take over at once
                if await store.get(LEASE_KEY) == leader.value:
                    await store.delete(LEASE_KEY)
    finally:
        await store.close()


def lease_held(config: Config) -> bool:
    """Whether some node's tracker holds the lease (for commands and start-up)."""

    async def held() -> bool:
        store = open_store(config)
        try:
            return await store.get(LEASE_KEY) is not None
        finally:
            await store.close()

    try:
        return asyncio.run(held())
    except StoreError:
        return False
