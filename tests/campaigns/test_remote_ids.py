"""Answers matched to requests by id: in any order, and an answer to an id nobody waits on
drops the connection and fails its waiters (a real unix socket, a scripted tracker)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable

import msgspec

from seawall.campaigns.fingerprint import Fingerprint
from seawall.campaigns.protocol import (
    MAX_ID,
    Frames,
    Listing,
    Observe,
    decode_request,
    encode,
    frame,
)
from seawall.campaigns.registry import Observation
from seawall.campaigns.remote import RemoteTracker
from seawall.campaigns.server import TrackerServer
from seawall.campaigns.tracker import Tracker
from seawall.config import CampaignSettings
from seawall.errors import TrackerError

NOW = 1_795_000_000.0
Script = Callable[[list[tuple[int, bytes]], asyncio.StreamWriter], Awaitable[None]]


async def _scripted(name: str, script: Script, wanted: int) -> asyncio.Server:
    """A tracker that reads until ``wanted`` requests came, then lets ``script`` answer."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames, got = Frames(), list[tuple[int, bytes]]()
        try:
            while len(got) < wanted and (data := await reader.read(1 << 16)):
                got.extend(frames.feed(data))
            await script(got, writer)
            await reader.read()  # until the client hangs up
        finally:
            writer.close()

    return await asyncio.start_unix_server(serve, path=name)


def _listings(
    name: str, script: Script, limits: list[int], *, last_id: int | None = None
) -> list[list[dict[str, int]]]:
    """A RemoteTracker's ``listing`` answers, one call a limit sent together, through a
    scripted tracker that answers once all of them came; ``last_id`` sets the client's
    counter first."""

    async def run() -> list[list[dict[str, int]]]:
        server = await _scripted(name, script, len(limits))
        client = RemoteTracker(name)
        if last_id is not None:
            client._last_id = last_id
        try:
            calls = [client.listing(limit=n) for n in limits]
            return list(await asyncio.wait_for(asyncio.gather(*calls), 30))
        finally:
            client.close()
            server.close()
            await server.wait_closed()

    return asyncio.run(run())


def test_answers_in_reverse_order_each_reach_their_own_caller() -> None:
    name = f"\0seawall-test-ids-reverse-{os.getpid()}"

    async def reverse(got: list[tuple[int, bytes]], writer: asyncio.StreamWriter) -> None:
        answers = []
        for rid, body in reversed(got):
            request = decode_request(body)
            assert isinstance(request, Listing)
            answers.append(frame(encode([{"limit": request.limit}]), rid))
        writer.write(b"".join(answers))

    results = _listings(name, reverse, [1, 2, 3, 4, 5])
    assert [result[0]["limit"] for result in results] == [1, 2, 3, 4, 5]


def test_ids_are_distinct_and_never_the_one_way_zero() -> None:
    name = f"\0seawall-test-ids-distinct-{os.getpid()}"
    seen: list[int] = []

    async def record(got: list[tuple[int, bytes]], writer: asyncio.StreamWriter) -> None:
        seen.extend(rid for rid, _ in got)
        writer.write(b"".join(frame(encode([]), rid) for rid, _ in got))

    _listings(name, record, [0] * 50)
    assert len(set(seen)) == 50
    assert 0 not in seen


def _wrong_id_drops_the_connection(kind: str) -> tuple[int, list[str], int]:
    name = f"\0seawall-test-ids-{kind}-{os.getpid()}"

    async def wrong(got: list[tuple[int, bytes]], writer: asyncio.StreamWriter) -> None:
        rids = [rid for rid, _ in got]
        # "unknown": an id never sent; "twice": the first request's answered two times.
        bad = max(rids) + 1000 if kind == "unknown" else rids[0]
        writer.write(frame(encode([]), rids[0]) + frame(encode([]), bad))

    async def run() -> tuple[int, list[str], int]:
        server = await _scripted(name, wrong, 3)
        client = RemoteTracker(name)
        try:
            results = await asyncio.wait_for(
                asyncio.gather(*(client.listing() for _ in range(3)), return_exceptions=True),
                30,
            )
            answered = sum(r == [] for r in results)
            errors = [str(r) for r in results if isinstance(r, TrackerError)]
            server.close()
            await server.wait_closed()
            # The next request connects afresh, to a real tracker this time.
            server = await asyncio.start_unix_server(
                TrackerServer(Tracker(CampaignSettings())).connection, path=name
            )
            fp = Fingerprint.from_text("a parcel waits at the depot for its fee", "Parcel")
            reply = await client.observe(fp, Observation(ip="192.0.2.7"), NOW)
            return answered, errors, reply.view.count
        finally:
            client.close()
            server.close()
            await server.wait_closed()

    return asyncio.run(run())


def test_an_answer_to_an_unknown_id_drops_the_connection_and_fails_the_waiters() -> None:
    answered, errors, count = _wrong_id_drops_the_connection("unknown")
    assert answered == 1  # the one rightly answered before it
    assert len(errors) == 2
    assert all("lost" in e and "never asked" in e for e in errors)
    assert count == 1


def test_an_id_answered_twice_drops_the_connection_and_fails_the_waiters() -> None:
    answered, errors, count = _wrong_id_drops_the_connection("twice")
    assert answered == 1
    assert len(errors) == 2
    assert all("never asked" in e for e in errors)
    assert count == 1


def test_the_server_answers_with_the_request_id_and_not_the_one_way_ones() -> None:
    """A raw client: an observe with id 7, a listing with id 0 (one-way: no answer), then
    a listing with id 9; the two answers carry 7 and 9."""
    name = f"\0seawall-test-ids-server-{os.getpid()}"
    fp = Fingerprint.from_text("a parcel waits at the depot for its fee", "Parcel")

    async def run() -> list[int]:
        server = await asyncio.start_unix_server(
            TrackerServer(Tracker(CampaignSettings())).connection, path=name
        )
        try:
            reader, writer = await asyncio.open_unix_connection(name)
            observe = Observe(fp=fp.to_bytes(), obs=Observation(ip="192.0.2.7"), now=NOW)
            writer.write(
                frame(encode(observe), 7)
                + frame(encode(Listing()), 0)
                + frame(encode(Listing()), 9)
            )
            frames, got = Frames(), list[tuple[int, bytes]]()
            while len(got) < 2:
                data = await asyncio.wait_for(reader.read(1 << 16), 30)
                assert data
                got.extend(frames.feed(data))
            writer.close()
            assert msgspec.msgpack.decode(got[1][1]) == []  # one campaign, of one message
            return [rid for rid, _ in got]
        finally:
            server.close()
            await server.wait_closed()

    assert asyncio.run(run()) == [7, 9]


def test_ids_wrap_past_the_largest_and_skip_zero() -> None:
    name = f"\0seawall-test-ids-wrap-{os.getpid()}"
    seen: list[int] = []

    async def record(got: list[tuple[int, bytes]], writer: asyncio.StreamWriter) -> None:
        seen.extend(rid for rid, _ in got)
        writer.write(b"".join(frame(encode([{"limit": rid}]), rid) for rid, _ in got))

    results = _listings(name, record, [0] * 3, last_id=MAX_ID - 1)
    assert [result[0]["limit"] for result in results] == [MAX_ID, 1, 2]
    assert seen == [MAX_ID, 1, 2]
