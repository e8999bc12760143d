"""The test servers' ports (tests/ports.py, tests/redis_servers.py): none from the range
outgoing connections take theirs from, none handed out twice, and a Redis whose port was
taken meanwhile moves to another."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from tests.ports import _ephemeral_start, free_port, free_ports
from tests.redis_servers import RedisServer


def test_ports_below_the_ephemeral_range_never_twice() -> None:
    top = _ephemeral_start()
    if top < 12_000:
        pytest.skip(f"the ephemeral range starts at {top}: no room below it")
    given = free_ports(50) + [free_port() for _ in range(20)] + free_ports(5, "both")
    assert len(set(given)) == len(given)
    assert all(port < top for port in given)
    for port in free_ports(3, "both"):  # free for TCP and UDP
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(socket.AF_INET, kind) as sock:
                sock.bind(("127.0.0.1", port))


def test_a_redis_whose_port_was_taken_moves(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    taken = server.port
    with socket.socket() as other:  # another process's listener, there first
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", taken))
        other.listen(8)
        with server.running():
            assert server.port != taken
            with server.client() as client:
                assert client.ping()
        mine = RedisServer(tmp_path / "fixed", port=taken)  # a port the caller chose stays
        with pytest.raises(RuntimeError, match="exited"):
            mine.start()
