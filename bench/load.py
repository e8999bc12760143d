"""Load client for Rspamd-style ``/checkv2`` endpoints, and wall-clock timing of a command.

The same client drives Rspamd (``bench/rspamd_baseline.py``) and Seawall's own HTTP front end,
so both see identical requests: ``POST <path>`` with the raw message as the body, a
``Content-Length`` header, ``Connection: keep-alive`` and any extra headers given (Rspamd's
``IP``, ``Helo``, ``From``, ``Rcpt``...).  It speaks HTTP/1.1 over asyncio streams with no
dependency: one connection per concurrent sender, reused while the server keeps it open
(Rspamd 3.4 answers ``Connection: close``, so there every request pays a loopback connect,
which is counted in its latency, as it is for a real MTA).

Run against any server:

    .venv/bin/python -m bench.load --url http://127.0.0.1:11333/checkv2 --concurrency 4,16,64

Latency is measured per request from the first byte written (or the connect, when a new
connection is needed) to the last byte of the reply.  p50/p99 use the nearest-rank method.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_CONCURRENCY = (4, 16, 64)
REQUEST_TIMEOUT_S = 30.0
_MAX_HEADER_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Sample:
    """One message to send: its bytes, its corpus label and a short name for errors."""

    name: str
    label: str  # "spam" or "ham"
    body: bytes
    headers: tuple[str, ...] = ()  # request headers of this sample's own, after the run's


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http://host:port/path URLs are supported, not {url!r}")
        path = parts.path or "/"
        if parts.query:
            path = f"{path}?{parts.query}"
        return cls(parts.hostname, parts.port or 80, path)

    def url(self, path: str | None = None) -> str:
        return f"http://{self.host}:{self.port}{path or self.path}"


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    keep_alive: bool


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one pass over the samples at one concurrency measured."""

    url: str
    concurrency: int
    requests: int
    errors: int
    connections: int
    elapsed_s: float
    client_cpu_s: float
    latencies_ms: tuple[float, ...] = field(repr=False)
    # label -> action -> count; the action is the reply's JSON "action" (or "error")
    actions: dict[str, dict[str, int]] = field(default_factory=dict)
    first_errors: tuple[str, ...] = ()
    # each failure's reason with message ids and numbers blanked out -> count
    error_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def msgs_per_s(self) -> float:
        return (self.requests - self.errors) / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        return percentile(sorted(self.latencies_ms), q)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms)
        return {
            "url": self.url,
            "concurrency": self.concurrency,
            "requests": self.requests,
            "errors": self.errors,
            "connections": self.connections,
            "elapsed_s": round(self.elapsed_s, 3),
            "msgs_per_s": round(self.msgs_per_s, 1),
            "p50_ms": round(percentile(ordered, 50), 2),
            "p99_ms": round(percentile(ordered, 99), 2),
            "max_ms": round(ordered[-1], 2) if ordered else 0.0,
            "client_cpu_s": round(self.client_cpu_s, 2),
            "actions": self.actions,
            "first_errors": list(self.first_errors),
            "error_reasons": self.error_reasons,
        }


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (0.0 when it is empty)."""
    if not ordered:
        return 0.0
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100), at least 1
    return float(ordered[min(len(ordered), int(rank)) - 1])


class ProtocolError(Exception):
    """The server's reply is not HTTP/1.1 this client can read."""


class _Connection:
    """One HTTP/1.1 connection, reopened when the server closes it."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.opened = 0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, head: bytes, body: bytes) -> Reply:
        fresh = self._writer is None
        try:
            return await self._exchange(head, body)
        except (ConnectionError, asyncio.IncompleteReadError):
            await self.close()
            if fresh:
                raise
        # A reused connection the server had already closed: one retry on a new one.
        return await self._exchange(head, body)

    async def _exchange(self, head: bytes, body: bytes) -> Reply:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(
                self.endpoint.host, self.endpoint.port, limit=_MAX_HEADER_BYTES
            )
            self.opened += 1
        reader, writer = self._reader, self._writer
        assert reader is not None
        writer.writelines((head, body))
        await writer.drain()
        reply = await _read_reply(reader)
        if not reply.keep_alive:
            await self.close()
        return reply

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


async def _read_reply(reader: asyncio.StreamReader) -> Reply:
    try:
        raw_head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise ProtocolError("reply header block too large") from None
    lines = raw_head.decode("latin-1").split("\r\n")
    status_line = lines[0].split(" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith("HTTP/1."):
        raise ProtocolError(f"bad status line {lines[0]!r}")
    status = int(status_line[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    keep_alive = headers.get("connection", "").lower() != "close"
    if status_line[0] == "HTTP/1.0" and headers.get("connection", "").lower() != "keep-alive":
        keep_alive = False
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    else:
        body = await reader.read()
        keep_alive = False
    return Reply(status, body, keep_alive)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)


def _request_head(endpoint: Endpoint, path: str, length: int, headers: Sequence[str]) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {endpoint.host}:{endpoint.port}",
        "Connection: keep-alive",
        f"Content-Length: {length}",
        *headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def action_of(reply: Reply) -> str:
    """The verdict's action from a ``/checkv2`` JSON reply ("ok" for other JSON, "error")."""
    if reply.status != 200:
        return "error"
    try:
        doc = json.loads(reply.body)
    except ValueError:
        return "error"
    if isinstance(doc, dict):
        action = doc.get("action")
        if isinstance(action, str):
            return action
        if doc.get("error"):
            return "error"
    return "ok"


_VARIABLE = re.compile(r"<[^>]*>|\d+")


def error_reason(reply: Reply) -> str:
    """``HTTP <status>: <the JSON "error" text>``, message ids and numbers replaced by ``#``."""
    text = reply.body[:300].decode("utf-8", "replace")
    with contextlib.suppress(ValueError):
        doc = json.loads(reply.body)
        if isinstance(doc, dict) and isinstance(doc.get("error"), str):
            text = doc["error"]
    return f"HTTP {reply.status}: " + _VARIABLE.sub("#", text)[:120]


async def post_all(
    url: str,
    samples: Sequence[Sample],
    concurrency: int,
    *,
    headers: Sequence[str] = (),
    path_for: Callable[[Sample], str] | None = None,
    timeout_s: float = REQUEST_TIMEOUT_S,
) -> LoadResult:
    """POST every sample once with ``concurrency`` senders; measure throughput and latency.

    ``path_for`` picks a path per sample (Rspamd's ``/learnspam`` and ``/learnham``);
    otherwise every sample goes to the URL's path.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    endpoint = Endpoint.parse(url)
    heads: dict[tuple[str, int, tuple[str, ...]], bytes] = {}
    pending: Iterator[Sample] = iter(samples)
    latencies: list[float] = []
    actions: dict[str, Counter[str]] = {}
    errors: list[str] = []
    reasons: Counter[str] = Counter()
    connections = [_Connection(endpoint) for _ in range(min(concurrency, len(samples)) or 1)]

    async def sender(conn: _Connection) -> None:
        for sample in pending:  # one shared iterator: each sample is sent exactly once
            path = path_for(sample) if path_for else endpoint.path
            key = (path, len(sample.body), sample.headers)
            head = heads.get(key)
            if head is None:
                every = (*headers, *sample.headers)
                head = heads[key] = _request_head(endpoint, path, len(sample.body), every)
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
    elapsed = time.perf_counter() - started
    return LoadResult(
        url=endpoint.url(),
        concurrency=concurrency,
        requests=len(samples),
        errors=len(errors),
        connections=sum(conn.opened for conn in connections),
        elapsed_s=elapsed,
        client_cpu_s=time.process_time() - cpu_before,
        latencies_ms=tuple(latencies),
        actions={label: dict(sorted(c.items())) for label, c in sorted(actions.items())},
        first_errors=tuple(errors[:5]),
        error_reasons=dict(reasons.most_common()),
    )


def run_load(
    url: str,
    samples: Sequence[Sample],
    concurrency: int,
    *,
    headers: Sequence[str] = (),
    path_for: Callable[[Sample], str] | None = None,
) -> LoadResult:
    """Blocking wrapper around :func:`post_all`."""
    return asyncio.run(post_all(url, samples, concurrency, headers=headers, path_for=path_for))


def corpus_samples(*, train: bool, limit: int | None = None) -> list[Sample]:
    """The SpamAssassin corpus half (``train`` False: the ~3,036-message test half), read.

    ``limit`` takes that many messages evenly spread over the half (the corpus lists its
    folders one after another, so the first N would all be ham).
    """
    from seawall import corpus

    chosen = list(corpus.iter_split(corpus.items(corpus.SPAMASSASSIN), train=train))
    if limit is not None and limit < len(chosen):
        chosen = [chosen[i * len(chosen) // limit] for i in range(limit)]
    out: list[Sample] = []
    for item in chosen:
        path = Path(item.path)
        out.append(Sample(f"{path.parent.name}/{path.name}", item.label, path.read_bytes()))
    return out


@dataclass(frozen=True, slots=True)
class CommandTiming:
    """Wall and CPU time of one finished command (for ``seawall scan --workers 2`` runs)."""

    argv: tuple[str, ...]
    returncode: int
    wall_s: float
    user_s: float  # CPU of the command and its children, as reaped
    sys_s: float

    def per_second(self, count: int) -> float:
        return count / self.wall_s if self.wall_s > 0 else 0.0

    def summary(self, count: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "argv": list(self.argv),
            "returncode": self.returncode,
            "wall_s": round(self.wall_s, 3),
            "user_s": round(self.user_s, 3),
            "sys_s": round(self.sys_s, 3),
        }
        if count is not None:
            out["count"] = count
            out["msgs_per_s"] = round(self.per_second(count), 1)
        return out


def time_command(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    timeout_s: float | None = None,
    quiet: bool = True,
) -> CommandTiming:
    """Run ``argv`` to completion and return its wall time (and children's CPU time), with
    Python's compiled modules kept.

    Output goes to /dev/null when ``quiet``; a timeout kills the command and raises
    ``subprocess.TimeoutExpired``.  A non-zero exit is reported, not raised.
    """
    sink = subprocess.DEVNULL if quiet else None
    # Timed as an installed package runs, its modules' bytecode compiled once and kept: a
    # shell's PYTHONDONTWRITEBYTECODE would have every run compile them again (0.1-0.2 s of
    # a command's start-up).
    env = dict(os.environ if env is None else env)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        list(argv), cwd=cwd, env=env, stdout=sink, stderr=sink, timeout=timeout_s, check=False
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return CommandTiming(
        argv=tuple(argv),
        returncode=done.returncode,
        wall_s=wall,
        user_s=after.ru_utime - before.ru_utime,
        sys_s=after.ru_stime - before.ru_stime,
    )


def parse_concurrency(text: str) -> tuple[int, ...]:
    values = tuple(int(part) for part in text.split(",") if part.strip())
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("give positive integers, e.g. 4,16,64")
    return values


def format_table(rows: Sequence[dict[str, Any]], title: str = "") -> str:
    """A fixed-width table of :meth:`LoadResult.summary` rows.

    Rows that also carry ``server_cpu_ms_per_msg`` (CPU the server spent per message, as
    ``bench/rspamd_baseline.py`` measures it) get that column too.
    """
    cpu = any("server_cpu_ms_per_msg" in row for row in rows)
    out = [title] if title else []
    header = f"{'conc':>5} {'msgs':>6} {'err':>4} {'msg/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
    out.append(header + (f" {'srv CPU ms/msg':>15}" if cpu else ""))
    for row in rows:
        line = (
            f"{row['concurrency']:>5} {row['requests']:>6} {row['errors']:>4} "
            f"{row['msgs_per_s']:>8.1f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f}"
        )
        if cpu:
            line += f" {row.get('server_cpu_ms_per_msg', float('nan')):>15.2f}"
        out.append(line)
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--url", required=True, help="e.g. http://127.0.0.1:11333/checkv2")
    parser.add_argument("--concurrency", type=parse_concurrency, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--limit", type=int, default=None, help="send only the first N messages")
    parser.add_argument(
        "--header", action="append", default=[], help="extra request header, 'Name: value'"
    )
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured requests first")
    args = parser.parse_args(argv)

    samples = corpus_samples(train=False, limit=args.limit)
    if args.warmup:
        run_load(args.url, samples[: args.warmup], max(args.concurrency), headers=args.header)
    rows = [run_load(args.url, samples, c, headers=args.header).summary() for c in args.concurrency]
    print(format_table(rows, f"{args.url}: {len(samples)} messages"), file=sys.stderr)
    print(json.dumps({"url": args.url, "runs": rows}, indent=2))
    return 1 if any(row["errors"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
