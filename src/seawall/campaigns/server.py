"""The tracker's server side: one Tracker answering every worker's connection.

Answers are batched: the tracker cuts every frame one read brought from one buffer and
answers them all in one write, in request order, so a worker can keep many requests in
flight.  Judgements are one-way and
get no answer.  The process around it (start, snapshots, signals) is
``seawall.serve.tracker``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from typing import Any

from seawall.campaigns.fingerprint import Fingerprint
from seawall.campaigns.protocol import (
    HIGH_WATER,
    MAX_HELLO,
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
            return tracker.observe(Fingerprint.from_bytes(request.fp), request.obs, request.now)
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
                first = decode_request(await read_frame(reader, MAX_HELLO))
        except (TimeoutError, ValueError, TrackerError):  # DecodeError is a ValueError
            return False
        return isinstance(first, Hello) and hmac.compare_digest(first.secret, self.secret)

    def answers(self, bodies: list[bytes]) -> bytes:
        """The answer frames to a run of request frames (none for the one-way ones)."""
        out: list[bytes] = []
        for body in bodies:
            request: Request | None = None
            try:
                request = decode_request(body)
                answer: Any = self.handle(request)
            except Exception as exc:
                log.exception("tracker request failed")
                answer = {"error": str(exc)}
            if isinstance(request, Judge | Hello):
                continue  # one-way: no answer is awaited
            out.append(frame(encode(answer)))
        return b"".join(out)

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = Frames()
        try:
            if self.secret and not await self._greeted(reader):
                log.warning("tracker: a connection without the secret, closing")
                return
            while data := await reader.read(READ_SIZE):
                # All the frames this read completed, answered in one write.
                out = self.answers(frames.feed(data))
                if out and not writer.is_closing():
                    writer.write(out)
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
