"""A Redis master, its replica and Redis Sentinels, private to the tests, on loopback.

Like tests/redis_servers.py (whose :class:`RedisServer` runs the master and the replica):
free ports, one folder each, no persistence.  Needs the Debian redis-sentinel package
(``make test`` installs it).

``redis_sentinels``     session-wide :class:`RedisSentinelServers`: a master, one replica,
                        one Sentinel with a 5 s ``down-after-milliseconds`` (no failover
                        by a slow moment of a loaded machine)
``redis_sentinel_url``  its ``redis+sentinel://`` URL, the master flushed for the test

or the class directly (``with RedisSentinelServers(root, sentinels=3).running(): ...``) for a
failover test of its own, with a short ``down-after-milliseconds``: :meth:`kill_master`,
then :meth:`wait_failover`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from tests.redis_servers import RedisServer, free_ports

_START_TIMEOUT_S = 120.0  # a guard against a hang, not a measure (a loaded host is slow)
SERVICE = "seawall"


def _sentinel_binary() -> str:
    places = [shutil.which("redis-sentinel"), "/usr/bin/redis-sentinel"]
    found = next((p for p in places if p and os.path.exists(p)), None)
    if found is None:
        raise RuntimeError("redis-sentinel is not installed; `make test` installs redis-sentinel")
    return found


@dataclass
class SentinelServer:
    """One redis-sentinel under ``root``, watching ``service`` at ``master_port``."""

    root: Path
    port: int
    master_port: int
    quorum: int
    down_after_ms: int
    failover_timeout_ms: int
    service: str = SERVICE
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        conf = self.root / "sentinel.conf"  # Sentinel rewrites it: a file of its own
        conf.write_text(
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            "daemonize no\n"
            f"dir {self.root}\n"
            f"logfile {self.root / 'sentinel.log'}\n"
            f"sentinel monitor {self.service} 127.0.0.1 {self.master_port} {self.quorum}\n"
            f"sentinel down-after-milliseconds {self.service} {self.down_after_ms}\n"
            f"sentinel failover-timeout {self.service} {self.failover_timeout_ms}\n"
            f"sentinel parallel-syncs {self.service} 1\n"
        )
        with open(self.root / "stdout.log", "ab") as out:
            self.proc = subprocess.Popen(
                [_sentinel_binary(), str(conf)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"redis-sentinel exited with {self.proc.returncode}:\n{self.log()}"
                )
            with contextlib.suppress(redis.RedisError), self.client() as client:
                if client.ping():
                    return
            time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"redis-sentinel did not answer in {_START_TIMEOUT_S} s:\n{self.log()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def master(self) -> dict[str, object]:
        """``SENTINEL MASTER service``, parsed by redis-py."""
        with self.client() as client:
            return dict(client.sentinel_master(self.service))

    def master_port_now(self) -> int:
        """The master's port as this Sentinel tells clients now."""
        with self.client() as client:
            _, port = client.sentinel_get_master_addr_by_name(self.service)
        return int(port)

    def log(self) -> str:
        parts = [self.root / "stdout.log", self.root / "sentinel.log"]
        return "".join(p.read_text(errors="replace")[-4000:] for p in parts if p.exists())


@dataclass
class RedisSentinelServers:
    """A master, one replica (``--replicaof``) and ``sentinels`` Sentinels watching them.

    Roles change with a failover, so the master is read from the Sentinels
    (:meth:`master`), never assumed.
    """

    root: Path
    sentinels: int = 1
    down_after_ms: int = 5000
    failover_timeout_ms: int = 2000
    service: str = SERVICE
    servers: list[RedisServer] = field(default_factory=list)  # the first master, the replica
    watchers: list[SentinelServer] = field(default_factory=list)

    @property
    def url(self) -> str:
        hosts = ",".join(s.address for s in self.watchers)
        return f"redis+sentinel://{hosts}/{self.service}"

    def start(self) -> None:
        ports = free_ports(2 + self.sentinels)
        # Either may be the master: no 5 s wait for more replicas before a full sync.
        quick = {"repl-diskless-sync-delay": "0"}
        master = RedisServer(self.root / "master", port=ports[0], options=quick)
        replica = RedisServer(
            self.root / "replica",
            port=ports[1],
            options=quick | {"replicaof": f"127.0.0.1 {ports[0]}"},
        )
        self.servers = [master, replica]
        self.watchers = [
            SentinelServer(
                self.root / f"sentinel-{i}",
                port=ports[2 + i],
                master_port=master.port,
                quorum=self.sentinels // 2 + 1,
                down_after_ms=self.down_after_ms,
                failover_timeout_ms=self.failover_timeout_ms,
                service=self.service,
            )
            for i in range(self.sentinels)
        ]
        try:
            master.start()
            replica.start()
            for watcher in self.watchers:
                watcher.start()
            self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for watcher in self.watchers:
            watcher.stop()
        for server in self.servers:
            server.stop()

    @contextlib.contextmanager
    def running(self) -> Iterator[RedisSentinelServers]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def _server(self, port: int) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    def master(self) -> RedisServer:
        """The master, as the first Sentinel that answers tells clients."""
        for watcher in self.watchers:
            with contextlib.suppress(redis.RedisError):
                return self._server(watcher.master_port_now())
        raise RuntimeError("no Sentinel answers")

    def replica(self) -> RedisServer:
        master = self.master()
        return next(s for s in self.servers if s is not master)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Every Sentinel sees the master up, the replica in sync and every other Sentinel
        (so that a failover finds its quorum and its leader at once)."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                problem = self._problem()
            except redis.RedisError as exc:
                problem = str(exc)
            if problem is None:
                return
            last = problem
            time.sleep(0.05)
        raise RuntimeError(f"the Sentinels are not ready after {timeout} s: {last}")

    def _problem(self) -> str | None:
        master = self.master()
        with master.client() as client:
            info = client.info("replication")
        links = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
        if info.get("role") != "master" or [v.get("state") for v in links] != ["online"]:
            return f"{master.address}: role {info.get('role')}, replicas {links}"
        for watcher in self.watchers:
            state = watcher.master()
            if int(str(state["port"])) != master.port or state["flags"] != "master":
                return f"{watcher.address}: master {state['port']} {state['flags']}"
            if int(str(state["num-slaves"])) != 1:
                return f"{watcher.address}: {state['num-slaves']} replicas"
            if int(str(state["num-other-sentinels"])) != len(self.watchers) - 1:
                return f"{watcher.address}: {state['num-other-sentinels']} other Sentinels"
        return None

    def sync_replica(self, timeout_ms: int = 1000) -> None:
        """Every write the master took so far acknowledged by the replica (``WAIT 1``).

        ``WAIT`` waits for the calling client's own last write, so it writes first:
        replication is in order, so once the replica has it, it has every earlier write.
        """
        with self.master().client() as client:
            client.set("wait-probe", b"1", px=60_000)
            acked = int(client.execute_command("WAIT", 1, timeout_ms))
        if acked < 1:
            raise RuntimeError("the replica did not acknowledge WAIT")

    def kill_master(self) -> RedisServer:
        """SIGKILL the master, as a crash; it stays down."""
        master = self.master()
        proc, master.proc = master.proc, None
        assert proc is not None
        proc.kill()
        proc.wait(10)
        return master

    def promoted(self, dead: RedisServer) -> RedisServer | None:
        """The new master, once a Sentinel tells clients of it as redis-py's Sentinel
        client reads ``SENTINEL MASTERS``: another address, flagged master and neither
        down (``s_down``, ``o_down``).  Right after the switch the flags may still say
        ``disconnected``, until the Sentinel has connected to it.
        """
        for watcher in self.watchers:
            with contextlib.suppress(redis.RedisError):
                state = watcher.master()
                port = int(str(state["port"]))
                flags = set(str(state["flags"]).split(","))
                if port != dead.port and "master" in flags and not flags & {"s_down", "o_down"}:
                    return self._server(port)
        return None

    def flush(self) -> None:
        with self.master().client() as client:
            client.flushall()  # replicated
            client.execute_command("WAIT", 1, 1000)

    def log(self) -> str:
        return "\n".join(w.log() for w in self.watchers)


@pytest.fixture(scope="session")
def redis_sentinels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisSentinelServers]:
    with RedisSentinelServers(tmp_path_factory.mktemp("redis-sentinel")).running() as servers:
        yield servers


@pytest.fixture
def redis_sentinel_url(redis_sentinels: RedisSentinelServers) -> str:
    """The session Sentinel's URL, the master's keyspace flushed for this test."""
    redis_sentinels.flush()
    return redis_sentinels.url
