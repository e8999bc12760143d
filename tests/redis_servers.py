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
``redis_ha_cluster``   session-wide :class:`RedisHaCluster` (3 masters, each with a
                       replica, a 1 s ``cluster-node-timeout``): for failover tests, which
                       kill a master (:meth:`RedisServer.kill`), wait for its replica
                       (:meth:`RedisHaCluster.wait_failover`) and :meth:`RedisHaCluster.heal`

or the classes directly (``with RedisServer(root).running(): ...``) for a server of a
test's own, e.g. one to stop and restart (:meth:`RedisServer.stop`, :meth:`RedisServer.start`,
:meth:`RedisServer.pause`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.retry import Retry
from tests import ports

# A guard against a server that never answers, not a measure: a loaded host (load 15 on
# two cores) takes seconds to start one.
_START_TIMEOUT_S = 120.0


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports, free now (tests/ports.py)."""
    return ports.free_ports(count)


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
    port: int = 0  # 0: a free port, another if it is taken by the time the server binds it
    options: dict[str, str] = field(default_factory=dict)  # more settings: name -> value
    cluster_bus_port: int | None = None  # set: a cluster node, with this bus port
    proc: subprocess.Popen[bytes] | None = None
    _own_port: bool = field(default=False, init=False, repr=False)  # picked here: may move
    _started: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.port:
            self.port = free_ports(1)[0]
            self._own_port = True

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
        """Start (or start again, on the same port and folder) and wait for PING.

        A port picked here that another process took before the server bound it is
        replaced by another at the first start (a restart keeps its port)."""
        if self.proc is not None and self.proc.poll() is None:
            return
        for _ in range(5):
            if self._start_once():
                self._started = True
                return
            self.port = free_ports(1)[0]
        raise RuntimeError(f"redis-server found no free port:\n{self.log()}")

    def _start_once(self) -> bool:
        """True once the server answers; False when its port was taken and may move."""
        self.root.mkdir(parents=True, exist_ok=True)
        logs = [self.root / "stdout.log", self.root / "redis.log"]
        seen = [p.stat().st_size if p.exists() else 0 for p in logs]
        with open(self.root / "stdout.log", "ab") as out:
            self.proc = subprocess.Popen(
                self.argv(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                new = b"".join(
                    p.read_bytes()[n:] for p, n in zip(logs, seen, strict=True) if p.exists()
                )
                taken = b"Address already in use" in new
                if taken and self._own_port and not self._started:
                    return False
                raise RuntimeError(
                    f"redis-server exited with {self.proc.returncode}:\n{self.log()}"
                )
            if self._answers():
                return True
            time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"redis-server did not answer in {_START_TIMEOUT_S} s:\n{self.log()}")

    def _answers(self) -> bool:
        """This server answers: it, not another process that held the port a moment ago
        (one that never answers costs a second, not the client's retries)."""
        assert self.proc is not None
        probe = redis.Redis(
            host=self.host,
            port=self.port,
            socket_timeout=1,
            socket_connect_timeout=1,
            retry=Retry(NoBackoff(), 0),
        )
        with contextlib.suppress(redis.RedisError), probe:
            return int(probe.info("server")["process_id"]) == self.proc.pid
        return False

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

    def kill(self) -> None:
        """SIGKILL, as a crash: no shutdown, no goodbye to clients or cluster peers."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.kill()
        proc.wait(10)

    @property
    def running_now(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

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


def _cluster_info(server: RedisServer) -> dict[str, str]:
    with server.client() as client:
        info = client.execute_command("CLUSTER INFO")  # parsed into a dict by redis-py
    return {str(k): str(v) for k, v in info.items()}


@dataclass
class RedisHaCluster:
    """``size`` masters each with ``replicas`` replicas, for failover tests.

    ``cluster-node-timeout`` is ``node_timeout_ms`` (1 s): a killed master is marked failed
    and its replica promoted within a few seconds.  Roles change as masters fail over, so
    they are read from the servers (:meth:`masters`, :meth:`master_of`), never assumed.
    :meth:`heal` starts every stopped node again (it rejoins as a replica, from its
    ``nodes.conf``) and waits until every master has its replicas in sync again.
    """

    root: Path
    size: int = 3
    replicas: int = 1
    node_timeout_ms: int = 1000
    nodes: list[RedisServer] = field(default_factory=list)
    _held: dict[int, list[int]] = field(default_factory=dict)  # port -> first slots, at kill

    @property
    def url(self) -> str:
        """Every node as a seed (a client survives any seed's outage)."""
        return "redis+cluster://" + ",".join(n.address for n in self.nodes)

    def start(self) -> None:
        count = self.size * (1 + self.replicas)
        ports = free_ports(2 * count)
        self.nodes = [
            RedisServer(
                self.root / f"node-{i}",
                port=ports[i],
                cluster_bus_port=ports[count + i],
                options={
                    "cluster-node-timeout": str(self.node_timeout_ms),
                    "repl-diskless-sync-delay": "0",  # a replica syncs at once (default 5 s)
                },
            )
            for i in range(count)
        ]
        try:
            for server in self.nodes:
                server.start()
            argv = [_binary("redis-cli"), "--cluster", "create"]
            argv += [n.address for n in self.nodes]
            argv += ["--cluster-replicas", str(self.replicas), "--cluster-yes"]
            done = subprocess.run(argv, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
            if done.returncode != 0:
                out = (done.stdout + done.stderr).decode(errors="replace")
                raise RuntimeError(f"redis-cli --cluster create failed:\n{out}")
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for server in self.nodes:
            server.stop()

    def live(self) -> list[RedisServer]:
        return [n for n in self.nodes if n.running_now]

    def role(self, server: RedisServer) -> str:
        """``master`` or ``slave``, as the server itself says."""
        with server.client() as client:
            return str(client.info("replication")["role"])

    def masters(self) -> list[RedisServer]:
        return [n for n in self.live() if self.role(n) == "master"]

    def _slot_owner(self, slot: int, via: RedisServer) -> int | None:
        """The port of the master serving ``slot``, as ``via`` sees the cluster."""
        with via.client() as client:
            for start, end, master, *_ in client.execute_command("CLUSTER SLOTS"):
                if int(start) <= slot <= int(end):
                    return int(master[1])
        return None

    def _owner_port(self, key: str | bytes, via: RedisServer) -> int | None:
        return self._slot_owner(key_slot(key.encode() if isinstance(key, str) else key), via)

    def master_of(self, key: str | bytes) -> RedisServer:
        """The master that serves ``key`` now."""
        port = self._owner_port(key, self.live()[0])
        return next(n for n in self.nodes if n.port == port)

    def replicas_of(self, master: RedisServer) -> list[RedisServer]:
        with master.client() as client:
            info = client.info("replication")
        ports = {int(v["port"]) for k, v in info.items() if k.startswith("slave") and "port" in v}
        return [n for n in self.nodes if n.port in ports]

    def sync_replicas(self, timeout_ms: int = 1000) -> None:
        """Every master's writes so far acknowledged by its replicas (``WAIT``).

        ``WAIT`` waits for the calling client's own last write, so each master gets one
        (a key of one of its slots) first: replication is in order, so once the replicas
        acknowledge it they hold every write the master took before it.
        """
        for master in self.masters():
            key = next(
                f"wait-probe:{i}"
                for i in range(100_000)
                if self._owner_port(f"wait-probe:{i}", master) == master.port
            )
            with master.client() as client:
                client.set(key, b"1", px=60_000)
                acked = int(client.execute_command("WAIT", self.replicas, timeout_ms))
            if acked < self.replicas:
                raise RuntimeError(f"{master.address}: {acked} replicas acknowledged WAIT")

    def kill(self, server: RedisServer) -> None:
        """SIGKILL ``server``, noting the slots it served for :meth:`wait_failover`."""
        with server.client() as client:
            ranges = client.execute_command("CLUSTER SLOTS")
        self._held[server.port] = [
            int(start) for start, _, master, *_ in ranges if int(master[1]) == server.port
        ]
        server.kill()

    def wait_failover(self, dead: RedisServer, timeout: float = 30.0) -> RedisServer:
        """Until one live node serves every slot ``dead`` served when :meth:`kill` killed
        it and cluster_state is ok, as every live node sees it; that promoted replica."""
        slots = self._held[dead.port]
        assert slots, f"{dead.address} served no slots when it was killed"
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                live = self.live()
                owners = {self._slot_owner(slot, n) for n in live for slot in slots}
                states = {_cluster_info(n).get("cluster_state") for n in live}
                if states == {"ok"} and len(owners) == 1 and dead.port not in owners:
                    return next(n for n in self.nodes if n.port in owners)
                last = f"cluster_state {states}, served by {owners}"
            except redis.RedisError as exc:
                last = str(exc)
            time.sleep(0.02)
        raise RuntimeError(f"no failover from {dead.address} in {timeout} s: {last}")

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Every node up, cluster_state:ok on each, all slots served, every master with
        ``replicas`` replicas whose link is up and initial sync done."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                problem = self._health_problem()
            except redis.RedisError as exc:
                problem = str(exc)
            if problem is None:
                return
            last = problem
            time.sleep(0.05)
        raise RuntimeError(f"the Redis Cluster did not become healthy: {last}")

    def _health_problem(self) -> str | None:
        total = len(self.nodes)
        for server in self.nodes:
            if not server.running_now:
                return f"{server.address} is down"
            info = _cluster_info(server)
            if info.get("cluster_state") != "ok":
                return f"{server.address}: cluster_state {info.get('cluster_state')}"
            if info.get("cluster_slots_assigned") != "16384":
                return f"{server.address}: slots assigned {info.get('cluster_slots_assigned')}"
            if info.get("cluster_known_nodes") != str(total):
                return f"{server.address}: knows {info.get('cluster_known_nodes')} nodes"
            if info.get("cluster_slots_fail") != "0" or info.get("cluster_slots_pfail") != "0":
                return f"{server.address}: slots failing"
        masters = self.masters()
        if len(masters) != self.size:
            return f"{len(masters)} masters"
        for master in masters:
            with master.client() as client:
                info = client.info("replication")
            links = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
            if sum(v.get("state") == "online" for v in links) < self.replicas:
                return f"{master.address}: replicas {links}"
        for server in self.nodes:
            if server not in masters:
                with server.client() as client:
                    info = client.info("replication")
                if info.get("master_link_status") != "up" or info.get("master_sync_in_progress"):
                    return f"{server.address}: replica link {info.get('master_link_status')}"
        return None

    def heal(self) -> None:
        """Start every stopped (killed) node again, and wait until the cluster is whole."""
        for server in self.nodes:
            if not server.running_now:
                server.start()
        self.wait_healthy()

    def flush(self) -> None:
        for master in self.masters():
            master.flush()  # replicated to the replicas


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


@pytest.fixture(scope="session")
def redis_ha_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisHaCluster]:
    """Three masters each with a replica, started for the first test that asks for it.

    A test may kill nodes: the next one calls :meth:`RedisHaCluster.heal` (the
    ``redis_ha_cluster_url`` fixture does).
    """
    cluster = RedisHaCluster(tmp_path_factory.mktemp("redis-ha-cluster"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def redis_ha_cluster_url(redis_ha_cluster: RedisHaCluster) -> str:
    """The replicated cluster, healed (every node up and in sync) and flushed."""
    redis_ha_cluster.heal()
    redis_ha_cluster.flush()
    return redis_ha_cluster.url


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
