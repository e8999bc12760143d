"""Seawall's state on Redis against the embedded state, and several nodes on one Redis.

    .venv/bin/python -m bench.redis [--rounds 4] [--serve-rounds 4] [--mem-messages 1000000]
        [--mem-rate 2500] [--windows 30,30,60,120] [--expire-effort N]
        [--skip-scan] [--skip-serve] [--skip-memory]

The bench starts its own redis-server (tests/redis_servers.py: a free loopback port, no
persistence) and measures, in one run on the same machine:

1. **Per-node throughput**: ``seawall scan --feed-state --workers 2`` (fed as ``seawall
   serve`` feeds the state: reputation counted, campaigns tracked by the state's tracker and
   saved) on the SpamAssassin test half after ``seawall learn`` of the train half, once on an
   embedded state dir and once with ``--state redis://127.0.0.1:PORT/0`` (learned into Redis
   too: database 1, copied into database 0 before each run), in interleaved rounds (A B B
   A ...), each from a fresh copy of the learned state: msg/s of each and the median of the
   per-round ratios.  Then
   ``/checkv2`` through ``seawall serve`` (2 workers) on each, with bench/load.py's
   connections at concurrency 16 and each message's client address in an ``IP:`` header
   (its first untrusted hop), so that the verdict history and greylisting see it.
2. **Redis work per message**: ``CONFIG RESETSTAT`` before each Redis scan and /checkv2 pass
   and ``INFO commandstats`` after: calls per message by command, bytes and Redis CPU.
   Redis counts the commands its Lua scripts run too, so one more, untimed, run of each
   under ``MONITOR`` tells client commands (each one round trip: the store on one server
   sends no pipelines) from those inside scripts, and EVALSHA by script.  The same for the
   policy service, one RCPT request per message.
3. **Redis memory**: 1,000,000 messages of a synthetic stream (see ``Traffic``) through the
   functions ``seawall serve`` calls per message: ``frontends.policy.decide.count``,
   ``reputation.Reputation.record``, the greylist's get and put (``Service._greylist``'s
   key), ``store.history.record_verdict``.  Their store is ``PipelinedStore``: RedisStore's
   own commands sent in pipelines, checked first against RedisStore on 10,000 messages (the
   same keys, the same bytes).  Short windows (``--windows``) let expiry start early in the
   run; ``used_memory`` is sampled every 25,000 messages, and the plateau set against bytes
   per key x keys per message x messages in the window.
4. **Two nodes on one Redis**: two ``seawall serve`` (1 worker each, own ports, the same
   ``state = redis://...``) with the /checkv2 connections dealt between them, interleaved
   with one node of 2 workers on Redis and with the embedded node.

Prints a report and writes the JSON to .cache/bench/redis.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hiredis
import numpy as np
from tests.integration.postfix import free_port
from tests.integration.seawall_proc import Seawall
from tests.redis_servers import RedisServer

from bench.load import (
    Endpoint,
    LoadResult,
    ProtocolError,
    Sample,
    _Connection,
    _request_head,
    action_of,
    corpus_samples,
    error_reason,
)
from bench.run import _fresh, _link_tree
from seawall import corpus
from seawall.addresses import network_of, parse_ip
from seawall.classifier.redis_weights import _RELEASE
from seawall.config import PolicySettings, ReputationSettings
from seawall.errors import StoreError
from seawall.frontends.policy.decide import Events, count
from seawall.message import Envelope, parse_message
from seawall.reputation import Reputation
from seawall.store.base import BUCKETS, Decayed, bucket_expiry, bucket_range
from seawall.store.history import record_verdict
from seawall.store.redis import _CLAIM, _DECAY, _INCR, RedisStore, _ms

if TYPE_CHECKING:
    # Alone in its block: with this file named redis.py, ruff (src = [..., "bench"]) takes
    # ``redis`` for a first-party module: alone, its place does not depend on that.
    import redis

ROOT = Path(__file__).resolve().parents[1]
SEAWALL = [sys.executable, "-m", "seawall"]
CONCURRENCY = 16
WARMUP = 300
# What the bench itself sends to Redis; left out of the per-message figures.
OWN_COMMANDS = {"info", "config|resetstat", "monitor", "flushdb", "flushall", "scan", "copy"}
SCRIPTS = {
    hashlib.sha1(body.encode()).hexdigest(): name
    for name, body in (
        ("incr", _INCR),
        ("claim", _CLAIM),
        ("decay", _DECAY),
        ("classifier lock release", _RELEASE),
    )
}


# -- Redis: what it did -----------------------------------------------------------------


def redis_counters(client: redis.Redis) -> dict[str, Any]:
    """Command calls, bytes, CPU and connections since the last CONFIG RESETSTAT."""
    commands = {
        name.removeprefix("cmdstat_"): int(row["calls"])
        for name, row in client.info("commandstats").items()
    }
    stats = client.info("stats")
    cpu = client.info("cpu")
    return {
        "commands": {k: v for k, v in sorted(commands.items()) if k not in OWN_COMMANDS},
        "total_commands_processed": int(stats["total_commands_processed"])
        - sum(v for k, v in commands.items() if k in OWN_COMMANDS),
        "net_input_bytes": int(stats["total_net_input_bytes"]),
        "net_output_bytes": int(stats["total_net_output_bytes"]),
        "connections_received": int(stats["total_connections_received"]),
        "cpu_s": float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]),
    }


def per_message(counters: dict[str, Any], messages: int, cpu_before: float) -> dict[str, Any]:
    """``counters`` divided by ``messages``: calls by command, in total, bytes, Redis CPU."""
    calls = counters["commands"]
    return {
        "messages": messages,
        "calls_per_message": {k: round(v / messages, 3) for k, v in calls.items()},
        "calls_total": sum(calls.values()),
        "calls_per_message_total": round(sum(calls.values()) / messages, 3),
        "net_bytes_in_per_message": round(counters["net_input_bytes"] / messages, 1),
        "net_bytes_out_per_message": round(counters["net_output_bytes"] / messages, 1),
        "connections_opened": counters["connections_received"],
        "redis_cpu_ms_per_message": round((counters["cpu_s"] - cpu_before) * 1000 / messages, 4),
    }


def redis_cpu(client: redis.Redis) -> float:
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


class Monitor(threading.Thread):
    """``MONITOR`` on its own connection: every command Redis runs, by source and name.

    A line reads ``+<time> [<db> <client address>] "<command>" "<arg>" ...``; commands run by
    a Lua script show ``lua`` as their source.  EVALSHA is counted by script (its SHA-1).
    """

    def __init__(self, server: RedisServer) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection((server.host, server.port), timeout=5)
        self.sock.sendall(b"MONITOR\r\n")
        reply = b""
        while not reply.endswith(b"\r\n"):
            reply += self.sock.recv(64)
        assert reply.startswith(b"+OK"), reply
        self.sock.settimeout(None)
        self.client: Counter[str] = Counter()  # command -> calls sent by clients
        self.lua: Counter[str] = Counter()  # command -> calls run inside scripts
        self.scripts: Counter[str] = Counter()  # script name -> EVALSHA calls
        self.sources: set[str] = set()
        self._halt = threading.Event()

    def run(self) -> None:
        buffer = b""
        while not self._halt.is_set():
            try:
                chunk = self.sock.recv(1 << 16)
            except OSError:
                break
            if not chunk:
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\r\n")
            for line in lines:
                self._line(line)

    def _line(self, line: bytes) -> None:
        start, end = line.find(b"["), line.find(b"] ")
        if start < 0 or end < 0:
            return
        source = line[start + 1 : end].split(b" ", 1)[-1].decode()
        words = line[end + 2 :].split(b'" "', 2)
        command = words[0].strip(b'"').decode(errors="replace").lower()
        if command in ("client", "config", "script", "memory", "command") and len(words) > 1:
            command += "|" + words[1].strip(b'"').decode(errors="replace").lower()
        if source == "lua":
            self.lua[command] += 1
            return
        if command in OWN_COMMANDS:
            return
        self.client[command] += 1
        self.sources.add(source)
        if command == "evalsha" and len(words) > 1:
            sha = words[1].strip(b'"').decode(errors="replace").lower()
            self.scripts[SCRIPTS.get(sha, sha[:12])] += 1

    def stop(self) -> None:
        time.sleep(0.5)  # the last lines on their way
        self._halt.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.join(5)

    def summary(self, messages: int) -> dict[str, Any]:
        sent = sum(self.client.values())
        return {
            "messages": messages,
            "client_commands_per_message": {
                k: round(v / messages, 3) for k, v in sorted(self.client.items())
            },
            "evalsha_per_message_by_script": {
                k: round(v / messages, 3) for k, v in sorted(self.scripts.items())
            },
            "inside_scripts_per_message": {
                k: round(v / messages, 3) for k, v in sorted(self.lua.items())
            },
            "round_trips_per_message": round(sent / messages, 3),
            "client_commands": sent,
            "commands_inside_scripts": sum(self.lua.values()),
            "client_connections_seen": len(self.sources),
        }


@contextlib.contextmanager
def monitored(server: RedisServer) -> Iterator[Monitor]:
    monitor = Monitor(server)
    monitor.start()
    try:
        yield monitor
    finally:
        monitor.stop()


class Template:
    """The learned classifier in database 1, copied into database 0 before each run."""

    def __init__(self, server: RedisServer, db: int = 1) -> None:
        self.server = server
        self.db = db

    @property
    def url(self) -> str:
        return f"redis://{self.server.address}/{self.db}"

    def restore(self) -> None:
        """Database 0 holds exactly what was learned: the fresh state of one run."""
        with self.server.client(0) as target, self.server.client(self.db) as source:
            target.flushdb()
            for key in source.scan_iter(count=1000):
                source.copy(key, key, destination_db=0)


# -- The load: bench/load.py's connections, the client address per message ---------------


async def post_spread(
    urls: Sequence[str],
    samples: Sequence[Sample],
    concurrency: int,
    headers_for: Callable[[Sample], Sequence[str]],
    timeout_s: float = 30.0,
) -> LoadResult:
    """POST every sample once to ``/checkv2``, with ``concurrency`` connections dealt to
    ``urls`` in turn (the load split between nodes), each request with its own headers."""
    endpoints = [Endpoint.parse(url) for url in urls]
    connections = [_Connection(endpoints[i % len(endpoints)]) for i in range(concurrency)]
    pending = iter(samples)
    latencies: list[float] = []
    actions: dict[str, Counter[str]] = {}
    errors: list[str] = []
    reasons: Counter[str] = Counter()

    async def sender(conn: _Connection) -> None:
        for sample in pending:
            endpoint = conn.endpoint
            head = _request_head(endpoint, endpoint.path, len(sample.body), headers_for(sample))
            started = time.perf_counter()
            try:
                async with asyncio.timeout(timeout_s):
                    reply = await conn.request(head, sample.body)
            except (OSError, asyncio.IncompleteReadError, ProtocolError, TimeoutError) as exc:
                await conn.close()
                errors.append(f"{sample.name}: {type(exc).__name__}: {exc}")
                reasons[type(exc).__name__] += 1
                action = "error"
            else:
                latencies.append((time.perf_counter() - started) * 1000.0)
                action = action_of(reply)
                if action == "error":
                    errors.append(f"{sample.name}: HTTP {reply.status}: {reply.body[:200]!r}")
                    reasons[error_reason(reply)] += 1
            actions.setdefault(sample.label, Counter())[action] += 1

    cpu_before = time.process_time()
    started = time.perf_counter()
    try:
        await asyncio.gather(*(sender(conn) for conn in connections))
    finally:
        await asyncio.gather(*(conn.close() for conn in connections))
    return LoadResult(
        url=",".join(urls),
        concurrency=concurrency,
        requests=len(samples),
        errors=len(errors),
        connections=sum(conn.opened for conn in connections),
        elapsed_s=time.perf_counter() - started,
        client_cpu_s=time.process_time() - cpu_before,
        latencies_ms=tuple(latencies),
        actions={label: dict(sorted(c.items())) for label, c in sorted(actions.items())},
        first_errors=tuple(errors[:5]),
        error_reasons=dict(reasons.most_common()),
    )


def client_ips(samples: Sequence[Sample]) -> dict[str, str]:
    """Each sample's SMTP client as an MTA would pass it (``IP:``): the message's first
    untrusted hop, else a made-up address of its own (198.18.0.0/15, for benchmarks)."""
    out = {}
    for n, sample in enumerate(samples):
        ip = parse_message(sample.body, Envelope()).source_ip
        out[sample.name] = ip or f"198.18.{n // 250}.{n % 250 + 1}"
    return out


# -- 1 and 2: seawall scan, embedded against Redis --------------------------------------


@dataclass
class ScanRun:
    wall_s: float
    cpu_s: float
    returncode: int
    summary: str  # the scan's last stderr line: messages, msg/s, actions
    warnings: list[str]  # its WARNING and ERROR log lines

    def row(self, count: int) -> dict[str, Any]:
        return {
            "wall_s": round(self.wall_s, 3),
            "msgs_per_s": round(count / self.wall_s, 1),
            "seawall_cpu_ms_per_message": round(self.cpu_s * 1000 / count, 3),
            "summary": self.summary,
            "log_warnings": len(self.warnings),
            "first_warnings": self.warnings[:3],
        }


def run_scan(argv: Sequence[str]) -> ScanRun:
    """Run ``seawall scan`` (its JSON lines discarded) and time it, as time_command does."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    lines = done.stderr.strip().splitlines()
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    warnings = [line for line in lines if " WARNING " in line or " ERROR " in line]
    return ScanRun(wall, cpu, done.returncode, lines[-1] if lines else "", warnings)


def node_config(path: Path, state_dir: Path) -> Path:
    """The scanning node's own settings: its folder and a free port for the tracker."""
    path.write_text(
        f'state_dir = "{state_dir}"\n'
        f'[detectors.campaigns]\ntracker_listen = "127.0.0.1:{free_port()}"\n'
    )
    return path


@dataclass
class Learned:
    """The SpamAssassin halves as trees, and the train half learned on each side."""

    test: list[corpus.Item]
    test_tree: Path
    one_tree: Path  # one test message: what a scan costs whatever its size
    config: Path
    embedded: Path  # the learned state dir
    template: Template  # the learned Redis database
    info: dict[str, Any]


def learn_both(tmp: Path, server: RedisServer) -> Learned:
    """``seawall learn`` of the train half into a state dir and into Redis database 1."""
    items = corpus.items(corpus.SPAMASSASSIN)
    train = [i for i in items if corpus.in_train_split(i.path)]
    test = [i for i in items if not corpus.in_train_split(i.path)]
    train_tree = _link_tree(train, tmp / "train")
    config = node_config(tmp / "node.toml", tmp / "node")
    embedded = tmp / "embedded-learned"
    template = Template(server)
    seconds: dict[str, float] = {}
    for name, state in (("embedded", str(embedded)), ("redis", template.url)):
        started = time.perf_counter()
        argv = [*SEAWALL, "learn", "--config", str(config), "--state", state]
        argv += ["--spam", str(train_tree / "spam"), "--ham", str(train_tree / "ham")]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr}")
        seconds[name] = round(time.perf_counter() - started, 1)
    with server.client(template.db) as learned_db:
        info = {
            "messages": len(train),
            "learn_s": seconds,
            "redis_keys": learned_db.dbsize(),
            "redis_used_memory_mib": round(
                int(learned_db.info("memory")["used_memory"]) / 2**20, 1
            ),
        }
    return Learned(
        test=test,
        test_tree=_link_tree(test, tmp / "test"),
        one_tree=_link_tree(test[:1], tmp / "one"),
        config=config,
        embedded=embedded,
        template=template,
        info=info,
    )


def scan_part(learned: Learned, server: RedisServer, rounds: int) -> dict[str, Any]:
    test, test_tree, one_tree = learned.test, learned.test_tree, learned.one_tree
    config, embedded, template = learned.config, learned.embedded, learned.template
    control = server.client()
    out: dict[str, Any] = {"messages": len(test), "workers": 2, "rounds": rounds}

    def argv(state: str, tree: Path) -> list[str]:
        # --feed-state: the serving path's work (reputation counted in the store, campaigns
        # tracked by the state's tracker and saved); without it a scan only reads the state.
        return [*SEAWALL, "scan", "--json", "--feed-state", "--workers", "2"] + [
            "--config",
            str(config),
            "--state",
            state,
            str(tree),
        ]

    def redis_scan(tree: Path) -> tuple[ScanRun, dict[str, Any], float]:
        template.restore()
        control.config_resetstat()
        cpu = redis_cpu(control)
        run = run_scan(argv(server.url, tree))
        return run, redis_counters(control), cpu

    print("  warm-up: one scan of each, unmeasured", file=sys.stderr)
    run_scan(argv(str(_fresh(embedded)), test_tree))
    redis_scan(test_tree)

    # What a scan costs Redis whatever its size: start-up, the lease, the snapshot.
    _, probe, cpu = redis_scan(one_tree)
    out["redis_one_message_scan"] = per_message(probe, 1, cpu)

    rates: dict[str, list[float]] = {"embedded": [], "redis": []}
    rows: dict[str, list[dict[str, Any]]] = {"embedded": [], "redis": []}
    ratios: list[float] = []
    per_round_redis: list[dict[str, Any]] = []
    for round_ in range(rounds):
        order = ("embedded", "redis") if round_ % 2 == 0 else ("redis", "embedded")
        this: dict[str, float] = {}
        for side in order:
            if side == "embedded":
                run = run_scan(argv(str(_fresh(embedded)), test_tree))
            else:
                run, counters, cpu = redis_scan(test_tree)
                per_round_redis.append(per_message(counters, len(test), cpu))
            this[side] = len(test) / run.wall_s
            rates[side].append(round(this[side], 1))
            rows[side].append(run.row(len(test)))
            print(
                f"  round {round_ + 1} {side:<8} {this[side]:7.1f} msg/s"
                f"  log warnings {len(run.warnings)}",
                file=sys.stderr,
            )
        ratios.append(this["redis"] / this["embedded"])
    out["msgs_per_s"] = rates
    out["runs"] = rows
    out["ratio_redis_to_embedded_per_round"] = [round(r, 3) for r in ratios]
    out["median_ratio"] = round(statistics.median(ratios), 3)
    out["redis_per_message"] = per_round_redis[0]
    out["redis_calls_per_message_by_round"] = [
        r["calls_per_message_total"] for r in per_round_redis
    ]
    with server.client() as db0:
        snapshot = db0.strlen("seawall:v:campaigns:snapshot")
        out["after_scan"] = {
            "keys": db0.dbsize(),
            "campaign_snapshot_bytes": snapshot,
            "used_memory_mib": round(int(db0.info("memory")["used_memory"]) / 2**20, 1),
        }

    print("  one more Redis scan under MONITOR (untimed)", file=sys.stderr)
    template.restore()
    with monitored(server) as monitor:
        run_scan(argv(server.url, test_tree))
    out["redis_monitor"] = monitor.summary(len(test))
    control.close()
    return out


# -- 1, 2 and 4: /checkv2 through seawall serve ----------------------------------------


class Setup:
    """One way of serving: started from a fresh copy of the learned state, then stopped."""

    name = ""
    uses_redis = True

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.nodes: list[Seawall] = []

    def start(self) -> list[str]:
        raise NotImplementedError

    def stop(self) -> list[int]:
        return [node.stop() for node in self.nodes]

    def store_warnings(self) -> int:
        """Log lines of the nodes that tell of a failing state store."""
        words = ("state store", "StoreError", "greylisting skipped", "could not record")
        return sum(
            1
            for node in self.nodes
            for line in node.log().splitlines()
            if any(w in line for w in words)
        )


class Embedded(Setup):
    name = "embedded, 1 node x 2 workers"
    uses_redis = False

    def __init__(self, tmp: Path, learned: Path) -> None:
        super().__init__(tmp)
        self.learned = learned

    def start(self) -> list[str]:
        root = self.tmp / "serve-embedded"
        shutil.rmtree(root, ignore_errors=True)
        node = Seawall(root=root, state=_fresh(self.learned), workers=2)
        self.nodes = [node]
        node.start()
        return [node.url("/checkv2")]


class OnRedis(Setup):
    def __init__(self, tmp: Path, template: Template, workers: Sequence[int], name: str) -> None:
        super().__init__(tmp)
        self.template = template
        self.workers = workers
        self.name = name

    def start(self) -> list[str]:
        self.template.restore()
        self.nodes = []
        url = f"redis://{self.template.server.address}/0"
        for n, workers in enumerate(self.workers):
            root = self.tmp / f"serve-redis-{len(self.workers)}-{n}"
            shutil.rmtree(root, ignore_errors=True)
            self.nodes.append(
                Seawall(
                    root=root,
                    state=root / "local",
                    workers=workers,
                    shared=url,
                    extra=f'[detectors.campaigns]\ntracker_listen = "127.0.0.1:{free_port()}"\n',
                )
            )
        for node in self.nodes:
            node.start()
        return [node.url("/checkv2") for node in self.nodes]


def serve_pass(
    setup: Setup,
    samples: Sequence[Sample],
    ips: Mapping[str, str],
    server: RedisServer,
    monitor: bool = False,
) -> dict[str, Any]:
    """Start ``setup``, warm it up, send every sample once at concurrency 16, stop it."""

    def headers(sample: Sample) -> list[str]:
        return [f"IP: {ips[sample.name]}"]

    urls = setup.start()
    control = server.client()
    try:
        asyncio.run(post_spread(urls, samples[:WARMUP], CONCURRENCY, headers))
        time.sleep(0.5)
        control.config_resetstat()
        cpu = redis_cpu(control)
        watcher = Monitor(server) if monitor else None
        if watcher is not None:
            watcher.start()
        result = asyncio.run(post_spread(urls, samples, CONCURRENCY, headers))
        time.sleep(1.5)  # the verdict history and the reputation flush land
        if watcher is not None:
            watcher.stop()
        counters = redis_counters(control)
        policy = policy_pass(setup.nodes[0], samples, ips, server) if monitor else None
    finally:
        codes = setup.stop()
        control.close()
    row = result.summary()
    if not row["first_errors"]:
        del row["first_errors"]
    row["nodes"] = len(urls)
    row["exit_codes"] = codes
    row["store_warnings_in_logs"] = setup.store_warnings()
    if setup.uses_redis:
        row["redis"] = per_message(counters, len(samples), cpu)
    if watcher is not None:
        row["redis_monitor"] = watcher.summary(len(samples))
    if policy is not None:
        row["policy"] = policy
    return row


def policy_pass(
    node: Seawall, samples: Sequence[Sample], ips: Mapping[str, str], server: RedisServer
) -> dict[str, Any]:
    """The policy service's Redis work per request: one RCPT (a new transaction) per sample's
    client address, on one connection as an ``smtpd`` process keeps it; then the same again
    under MONITOR (which costs Redis CPU of its own) for the round trips."""

    def requests(tag: str) -> tuple[float, Counter[str]]:
        answers: Counter[str] = Counter()
        started = time.perf_counter()
        with socket.create_connection(("127.0.0.1", node.ports["policy"]), timeout=10) as sock:
            reader = sock.makefile("rb")
            for n, sample in enumerate(samples):
                request = (
                    "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
                    f"client_address={ips[sample.name]}\nclient_name=unknown\n"
                    f"instance={tag}{n}\nsender=s{n}@sender.example\n"
                    f"recipient=a{n}@isp.example\n\n"
                )
                sock.sendall(request.encode())
                reply = reader.readline().decode().strip()
                while reader.readline().strip():  # up to the blank line
                    pass
                answers[reply.removeprefix("action=").split(" ", 1)[0]] += 1
        return time.perf_counter() - started, answers

    control = server.client()
    control.config_resetstat()
    cpu = redis_cpu(control)
    seconds, answers = requests("a")
    counters = redis_counters(control)
    with monitored(server) as watcher:
        requests("b")
    control.close()
    return {
        "requests": len(samples),
        "seconds_one_connection": round(seconds, 2),
        "answers": dict(answers),
        "redis": per_message(counters, len(samples), cpu),
        "redis_monitor": watcher.summary(len(samples)),
    }


def serve_part(tmp: Path, learned: Learned, server: RedisServer, rounds: int) -> dict[str, Any]:
    samples = corpus_samples(train=False)
    ips = client_ips(samples)
    template = learned.template
    setups: list[Setup] = [
        Embedded(tmp, learned.embedded),
        OnRedis(tmp, template, [2], "redis, 1 node x 2 workers"),
        OnRedis(tmp, template, [1, 1], "redis, 2 nodes x 1 worker"),
    ]
    out: dict[str, Any] = {
        "messages": len(samples),
        "concurrency": CONCURRENCY,
        "distinct_client_ips": len(set(ips.values())),
        "runs": {s.name: [] for s in setups},
    }
    for round_ in range(rounds):
        order = setups if round_ % 2 == 0 else setups[::-1]
        for setup in order:
            row = serve_pass(setup, samples, ips, server)
            out["runs"][setup.name].append(row)
            print(
                f"  round {round_ + 1} {setup.name:<28} {row['msgs_per_s']:7.1f} msg/s"
                f"  p50 {row['p50_ms']:6.2f} ms  p99 {row['p99_ms']:7.2f} ms"
                f"  errors {row['errors']}  store warnings {row['store_warnings_in_logs']}",
                file=sys.stderr,
            )
    out["msgs_per_s"] = {
        name: [row["msgs_per_s"] for row in rows] for name, rows in out["runs"].items()
    }
    base = out["msgs_per_s"][setups[0].name]
    for setup in setups[1:]:
        mine = out["msgs_per_s"][setup.name]
        out.setdefault("ratio_to_embedded_per_round", {})[setup.name] = [
            round(m / b, 3) for m, b in zip(mine, base, strict=True)
        ]
    one, two = setups[1].name, setups[2].name
    out["ratio_two_nodes_to_one_per_round"] = [
        round(t / o, 3) for t, o in zip(out["msgs_per_s"][two], out["msgs_per_s"][one], strict=True)
    ]
    out["median_ratio"] = {
        name: round(statistics.median(ratios), 3)
        for name, ratios in out["ratio_to_embedded_per_round"].items()
    }
    out["median_ratio"]["2 nodes / 1 node"] = round(
        statistics.median(out["ratio_two_nodes_to_one_per_round"]), 3
    )
    print("  one more Redis /checkv2 pass under MONITOR (untimed)", file=sys.stderr)
    monitored_row = serve_pass(setups[1], samples, ips, server, monitor=True)
    out["redis_monitor"] = monitored_row["redis_monitor"]
    out["policy"] = monitored_row["policy"]
    return out


# -- 3: memory ---------------------------------------------------------------------------


class PipelinedStore:
    """The Store's ``incr``, ``get`` and ``put`` exactly as RedisStore sends them, pipelined.

    The same Redis keys (``RedisStore.key``), the same Lua script (``store.redis._INCR``) with
    the same arguments (``bucket_range``, ``bucket_expiry``, ``_ms``), the same HMGET, GET and
    ``SET ... PX``; only the transport differs: what the callers ask in one turn of the event
    loop goes out in one pipeline, so that one bench process drives thousands of messages a
    second (with a round trip per call, RedisStore drove about 750 messages a second from one
    process here: too slow for 1,000,000 messages in the time).  ``decay`` is RedisStore's
    own.  It also notes when each key it wrote expires by Redis's rules, for the keys
    expected alive at any moment.
    """

    def __init__(self, server: RedisServer, db: int, real: RedisStore) -> None:
        self.real = real
        self.server = server
        self.db = db
        self.sha = hashlib.sha1(_INCR.encode()).hexdigest()
        self.queue: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self.expiry: dict[str, dict[str, float]] = defaultdict(dict)  # type -> key -> when
        self.pipelines = 0
        self.commands = 0
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._replies = hiredis.Reader()

    async def start(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(
            self.server.host, self.server.port
        )
        await self._execute([("SELECT", self.db), ("SCRIPT", "LOAD", _INCR)])
        self._task = asyncio.create_task(self._run())

    async def _execute(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """One pipeline: every command in one write, then every reply (RESP, by hiredis)."""
        assert self._reader is not None
        assert self._writer is not None
        self._writer.write(b"".join(hiredis.pack_command(c) for c in commands))
        replies: list[Any] = []
        while len(replies) < len(commands):
            reply = self._replies.gets()
            if reply is False:
                data = await self._reader.read(1 << 16)
                if not data:
                    raise StoreError("Redis closed the connection")
                self._replies.feed(data)
            else:
                replies.append(reply)
        return replies

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            batch, self.queue = self.queue, []
            if not batch:
                continue
            try:
                replies = await self._execute([args for args, _ in batch])
            except (OSError, StoreError) as exc:
                replies = [exc] * len(batch)
            self.pipelines += 1
            self.commands += len(batch)
            for (_, future), reply in zip(batch, replies, strict=True):
                if isinstance(reply, Exception):
                    future.set_exception(StoreError(str(reply)))
                else:
                    future.set_result(reply)

    def _send(self, *args: Any) -> asyncio.Future[Any]:
        future = asyncio.get_running_loop().create_future()
        self.queue.append((args, future))
        self._ready.set()
        return future

    def _expires(self, name: str, at: float, *, grow: bool = True) -> None:
        kind = key_type(name)
        table = self.expiry[kind]
        table[name] = max(at, table.get(name, 0.0)) if grow else at

    async def incr(self, key: str, *, window_s: float, now: float, amount: int = 1) -> int:
        first, last = bucket_range(now, window_s)
        name = self.real.key("c", key)
        if not amount:
            counts = await self._send("HMGET", name, *[str(b) for b in range(first, last + 1)])
            return sum(int(c) for c in counts if c is not None)
        ttl_ms = _ms(bucket_expiry(last, window_s) - now)
        self._expires(name, time.time() + ttl_ms / 1000)  # the script only ever grows it
        total = await self._send("EVALSHA", self.sha, 1, name, last, BUCKETS, int(amount), ttl_ms)
        return int(total)

    async def get(self, key: str) -> bytes | None:
        value: bytes | None = await self._send("GET", self.real.key("v", key))
        return value

    async def put(self, key: str, value: bytes, *, ttl_s: float | None = None) -> None:
        name = self.real.key("v", key)
        if ttl_s is None:
            await self._send("SET", name, bytes(value))
        elif ttl_s * 1000 < 1:
            await self._send("DEL", name)
        else:
            self._expires(name, time.time() + ttl_s, grow=False)
            await self._send("SET", name, bytes(value), "PX", _ms(ttl_s))

    async def claim(self, key: str, value: bytes, *, ttl_s: float) -> bytes:
        return await self.real.claim(key, value, ttl_s=ttl_s)

    async def decay(
        self,
        updates: Mapping[str, Sequence[float]],
        *,
        half_life_s: float,
        now: float,
        ttl_s: float,
    ) -> dict[str, Decayed]:
        got = await self.real.decay(updates, half_life_s=half_life_s, now=now, ttl_s=ttl_s)
        for key, amounts in updates.items():
            if any(amounts):
                self._expires(self.real.key("d", key), time.time() + ttl_s, grow=False)
        return got

    async def delete(self, key: str) -> None:
        await self.real.delete(key)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writer is not None:
            self._writer.close()
        await self.real.close()

    def alive(self, at: float) -> dict[str, int]:
        """Keys of each type that Redis should still hold at ``at`` (expired ones dropped)."""
        out = {}
        for kind, table in self.expiry.items():
            live = {k: t for k, t in table.items() if t > at}
            self.expiry[kind] = live
            out[kind] = len(live)
        return out


def key_type(name: str) -> str:
    """``seawall:c:policy:conn:ip:192.0.2.7`` -> ``c:policy:conn:ip``: the key without the
    namespace and the address or hash at its end."""
    return name.split(":", 1)[1].rsplit(":", 1)[0]


TYPE_GROUPS = {
    "c:policy:conn:ip": "policy windows (conn, rcpt x IP, /24)",
    "c:policy:rcpt:ip": "policy windows (conn, rcpt x IP, /24)",
    "c:policy:conn:net": "policy windows (conn, rcpt x IP, /24)",
    "c:policy:rcpt:net": "policy windows (conn, rcpt x IP, /24)",
    "c:policy:spam": "verdict history (spam, ham per IP)",
    "c:policy:ham": "verdict history (spam, ham per IP)",
    "v:grey": "greylist triplets",
    "d:rep:ip": "reputation (per IP, per /24)",
    "d:rep:net": "reputation (per IP, per /24)",
}


@dataclass(frozen=True)
class Windows:
    """The short windows of the memory run (seconds)."""

    policy_s: float
    history_s: float
    greylist_s: float
    reputation_ttl_s: float

    def lifetime(self, kind: str) -> float:
        """How long a key of ``kind`` lives after it was last written."""
        if kind.startswith("c:policy:conn") or kind.startswith("c:policy:rcpt"):
            return self.policy_s
        if kind.startswith("c:policy:"):
            return self.history_s
        if kind == "v:grey":
            return self.greylist_s
        return self.reputation_ttl_s


@dataclass
class Traffic:
    """A synthetic stream: who sends each message, from which address, to whom.

    30% of the messages come from a botnet of 50,000 addresses in 20,000 /24s (each bot
    about as busy as another; every message spam, each with a forged sender of its own);
    70% from 200,000 legitimate sending addresses in 40,000 /24s, picked by a Zipf law of
    exponent 0.6 (a big sender is busier than a small one), each with 5 sender addresses.
    Recipients: 1,000,000 accounts, uniform.  Seeded: the same stream every run.
    """

    seed: int = 1
    bots: int = 50_000
    bot_nets: int = 20_000
    senders: int = 200_000
    sender_nets: int = 40_000
    bot_share: float = 0.3
    zipf: float = 0.6
    accounts: int = 1_000_000
    bot_ips: list[str] = field(default_factory=list)
    sender_ips: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        self.bot_ips = _addresses(rng, self.bots, self.bot_nets)
        self.sender_ips = _addresses(rng, self.senders, self.sender_nets)
        weights = 1.0 / np.arange(1, self.senders + 1) ** self.zipf
        self._cumulative = np.cumsum(weights / weights.sum())
        self._rng = rng

    def chunk(self, n: int) -> Iterator[tuple[str, bool, str, str]]:
        """The next ``n`` messages: (client address, spam, MAIL FROM, RCPT TO)."""
        rng = self._rng
        bot = rng.random(n) < self.bot_share
        bot_pick = rng.integers(0, self.bots, n)
        sender_pick = np.minimum(np.searchsorted(self._cumulative, rng.random(n)), self.senders - 1)
        mailbox = rng.integers(0, 5, n)
        forged = rng.integers(0, 2**40, n)
        rcpt = rng.integers(0, self.accounts, n)
        for i in range(n):
            if bot[i]:
                ip = self.bot_ips[bot_pick[i]]
                sender = f"{forged[i]:x}@forged.example"
            else:
                k = int(sender_pick[i])
                ip = self.sender_ips[k]
                sender = f"u{mailbox[i]}@sender{k}.example"
            yield ip, bool(bot[i]), sender, f"a{rcpt[i]}@isp.example"


def _addresses(rng: np.random.Generator, count: int, nets: int) -> list[str]:
    """``count`` distinct public IPv4 addresses spread over ``nets`` /24 networks."""
    firsts = [o for o in range(11, 224) if o not in (100, 127, 169, 172, 192, 198, 203)]
    net_list = {
        (int(rng.choice(firsts)), int(rng.integers(0, 256)), int(rng.integers(0, 256)))
        for _ in range(nets * 2)
    }
    chosen = sorted(net_list)[:nets]
    order = rng.permutation(len(chosen))
    chosen = [chosen[i] for i in order]
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        a, b, c = chosen[int(rng.integers(0, len(chosen)))]
        ip = f"{a}.{b}.{c}.{int(rng.integers(1, 255))}"
        if ip not in seen:
            seen.add(ip)
            out.append(ip)
    return out


async def one_message(
    store: Any,
    reputation: Reputation,
    policy: PolicySettings,
    windows: Windows,
    message: tuple[str, bool, str, str],
    now: float,
) -> None:
    """What ``seawall serve`` writes for one message: the policy service at its RCPT (one
    recipient, a new transaction), the scan's reputation record, the greylist triplet (as if
    every message scored in the greylist band: the upper bound), the verdict history."""
    ip, spam, sender, rcpt = message
    address = parse_ip(ip)
    assert address is not None
    await count(store, address, Events(connection=True, recipient=True), policy, now=now)
    await reputation.record(ip, spam=spam, ham=not spam, now=now)
    key = "grey:" + hashlib.sha1("\0".join((network_of(ip), sender, rcpt)).encode()).hexdigest()
    if await store.get(key) is None:
        await store.put(key, repr(now).encode(), ttl_s=windows.greylist_s)
    await record_verdict(store, ip, spam=spam, now=now, window_s=windows.history_s)


def memory_settings(windows: Windows) -> tuple[PolicySettings, ReputationSettings]:
    policy = PolicySettings(window_s=windows.policy_s, history_window_s=windows.history_s)
    reputation = ReputationSettings(
        ttl_s=windows.reputation_ttl_s, half_life_s=windows.reputation_ttl_s / 2
    )
    return policy, reputation


async def validate(server: RedisServer, messages: int) -> dict[str, Any]:
    """The same messages at the same instants through RedisStore (database 2) and through
    PipelinedStore (database 3): the same keys, of the same size.  The windows are long
    enough that nothing expires before both databases are read."""
    windows = Windows(600.0, 600.0, 1200.0, 2400.0)
    policy, rep_settings = memory_settings(windows)
    real = RedisStore.from_url(f"redis://{server.address}/2", socket_timeout=5.0)
    piped = PipelinedStore(
        server, 3, RedisStore.from_url(f"redis://{server.address}/3", socket_timeout=5.0)
    )
    await piped.start()
    reps = [Reputation(real, rep_settings), Reputation(piped, rep_settings)]  # type: ignore[arg-type]
    traffic = Traffic(seed=2)
    slots = asyncio.Semaphore(8)
    errors = 0

    async def both(message: tuple[str, bool, str, str]) -> None:
        nonlocal errors
        try:
            now = time.time()
            await one_message(real, reps[0], policy, windows, message, now)
            await one_message(piped, reps[1], policy, windows, message, now)
        except StoreError:
            errors += 1
        finally:
            slots.release()

    started = time.perf_counter()
    tasks = set()
    for message in traffic.chunk(messages):
        await slots.acquire()
        task = asyncio.create_task(both(message))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    for rep in reps:
        await rep.flush()
    seconds = time.perf_counter() - started
    await real.close()
    await piped.close()
    out: dict[str, Any] = {"messages": messages, "seconds": round(seconds, 1), "errors": errors}
    sides = {}
    for db in (2, 3):
        with server.client(db) as client:
            keys = sorted(client.scan_iter(count=5000))
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.memory_usage(key, samples=0)
            sizes = pipe.execute()
            sides[db] = (set(keys), sum(sizes), Counter(key_type(k.decode()) for k in keys))
            client.flushdb()
    (keys_a, bytes_a, types_a), (keys_b, bytes_b, types_b) = sides[2], sides[3]
    out["keys_redisstore"] = len(keys_a)
    out["keys_pipelined"] = len(keys_b)
    out["keys_only_in_one"] = len(keys_a ^ keys_b)
    out["memory_usage_bytes_redisstore"] = bytes_a
    out["memory_usage_bytes_pipelined"] = bytes_b
    out["types_equal"] = types_a == types_b
    return out


async def drive(
    server: RedisServer, windows: Windows, messages: int, rate: float, every: int
) -> dict[str, Any]:
    """``messages`` at ``rate`` a second through PipelinedStore on database 0, sampling
    ``used_memory`` every ``every`` messages."""
    policy, rep_settings = memory_settings(windows)
    url = f"redis://{server.address}/0"
    store = PipelinedStore(server, 0, RedisStore.from_url(url, socket_timeout=5.0))
    await store.start()
    reputation = Reputation(store, rep_settings)  # type: ignore[arg-type]
    traffic = Traffic(seed=1)
    control = server.client()
    control.flushall()
    time.sleep(0.5)
    baseline = int(control.info("memory")["used_memory"])
    slots = asyncio.Semaphore(512)
    errors = 0
    samples: list[dict[str, Any]] = []

    async def one(message: tuple[str, bool, str, str]) -> None:
        nonlocal errors
        try:
            await one_message(store, reputation, policy, windows, message, time.time())
        except StoreError:
            errors += 1
        finally:
            slots.release()

    def sample(sent: int) -> None:
        now = time.time()
        memory = control.info("memory")
        keyspace = control.info("keyspace").get("db0", {"keys": 0, "expires": 0})
        elapsed = time.perf_counter() - started
        row = {
            "messages": sent,
            "elapsed_s": round(elapsed, 1),
            "rate": round(sent / elapsed, 1) if elapsed else 0.0,
            "used_memory_mib": round((int(memory["used_memory"]) - baseline) / 2**20, 2),
            "keys": int(keyspace["keys"]),
            "keys_without_ttl": int(keyspace["keys"]) - int(keyspace["expires"]),
            "alive_by_ttl": store.alive(now),
        }
        samples.append(row)
        print(
            f"  {sent:>9,} messages {elapsed:6.1f} s  {row['rate']:7.1f} msg/s"
            f"  used_memory +{row['used_memory_mib']:7.1f} MiB  keys {row['keys']:>9,}",
            file=sys.stderr,
        )

    started = time.perf_counter()
    tasks: set[asyncio.Task[None]] = set()
    sent = 0
    sample(0)
    chunk = 10_000
    while sent < messages:
        for message in traffic.chunk(min(chunk, messages - sent)):
            due = started + sent / rate
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            await slots.acquire()
            task = asyncio.create_task(one(message))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
            if sent % every == 0:
                sample(sent)
    await asyncio.gather(*tasks)
    await reputation.flush()
    seconds = time.perf_counter() - started
    if sent % every:
        sample(sent)
    out: dict[str, Any] = {
        "messages": messages,
        "target_rate": rate,
        "seconds": round(seconds, 1),
        "rate": round(messages / seconds, 1),
        "errors": errors,
        "pipelines": store.pipelines,
        "commands_per_pipeline": round(store.commands / max(1, store.pipelines), 1),
        "baseline_used_memory_mib": round(baseline / 2**20, 2),
        "samples": samples,
    }
    out["end"] = key_census(control, store.alive(time.time()))
    await store.close()
    control.close()
    return out


def key_census(client: redis.Redis, alive: Mapping[str, int]) -> dict[str, Any]:
    """Every key of database 0 by type (SCAN: the bench may), with MEMORY USAGE of a sample
    of each, and what MEMORY STATS says the two key tables cost per key."""
    by_type: dict[str, list[bytes]] = defaultdict(list)
    counts: Counter[str] = Counter()
    for key in client.scan_iter(count=10_000):
        kind = key_type(key.decode())
        counts[kind] += 1
        if len(by_type[kind]) < 3000:
            by_type[kind].append(key)
    stats = client.memory_stats()
    db = stats.get("db.0", {})
    keys = sum(counts.values())
    tables = int(db.get("overhead.hashtable.main", 0)) + int(
        db.get("overhead.hashtable.expires", 0)
    )
    # MEMORY USAGE counts a key's name, object, value and its entry in the main table
    # (24 bytes); the rest of the two tables (the expires entry and both bucket arrays) is
    # spread over every key.
    table_extra = tables / keys - 24 if keys else 0.0
    types = {}
    for kind, sample in sorted(by_type.items()):
        pipe = client.pipeline(transaction=False)
        for key in sample:
            pipe.memory_usage(key, samples=0)
        sizes = [s for s in pipe.execute() if s is not None]
        usage = sum(sizes) / len(sizes) if sizes else 0.0
        types[kind] = {
            "keys": counts[kind],
            "alive_by_ttl": alive.get(kind, 0),
            "memory_usage_bytes": round(usage, 1),
            "bytes_per_key": round(usage + table_extra, 1),
        }
    return {
        "keys": keys,
        "types": types,
        "table_bytes_per_key_beyond_memory_usage": round(table_extra, 1),
        "memory_stats": {
            k: stats.get(k)
            for k in ("dataset.bytes", "overhead.total", "allocator.allocated", "fragmentation")
        },
        "used_memory_mib": round(int(client.info("memory")["used_memory"]) / 2**20, 2),
    }


def messages_in_last(samples: Sequence[dict[str, Any]], seconds: float) -> float:
    """Messages sent in the last ``seconds`` before the final sample (interpolated)."""
    end = samples[-1]
    at = end["elapsed_s"] - seconds
    if at <= 0:
        return float(end["messages"])
    for before, after in zip(samples, samples[1:], strict=False):
        if before["elapsed_s"] <= at <= after["elapsed_s"]:
            span = after["elapsed_s"] - before["elapsed_s"]
            share = (at - before["elapsed_s"]) / span if span else 0.0
            sent = before["messages"] + share * (after["messages"] - before["messages"])
            return float(end["messages"] - sent)
    return float(end["messages"])


def memory_analysis(run: dict[str, Any], windows: Windows) -> dict[str, Any]:
    """The plateau, and the formula: bytes per key x keys per message x messages in the window.

    Bytes per key come from the census after the run (MEMORY USAGE of a sample of each type,
    plus each key's share of the key tables), and are checked against ``used_memory`` after
    the census's SCAN, which frees every expired key it meets.  Keys per message are the
    keys alive by their TTLs at the last sample over the messages of the key's lifetime
    before it.  During the run ``used_memory`` also holds keys that have expired but that
    Redis has not reclaimed yet: the measured plateau over the formula shows how many.
    """
    samples = run["samples"]
    last = samples[-1]
    census = run["end"]
    per_key = {kind: row["bytes_per_key"] for kind, row in census["types"].items()}
    formula: dict[str, Any] = {}
    for kind, bytes_per_key in per_key.items():
        life = windows.lifetime(kind)
        in_window = messages_in_last(samples, life)
        alive = last["alive_by_ttl"].get(kind, 0)
        keys_per_message = alive / in_window if in_window else 0.0
        formula[kind] = {
            "group": TYPE_GROUPS.get(kind, kind),
            "lifetime_s": life,
            "messages_in_window": round(in_window),
            "keys_alive": alive,
            "keys_per_message": round(keys_per_message, 4),
            "bytes_per_key": bytes_per_key,
            "mib": round(bytes_per_key * alive / 2**20, 2),
            "mib_per_100k_messages_in_window": round(
                bytes_per_key * keys_per_message * 100_000 / 2**20, 2
            ),
        }

    def predicted(sample: dict[str, Any]) -> float:
        alive = sample["alive_by_ttl"]
        return sum(per_key.get(k, 0.0) * n for k, n in alive.items()) / 2**20

    longest = max(windows.lifetime(kind) for kind in per_key) if per_key else 0.0
    plateau = [s for s in samples if s["elapsed_s"] >= longest * 1.1 and s["messages"]]
    census_formula = sum(row["bytes_per_key"] * row["keys"] for row in census["types"].values())
    census_measured = census["used_memory_mib"] - run["baseline_used_memory_mib"]
    out: dict[str, Any] = {
        "by_type": formula,
        "mib_per_100k_messages_in_window_all_types": round(
            sum(f["mib_per_100k_messages_in_window"] for f in formula.values()), 2
        ),
        "formula_mib_at_last_sample": round(predicted(last), 2),
        "measured_mib_at_last_sample": last["used_memory_mib"],
        "census": {
            "keys": census["keys"],
            "formula_mib": round(census_formula / 2**20, 2),
            "measured_mib": round(census_measured, 2),
        },
        "plateau_from_s": round(longest * 1.1, 1),
    }
    if plateau:
        mem = [s["used_memory_mib"] for s in plateau]
        ratios = [s["used_memory_mib"] / predicted(s) for s in plateau if predicted(s) > 0]
        stale = [
            (s["keys"] - sum(s["alive_by_ttl"].values())) / s["keys"] for s in plateau if s["keys"]
        ]
        out["plateau"] = {
            "samples": len(plateau),
            "from_messages": plateau[0]["messages"],
            "used_memory_mib": {
                "min": min(mem),
                "median": round(statistics.median(mem), 2),
                "max": max(mem),
            },
            "keys": {
                "min": min(s["keys"] for s in plateau),
                "max": max(s["keys"] for s in plateau),
            },
            "keys_alive_by_ttl": {
                "min": min(sum(s["alive_by_ttl"].values()) for s in plateau),
                "max": max(sum(s["alive_by_ttl"].values()) for s in plateau),
            },
            "formula_mib": {
                "min": round(min(predicted(s) for s in plateau), 2),
                "max": round(max(predicted(s) for s in plateau), 2),
            },
            "measured_over_formula": {"min": round(min(ratios), 3), "max": round(max(ratios), 3)},
            "expired_not_reclaimed_share_of_keys": {
                "min": round(min(stale), 3),
                "max": round(max(stale), 3),
            },
        }
    return out


def memory_part(
    server: RedisServer, messages: int, rate: float, windows: Windows
) -> dict[str, Any]:
    import uvloop

    print("  RedisStore against PipelinedStore, same messages (equivalence)", file=sys.stderr)
    check = uvloop.run(validate(server, 10_000))
    print(f"  {json.dumps(check)}", file=sys.stderr)
    every = max(1, messages // 40)
    run = uvloop.run(drive(server, windows, messages, rate, every))
    return {
        "windows": windows.__dict__,
        "traffic": {
            "bots": 50_000,
            "bot_nets_24": 20_000,
            "bot_share": 0.3,
            "senders": 200_000,
            "sender_nets_24": 40_000,
            "sender_zipf_exponent": 0.6,
            "accounts": 1_000_000,
            "greylist": "every message's triplet (upper bound)",
        },
        "equivalence": check,
        "run": run,
        "analysis": memory_analysis(run, windows),
    }


# -- report --------------------------------------------------------------------------------


def report(results: dict[str, Any]) -> str:
    lines = [f"Seawall on Redis ({results['redis_version']}), {results['cpus']} CPUs"]
    scan = results.get("scan")
    if scan:
        lines.append(
            f"\nseawall scan --workers 2, {scan['messages']} messages, {scan['rounds']} rounds"
        )
        learn = results["learned"]["learn_s"]
        lines.append(
            f"  seawall learn of {results['learned']['messages']} messages: embedded"
            f" {learn['embedded']} s, Redis {learn['redis']} s"
        )
        for side in ("embedded", "redis"):
            lines.append(f"  {side:<9} msg/s {scan['msgs_per_s'][side]}")
        lines.append(
            f"  Redis / embedded per round {scan['ratio_redis_to_embedded_per_round']},"
            f" median {scan['median_ratio']}"
        )
        lines += _work("  Redis work per message (scan)", scan["redis_per_message"])
        lines += _monitor("  under MONITOR (scan)", scan["redis_monitor"])
    serve = results.get("serve")
    if serve:
        lines.append(
            f"\n/checkv2, concurrency {serve['concurrency']}, {serve['messages']} messages"
        )
        for name, rates in serve["msgs_per_s"].items():
            lines.append(f"  {name:<30} msg/s {rates}")
        for name, ratios in serve["ratio_to_embedded_per_round"].items():
            lines.append(f"  {name} / embedded: {ratios}, median {serve['median_ratio'][name]}")
        lines.append(
            f"  2 nodes / 1 node: {serve['ratio_two_nodes_to_one_per_round']},"
            f" median {serve['median_ratio']['2 nodes / 1 node']}"
        )
        redis_row = serve["runs"]["redis, 1 node x 2 workers"][0]
        lines += _work("  Redis work per message (/checkv2, 1 node)", redis_row["redis"])
        lines += _monitor("  under MONITOR (/checkv2)", serve["redis_monitor"])
        policy = serve["policy"]
        lines.append(f"  policy service, {policy['requests']} RCPT requests: {policy['answers']}")
        lines += _work("  Redis work per policy request", policy["redis"])
        lines += _monitor("  under MONITOR (policy)", policy["redis_monitor"])
    memory = results.get("memory")
    if memory:
        run, analysis = memory["run"], memory["analysis"]
        check = memory["equivalence"]
        lines.append(
            f"\nmemory: {run['messages']:,} messages in {run['seconds']} s ({run['rate']} msg/s),"
            f" windows {memory['windows']}"
        )
        lines.append(
            f"  RedisStore vs PipelinedStore on {check['messages']:,} messages: keys"
            f" {check['keys_redisstore']:,} / {check['keys_pipelined']:,}, only in one"
            f" {check['keys_only_in_one']}, MEMORY USAGE {check['memory_usage_bytes_redisstore']:,}"
            f" / {check['memory_usage_bytes_pipelined']:,} B"
        )
        plateau = analysis.get("plateau")
        if plateau:
            p = plateau["used_memory_mib"]
            lines.append(
                f"  plateau (after {analysis['plateau_from_s']} s, {plateau['samples']} samples):"
                f" used_memory +{p['min']} .. +{p['max']} MiB (median {p['median']});"
                f" formula on keys alive {plateau['formula_mib']['min']}"
                f" .. {plateau['formula_mib']['max']} MiB; measured / formula"
                f" {plateau['measured_over_formula']['min']} .. "
                f"{plateau['measured_over_formula']['max']}; expired but not reclaimed"
                f" {plateau['expired_not_reclaimed_share_of_keys']['min']:.0%} .."
                f" {plateau['expired_not_reclaimed_share_of_keys']['max']:.0%} of keys"
            )
        for kind, row in analysis["by_type"].items():
            lines.append(
                f"  {kind:<18} {row['keys_alive']:>8,} keys {row['bytes_per_key']:6.1f} B/key"
                f" = {row['keys_per_message']:.3f} keys/msg x {row['messages_in_window']:>7,}"
                f" msgs in {row['lifetime_s']:g} s -> {row['mib']:6.2f} MiB"
                f" ({row['mib_per_100k_messages_in_window']} MiB per 100k msgs in window)"
            )
        census = analysis["census"]
        lines.append(
            f"  after the census SCAN: {census['keys']:,} keys, formula"
            f" {census['formula_mib']} MiB, measured {census['measured_mib']} MiB"
        )
    lines.append(f"\nbench took {results['seconds']} s")
    return "\n".join(lines)


def _work(title: str, row: dict[str, Any]) -> list[str]:
    calls = ", ".join(
        f"{k} {v}" for k, v in sorted(row["calls_per_message"].items(), key=lambda kv: -kv[1])
    )
    return [
        f"{title}: {row['calls_per_message_total']} calls ({calls});"
        f" {row['net_bytes_in_per_message']} B in, {row['net_bytes_out_per_message']} B out;"
        f" Redis CPU {row['redis_cpu_ms_per_message']} ms; {row['connections_opened']} connections"
    ]


def _monitor(title: str, row: dict[str, Any]) -> list[str]:
    client = ", ".join(
        f"{k} {v}"
        for k, v in sorted(row["client_commands_per_message"].items(), key=lambda kv: -kv[1])
    )
    return [
        f"{title}: {row['round_trips_per_message']} client commands (round trips) per message"
        f" ({client}); EVALSHA by script {row['evalsha_per_message_by_script']};"
        f" {row['commands_inside_scripts']} commands inside scripts"
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=4, help="scan rounds (A B B A ...)")
    parser.add_argument("--serve-rounds", type=int, default=4)
    parser.add_argument("--mem-messages", type=int, default=1_000_000)
    parser.add_argument("--mem-rate", type=float, default=2500.0, help="messages a second")
    parser.add_argument(
        "--windows",
        default="30,30,60,120",
        help="policy, history, greylist and reputation TTL seconds of the memory run",
    )
    parser.add_argument(
        "--expire-effort",
        type=int,
        default=None,
        help="redis-server's active-expire-effort (1-10; Redis's default, 1, when not given)",
    )
    parser.add_argument("--skip-scan", action="store_true")
    parser.add_argument("--skip-serve", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    windows = Windows(*(float(x) for x in args.windows.split(",")))
    started = time.perf_counter()
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory(prefix="seawall-bench-redis-") as tmp_name:
        tmp = Path(tmp_name)
        tmp.chmod(0o755)
        options = {}
        if args.expire_effort is not None:
            options["active-expire-effort"] = str(args.expire_effort)
        server = RedisServer(tmp / "redis", options=options)
        results["redis_options"] = options
        with server.running():
            with server.client() as client:
                results["redis_version"] = client.info("server")["redis_version"]
            if not args.skip_scan or not args.skip_serve:
                print("seawall learn, embedded and into Redis...", file=sys.stderr)
                learned = learn_both(tmp, server)
                results["learned"] = learned.info
            if not args.skip_scan:
                print("seawall scan, embedded against Redis...", file=sys.stderr)
                results["scan"] = scan_part(learned, server, args.rounds)
                _save(results)
            if not args.skip_serve:
                print("/checkv2 through seawall serve...", file=sys.stderr)
                results["serve"] = serve_part(tmp, learned, server, args.serve_rounds)
                _save(results)
            if not args.skip_memory:
                print("memory...", file=sys.stderr)
                results["memory"] = memory_part(server, args.mem_messages, args.mem_rate, windows)
    results["loadavg_end"] = os.getloadavg()
    results["seconds"] = round(time.perf_counter() - started, 1)
    out = _save(results)
    print(report(results))
    print(f"written to {out}", file=sys.stderr)
    return 0


def _save(results: dict[str, Any]) -> Path:
    out = ROOT / ".cache" / "bench" / "redis.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    return out


if __name__ == "__main__":
    raise SystemExit(main())
