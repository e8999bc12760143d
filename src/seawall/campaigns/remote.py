"""The tracker's client: how each worker process reaches the tracker over its socket.

Requests are pipelined (see ``protocol.py`` for the frames): the requests a worker's
messages make in one turn of its event loop go out in one write, and each answer comes
back with its request's id, as soon as it is ready (an answer the tracker holds back
delays no other).  Every failure is a :class:`~seawall.errors.TrackerError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from seawall.campaigns.fingerprint import Fingerprint
from seawall.campaigns.protocol import (
    HIGH_WATER,
    MAX_ID,
    NO_ANSWER,
    READ_SIZE,
    Endpoint,
    Frames,
    Hello,
    Listing,
    Mark,
    Observe,
    Request,
    Show,
    Tally,
    encode,
    frame,
)
from seawall.campaigns.registry import SHOWN_IPS, Judge, Observation
from seawall.campaigns.tracker import Reply
from seawall.errors import TrackerError

log = logging.getLogger("seawall.campaigns")

Locate = Callable[[], Awaitable[Endpoint]]
_CONNECT_S = 1.0  # a tracker on another node that does not answer a connect in this is down
# How long a judgement waits for a request to share its write. Under load the next message's
# request comes well within it; an idle worker's judgement reaches the tracker this late.
JUDGE_DELAY_S = 0.005


async def _open_unix(name: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    # Connected here, not by uvloop, which refuses abstract socket names.
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(name)
    except OSError as exc:
        sock.close()
        raise TrackerError(f"the campaign tracker is not running: {exc}") from None
    sock.setblocking(False)
    return await asyncio.open_unix_connection(sock=sock)


class RemoteTracker:
    """The client: one connection per process, opened on first use and after a fork.

    Requests are pipelined: each caller queues its frame, numbered, and waits for its own
    answer, the frames queued in one turn of the loop go out in one write, and a reader
    task hands each answer to the caller whose number it carries, in whatever order they
    come.  An answer to a number nobody waits on drops the connection.  A lost connection
    fails every request waiting on it; the next request connects afresh.
    """

    def __init__(self, target: str | Locate, *, judge_delay_s: float = JUDGE_DELAY_S) -> None:
        """``target`` is the tracker's unix socket name (one host), or an async function that
        finds the serving tracker's :class:`Endpoint` (several nodes on Redis), asked again
        at every reconnect.  ``judge_delay_s``: how long a judgement waits for company."""
        self.judge_delay_s = judge_delay_s
        self.name = target if isinstance(target, str) else ""
        self._locate = target if not isinstance(target, str) else None
        self._pid = 0
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task[None] | None = None
        self._connecting: asyncio.Lock | None = None
        self._waiting: dict[int, asyncio.Future[bytes]] = {}
        self._last_id = NO_ANSWER
        self._outbox: list[bytes] = []
        self._flush: asyncio.Handle | None = None
        self._flush_later = False  # _flush is the judgements' delayed one
        self._decode_reply = msgspec.msgpack.Decoder(Reply | None).decode

    async def _call(self, request: Request, *, answer: bool = True) -> bytes:
        """Send one request and wait for its answer (none for a one-way ``Judge``)."""
        if self._pid != os.getpid() or self._connecting is None:
            # A fork: the parent's connection is not ours.
            self._pid, self._writer, self._reading = os.getpid(), None, None
            self._connecting, self._waiting, self._outbox, self._flush = (
                asyncio.Lock(),
                {},
                [],
                None,
            )
            self._flush_later = False
        writer = self._writer
        if writer is None or writer.is_closing():
            writer = await self._connect()
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[bytes] | None = None
        rid = NO_ANSWER
        if answer:
            reply = loop.create_future()
            rid = self._last_id = self._last_id % MAX_ID + 1  # 1 .. MAX_ID, never 0
            self._waiting[rid] = reply
        self._outbox.append(frame(encode(request), rid))
        if answer:
            if self._flush is None or self._flush_later:
                if self._flush is not None:
                    self._flush.cancel()
                self._flush, self._flush_later = loop.call_soon(self._send, writer), False
        elif self._flush is None:
            # A judgement is one-way and nothing waits on it: it rides with the next request
            # (in the same write, ahead of it, so this worker's order holds), or goes alone
            # after judge_delay_s when no request comes: one write a message, not two.
            self._flush = loop.call_later(self.judge_delay_s, self._send, writer)
            self._flush_later = True
        if writer.transport.get_write_buffer_size() > HIGH_WATER:
            await writer.drain()
        return await reply if reply is not None else b""

    async def _connect(self) -> asyncio.StreamWriter:
        assert self._connecting is not None
        async with self._connecting:
            if self._writer is not None and not self._writer.is_closing():
                return self._writer  # another caller connected meanwhile
            endpoint = await self._locate() if self._locate else Endpoint(unix=self.name)
            if endpoint.unix:
                reader, writer = await _open_unix(endpoint.unix)
            else:
                try:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(endpoint.host, endpoint.port), _CONNECT_S
                    )
                except (OSError, TimeoutError) as exc:
                    where = f"{endpoint.host}:{endpoint.port}"
                    raise TrackerError(f"the campaign tracker at {where}: {exc}") from None
                writer.write(frame(encode(Hello(secret=endpoint.secret))))
            self._writer = writer
            self._reading = asyncio.get_running_loop().create_task(
                self._read_answers(reader, writer)
            )
            return writer

    def _send(self, writer: asyncio.StreamWriter) -> None:
        self._flush, self._flush_later = None, False
        frames, self._outbox = self._outbox, []
        if writer is not self._writer or writer.is_closing():
            self._fail(TrackerError("the campaign tracker connection closed"))
            return
        try:
            writer.write(b"".join(frames))
        except Exception as exc:
            self._fail(exc)

    async def _read_answers(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        frames = Frames()
        try:
            while True:
                data = await reader.read(READ_SIZE)
                if writer is not self._writer:
                    return  # this connection was dropped: its waiters failed with it
                if not data:
                    raise TrackerError("the campaign tracker closed the connection")
                # Every answer this read completed, handed out without another wait.
                waiting = self._waiting
                for rid, body in frames.feed(data):
                    waiter = waiting.pop(rid, None)
                    if waiter is None:
                        raise TrackerError(f"the campaign tracker answered {rid}, never asked")
                    if not waiter.done():  # its caller may have been cancelled meanwhile
                        waiter.set_result(body)
        except asyncio.CancelledError:
            self._fail(TrackerError("the campaign tracker connection closed"))
            raise
        except Exception as exc:
            if writer is self._writer:  # not a newer connection's
                self._fail(exc)
            else:
                writer.close()

    def _fail(self, exc: BaseException) -> None:
        """Drop the connection and fail everything waiting on it."""
        if self._flush is not None:  # bound to this connection: the next one schedules its own
            self._flush.cancel()
            self._flush, self._flush_later = None, False
        if self._writer is not None:
            self._writer.close()
        self._writer = None
        if self._waiting:
            log.warning("campaign tracker connection lost: %s", exc)
        waiting, self._waiting = self._waiting, {}
        for waiter in waiting.values():
            if not waiter.done():
                error = TrackerError(f"the campaign tracker connection was lost: {exc}")
                waiter.set_exception(error)
        self._outbox.clear()

    async def observe(self, fp: Fingerprint, obs: Observation, now: float) -> Reply:
        """Which campaign the message joins (one round trip)."""
        body = await self._call(Observe(fp=fp.to_bytes(), obs=obs, now=now))
        reply: Reply | None = self._decode_reply(body)
        if reply is None:
            raise TrackerError("the campaign tracker answered nothing")
        return reply

    async def judge(self, judgement: Judge) -> None:
        await self._call(judgement, answer=False)

    async def mark(self, campaign: str, label: str) -> bytes | None:
        """Mark a campaign; its sample message (to learn), or None if it is unknown."""
        body = await self._call(Mark(campaign=campaign, label=label, now=time.time()))
        sample: bytes | None = msgspec.msgpack.decode(body, type=bytes | None)
        return sample

    async def listing(self, min_count: int = 2, *, limit: int = 0) -> list[dict[str, Any]]:
        """Campaigns with at least ``min_count`` messages, busiest first (the first
        ``limit``, when not 0)."""
        result: list[dict[str, Any]] = msgspec.msgpack.decode(
            await self._call(Listing(min_count=min_count, limit=limit))
        )
        return result

    async def tally(
        self, min_count: int = 2, *, outbreak_per_hour: int = 0, botnet_min_ips: int = 0
    ) -> dict[str, int]:
        """How many campaigns are live, outbreaks and botnets (one round trip)."""
        request = Tally(
            min_count=min_count,
            outbreak_per_hour=outbreak_per_hour,
            botnet_min_ips=botnet_min_ips,
        )
        result: dict[str, Any] = msgspec.msgpack.decode(await self._call(request))
        if set(result) == {"error"}:  # the request failed there
            raise TrackerError(f"the campaign tracker: {result['error']}")
        return {k: int(v) for k, v in result.items()}

    async def show(
        self, campaign: str, max_ips: int = SHOWN_IPS, *, sample: bool = False
    ) -> dict[str, Any] | None:
        """One campaign in detail, or None when the tracker knows no such campaign."""
        body = await self._call(Show(campaign=campaign, max_ips=max_ips, sample=sample))
        result: dict[str, Any] | None = msgspec.msgpack.decode(body)
        if result is not None and set(result) == {"error"}:  # the request failed there
            raise TrackerError(f"the campaign tracker: {result['error']}")
        return result

    def close(self) -> None:
        if self._pid == os.getpid():
            if self._flush is not None:
                self._flush.cancel()
                self._flush = None
            writer = self._writer
            if self._outbox and writer is not None and not writer.is_closing():
                # Judgements still waiting for company: sent before the close (a transport
                # writes out what it holds before it closes), so none is lost at shutdown.
                with contextlib.suppress(Exception):
                    writer.write(b"".join(self._outbox))
            self._outbox = []
            if self._reading is not None:
                self._reading.cancel()
            if self._writer is not None:
                self._writer.close()
        self._writer = None
        self._reading = None
