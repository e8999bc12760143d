"""An asyncio client for clamd, ClamAV's daemon: INSTREAM scans, PING and VERSION.

The wire protocol is clamd(8)'s.  Commands start with ``z`` and end with NUL, and so do
the replies; INSTREAM data follows the command in chunks, each led by its length as a
4-byte big-endian integer, and a zero-length chunk ends it.  Connections stay open in an
IDSESSION and are reused, at most ``max_connections`` at once per process: a small scan
over a kept TCP connection takes half the time of one over a new connection (connect,
accept, close), and a busy MX leaves no TIME_WAIT sockets behind (bench/clamav.py).

    >>> clamd = Clamd("127.0.0.1:3310")                        # doctest: +SKIP
    >>> (await clamd.instream(raw)).signature                   # doctest: +SKIP
    'Eicar-Signature'

Exceptions::

    ClamdError               clamd did not scan the data
     ├── ClamdUnavailable    no connection, the connection closed, or no answer in time
     │    └── ClamdTimeout   no answer within timeout_s
     ├── ClamdReplyError     clamd answered with an error, or something that is not clamd's
     └── StreamTooLarge      over max_bytes (not sent) or over clamd's StreamMaxLength
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

DEFAULT_MAX_BYTES = 25 * 1024 * 1024  # StreamMaxLength in Debian's clamd.conf (25M)
CHUNK_BYTES = 64 * 1024  # INSTREAM chunk size
_MAX_REPLY = 4096  # bytes of one reply; a signature name is far shorter
_SIZE_LIMIT = "INSTREAM size limit exceeded"


class ClamdError(Exception):
    """clamd did not scan the data."""


class ClamdUnavailable(ClamdError):
    """clamd could not be reached, closed the connection, or did not answer in time."""


class ClamdTimeout(ClamdUnavailable):
    """clamd did not answer within the client's ``timeout_s``."""


class ClamdReplyError(ClamdError):
    """clamd answered with an error (or with something that is not a clamd reply)."""


class StreamTooLarge(ClamdError):
    """The data is over ``max_bytes`` (and was not sent) or over clamd's StreamMaxLength."""


@dataclass(frozen=True, slots=True)
class ScanResult:
    """One INSTREAM answer: the signature that matched, None when the data is clean."""

    signature: str | None = None

    @property
    def infected(self) -> bool:
        return self.signature is not None


def socket_address(address: str) -> tuple[socket.AddressFamily, str | tuple[str, int]]:
    """``"host:port"``, ``"[v6]:port"``, ``"/path"`` or ``"unix:/path"`` -> (family, sockaddr).

    A host name is resolved here, once, so connecting never waits on DNS.
    Raises ValueError for anything else.
    """
    if address.startswith("unix:"):
        address = address[5:]
    if address.startswith("/"):
        return socket.AF_UNIX, address
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"clamd address {address!r}: expected host:port or a socket path")
    port = int(port_text)
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        try:
            info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise ValueError(f"clamd address {address!r}: {exc}") from None
        family, _, _, _, sockaddr = info[0]
        return family, (str(sockaddr[0]), port)
    return (socket.AF_INET6 if ip.version == 6 else socket.AF_INET), (str(ip), port)


def encode_instream(data: bytes | memoryview, chunk: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The INSTREAM body for ``data``: length-prefixed chunks, then the zero-length one."""
    view = memoryview(data)
    for start in range(0, len(view), chunk):
        piece = view[start : start + chunk]
        yield len(piece).to_bytes(4, "big") + piece
    yield b"\0\0\0\0"


def parse_reply(reply: bytes, session_id: int | None = None) -> str:
    """A reply's text without its terminator, and without its ``"<id>: "`` inside a session.

    Raises ClamdReplyError when the reply is not for ``session_id``.
    """
    text = reply.rstrip(b"\0\n").decode("utf-8", "replace")
    if session_id is not None:
        prefix = f"{session_id}: "
        if not text.startswith(prefix):
            raise ClamdReplyError(f"reply for another request: {text[:200]!r}")
        text = text[len(prefix) :]
    return text


def parse_scan(text: str) -> ScanResult:
    """An INSTREAM reply: ``stream: OK``, ``stream: NAME FOUND`` or ``... ERROR``."""
    if text.startswith(_SIZE_LIMIT):
        raise StreamTooLarge("over clamd's StreamMaxLength")
    if text.endswith(" ERROR"):
        raise ClamdReplyError(text[:-6].removeprefix("stream: ").strip() or "ERROR")
    if text == "stream: OK":
        return ScanResult()
    if text.startswith("stream: ") and text.endswith(" FOUND"):
        name = text[8:-6].strip()
        if name:
            return ScanResult(name)
    raise ClamdReplyError(f"unexpected reply {text[:200]!r}")


@dataclass(eq=False, slots=True)
class _Connection:
    sock: socket.socket
    session: bool
    requests: int = 0  # commands sent in this IDSESSION; replies carry their number
    last_used: float = field(default_factory=time.monotonic)

    def idle(self) -> bool:
        """Open with nothing to read (clamd writes only when it closes an idle session)."""
        try:
            self.sock.recv(1, socket.MSG_PEEK)  # data or b"" (closed): not reusable
        except BlockingIOError:
            return True
        except OSError:
            pass
        return False


class _Closed(ClamdUnavailable):
    """The connection closed before a whole reply came."""


class Clamd:
    """A clamd client for one address, safe to share between the tasks of one event loop.

    ``timeout_s`` bounds a whole call, waiting for a free connection included;
    ``idle_s`` must stay below clamd's ReadTimeout (120 s; Debian 180 s), after which
    clamd closes an idle session.  ``sessions=False`` opens a new connection per call,
    for proxies or servers that do not know IDSESSION.
    """

    def __init__(
        self,
        address: str,
        *,
        timeout_s: float = 5.0,
        connect_timeout_s: float = 1.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_connections: int = 8,
        idle_s: float = 60.0,
        sessions: bool = True,
    ) -> None:
        if max_connections < 1 or max_bytes < 1:
            raise ValueError("max_connections and max_bytes must be positive")
        self.address = address
        self.family, self.sockaddr = socket_address(address)
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.max_bytes = max_bytes
        self.max_connections = max_connections
        self.idle_s = idle_s
        self.sessions = sessions
        self._idle: list[_Connection] = []
        self._pid = os.getpid()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots = asyncio.Semaphore(max_connections)

    async def instream(self, data: bytes | memoryview) -> ScanResult:
        """Scan ``data``; raises StreamTooLarge without sending when over ``max_bytes``."""
        if len(data) > self.max_bytes:
            raise StreamTooLarge(f"{len(data)} bytes, over max_bytes {self.max_bytes}")
        return parse_scan(await self._call(b"zINSTREAM\0", data))

    async def ping(self) -> None:
        """Raise ClamdError unless clamd answers PONG."""
        text = await self._call(b"zPING\0")
        if text != "PONG":
            raise ClamdReplyError(f"unexpected reply {text[:200]!r}")

    async def version(self) -> str:
        """clamd's version line: ``ClamAV 1.4.6/27500/Mon Jan  5 08:00:00 2026``."""
        text = await self._call(b"zVERSION\0")
        if not text.startswith("ClamAV "):
            raise ClamdReplyError(f"unexpected reply {text[:200]!r}")
        return text

    def close(self) -> None:
        """Close the kept connections (clamd ends their sessions)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.sock.close()

    async def _call(self, command: bytes, data: bytes | memoryview | None = None) -> str:
        loop = asyncio.get_running_loop()
        self._adopt(loop)
        try:
            async with asyncio.timeout(self.timeout_s), self._slots:
                return await self._exchange(loop, command, data)
        except TimeoutError:
            raise ClamdTimeout(f"no answer from {self.address} in {self.timeout_s:g}s") from None

    async def _exchange(
        self, loop: asyncio.AbstractEventLoop, command: bytes, data: bytes | memoryview | None
    ) -> str:
        conn = self._take()
        reused = conn is not None
        while True:
            if conn is None:
                conn = await self._connect(loop)
            try:
                text = await self._request(loop, conn, command, data)
            except _Closed:
                conn.sock.close()
                if reused:  # clamd restarted or ended the session: once more, afresh
                    conn, reused = None, False
                    continue
                raise
            except BaseException:
                conn.sock.close()  # cancelled or failed mid-request: its state is unknown
                raise
            # After an ERROR clamd may end the session; such a connection is not reused.
            if conn.session and not text.endswith("ERROR"):
                conn.last_used = time.monotonic()
                self._idle.append(conn)
            else:
                conn.sock.close()
            return text

    async def _request(
        self,
        loop: asyncio.AbstractEventLoop,
        conn: _Connection,
        command: bytes,
        data: bytes | memoryview | None,
    ) -> str:
        head = command
        if conn.session:
            if conn.requests == 0:
                head = b"zIDSESSION\0" + command
            conn.requests += 1
        try:
            if data is None:
                await loop.sock_sendall(conn.sock, head)
            elif len(data) <= CHUNK_BYTES:  # one send: command, data and terminator
                await loop.sock_sendall(conn.sock, b"".join((head, *encode_instream(data))))
            else:
                await loop.sock_sendall(conn.sock, head)
                for piece in encode_instream(data):
                    await loop.sock_sendall(conn.sock, piece)
        except OSError as exc:
            # clamd may have answered (a size limit) and closed before taking it all.
            reply = await self._read(loop, conn, lenient=True)
            if not reply:
                raise _Closed(f"{self.address} closed the connection: {exc}") from None
        else:
            reply = await self._read(loop, conn)
        return parse_reply(reply, conn.requests if conn.session else None)

    async def _read(
        self, loop: asyncio.AbstractEventLoop, conn: _Connection, *, lenient: bool = False
    ) -> bytes:
        buf = bytearray()
        while not buf.endswith(b"\0"):
            try:
                got = await loop.sock_recv(conn.sock, _MAX_REPLY)
            except OSError as exc:
                if lenient or buf:
                    break
                raise _Closed(f"{self.address} closed the connection: {exc}") from None
            if not got:
                if buf or lenient:
                    break  # a newline-ended reply before closing ("COMMAND READ TIMED OUT")
                raise _Closed(f"{self.address} closed the connection before answering")
            buf += got
            if len(buf) > _MAX_REPLY:
                raise ClamdReplyError(f"reply longer than {_MAX_REPLY} bytes")
        return bytes(buf)

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            if self.family != socket.AF_UNIX:
                # Small requests must not wait for the ACK of the previous send (Nagle).
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            async with asyncio.timeout(self.connect_timeout_s):
                await loop.sock_connect(sock, self.sockaddr)
        except TimeoutError:
            sock.close()
            raise ClamdTimeout(
                f"no connection to {self.address} in {self.connect_timeout_s:g}s"
            ) from None
        except OSError as exc:
            sock.close()
            raise ClamdUnavailable(f"cannot connect to {self.address}: {exc}") from None
        except BaseException:
            sock.close()
            raise
        return _Connection(sock, self.sessions)

    def _take(self) -> _Connection | None:
        """The most recently used open connection; stale ones are closed on the way."""
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if now - conn.last_used < self.idle_s and conn.idle():
                return conn
            conn.sock.close()
        return None

    def _adopt(self, loop: asyncio.AbstractEventLoop) -> None:
        """Forget connections inherited over fork; bind the slots to the running loop."""
        if os.getpid() != self._pid:
            self._pid = os.getpid()
            self.close()  # closing a copy leaves the parent's connection open
        if loop is not self._loop:
            self._loop = loop
            self._slots = asyncio.Semaphore(self.max_connections)
