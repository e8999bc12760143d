"""The HTTP connection's writes within one turn of the event loop go out as one send."""

from __future__ import annotations

import asyncio

from seawall.frontends.http.protocol import _Coalescing


class _Transport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str) -> object:
        return ("127.0.0.1", 1) if name == "peername" else None


async def test_a_head_and_its_body_are_one_send_at_the_end_of_the_turn() -> None:
    real = _Transport()
    transport = _Coalescing(real)
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    transport.write(b"")
    transport.write(b"{}")
    assert real.sent == []  # nothing until the turn ends
    assert transport.get_write_buffer_size() == 40
    await asyncio.sleep(0)
    assert real.sent == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    transport.write(b"next")
    await asyncio.sleep(0)
    assert real.sent[1:] == [b"next"]


async def test_close_sends_what_waits_first_and_abort_drops_it() -> None:
    real = _Transport()
    transport = _Coalescing(real)
    transport.write(b"refused\n")
    transport.close()
    assert real.sent == [b"refused\n"]
    assert real.closed
    await asyncio.sleep(0)  # the turn's flush finds nothing more
    assert real.sent == [b"refused\n"]

    real = _Transport()
    transport = _Coalescing(real)
    transport.write(b"lost")
    transport.abort()
    await asyncio.sleep(0)
    assert real.sent == []
    assert real.aborted


async def test_a_connection_gone_meanwhile_is_not_written() -> None:
    real = _Transport()
    transport = _Coalescing(real)
    transport.write(b"late")
    real.closed = True  # the peer went away before the turn ended
    await asyncio.sleep(0)
    assert real.sent == []
    assert transport.get_extra_info("peername") == ("127.0.0.1", 1)  # the rest is the real one


async def test_a_real_connection_gets_whole_answers() -> None:
    """Over a socket: two answers written in two turns each arrive whole, head and body."""
    loop = asyncio.get_running_loop()
    server_side: list[_Coalescing] = []

    class _Protocol(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            server_side.append(_Coalescing(transport))

    server = await loop.create_server(_Protocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(100):
            if server_side:
                break
            await asyncio.sleep(0.01)
        (transport,) = server_side
        for body in (b"one", b"two"):
            transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n")
            transport.write(body)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200 OK")
            assert await asyncio.wait_for(reader.readexactly(3), 10) == body
        transport.close()
        assert await asyncio.wait_for(reader.read(), 10) == b""
    finally:
        writer.close()
        server.close()
        await server.wait_closed()
