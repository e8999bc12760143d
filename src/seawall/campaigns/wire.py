"""The tracker as a process: a unix-socket server, and the client the workers use.

Frames are a 4-byte big-endian length and a msgpack body.  Every request gets one
answer frame but a judgement, which is one-way: a worker does not wait on the tracker
after its verdict (one round trip a message, not two).  The socket lives in
Linux's abstract namespace, named after the state dir, so no file is left
behind and long state-dir paths do not matter.

Both ends batch their writes: the requests a worker's messages make in one turn of its
event loop go out in one write, and the tracker answers everything one read brought in
one write.  Answers come in request order, so many requests can be in flight at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
import socket
import struct
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from seawall.campaigns.fingerprint import Fingerprint
from seawall.campaigns.registry import Observation
from seawall.campaigns.tracker import Reply, Tracker
from seawall.config import Config
from seawall.errors import StoreError

log = logging.getLogger("seawall.campaigns")

SNAPSHOT_KEY = "campaigns:snapshot"
MAX_FRAME = 16 * 1024 * 1024
_HIGH_WATER = 1 << 20  # bytes written and not yet sent before a writer waits
_LENGTH = struct.Struct(">I")


class Observe(msgspec.Struct, tag="observe"):
    fp: bytes
    obs: Observation
    now: float


class Judge(msgspec.Struct, tag="judge"):
    campaign: str | None
    spam: bool
    domains: tuple[str, ...]
    now: float
    sample: bytes = b""


class Mark(msgspec.Struct, tag="mark"):
    campaign: str
    label: str
    now: float


class Listing(msgspec.Struct, tag="list"):
    min_count: int = 2


Request = Observe | Judge | Mark | Listing
_requests = msgspec.msgpack.Decoder(Request)
_encode = msgspec.msgpack.Encoder().encode


def address(config: Config) -> str:
    """The tracker's abstract socket name for this state dir."""
    digest = hashlib.sha1(str(Path(config.state_dir).resolve()).encode()).hexdigest()[:16]
    return f"\0seawall-campaigns-{digest}"


async def _read(reader: asyncio.StreamReader) -> bytes:
    (length,) = _LENGTH.unpack(await reader.readexactly(4))
    if length > MAX_FRAME:
        raise ValueError(f"frame of {length} bytes")
    return await reader.readexactly(length)


def _frame(body: bytes) -> bytes:
    return _LENGTH.pack(len(body)) + body


class TrackerServer:
    """Serves one Tracker to every worker; saves it into the store now and then."""

    def __init__(self, tracker: Tracker, config: Config) -> None:
        self.tracker = tracker
        self.config = config

    def handle(self, request: Request) -> object:
        tracker = self.tracker
        if isinstance(request, Observe):
            return tracker.observe(Fingerprint.from_bytes(request.fp), request.obs, request.now)
        if isinstance(request, Judge):
            tracker.judge(
                request.campaign, request.spam, request.domains, request.now, request.sample
            )
            return None
        if isinstance(request, Mark):
            campaign = tracker.mark(request.campaign, request.label, request.now)
            return None if campaign is None else campaign.sample
        return tracker.listing(time.time(), min_count=request.min_count)

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        outbox: list[bytes] = []
        flush: asyncio.Handle | None = None

        def send() -> None:
            nonlocal flush
            flush = None
            if outbox and not writer.is_closing():
                writer.write(b"".join(outbox))
            outbox.clear()

        try:
            while True:
                # Frames already read come back without a wait, so the answers to all of
                # them go out together once the next read has to wait.
                body = await _read(reader)
                request: Request | None = None
                try:
                    request = _requests.decode(body)
                    answer: Any = self.handle(request)
                except Exception as exc:
                    log.exception("tracker request failed")
                    answer = {"error": str(exc)}
                if isinstance(request, Judge):
                    continue  # one-way: no answer is awaited
                outbox.append(_frame(_encode(answer)))
                if flush is None:
                    flush = loop.call_soon(send)
                if writer.transport.get_write_buffer_size() > _HIGH_WATER:
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except ValueError as exc:
            log.warning("tracker: bad request, closing: %s", exc)
        finally:
            writer.close()


def load(config: Config) -> Tracker:
    """The tracker saved in the store, or a new one."""
    from seawall.store import open_store

    events = Path(config.state_dir) / "events.jsonl"
    settings = config.detectors.campaigns

    async def get() -> bytes | None:
        store = open_store(config)
        try:
            return await store.get(SNAPSHOT_KEY)
        finally:
            await store.close()

    try:
        data = asyncio.run(get())
    except StoreError as exc:
        log.error("campaign state unreadable, starting empty: %s", exc)
        data = None
    if data:
        try:
            return Tracker.restore(data, settings, events=events)
        except (ValueError, TypeError, KeyError) as exc:  # DecodeError is a ValueError
            log.error("campaign state could not be restored, starting empty: %s", exc)
    return Tracker(settings, events=events)


def save(config: Config, tracker: Tracker) -> None:
    """Write the tracker into the store (``seawall scan`` in one process)."""
    from seawall.store import open_store

    async def put() -> None:
        store = open_store(config)
        try:
            await store.put(SNAPSHOT_KEY, tracker.snapshot())
        finally:
            await store.close()

    try:
        asyncio.run(put())
    except StoreError as exc:
        log.error("could not save the campaign state: %s", exc)


async def _serve(config: Config, tracker: Tracker) -> None:
    from seawall.store import open_store

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: None)
    server = TrackerServer(tracker, config)
    unix = await asyncio.start_unix_server(server.connection, path=address(config))
    store = open_store(config)
    every = config.detectors.campaigns.snapshot_interval_s

    async def save() -> None:
        try:
            await store.put(SNAPSHOT_KEY, tracker.snapshot())
        except StoreError as exc:
            log.error("could not save the campaign state: %s", exc)

    log.info("campaign tracker %d serving", os.getpid())
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        await save()
    unix.close()
    await store.close()


def run(config: Config) -> int:
    """The body of the tracker process."""
    import uvloop

    tracker = load(config)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve(config, tracker))
    return 0


@contextlib.contextmanager
def tracker_process(config: Config) -> Iterator[int]:
    """A forked tracker process for the duration of a block (``seawall scan``)."""
    pid = spawn(config)
    try:
        wait_ready(config)
        yield pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)


def spawn(config: Config) -> int:
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            code = run(config)
        except BaseException:
            log.exception("campaign tracker failed")
        finally:
            logging.shutdown()
            os._exit(code)
    return pid


def running(config: Config) -> bool:
    """Whether a tracker process serves this state dir (``seawall serve`` is up)."""

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(address(config))
        except OSError:
            return False
    return True


def wait_ready(config: Config, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not running(config):
        if time.monotonic() > deadline:
            raise TimeoutError("the campaign tracker did not start")
        time.sleep(0.02)


class RemoteTracker:
    """The client: one connection per process, opened on first use and after a fork.

    Requests are pipelined: each caller queues its frame and waits for its own answer,
    the frames queued in one turn of the loop go out in one write, and a reader task hands
    the answers out in order.  A lost connection fails every request waiting on it; the
    next request connects afresh.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._pid = 0
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task[None] | None = None
        self._connecting: asyncio.Lock | None = None
        self._waiting: deque[asyncio.Future[bytes]] = deque()
        self._outbox: list[bytes] = []
        self._flush: asyncio.Handle | None = None
        self._decode_reply = msgspec.msgpack.Decoder(Reply | None).decode

    async def _call(self, request: Request, *, answer: bool = True) -> bytes:
        """Send one request and wait for its answer (none for a one-way ``Judge``)."""
        if self._pid != os.getpid() or self._connecting is None:
            # A fork: the parent's connection is not ours.
            self._pid, self._writer, self._reading = os.getpid(), None, None
            self._connecting, self._waiting, self._outbox, self._flush = (
                asyncio.Lock(),
                deque(),
                [],
                None,
            )
        writer = self._writer
        if writer is None or writer.is_closing():
            writer = await self._connect()
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[bytes] | None = None
        if answer:
            reply = loop.create_future()
            self._waiting.append(reply)
        self._outbox.append(_frame(_encode(request)))
        if self._flush is None:
            self._flush = loop.call_soon(self._send, writer)
        if writer.transport.get_write_buffer_size() > _HIGH_WATER:
            await writer.drain()
        return await reply if reply is not None else b""

    async def _connect(self) -> asyncio.StreamWriter:
        assert self._connecting is not None
        async with self._connecting:
            if self._writer is not None and not self._writer.is_closing():
                return self._writer  # another caller connected meanwhile
            # Connected here, not by uvloop, which refuses abstract socket names.
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.name)
            except OSError:
                sock.close()
                raise
            sock.setblocking(False)
            reader, writer = await asyncio.open_unix_connection(sock=sock)
            self._writer = writer
            self._reading = asyncio.get_running_loop().create_task(self._read_answers(reader))
            return writer

    def _send(self, writer: asyncio.StreamWriter) -> None:
        self._flush = None
        frames, self._outbox = self._outbox, []
        if writer is not self._writer or writer.is_closing():
            self._fail(ConnectionError("the campaign tracker connection closed"))
            return
        try:
            writer.write(b"".join(frames))
        except Exception as exc:
            self._fail(exc)

    async def _read_answers(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                body = await _read(reader)
                if not self._waiting:
                    raise ConnectionError("the campaign tracker answered nothing asked")
                waiter = self._waiting.popleft()
                if not waiter.done():  # its caller may have been cancelled meanwhile
                    waiter.set_result(body)
        except asyncio.CancelledError:
            self._fail(ConnectionError("the campaign tracker connection closed"))
            raise
        except Exception as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        """Drop the connection and fail everything waiting on it."""
        if self._writer is not None:
            self._writer.close()
        self._writer = None
        if self._waiting:
            log.warning("campaign tracker connection lost: %s", exc)
        waiting, self._waiting = self._waiting, deque()
        for waiter in waiting:
            if not waiter.done():
                error = ConnectionError(f"the campaign tracker connection was lost: {exc}")
                waiter.set_exception(error)
        self._outbox.clear()

    async def observe(self, fp: Fingerprint, obs: Observation, now: float) -> Reply:
        body = await self._call(Observe(fp=fp.to_bytes(), obs=obs, now=now))
        reply: Reply | None = self._decode_reply(body)
        if reply is None:
            raise RuntimeError("the campaign tracker answered nothing")
        return reply

    async def judge(
        self,
        campaign: str | None,
        spam: bool,
        domains: tuple[str, ...],
        now: float,
        sample: bytes = b"",
    ) -> None:
        await self._call(
            Judge(campaign=campaign, spam=spam, domains=domains, now=now, sample=sample),
            answer=False,
        )

    async def mark(self, campaign: str, label: str) -> bytes | None:
        """Mark a campaign; its sample message (to learn), or None if it is unknown."""
        body = await self._call(Mark(campaign=campaign, label=label, now=time.time()))
        sample: bytes | None = msgspec.msgpack.decode(body, type=bytes | None)
        return sample

    async def listing(self, min_count: int = 2) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = msgspec.msgpack.decode(
            await self._call(Listing(min_count=min_count))
        )
        return result

    def close(self) -> None:
        if self._pid == os.getpid():
            if self._flush is not None:
                self._flush.cancel()
                self._flush = None
            if self._reading is not None:
                self._reading.cancel()
            if self._writer is not None:
                self._writer.close()
        self._writer = None
        self._reading = None
