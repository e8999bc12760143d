"""Private redis-server instances for tests: one server, and a Redis Cluster of three masters.

Each runs from its own folder on free loopback ports with no persistence (``--save ""
--appendonly no``); nothing of the system's Redis (its service, /etc/redis) is used.  Needs
the Debian redis-server package, which brings redis-cli (redis-tools); ``make test``
installs it.

Use the fixtures from a conftest.py (``from tests.redis_servers import redis_url  # noqa``):

``redis_server``       session-wide :class:`RedisServer`, also on a Unix socket
``redis_cluster``      session-wide :class:`RedisClusterServers` (3 masters, no replicas)
``redis_url``          the server's ``redis://`` URL, its keyspace flushed for the test
``redis_cluster_url``  the cluster's ``redis+cluster://`` URL, every master flushed

or the classes directly (``with RedisServer(root).running(): ...``) for a server of a
test's own, e.g. one to stop and restart (:meth:`RedisServer.stop`, :meth:`RedisServer.start`,
:meth:`RedisServer.pause`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

_START_TIMEOUT_S = 20.0


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        (p for p in (f"/usr/bin/{name}", f"/usr/local/bin/{name}") if os.path.exists(p)), None
    )
    if found is None:
        pkg = "redis-server" if name == "redis-server" else "redis-tools"
        raise RuntimeError(f"{name} is not installed; `make test` installs {pkg}")
    return found


@dataclass
class RedisServer:
    """One redis-server under ``root``; ``start()`` then ``stop()``, as often as needed."""

    root: Path
    port: int = field(default_factory=lambda: free_ports(1)[0])
    options: dict[str, str] = field(default_factory=dict)  # more settings: name -> value
    cluster_bus_port: int | None = None  # set: a cluster node, with this bus port
    proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"redis://{self.address}/0"

    @property
    def unix_socket(self) -> Path:
        return self.root / "redis.sock"

    def argv(self) -> list[str]:
        settings = {
            "port": str(self.port),
            "bind": self.host,
            "dir": str(self.root),
            "save": "",
            "appendonly": "no",
            "daemonize": "no",
            "logfile": str(self.root / "redis.log"),
            "databases": "16",
        }
        if self.cluster_bus_port is None:
            settings |= {"unixsocket": str(self.unix_socket), "unixsocketperm": "700"}
        else:
            settings |= {
                "cluster-enabled": "yes",
                "cluster-config-file": "nodes.conf",  # in dir
                "cluster-port": str(self.cluster_bus_port),
                "cluster-node-timeout": "5000",
            }
        settings |= self.options
        argv = [_binary("redis-server")]
        for name, value in settings.items():
            argv += [f"--{name}", value]
        return argv

    def start(self) -> None:
        """Start (or start again, on the same port and folder) and wait for PING."""
        if self.proc is not None and self.proc.poll() is None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "stdout.log", "ab") as out:
            self.proc = subprocess.Popen(
                self.argv(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {self.proc.returncode}:\n{self.log()}"
                )
            with contextlib.suppress(redis.RedisError), self.client() as client:
                if client.ping():
                    return
            time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"redis-server did not answer in {_START_TIMEOUT_S} s:\n{self.log()}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL); its data is gone with it."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGCONT)  # in case a test paused it
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def pause(self) -> None:
        """SIGSTOP: connections are accepted by the kernel but nothing ever answers."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    @contextlib.contextmanager
    def running(self) -> Iterator[RedisServer]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def client(self, db: int = 0) -> redis.Redis:
        """A synchronous client of this server (close it, or use it in a ``with``)."""
        return redis.Redis(host=self.host, port=self.port, db=db, socket_timeout=5)

    def flush(self) -> None:
        with self.client() as client:
            client.flushall()

    def log(self) -> str:
        parts = [self.root / "stdout.log", self.root / "redis.log"]
        return "".join(p.read_text(errors="replace")[-4000:] for p in parts if p.exists())


@dataclass
class RedisClusterServers:
    """Three masters with every slot assigned; ``start()`` then ``stop()``."""

    root: Path
    size: int = 3
    masters: list[RedisServer] = field(default_factory=list)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(m.address for m in self.masters)

    def start(self) -> None:
        ports = free_ports(2 * self.size)
        self.masters = [
            RedisServer(
                self.root / f"node-{i}", port=ports[i], cluster_bus_port=ports[self.size + i]
            )
            for i in range(self.size)
        ]
        try:
            for master in self.masters:
                master.start()
            self._create()
        except BaseException:
            self.stop()
            raise

    def _create(self) -> None:
        argv = [_binary("redis-cli"), "--cluster", "create"]
        argv += [m.address for m in self.masters] + ["--cluster-replicas", "0", "--cluster-yes"]
        done = subprocess.run(argv, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            out = (done.stdout + done.stderr).decode(errors="replace")
            raise RuntimeError(f"redis-cli --cluster create failed:\n{out}")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(self._ready(m) for m in self.masters):
                return
            time.sleep(0.05)
        raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")

    def _ready(self, master: RedisServer) -> bool:
        """cluster_state:ok, and this node knows every master (so redirects resolve)."""
        with master.client() as client:
            info = client.execute_command("CLUSTER INFO")  # parsed into a dict by redis-py
        fields = {str(k): str(v) for k, v in info.items()}
        return (
            fields.get("cluster_state") == "ok"
            and fields.get("cluster_slots_assigned") == "16384"
            and fields.get("cluster_known_nodes") == str(self.size)
        )

    def stop(self) -> None:
        for master in self.masters:
            master.stop()

    def flush(self) -> None:
        for master in self.masters:
            master.flush()


def keys_with_ttls(servers: Sequence[RedisServer]) -> dict[bytes, int]:
    """Every key on ``servers`` and its PTTL (-1: none), by SCAN: for tests only."""
    out: dict[bytes, int] = {}
    for server in servers:
        with server.client() as client:
            for key in client.scan_iter(count=1000):
                out[key] = int(client.pttl(key))
    return out


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")).running() as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    cluster = RedisClusterServers(tmp_path_factory.mktemp("redis-cluster"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server's URL, with an empty keyspace (every database) for this test."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture
def redis_cluster_url(redis_cluster: RedisClusterServers) -> str:
    """The session cluster's URL, every master flushed for this test."""
    redis_cluster.flush()
    return redis_cluster.url
