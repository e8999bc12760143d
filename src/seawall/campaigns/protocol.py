"""The tracker's wire: the requests a worker sends and how they are framed (sans I/O).

Frames are an 8-byte header, the body's length and a request id (big-endian, 4 bytes
each), and a msgpack body.  A request that expects an answer carries an id other than 0
(a counter of its connection), and its answer carries the same id back: the tracker sends
each answer when it is ready, so one held back (``hold.py``) delays no other.  A judgement
is one-way, id 0: a worker does not wait on the tracker after its verdict (one round trip
a message, not two).  Tracker and workers are one release: the header is not negotiated.
The socket lives in Linux's abstract namespace, named after the state dir, so no file is
left behind and long state-dir paths do not matter.

With the state on Redis, one node's tracker serves every node over TCP (see
``seawall.serve.tracker``): its address and a secret are published in the store under
``LEASE_KEY``, and a connection's first frame is a one-way ``Hello`` with that secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import struct
from pathlib import Path

import msgspec

from seawall.campaigns.registry import SHOWN_IPS, Judge, Observation
from seawall.config import Config
from seawall.errors import TrackerError

MAX_FRAME = 16 * 1024 * 1024
MAX_HELLO = 256  # a Hello frame is ~30 bytes: a stranger gets no bigger buffer than this
HIGH_WATER = 1 << 20  # bytes written and not yet sent before a writer waits
READ_SIZE = 1 << 18  # bytes asked of a connection at a time (it returns what it has)
_HEADER = struct.Struct(">II")  # body length, request id
HEADER_SIZE = _HEADER.size
NO_ANSWER = 0  # the id of a one-way request (a judgement, the Hello)
MAX_ID = 0xFFFFFFFF


class Observe(msgspec.Struct, tag="observe"):
    fp: bytes
    obs: Observation
    now: float


class Mark(msgspec.Struct, tag="mark"):
    campaign: str
    label: str
    now: float


class Listing(msgspec.Struct, tag="list"):
    min_count: int = 2
    limit: int = 0  # the busiest this many; 0: all


class Tally(msgspec.Struct, tag="tally"):
    """How many campaigns have ``min_count`` messages or more, and of those how many send
    ``outbreak_per_hour`` or more now and come from ``botnet_min_ips`` addresses or more:
    what /metrics shows, counted where the campaigns are rather than listed to be counted."""

    min_count: int = 2
    outbreak_per_hour: int = 0
    botnet_min_ips: int = 0


class Show(msgspec.Struct, tag="show"):
    """One campaign in detail; at most ``max_ips`` addresses of each list (the tracker
    sends no more than ``registry.MAX_IPS``)."""

    campaign: str
    max_ips: int = SHOWN_IPS
    sample: bool = False  # with the campaign's sample message (the dashboard shows it)


class Hello(msgspec.Struct, tag="hello"):
    """The first frame on a TCP connection: the secret the tracker published (one-way)."""

    secret: bytes


class Endpoint(msgspec.Struct, frozen=True):
    """Where a tracker serves: a unix socket name, or TCP host and port with its secret."""

    unix: str = ""
    host: str = ""
    port: int = 0
    secret: bytes = b""
    node: str = ""  # who published it, for logs


Request = Observe | Judge | Mark | Listing | Tally | Show | Hello
LEASE_KEY = "campaigns:tracker"  # the Store key of the serving tracker's Endpoint
decode_request = msgspec.msgpack.Decoder(Request).decode
encode = msgspec.msgpack.Encoder().encode


def address(config: Config) -> str:
    """The tracker's abstract socket name for this state dir."""
    digest = hashlib.sha1(str(Path(config.state_dir).resolve()).encode()).hexdigest()[:16]
    return f"\0seawall-campaigns-{digest}"


def encode_endpoint(endpoint: Endpoint) -> bytes:
    return encode(endpoint)


decode_endpoint = msgspec.msgpack.Decoder(Endpoint).decode


def frame(body: bytes, rid: int = NO_ANSWER) -> bytes:
    """``body`` with its length and request id in front."""
    return _HEADER.pack(len(body), rid) + body


class Frames:
    """Frames cut from a byte stream as it comes, however the reads split them (sans I/O).

    One read of a busy connection brings many frames: cutting them all from one buffer
    costs far less than two awaited reads a frame.

    >>> frames = Frames()
    >>> data = frame(b"one", 7) + frame(b"two")
    >>> frames.feed(data[:9]), frames.feed(data[9:])
    ([], [(7, b'one'), (0, b'two')])
    """

    def __init__(self, limit: int = MAX_FRAME) -> None:
        self.limit = limit
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """The request ids and bodies of the frames ``data`` completes; TrackerError for one
        over the limit."""
        buffer = self._buffer
        buffer += data
        bodies: list[tuple[int, bytes]] = []
        at = 0
        size = len(buffer)
        unpack = _HEADER.unpack_from
        while size - at >= HEADER_SIZE:
            length, rid = unpack(buffer, at)
            if length > self.limit:
                raise TrackerError(f"frame of {length} bytes")
            end = at + HEADER_SIZE + length
            if end > size:
                break
            bodies.append((rid, bytes(buffer[at + HEADER_SIZE : end])))
            at = end
        if at:
            del buffer[:at]
        return bodies

    @property
    def pending(self) -> int:
        """Bytes held of a frame not complete yet."""
        return len(self._buffer)


async def read_frame(reader: asyncio.StreamReader, limit: int = MAX_FRAME) -> tuple[int, bytes]:
    """The next frame's request id and body; TrackerError for one over ``limit`` bytes."""
    length, rid = _HEADER.unpack(await reader.readexactly(HEADER_SIZE))
    if length > limit:
        raise TrackerError(f"frame of {length} bytes")
    return rid, await reader.readexactly(length)
