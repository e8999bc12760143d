"""The tracker's server side: one Tracker answering every worker's connection.

Answers are batched: the tracker cuts every frame one read brought from one buffer and
answers them all in one write, so a worker can keep many requests in flight.  Each answer
carries its request's id (``protocol.py``); judgements are one-way and get no answer.

An observation's answer may be held until its campaign's earlier copies are judged
(``hold.py``, at most ``hold_s``).  Their judgements come on the same connections as
later requests, so a held answer never stops the reading, and it delays no other answer:
the rest of its read goes out at once, and it goes out when it is released (with the
other answers released in the same turn of the loop, in one write).  The process around
it (start, snapshots, signals) is ``seawall.serve.tracker``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from typing import Any

from seawall.campaigns.fingerprint import Fingerprint
from seawall.campaigns.hold import Held
from seawall.campaigns.protocol import (
    HIGH_WATER,
    MAX_HELLO,
    NO_ANSWER,
    READ_SIZE,
    Frames,
    Hello,
    Mark,
    Observe,
    Request,
    Show,
    Tally,
    decode_request,
    encode,
    frame,
    read_frame,
)
from seawall.campaigns.registry import Judge
from seawall.campaigns.tracker import Tracker
from seawall.errors import TrackerError

log = logging.getLogger("seawall.campaigns")


class _Outbox:
    """One connection's answer frames that are ready and not written yet: a read's are
    written when the read is answered, released ones in the next turn of the loop."""

    __slots__ = ("writer", "ready", "_flush")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.ready: list[bytes] = []
        self._flush: asyncio.Handle | None = None

    def released(self, answer: bytes) -> None:
        """A held answer, ready now: written with whatever else is ready this turn."""
        self.ready.append(answer)
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_soon(self.write)

    def write(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if self.ready:
            out, self.ready = self.ready, []
            if not self.writer.is_closing():
                self.writer.write(b"".join(out))


class TrackerServer:
    """Serves one Tracker to every worker's connection.

    With a ``secret`` (TCP, other nodes), a connection whose first frame is not a ``Hello``
    with that secret is closed unanswered.
    """

    def __init__(self, tracker: Tracker, *, secret: bytes = b"") -> None:
        self.tracker = tracker
        self.secret = secret

    def handle(self, request: Request) -> object:
        tracker = self.tracker
        if isinstance(request, Observe):
            fp = Fingerprint.from_bytes(request.fp)
            return tracker.observe_or_hold(fp, request.obs, request.now)
        if isinstance(request, Judge):
            tracker.judge(request)
            return None
        if isinstance(request, Mark):
            campaign = tracker.mark(request.campaign, request.label, request.now)
            return None if campaign is None else campaign.sample
        if isinstance(request, Hello):
            return None
        if isinstance(request, Tally):
            return tracker.tally(
                time.time(),
                min_count=request.min_count,
                outbreak_per_hour=request.outbreak_per_hour,
                botnet_min_ips=request.botnet_min_ips,
            )
        if isinstance(request, Show):
            return tracker.show(
                request.campaign, time.time(), max_ips=request.max_ips, sample=request.sample
            )
        return tracker.listing(time.time(), min_count=request.min_count, limit=request.limit)

    async def _greeted(self, reader: asyncio.StreamReader) -> bool:
        try:
            async with asyncio.timeout(5.0):
                first = decode_request((await read_frame(reader, MAX_HELLO))[1])
        except (TimeoutError, ValueError, TrackerError):  # DecodeError is a ValueError
            return False
        return isinstance(first, Hello) and hmac.compare_digest(first.secret, self.secret)

    def answers(self, frames: list[tuple[int, bytes]], outbox: _Outbox) -> None:
        """Answer a run of request frames (not the one-way ones, id 0): each answer frame
        goes into ``outbox.ready``, or, held back, to ``outbox.released`` when it is."""
        ready = outbox.ready
        for rid, body in frames:
            request: Request | None = None
            try:
                request = decode_request(body)
                answer: Any = self.handle(request)
            except Exception as exc:
                log.exception("tracker request failed")
                answer = {"error": str(exc)}
            if isinstance(answer, Held):
                self._held(answer, rid, outbox)
            elif rid != NO_ANSWER:
                ready.append(frame(encode(answer), rid))

    def _held(self, held: Held, rid: int, outbox: _Outbox) -> None:
        """Send ``held``'s answer when it is released: by the campaign's judgement, or by a
        timer at ``hold_s``."""
        tracker = self.tracker

        def release(at: float) -> None:
            if rid != NO_ANSWER:
                outbox.released(frame(encode(tracker.answer(held, at)), rid))

        held.release = release
        loop = asyncio.get_running_loop()
        loop.call_later(tracker.holds.hold_s, lambda: tracker.expire(held, time.time()))

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = Frames()
        outbox = _Outbox(writer)
        try:
            if self.secret and not await self._greeted(reader):
                log.warning("tracker: a connection without the secret, closing")
                return
            while data := await reader.read(READ_SIZE):
                # All the frames this read completed, answered in one write but the held
                # ones, which go out when they are released; the reading goes on.
                self.answers(frames.feed(data), outbox)
                outbox.write()
                if writer.transport.get_write_buffer_size() > HIGH_WATER:
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except TrackerError as exc:
            log.warning("tracker: bad request, closing: %s", exc)
        except asyncio.CancelledError:
            # The tracker is stopping with this worker still connected: the connection's
            # end, not an error (re-raised, asyncio's stream callback logs it as one).
            pass
        finally:
            writer.close()
            self.tracker.holds.log_stats()
