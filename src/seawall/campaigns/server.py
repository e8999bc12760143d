"""The tracker's server side: one Tracker answering every worker's connection.

Answers are batched: the tracker cuts every frame one read brought from one buffer and
answers them all in one write, in request order, so a worker can keep many requests in
flight.  Judgements are one-way and get no answer.

An observation's answer may be held until its campaign's earlier copies are judged
(``hold.py``, at most ``hold_s``).  Their judgements come on the same connections as
later requests, so a held answer never stops the reading: the connection's answers wait
in request order in a queue, and a writer task sends each run of them that is ready
(the ones behind a held answer wait for it, in the order the worker reads them).  The
process around it (start, snapshots, signals) is ``seawall.serve.tracker``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections import deque
from typing import Any

from seawall.campaigns.fingerprint import Fingerprint
from seawall.campaigns.hold import Held
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
                first = decode_request(await read_frame(reader, MAX_HELLO))
        except (TimeoutError, ValueError, TrackerError):  # DecodeError is a ValueError
            return False
        return isinstance(first, Hello) and hmac.compare_digest(first.secret, self.secret)

    def answers(self, bodies: list[bytes]) -> list[bytes | asyncio.Future[bytes]]:
        """The answer frames to a run of request frames (none for the one-way ones), in
        order: a future for an answer held back, done when it is released."""
        out: list[bytes | asyncio.Future[bytes]] = []
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
            if isinstance(answer, Held):
                out.append(self._held(answer))
                continue
            out.append(frame(encode(answer)))
        return out

    def _held(self, held: Held) -> asyncio.Future[bytes]:
        """A future for ``held``'s answer frame: released by the campaign's judgement, or
        by a timer at ``hold_s``."""
        tracker = self.tracker
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bytes] = loop.create_future()

        def release(at: float) -> None:
            if not answer.done():
                answer.set_result(frame(encode(tracker.answer(held, at))))

        held.release = release
        loop.call_later(tracker.holds.hold_s, lambda: tracker.expire(held, time.time()))
        return answer

    @staticmethod
    async def _write_out(
        queue: deque[bytes | asyncio.Future[bytes]], writer: asyncio.StreamWriter
    ) -> None:
        """Send the queued answers in order, each run that is ready in one write."""
        while queue:
            head = queue[0]
            if isinstance(head, asyncio.Future):
                await head
            out: list[bytes] = []
            while queue:
                item = queue[0]
                if isinstance(item, asyncio.Future):
                    if not item.done():
                        break
                    item = item.result()
                queue.popleft()
                out.append(item)
            if out and not writer.is_closing():
                writer.write(b"".join(out))
                if writer.transport.get_write_buffer_size() > HIGH_WATER:
                    await writer.drain()

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = Frames()
        queue: deque[bytes | asyncio.Future[bytes]] = deque()  # answers behind a held one
        sending: asyncio.Task[None] | None = None
        try:
            if self.secret and not await self._greeted(reader):
                log.warning("tracker: a connection without the secret, closing")
                return
            while data := await reader.read(READ_SIZE):
                # All the frames this read completed, answered in one write unless one is
                # held: then they queue behind it, and the reading goes on.
                out = self.answers(frames.feed(data))
                if not out:
                    continue
                if not queue and all(isinstance(item, bytes) for item in out):
                    if not writer.is_closing():
                        writer.write(b"".join(out))  # type: ignore[arg-type]
                        if writer.transport.get_write_buffer_size() > HIGH_WATER:
                            await writer.drain()
                    continue
                queue.extend(out)
                if sending is None or sending.done():
                    sending = asyncio.get_running_loop().create_task(self._write_out(queue, writer))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except TrackerError as exc:
            log.warning("tracker: bad request, closing: %s", exc)
        except asyncio.CancelledError:
            # The tracker is stopping with this worker still connected: the connection's
            # end, not an error (re-raised, asyncio's stream callback logs it as one).
            pass
        finally:
            if sending is not None:
                sending.cancel()
            writer.close()
            self.tracker.holds.log_stats()
