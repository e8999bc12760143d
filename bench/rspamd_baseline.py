"""Rspamd baseline for the Seawall benchmark: Debian's rspamd 3.4 scanning the same test half.

    .venv/bin/python -m bench.rspamd_baseline [--concurrency 4,16,64] [--workers 2]
        [--no-bayes] [--limit N] [--json-out FILE] [--log-dir DIR] [--hs-cache-dir DIR]

Needs ``apt-get install -y rspamd redis-server`` (redis-server is optional: without it the
Bayes phase is skipped and reported as such).  Progress and a table go to stderr, the JSON
summary to stdout (and to ``--json-out``).  Exit status: 0 ok, 1 some request failed,
2 rspamd missing or failed to start, 130 interrupted.

What it does, all on 127.0.0.1 and under one temporary directory:

1. Renders ``bench/rspamd/`` into a private ``$LOCAL_CONFDIR`` (the stock rules, scores and
   module defaults are still read from ``/etc/rspamd``) with its own ``$DBDIR``, ``$RUNDIR`` and
   ``$LOGDIR``, and a top-level config with exactly ``--workers`` normal workers (the one that
   serves ``/checkv2``) and one controller, each on a free loopback port; no fuzzy storage
   worker, and no proxy except for ``milter_rspamd`` (bench.serve's milter in Postfix), which
   adds Rspamd's proxy worker in milter mode forwarding to the normal workers.
2. Phase ``no_bayes``: starts ``rspamd -f`` as a child, waits until it listens and its
   hyperscan databases are loaded, sends 200 unmeasured warm-up requests, then POSTs every
   test-half message once at each concurrency (``bench/load.py``).
3. Phase ``bayes``: starts a throw-away ``redis-server`` (no persistence) on a free loopback
   port, restarts rspamd with the Bayes classifier pointed at it, teaches it the training half
   through the controller (``/learnspam``, ``/learnham``), then measures again.
4. Stops rspamd (SIGTERM to the main process, then SIGKILL to its process group if it lingers)
   and redis, on success, error, Ctrl-C or SIGTERM alike, and checks that no process is left.

No lookup leaves the machine.  Modules that query DNS or fetch maps over HTTPS are disabled
(``DISABLED_MODULES`` below says which and why), the modules that stay read only packaged maps,
and rspamd's resolver is pointed at a stub on loopback that answers REFUSED at once and counts
every query (``dns_queries`` per phase, ``dns_queries_top`` by name).  The queries that remain
are once_received's PTR lookups: the requests come from 127.0.0.1 with no ``IP`` header, so
rspamd takes the sender's address from the Received chain and, lacking a ``Hostname`` header,
asks for its reverse name;
the stub's instant REFUSED makes that RDNS_NONE (score 1.0) for those messages, as a resolver
that knows no PTR record would.  Keeping once_received keeps its Received-count heuristics,
which Seawall mirrors.

Hyperscan databases (about 30 s of compiling on two cores the first time) are kept in
``--hs-cache-dir`` (default ``.cache/rspamd-hs`` in the checkout) so later runs start in about a
second; rspamd checks each cached file against its own build and recompiles when it differs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from bench.load import (
    DEFAULT_CONCURRENCY,
    LoadResult,
    Sample,
    corpus_samples,
    format_table,
    parse_concurrency,
    run_load,
)
from seawall.learning import interleaved

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "rspamd"
REPO = HERE.parent
DEFAULT_HS_CACHE = REPO / ".cache" / "rspamd-hs"
APT_PACKAGES = ("rspamd", "redis-server")
WARMUP = 200
START_TIMEOUT_S = 150.0
STOP_TIMEOUT_S = 15.0
TIME_BUDGET_S = 150.0  # measuring stops starting new passes past this (default --time-budget)
HARD_DEADLINE_EXTRA_S = 25  # then SIGALRM ends the run: 175 s in all by default
BAYES_MIN_LEFT_S = 60.0  # learning the training half alone takes ~20 s on two cores

# Modules switched off with `enabled = false` in the private local.d, and why.  Everything else
# keeps Debian's defaults.  Modules that are off by default upstream (mx_check, rspamd_update,
# bimi, dcc, antivirus, external_services, spamassassin, clickhouse, elastic without servers...)
# are left as they are.
DISABLED_MODULES: tuple[tuple[str, str], ...] = (
    ("rbl", "DNS blocklists (IP, HELO, From, URL and email lists; SURBL/URIBL rules too)"),
    ("surbl", "legacy URL-blocklist section, converted to rbl rules: DNS"),
    ("emails", "legacy email-blocklist section, converted to rbl rules: DNS"),
    ("asn", "ASN and country of the sending IP: DNS TXT lookups"),
    ("spf", "SPF records: DNS"),
    ("dkim", "DKIM verification fetches public keys: DNS"),
    ("dmarc", "DMARC policy records: DNS (and its reports use Redis)"),
    ("arc", "ARC verification fetches public keys: DNS"),
    ("whitelist", "SPF/DKIM/DMARC-based allow lists: no results without those modules"),
    ("fuzzy_check", "hash queries to the public fuzzy servers (UDP to rspamd.com)"),
    ("multimap", "every stock rule (freemail/disposable lists, all scored 0) reads an HTTPS map"),
    ("greylist", "needs Redis; an MTA-side action, not a scan result"),
    ("ratelimit", "needs Redis; per-sender rate state, not content filtering"),
    ("neural", "needs Redis and a trained network"),
    ("reputation", "needs Redis (and DNS for its SURBL-style rules)"),
    ("replies", "needs Redis: remembers our own outgoing Message-IDs"),
    ("history_redis", "needs Redis: scan history"),
    ("url_redirector", "needs Redis and follows redirecting URLs over HTTP"),
)
# Modules that stay on but lose their network-dependent parts (bench/rspamd/):
#   hfilter     HELO, MAIL FROM and Message-ID host checks (A/AAAA/MX lookups) off
#   phishing    PhishTank (DNS) and OpenPhish (HTTPS feed) off; packaged redirector map only
#   mime_types, mid   packaged maps only, instead of maps.rspamd.com first
PARTLY_DISABLED: dict[str, str] = {
    "hfilter": "helo_enabled, from_enabled, mid_enabled = false (they resolve A/AAAA/MX)",
    "phishing": "phishtank and openphish off; exception map from the package only",
    "mime_types": "map from the package only (stock: maps.rspamd.com first)",
    "mid": "map from the package only (stock: maps.rspamd.com first)",
}


class BaselineError(Exception):
    """rspamd (or redis) is missing, failed to start, or the run went over its deadline."""


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _raise_deadline(signum: int, frame: FrameType | None) -> None:
    raise BaselineError("run went past its hard deadline; stopping")


@dataclass(frozen=True, slots=True)
class Budget:
    """Wall-clock budget of a run: passes that would not finish in time are skipped."""

    deadline: float  # time.monotonic()

    @classmethod
    def of(cls, seconds: float) -> Budget:
        return cls(time.monotonic() + seconds)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def fits(self, seconds: float) -> bool:
        return seconds <= self.left()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rspamd_version() -> str:
    exe = shutil.which("rspamd")
    if exe is None:
        raise BaselineError("rspamd not found: apt-get install -y " + " ".join(APT_PACKAGES))
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    match = re.search(r"version\s+(\S+)", out.stdout + out.stderr)
    return match.group(1) if match else (out.stdout.strip() or "unknown")


class DnsStub:
    """A UDP 'resolver' on loopback: answers every query REFUSED and remembers its name."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = int(self._sock.getsockname()[1])
        self._queries: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="dns-stub", daemon=True)

    def __enter__(self) -> DnsStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()

    def queries(self) -> Counter[str]:
        with self._lock:
            return Counter(self._queries)

    def total(self) -> int:
        with self._lock:
            return sum(self._queries.values())

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                packet, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if len(packet) < 12:
                continue
            name, end = _question(packet)
            with self._lock:
                self._queries[name] += 1
            # Same id and question; QR=1, keep RD, RA=0, RCODE=5 (REFUSED); no records.
            flags = bytes([0x80 | (packet[2] & 0x01), 0x05])
            qdcount = b"\x00\x01" if end else b"\x00\x00"
            reply = packet[:2] + flags + qdcount + b"\x00" * 6 + packet[12:end]
            with contextlib.suppress(OSError):
                self._sock.sendto(reply, peer)


def _question(packet: bytes) -> tuple[str, int]:
    """The first question's name and the offset just past it (0 when unreadable)."""
    labels: list[str] = []
    pos = 12
    while pos < len(packet):
        size = packet[pos]
        if size == 0:
            end = pos + 5  # the zero byte, QTYPE and QCLASS
            return ".".join(labels) or ".", end if end <= len(packet) else 0
        if size & 0xC0:
            break
        labels.append(packet[pos + 1 : pos + 1 + size].decode("ascii", "replace"))
        pos += 1 + size
    return ".".join(labels) or "?", 0


@dataclass(frozen=True, slots=True)
class Layout:
    """The private directories of one run."""

    root: Path

    @property
    def conf(self) -> Path:
        return self.root / "conf"

    @property
    def db(self) -> Path:
        return self.root / "db"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def log(self) -> Path:
        return self.root / "log"

    def make(self) -> None:
        for path in (self.conf, self.db, self.run, self.log):
            path.mkdir(parents=True, exist_ok=True)

    def variables(self) -> list[str]:
        return [
            f"--var=LOCAL_CONFDIR={self.conf}",
            f"--var=DBDIR={self.db}",
            f"--var=RUNDIR={self.run}",
            f"--var=LOGDIR={self.log}",
        ]


_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")


def render_config(layout: Layout, values: Mapping[str, str], *, bayes: bool) -> Path:
    """Write bench/rspamd/ into ``layout.conf``; return the top-level config file."""
    if layout.conf.exists():
        shutil.rmtree(layout.conf)
    layout.conf.mkdir(parents=True)
    for source in sorted(TEMPLATES.rglob("*")):
        if source.is_dir():
            continue
        relative = source.relative_to(TEMPLATES)
        if relative.name == "classifier-bayes.conf.in" and not bayes:
            continue
        target = layout.conf / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        text = source.read_text(encoding="utf-8")
        if source.suffix == ".in":
            target = target.with_suffix("")
            text = _render(text, values, source)
        target.write_text(text, encoding="utf-8")
    local = layout.conf / "local.d"
    for module, reason in DISABLED_MODULES:
        (local / f"{module}.conf").write_text(
            f"# Disabled for the Seawall benchmark: {reason}.\nenabled = false;\n",
            encoding="utf-8",
        )
    return layout.conf / "rspamd.conf"


def _render(text: str, values: Mapping[str, str], source: Path) -> str:
    missing = sorted(set(_PLACEHOLDER.findall(text)) - set(values))
    if missing:
        raise BaselineError(f"{source}: no value for {', '.join(missing)}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def _stop_process(proc: subprocess.Popen[bytes], name: str) -> bool:
    """SIGTERM, then SIGKILL to the whole process group; True when nothing is left of it."""
    pgid = proc.pid  # started with start_new_session=True: the group is the child's own pid
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            print(f"{name} ignored SIGTERM; killing process group {pgid}", file=sys.stderr)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while True:
        try:
            os.killpg(pgid, 0)  # anything (workers, helpers) still in the group?
        except ProcessLookupError:
            break
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        time.sleep(0.1)
        if time.monotonic() > deadline + 5:
            return False
    if proc.poll() is None:
        proc.wait(timeout=5)
    return True


def _spawn(argv: Sequence[str], log_path: Path) -> subprocess.Popen[bytes]:
    # setpriv --pdeathsig: the child gets SIGTERM if this harness dies without cleaning up.
    prefix = ["setpriv", "--pdeathsig", "TERM", "--"] if shutil.which("setpriv") else []
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [*prefix, *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no {path.name})"
    return "\n".join(text.splitlines()[-lines:])


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


@contextlib.contextmanager
def redis_server(layout: Layout) -> Iterator[tuple[int, int]]:
    """A throw-away redis-server on a free loopback port: yields (port, process group)."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise BaselineError("redis-server not found: apt-get install -y redis-server")
    port = free_port()
    data = layout.root / "redis"
    data.mkdir(exist_ok=True)
    argv = [
        exe, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
        "--dir", str(data), "--daemonize", "no", "--protected-mode", "yes",
        "--logfile", str(layout.log / "redis.log"),
    ]  # fmt: skip
    proc = _spawn(argv, layout.log / "redis.stdout")
    try:
        deadline = time.monotonic() + 20
        while not _redis_ping(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = _tail(layout.log / "redis.log")
                raise BaselineError(f"redis-server did not start:\n{tail}")
            time.sleep(0.05)
        yield port, proc.pid
    finally:
        if not _stop_process(proc, "redis-server"):
            raise BaselineError(f"redis-server (pid {proc.pid}) left processes behind")


def redis_call(port: int, *args: str) -> bytes | int | None:
    """One command to the private redis-server (RESP); bulk and integer replies only."""
    request = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), 2) as sock:
        reader = sock.makefile("rb")
        sock.sendall(request.encode())
        line = reader.readline().rstrip(b"\r\n")
        kind, rest = line[:1], line[1:]
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else reader.read(size + 2)[:-2]
        if kind == b":":
            return int(rest)
        if kind == b"+":
            return rest
        raise BaselineError(f"redis {args[0]}: {line.decode(errors='replace')}")


def redis_commands(port: int) -> int:
    """Commands the server has processed so far (INFO stats total_commands_processed)."""
    info = redis_call(port, "INFO", "stats")
    match = re.search(rb"total_commands_processed:(\d+)", info if isinstance(info, bytes) else b"")
    return int(match.group(1)) if match else 0


def _redis_ping(port: int) -> bool:
    try:
        return redis_call(port, "PING") == b"PONG"
    except (OSError, BaselineError):
        return False


@dataclass(frozen=True, slots=True)
class Rspamd:
    normal_port: int
    controller_port: int
    startup_s: float
    pgid: int  # rspamd's own process group: the main process, workers and helpers

    @property
    def checkv2(self) -> str:
        return f"http://127.0.0.1:{self.normal_port}/checkv2"

    @property
    def controller(self) -> str:
        return f"http://127.0.0.1:{self.controller_port}"


# Debian's worker-proxy.inc: milter mode, forwarding to the normal workers ("upstream").
PROXY_WORKER = """worker "rspamd_proxy" {
  bind_socket = "127.0.0.1:@PROXY_PORT@";
  milter = yes;
  timeout = 120s;
  upstream "local" {
    default = yes;
    @UPSTREAM@
  }
  count = @PROXY_COUNT@;
  max_retries = 5;
  discard_on_reject = false;
  quarantine_on_reject = false;
  spam_header = "X-Spam";
  reject_message = "Spam message rejected";
}
"""


@contextlib.contextmanager
def rspamd(
    layout: Layout,
    *,
    workers: int,
    dns_port: int,
    hs_cache: Path,
    redis_port: int | None,
    proxy_port: int | None = None,
    proxies: int = 1,
    self_scan: bool = False,
) -> Iterator[Rspamd]:
    """rspamd with ``workers`` normal workers and a controller; with ``proxy_port``, its
    proxy worker in milter mode too (``PROXY_WORKER``): ``proxies`` processes, forwarding
    to the normal workers or (``self_scan``) scanning in the proxy itself."""
    normal_port, controller_port = free_port(), free_port()
    values = {
        "NORMAL_PORT": str(normal_port),
        "CONTROLLER_PORT": str(controller_port),
        "CONTROLLER_PASSWORD": os.urandom(12).hex(),
        "WORKERS": str(workers),
        "DNS_PORT": str(dns_port),
        "HS_CACHE_DIR": str(hs_cache),
        "STATISTIC_INCLUDE": '.include "$CONFDIR/statistic.conf"' if redis_port else "",
        "PROXY_WORKER": "",
    }
    if proxy_port is not None:
        values["PROXY_WORKER"] = _render(
            PROXY_WORKER,
            {
                "PROXY_PORT": str(proxy_port),
                "PROXY_COUNT": str(proxies),
                "UPSTREAM": (
                    "self_scan = yes;" if self_scan else f'hosts = "127.0.0.1:{normal_port}";'
                ),
            },
            TEMPLATES / "rspamd.conf.in",
        )
    if redis_port is not None:
        values["REDIS_PORT"] = str(redis_port)
    config = render_config(layout, values, bayes=redis_port is not None)
    log = layout.log / "rspamd.log"
    log.unlink(missing_ok=True)
    argv = ["rspamd", "-f", "-c", str(config), *layout.variables()]
    if os.geteuid() == 0:
        argv[2:2] = ["-u", "root", "-g", "root", "-i"]
    started = time.monotonic()
    proc = _spawn(argv, layout.log / "rspamd.stdout")
    try:
        deadline = started + START_TIMEOUT_S
        while not (
            _port_open(normal_port)
            and _port_open(controller_port)
            and (proxy_port is None or _port_open(proxy_port))
            and _hyperscan_ready(log, workers)
        ):
            if proc.poll() is not None:
                raise BaselineError(
                    f"rspamd exited with {proc.returncode}:\n"
                    f"{_tail(layout.log / 'rspamd.stdout')}\n{_tail(log)}"
                )
            if time.monotonic() > deadline:
                waited = f"{START_TIMEOUT_S:.0f} s"
                raise BaselineError(f"rspamd not ready after {waited}:\n{_tail(log)}")
            time.sleep(0.1)
        yield Rspamd(normal_port, controller_port, time.monotonic() - started, proc.pid)
    finally:
        if not _stop_process(proc, "rspamd"):
            raise BaselineError(f"rspamd (pid {proc.pid}) left processes behind")


_HS_ENGINE = "loaded hyperscan engine"
_HS_COMPILED = re.compile(r"\(hs_helper\).*compiled (\d+) regular expressions to the hyperscan")
_HS_WORKER = re.compile(r"#(\d+)\(normal\).*hyperscan database of \d+ regexps has been loaded")


def _hyperscan_ready(log: Path, workers: int) -> bool:
    """True once every normal worker scans with hyperscan (or rspamd was built without it)."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    if _HS_ENGINE not in text:
        return " is starting, " in text  # no hyperscan in this build: nothing to wait for
    compiled = _HS_COMPILED.findall(text)
    if not compiled:
        return False
    if int(compiled[-1]) == 0:  # all from the cache, loaded before the workers forked
        return True
    return len(set(_HS_WORKER.findall(text))) >= workers


def learn(instance: Rspamd, samples: Sequence[Sample], redis_port: int) -> dict[str, Any]:
    """Teach Bayes the training half through the controller; count what Redis recorded.

    Rspamd declines some messages, by its stock rules: spam that Bayes already rates as spam
    with high confidence (``lua_bayes_learn.can_learn``: "all learn conditions denied"),
    a Message-ID already learned (HTTP 208; the corpus has a few duplicates), and messages
    with fewer than 11 tokens.

    The samples are taught in the order Seawall's ``learn_all`` learns them (spam and ham
    mixed, :func:`seawall.learning.interleaved`), not as given: taught a corpus folder by
    folder, all of one label first, that learn condition then declines most of the other
    label as already known, and Bayes is left leaning to the first.
    """
    samples = [samples[i] for i in interleaved([s.name for s in samples])]
    started = time.monotonic()
    result = run_load(
        instance.controller + "/learnspam",
        samples,
        4,
        path_for=lambda s: "/learnspam" if s.label == "spam" else "/learnham",
    )
    learned = {}
    for label in ("spam", "ham"):
        value = redis_call(redis_port, "HGET", "RS", f"learns_{label}")  # RS: Bayes prefix
        learned[label] = int(value) if isinstance(value, bytes | int) else 0
    return {
        "messages": len(samples),
        "by_label": dict(Counter(s.label for s in samples)),
        "learned": learned,
        "declined": result.errors,
        "declined_reasons": result.error_reasons,
        "seconds": round(time.monotonic() - started, 1),
    }


FLAGGED = ("reject", "add header", "rewrite subject")


def action_summary(result: LoadResult) -> dict[str, Any]:
    """Actions per label, and the share of spam and of ham at "add header" or worse."""
    out: dict[str, Any] = {"by_label": result.actions}
    for label in ("spam", "ham"):
        counts = result.actions.get(label, {})
        total = sum(counts.values())
        flagged = sum(counts.get(action, 0) for action in FLAGGED)
        out[f"{label}_flagged"] = round(flagged / total, 4) if total else None
    return out


def measure(
    instance: Rspamd,
    samples: Sequence[Sample],
    args: argparse.Namespace,
    dns: DnsStub,
    server_groups: Sequence[int],
    budget: Budget,
) -> dict[str, Any]:
    """Warm up, then one pass over ``samples`` at each concurrency.

    Each run also records where the machine's CPU time went: the servers' process groups
    (rspamd, and redis in the Bayes phase), this client, interrupt handling, and everything
    else running on the machine ("other_cpu_s"), the first suspect when figures move on a
    shared two-core box.
    """
    print(f"  ready in {instance.startup_s:.1f} s", file=sys.stderr)
    dns_before = dns.total()
    warmup = run_load(
        instance.checkv2, samples[:WARMUP], max(args.concurrency), headers=args.header
    )
    rate = max(warmup.msgs_per_s, 1.0)
    runs: list[tuple[LoadResult, dict[str, Any]]] = []
    skipped: list[int] = []
    for level in args.concurrency:
        if not budget.fits(1.1 * len(samples) / rate):
            skipped.append(level)
            print(f"  c={level:<3} skipped: would overrun the time budget", file=sys.stderr)
            continue
        (busy, irq), server = machine_busy_s(), group_cpu_s(server_groups)
        result = run_load(instance.checkv2, samples, level, headers=args.header)
        (busy_end, irq_end), server_end = machine_busy_s(), group_cpu_s(server_groups)
        busy, irq, server = busy_end - busy, irq_end - irq, server_end - server
        row = result.summary()
        row["server_cpu_ms_per_msg"] = round(server * 1000 / max(1, result.requests), 3)
        row["client_cpu_ms_per_msg"] = round(result.client_cpu_s * 1000 / result.requests, 3)
        row["irq_cpu_s"] = round(irq, 2)
        row["other_cpu_s"] = round(max(0.0, busy - irq - server - result.client_cpu_s), 2)
        row["machine_busy_pct"] = round(100 * busy / (result.elapsed_s * CPUS), 1)
        # What the same work would reach with the machine to itself: every core busy with
        # only the server and this client.  An estimate, for runs that "other_cpu_s" spoiled.
        per_msg_ms = row["server_cpu_ms_per_msg"] + row["client_cpu_ms_per_msg"]
        row["quiet_estimate_msgs_per_s"] = round(1000 * CPUS / per_msg_ms, 1) if per_msg_ms else 0
        print(
            f"  c={level:<3} {row['msgs_per_s']:8.1f} msg/s  p50 {row['p50_ms']:6.2f} ms"
            f"  p99 {row['p99_ms']:6.2f} ms  server {row['server_cpu_ms_per_msg']:.2f} ms CPU/msg"
            f"  other load {row['other_cpu_s']:.1f} s  errors {row['errors']}",
            file=sys.stderr,
        )
        runs.append((result, row))
        rate = max(result.msgs_per_s, 1.0)
    return {
        "startup_s": round(instance.startup_s, 1),
        "runs": [row for _, row in runs],
        "skipped_concurrency": skipped,
        "actions": action_summary(runs[0][0]) if runs else {},
        "dns_queries": dns.total() - dns_before,
    }


CPUS = os.cpu_count() or 1
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> tuple[float, float]:
    """CPU seconds spent so far on all cores: (busy, of which interrupt handling).

    From /proc/stat: busy is everything but idle and I/O wait; interrupts (irq + softirq)
    are mostly this benchmark's own loopback TCP traffic, charged to no process.
    """
    with open("/proc/stat", encoding="ascii") as fh:
        ticks = [int(value) for value in fh.readline().split()[1:9]]
    busy = sum(ticks) - ticks[3] - ticks[4]
    return busy / _CLOCK_TICKS, (ticks[5] + ticks[6]) / _CLOCK_TICKS


def group_cpu_s(pgids: Sequence[int]) -> float:
    """User + system CPU seconds of the live processes in these process groups."""
    wanted, ticks = set(pgids), 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"{entry.path}/stat", encoding="ascii", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # from field 3 (state) on
        if int(fields[2]) in wanted:  # field 5: process group
            ticks += int(fields[11]) + int(fields[12])  # fields 14, 15: utime, stime
    return ticks / _CLOCK_TICKS


def run(args: argparse.Namespace) -> dict[str, Any]:
    budget = Budget.of(args.time_budget)
    version = rspamd_version()
    test = corpus_samples(train=False, limit=args.limit)
    summary: dict[str, Any] = {
        "rspamd_version": version,
        "workers": args.workers,
        "corpus": {
            "name": "spamassassin_public_corpus",
            "split": "test half (seawall.corpus.in_train_split is False)",
            "messages": len(test),
            "by_label": dict(Counter(s.label for s in test)),
        },
        "concurrency": list(args.concurrency),
        "time_budget_s": args.time_budget,
        "request_headers": list(args.header),
        "machine": {"cpus": os.cpu_count(), "loadavg_before": _loadavg()},
        "disabled_modules": dict(DISABLED_MODULES),
        "partly_disabled": PARTLY_DISABLED,
        "phases": {},
    }
    with tempfile.TemporaryDirectory(prefix="seawall-rspamd-") as tmp, DnsStub() as dns:
        layout = Layout(Path(tmp))
        layout.make()
        hs_cache = Path(args.hs_cache_dir) if args.hs_cache_dir else layout.db
        hs_cache.mkdir(parents=True, exist_ok=True)
        common = {"workers": args.workers, "dns_port": dns.port, "hs_cache": hs_cache}
        try:
            print(f"rspamd {version}: phase no_bayes ({len(test)} messages)", file=sys.stderr)
            with rspamd(layout, redis_port=None, **common) as instance:
                summary["phases"]["no_bayes"] = measure(
                    instance, test, args, dns, (instance.pgid,), budget
                )
            summary["phases"]["bayes"] = bayes_phase(args, layout, common, test, dns, budget)
        finally:
            if args.log_dir:  # failed runs included
                shutil.copytree(layout.log, args.log_dir, dirs_exist_ok=True)
        queries = dns.queries()
    summary["dns_queries_total"] = sum(queries.values())
    summary["dns_queries_not_ptr"] = sorted(
        name for name in queries if not name.endswith((".in-addr.arpa", ".ip6.arpa"))
    )
    summary["dns_queries_top"] = dict(queries.most_common(10))
    summary["machine"]["loadavg_after"] = _loadavg()
    summary["clean_shutdown"] = True  # a leftover process raises BaselineError instead
    return summary


def bayes_phase(
    args: argparse.Namespace,
    layout: Layout,
    common: dict[str, Any],
    test: Sequence[Sample],
    dns: DnsStub,
    budget: Budget,
) -> dict[str, Any]:
    if args.no_bayes:
        return {"skipped": "--no-bayes"}
    if not budget.fits(BAYES_MIN_LEFT_S):
        return {"skipped": f"time budget: {budget.left():.0f} s left"}
    if shutil.which("redis-server") is None:
        return {"skipped": "redis-server not installed (apt-get install -y redis-server)"}
    train = corpus_samples(train=True, limit=args.limit)
    print(f"phase bayes: learning {len(train)} training messages", file=sys.stderr)
    with (
        redis_server(layout) as (redis_port, redis_pgid),
        rspamd(layout, redis_port=redis_port, **common) as instance,
    ):
        trained = learn(instance, train, redis_port)
        print(
            f"  learned {trained['learned']} in {trained['seconds']} s"
            f" ({trained['declined']} declined by rspamd's learn rules)",
            file=sys.stderr,
        )
        before = redis_commands(redis_port)
        phase = measure(instance, test, args, dns, (instance.pgid, redis_pgid), budget)
        scans = min(WARMUP, len(test)) + len(test) * len(phase["runs"])
        per_scan = (redis_commands(redis_port) - before) / scans
    return {"trained": trained, "redis_commands_per_scan": round(per_scan, 1), **phase}


def baseline(
    *,
    concurrency: Sequence[int] = DEFAULT_CONCURRENCY,
    workers: int = 2,
    bayes: bool = True,
    limit: int | None = None,
    headers: Sequence[str] = (),
    hs_cache_dir: str = str(DEFAULT_HS_CACHE),
    log_dir: Path | None = None,
    time_budget: float = TIME_BUDGET_S,
) -> dict[str, Any]:
    """Both phases, for callers such as ``bench.run``: the summary, or ``BaselineError``.

    Unlike :func:`main` this installs no signal handlers and sets no deadline.
    """
    args = argparse.Namespace(
        concurrency=tuple(concurrency),
        workers=workers,
        no_bayes=not bayes,
        limit=limit,
        header=list(headers),
        hs_cache_dir=hs_cache_dir,
        log_dir=log_dir,
        time_budget=time_budget,
    )
    return run(args)


@contextlib.contextmanager
def milter_rspamd(
    *,
    workers: int = 2,
    proxies: int = 1,
    self_scan: bool = False,
    hs_cache_dir: str = str(DEFAULT_HS_CACHE),
) -> Iterator[tuple[Rspamd, int]]:
    """Rspamd (no Bayes, as measured above) with its proxy worker in milter mode, for an MTA:
    yields the instance and the milter's port (``inet:127.0.0.1:PORT`` for Postfix).

    Rspamd is ready when this yields: listening on every port, hyperscan loaded, and 50
    messages scanned through /checkv2 so its workers' lazy tables are built.
    """
    version = rspamd_version()
    with tempfile.TemporaryDirectory(prefix="seawall-rspamd-milter-") as tmp, DnsStub() as dns:
        layout = Layout(Path(tmp))
        layout.make()
        hs_cache = Path(hs_cache_dir) if hs_cache_dir else layout.db
        hs_cache.mkdir(parents=True, exist_ok=True)
        proxy_port = free_port()
        print(f"rspamd {version}: proxy worker in milter mode on {proxy_port}", file=sys.stderr)
        with rspamd(
            layout,
            workers=workers,
            dns_port=dns.port,
            hs_cache=hs_cache,
            redis_port=None,
            proxy_port=proxy_port,
            proxies=proxies,
            self_scan=self_scan,
        ) as instance:
            warm = run_load(instance.checkv2, corpus_samples(train=True, limit=50), 4)
            if warm.errors:
                raise BaselineError(f"rspamd failed {warm.errors} warm-up requests")
            yield instance, proxy_port


def _loadavg() -> list[float]:
    """1, 5 and 15-minute load: other work on the machine skews every figure here."""
    return [round(value, 2) for value in os.getloadavg()]


def print_tables(summary: Mapping[str, Any]) -> None:
    for name, phase in summary["phases"].items():
        if not phase.get("runs"):
            print(f"\n{name}: skipped ({phase.get('skipped', 'time budget')})", file=sys.stderr)
            continue
        title = f"\nrspamd {summary['rspamd_version']}, {summary['workers']} workers, {name}"
        print(format_table(phase["runs"], title), file=sys.stderr)
        actions = phase["actions"]
        for label, counts in actions["by_label"].items():
            flagged = actions.get(f"{label}_flagged")
            print(f"  {label:<4} flagged {flagged:.1%}  {counts}", file=sys.stderr)
    others = summary["dns_queries_not_ptr"]
    print(
        f"\nDNS queries to the loopback stub: {summary['dns_queries_total']}"
        f" (names other than PTR: {', '.join(others) if others else 'none'})",
        file=sys.stderr,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--concurrency", type=parse_concurrency, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--workers", type=int, default=2, help="rspamd normal workers")
    parser.add_argument("--limit", type=int, default=None, help="first N messages of each half")
    parser.add_argument("--no-bayes", action="store_true", help="skip the redis/Bayes phase")
    parser.add_argument(
        "--header", action="append", default=[], help="extra /checkv2 header, 'Name: value'"
    )
    parser.add_argument("--json-out", type=Path, help="also write the JSON summary here")
    parser.add_argument("--log-dir", type=Path, help="keep rspamd's and redis's logs here")
    parser.add_argument(
        "--time-budget",
        type=float,
        default=TIME_BUDGET_S,
        help="seconds; passes that would end later are skipped (hard stop 25 s after)",
    )
    parser.add_argument(
        "--hs-cache-dir",
        default=str(DEFAULT_HS_CACHE),
        help="persistent hyperscan cache ('' for the run's temporary directory)",
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")

    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGALRM, _raise_deadline)
    signal.alarm(int(args.time_budget) + HARD_DEADLINE_EXTRA_S)
    try:
        summary = run(args)
    except BaselineError as exc:
        print(f"rspamd_baseline: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rspamd_baseline: interrupted; rspamd and redis stopped", file=sys.stderr)
        return 130
    finally:
        signal.alarm(0)
    print_tables(summary)
    text = json.dumps(summary, indent=2)
    if args.json_out:
        args.json_out.write_text(text + "\n", encoding="utf-8")
    print(text)
    failed = any(row["errors"] for p in summary["phases"].values() for row in p.get("runs", []))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
