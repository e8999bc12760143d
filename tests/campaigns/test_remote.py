"""The tracker over a unix socket: each answer to its own request, judgements one-way,
failures as TrackerError."""

from __future__ import annotations

import asyncio
import os
import random
from typing import Any

import pytest

from seawall.campaigns.fingerprint import Fingerprint
from seawall.campaigns.protocol import MAX_FRAME, Frames, frame, read_frame
from seawall.campaigns.registry import Judge, Observation
from seawall.campaigns.remote import RemoteTracker
from seawall.campaigns.server import TrackerServer
from seawall.campaigns.tracker import Tracker
from seawall.config import CampaignSettings
from seawall.errors import TrackerError

NOW = 1_795_000_000.0
TEXT = "your parcel is waiting at the depot, confirm the delivery fee to release it today now"


def bot(i: int) -> Observation:
    return Observation(ip=f"{20 + i}.{i}.0.9", dynamic=True, subject="Parcel", domains=("p.test",))


async def _exchange(name: str, server: TrackerServer) -> list[tuple[str, int, int]]:
    unix = await asyncio.start_unix_server(server.connection, path=name)
    client = RemoteTracker(name)
    fp = Fingerprint.from_text(TEXT, "Parcel")
    seen = []
    try:
        for i in range(5):
            reply = await client.observe(fp, bot(i), NOW + i)
            seen.append((reply.view.id, reply.view.count, reply.view.spam))
            # One-way: returns without an answer, and the next observe still reads its own.
            await client.judge(Judge(reply.view.id, True, ("p.test",), NOW + i))
        listing = await client.listing(min_count=1)
        assert [item["spam"] for item in listing] == [5]
    finally:
        client.close()
        unix.close()
        await unix.wait_closed()
    return seen


def test_judgements_are_one_way_and_replies_stay_in_step() -> None:
    tracker = Tracker(CampaignSettings())
    server = TrackerServer(tracker)
    name = f"\0seawall-test-wire-{os.getpid()}"
    seen = asyncio.run(_exchange(name, server))
    ids = {cid for cid, _, _ in seen}
    assert len(ids) == 1
    # Each observe sees the judgements of every copy before it: they all reached the tracker.
    assert [(count, spam) for _, count, spam in seen] == [(1, 0), (2, 1), (3, 2), (4, 3), (5, 4)]
    assert tracker.confirmed_spam(tracker.campaigns[seen[0][0]])


class BrokenJudge(Tracker):
    """A tracker whose every judgement fails."""

    def judge(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("judgement failed")


def test_a_failing_judgement_does_not_put_the_stream_out_of_step() -> None:
    server = TrackerServer(BrokenJudge(CampaignSettings()))
    name = f"\0seawall-test-wire-fail-{os.getpid()}"

    async def run() -> int:
        unix = await asyncio.start_unix_server(server.connection, path=name)
        client = RemoteTracker(name)
        try:
            fp = Fingerprint.from_text(TEXT, "Parcel")
            await client.judge(Judge(None, True, (), NOW))
            reply = await client.observe(fp, bot(0), NOW)
            await client.judge(Judge(reply.view.id, True, (), NOW))
            return (await client.observe(fp, bot(1), NOW + 1)).view.count
        finally:
            client.close()
            unix.close()
            await unix.wait_closed()

    assert asyncio.run(run()) == 2


def test_many_judgements_in_a_row_all_arrive() -> None:
    count = 200
    tracker = Tracker(CampaignSettings())
    server = TrackerServer(tracker)
    name = f"\0seawall-test-wire-many-{os.getpid()}"

    async def run() -> int:
        unix = await asyncio.start_unix_server(server.connection, path=name)
        client = RemoteTracker(name)
        try:
            fp = Fingerprint.from_text(TEXT, "Parcel")
            cid = (await client.observe(fp, bot(0), NOW)).view.id
            await client.observe(fp, bot(1), NOW + 1)
            for i in range(count):
                await client.judge(Judge(cid, i % 2 == 0, (), NOW + 2))
            return (await client.observe(fp, bot(2), NOW + 3)).view.spam
        finally:
            client.close()
            unix.close()
            await unix.wait_closed()

    assert asyncio.run(run()) == count // 2


def test_requests_in_flight_together_each_get_their_own_answer() -> None:
    tracker = Tracker(CampaignSettings())
    server = TrackerServer(tracker)
    name = f"\0seawall-test-wire-pipe-{os.getpid()}"
    rng = random.Random(7)
    vocabulary = ["".join(rng.choice("bcdfghjklmnpqrstvwz") for _ in range(7)) for _ in range(4000)]
    texts = [" ".join(rng.sample(vocabulary, 40)) for _ in range(40)]  # unrelated messages

    async def run() -> tuple[list[int], list[bool], int]:
        unix = await asyncio.start_unix_server(server.connection, path=name)
        client = RemoteTracker(name)
        try:
            fps = [Fingerprint.from_text(t, "Parcel") for t in texts]
            first = await asyncio.gather(
                *(client.observe(fp, bot(i), NOW) for i, fp in enumerate(fps))
            )
            # The same 40 again, all at once with a cancelled one among them.
            doomed = asyncio.ensure_future(client.observe(fps[0], bot(99), NOW + 1))
            again = asyncio.gather(
                *(client.observe(fp, bot(i + 40), NOW + 2) for i, fp in enumerate(fps))
            )
            await asyncio.sleep(0)
            doomed.cancel()
            second = await again
            last = await client.observe(fps[5], bot(200), NOW + 3)
            return (
                [r.view.count for r in second],
                [a.view.id == b.view.id for a, b in zip(first, second, strict=True)],
                last.view.count,
            )
        finally:
            client.close()
            unix.close()
            await unix.wait_closed()

    counts, same, last = asyncio.run(run())
    assert all(same)  # each answer is its own message's cluster, in order
    assert counts[1:] == [2] * 39  # each seen twice; the first maybe three times (doomed)
    assert counts[0] in (2, 3)
    assert last == 3


def test_a_lost_tracker_fails_the_waiting_and_the_next_request_reconnects() -> None:
    name = f"\0seawall-test-wire-lost-{os.getpid()}"

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)  # a request arrived: the tracker dies before it answers
        writer.close()

    async def run() -> tuple[int, int]:
        dying = await asyncio.start_unix_server(hang_up, path=name)
        client = RemoteTracker(name)
        fp = Fingerprint.from_text(TEXT, "Parcel")
        failed = 0
        try:
            results = await asyncio.gather(
                *(asyncio.wait_for(client.observe(fp, bot(i), NOW), 5) for i in range(3)),
                return_exceptions=True,
            )
            failed = sum(isinstance(r, TrackerError) for r in results)
            dying.close()
            await dying.wait_closed()
            good = await asyncio.start_unix_server(
                TrackerServer(Tracker(CampaignSettings())).connection, path=name
            )
            try:
                return failed, (await client.observe(fp, bot(9), NOW + 1)).view.count
            finally:
                good.close()
                await good.wait_closed()
        finally:
            client.close()

    assert asyncio.run(run()) == (3, 1)


def test_no_tracker_is_a_tracker_error() -> None:
    client = RemoteTracker(f"\0seawall-test-wire-none-{os.getpid()}")

    async def run() -> None:
        try:
            await client.listing()
        finally:
            client.close()

    with pytest.raises(TrackerError, match="not running"):
        asyncio.run(run())


def test_an_oversized_frame_is_a_tracker_error() -> None:
    async def run() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data((MAX_FRAME + 1).to_bytes(4, "big") + (1).to_bytes(4, "big"))
        await read_frame(reader)

    with pytest.raises(TrackerError, match="frame of"):
        asyncio.run(run())


def test_over_tcp_the_first_frame_must_carry_the_secret() -> None:
    from seawall.campaigns.protocol import Endpoint

    tracker = Tracker(CampaignSettings())
    server = TrackerServer(tracker, secret=b"s3cret")

    async def run() -> tuple[int, str]:
        tcp = await asyncio.start_server(server.connection, "127.0.0.1", 0)
        port = tcp.sockets[0].getsockname()[1]

        async def good() -> Endpoint:
            return Endpoint(host="127.0.0.1", port=port, secret=b"s3cret")

        async def bad() -> Endpoint:
            return Endpoint(host="127.0.0.1", port=port, secret=b"guess")

        friend, stranger = RemoteTracker(good), RemoteTracker(bad)
        fp = Fingerprint.from_text(TEXT, "Parcel")
        try:
            for i in range(3):
                reply = await friend.observe(fp, bot(i), NOW + i)
            refused = ""
            try:
                await asyncio.wait_for(stranger.observe(fp, bot(9), NOW + 9), 5)
            except TrackerError as exc:
                refused = str(exc)
            # The stranger's copy never reached the tracker: the next is the fourth.
            reply = await friend.observe(fp, bot(3), NOW + 3)
            return reply.view.count, refused
        finally:
            friend.close()
            stranger.close()
            tcp.close()
            await tcp.wait_closed()

    count, refused = asyncio.run(run())
    assert count == 4
    assert "lost" in refused or "closed" in refused


def test_a_locator_without_a_tracker_is_a_tracker_error() -> None:
    from seawall.campaigns.protocol import Endpoint

    async def nowhere() -> Endpoint:
        raise TrackerError("no campaign tracker holds the lease")

    async def run() -> None:
        client = RemoteTracker(nowhere)
        try:
            await client.listing()
        finally:
            client.close()

    with pytest.raises(TrackerError, match="holds the lease"):
        asyncio.run(run())


def test_a_stranger_gets_no_big_buffer_and_no_long_wait() -> None:
    server = TrackerServer(Tracker(CampaignSettings()), secret=b"s3cret")

    async def run() -> bytes:
        tcp = await asyncio.start_server(server.connection, "127.0.0.1", 0)
        port = tcp.sockets[0].getsockname()[1]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write((16 * 1024 * 1024).to_bytes(4, "big") + bytes(4))  # "here come 16 MiB"
            answer = await asyncio.wait_for(reader.read(), 5)  # closed at once, unanswered
            writer.close()
            return answer
        finally:
            tcp.close()
            await tcp.wait_closed()

    assert asyncio.run(run()) == b""


def test_frames_are_cut_the_same_however_the_reads_split_them() -> None:
    bodies = [
        (1, b""),
        (0, b"x"),
        (0xFFFFFFFF, bytes(range(256)) * 9),
        (5, b"\x00\x00\x00\x05"),
        (2, b"last"),
    ]
    stream = b"".join(frame(body, rid) for rid, body in bodies)
    assert Frames().feed(stream) == bodies
    rng = random.Random(5)
    for _ in range(50):
        frames, got, at = Frames(), [], 0
        while at < len(stream):
            step = rng.randint(1, 700)
            got.extend(frames.feed(stream[at : at + step]))
            at += step
        assert got == bodies
        assert frames.pending == 0
    one_byte = Frames()
    assert [b for i in range(len(stream)) for b in one_byte.feed(stream[i : i + 1])] == bodies


def test_an_oversized_frame_is_refused_before_its_body_comes() -> None:
    frames = Frames(limit=100)
    assert frames.feed(frame(b"a" * 100, 3)) == [(3, b"a" * 100)]
    with pytest.raises(TrackerError, match="frame of 101 bytes"):
        frames.feed((101).to_bytes(4, "big") + (4).to_bytes(4, "big"))


class CountingServer(TrackerServer):
    """Counts the reads that brought requests (one per write the client made, at most)."""

    def __init__(self, tracker: Tracker) -> None:
        super().__init__(tracker)
        self.batches: list[int] = []

    def answers(self, frames: list[tuple[int, bytes]], outbox: Any) -> None:
        self.batches.append(len(frames))
        super().answers(frames, outbox)


def test_a_judgement_rides_with_the_next_request_in_one_write() -> None:
    tracker = Tracker(CampaignSettings())
    server = CountingServer(tracker)
    name = f"\0seawall-test-wire-ride-{os.getpid()}"

    async def run() -> tuple[int, int]:
        unix = await asyncio.start_unix_server(server.connection, path=name)
        client = RemoteTracker(name, judge_delay_s=60.0)
        try:
            fp = Fingerprint.from_text(TEXT, "Parcel")
            cid = (await client.observe(fp, bot(0), NOW)).view.id
            server.batches.clear()
            await client.judge(Judge(cid, True, (), NOW))
            for _ in range(3):  # turns of the loop pass: the judgement is not sent alone
                await asyncio.sleep(0)
            reply = await client.observe(fp, bot(1), NOW + 1)
            return reply.view.spam, len(server.batches)
        finally:
            client.close()
            unix.close()
            await unix.wait_closed()

    spam, reads = asyncio.run(run())
    assert spam == 1  # the judgement went first, in the same write as the observe
    assert reads == 1


def test_an_idle_judgement_goes_alone_and_close_sends_what_waits() -> None:
    tracker = Tracker(CampaignSettings())
    server = TrackerServer(tracker)
    name = f"\0seawall-test-wire-idle-{os.getpid()}"

    async def run() -> tuple[int, int]:
        unix = await asyncio.start_unix_server(server.connection, path=name)
        client = RemoteTracker(name)
        try:
            fp = Fingerprint.from_text(TEXT, "Parcel")
            cid = (await client.observe(fp, bot(0), NOW)).view.id
            await client.observe(fp, bot(1), NOW + 1)
            await client.judge(Judge(cid, True, (), NOW + 2))
            # No request follows: the judgement is sent by itself, soon.
            for _ in range(500):
                if tracker.campaigns[cid].spam:
                    break
                await asyncio.sleep(0.01)
            alone = tracker.campaigns[cid].spam
            client.judge_delay_s = 60.0
            await client.judge(Judge(cid, True, (), NOW + 3))
            client.close()  # at once: the judgement still waiting goes before the close
            for _ in range(500):
                if tracker.campaigns[cid].spam == 2:
                    break
                await asyncio.sleep(0.01)
            return alone, tracker.campaigns[cid].spam
        finally:
            client.close()
            unix.close()
            await unix.wait_closed()

    assert asyncio.run(run()) == (1, 2)


def test_a_judgement_waiting_on_a_lost_connection_does_not_fail_the_next_one() -> None:
    name = f"\0seawall-test-wire-lost-{os.getpid()}"

    async def run() -> tuple[int, int]:
        tracker = Tracker(CampaignSettings())
        server = TrackerServer(tracker)
        writers: list[asyncio.StreamWriter] = []

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)
            await server.connection(reader, writer)

        unix = await asyncio.start_unix_server(serve, path=name)
        client = RemoteTracker(name, judge_delay_s=0.2)
        fp = Fingerprint.from_text(TEXT, "Parcel")
        try:
            cid = (await client.observe(fp, bot(0), NOW)).view.id
            await client.judge(Judge(cid, True, (), NOW))  # waits for company on this one
            for writer in writers:  # the tracker drops the connection
                writer.close()
            for _ in range(200):  # until the client has seen the connection go
                if client._writer is None:
                    break
                await asyncio.sleep(0.01)
            await client.judge(Judge(cid, True, (), NOW + 1))  # the old timer must not fire
            await asyncio.sleep(0.3)
            view = (await client.observe(fp, bot(1), NOW + 2)).view
            return view.count, view.spam  # the first judgement went with its connection
        finally:
            client.close()
            unix.close()
            await unix.wait_closed()

    assert asyncio.run(run()) == (2, 1)


def test_a_tracker_stopping_with_workers_connected_logs_no_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The tracker's loop ends while a worker's connection is open: its handler is
    cancelled, which is the connection's end, not "Exception in callback"."""
    name = f"\0seawall-test-stop-{os.getpid()}"
    server = TrackerServer(Tracker(CampaignSettings()))

    async def serve_then_stop() -> None:
        unix = await asyncio.start_unix_server(server.connection, path=name)
        client = RemoteTracker(name)
        await client.listing(min_count=1)  # connected, and its handler is waiting to read
        unix.close()  # the tracker stops; asyncio.run cancels the handler

    with caplog.at_level("DEBUG"):
        asyncio.run(serve_then_stop())
    errors = [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert not errors, [r.getMessage() for r in errors]
