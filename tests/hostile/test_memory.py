"""Issue 15, defect 3: one 300 MB header or a few huge milter packets took hundreds of MB."""

from __future__ import annotations

import re
import socket
import struct
from collections.abc import Callable

import psutil
from tests.hostile.http import closed_by_peer
from tests.integration.seawall_proc import Seawall

GUARD_S = 60.0
MB = 1024 * 1024


def worker(sw: Seawall) -> psutil.Process:
    """The (only) worker process of ``sw``."""
    pids = re.findall(r"worker (\d+) serving", sw.log())
    return psutil.Process(int(pids[-1]))


def send_until_closed(sock: socket.socket, total: int, chunk: bytes) -> int:
    """Send ``chunk`` until ``total`` bytes are out or the server closes; bytes sent."""
    sent = 0
    try:
        while sent < total:
            sock.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass
    return sent


def reply_of(sock: socket.socket) -> bytes:
    sock.settimeout(GUARD_S)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except OSError:
        pass
    return data


def test_a_huge_http_header_is_refused_within_the_head_limit(
    serve: Callable[..., Seawall],
) -> None:
    sw = serve()
    proc = worker(sw)
    before = proc.memory_info().rss
    sock = socket.create_connection(("127.0.0.1", sw.ports["http"]), timeout=GUARD_S)
    sock.sendall(b"POST /checkv2 HTTP/1.1\r\nHost: x\r\nX-Big: ")
    sent = send_until_closed(sock, 300 * MB, b"a" * MB)
    reply = reply_of(sock)
    sock.close()
    grown = proc.memory_info().rss - before
    print(
        f"sent {sent / MB:.0f} MB of one header before the close; worker RSS +{grown / MB:.1f} MB"
    )
    assert sent < 300 * MB
    assert reply.startswith(b"HTTP/1.1 431 ") or reply == b""  # a reset may eat the reply
    assert grown < 32 * MB
    many = socket.create_connection(("127.0.0.1", sw.ports["http"]), timeout=GUARD_S)
    fields = b"".join(b"X-F%d: 1\r\n" % i for i in range(101))
    many.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
    assert reply_of(many).startswith(b"HTTP/1.1 431 ")
    many.close()
    assert "Traceback" not in sw.log()


def test_milter_packets_beyond_the_cap_close_the_connection_at_their_length(
    serve: Callable[..., Seawall],
) -> None:
    sw = serve()
    proc = worker(sw)
    before = proc.memory_info().rss
    socks = [
        socket.create_connection(("127.0.0.1", sw.ports["milter"]), timeout=GUARD_S)
        for _ in range(8)
    ]
    sent = []
    for sock in socks:
        sock.sendall(struct.pack(">I", 64 * MB - 1) + b"B")  # a 64 MiB packet is announced
        sent.append(send_until_closed(sock, 60 * MB, b"x" * MB))
    for sock in socks:
        assert closed_by_peer(sock, timeout=GUARD_S)
        sock.close()
    grown = proc.memory_info().rss - before
    print(f"8 milter connections sent {sum(sent) / MB:.0f} MB; worker RSS +{grown / MB:.1f} MB")
    assert grown < 32 * MB
    assert "exceeds 262144" in sw.log()


def test_bytes_in_flight_are_bounded_per_worker(serve: Callable[..., Seawall]) -> None:
    sw = serve(max_bytes_in_flight=MB)
    # One upload says it is 800 kB and holds that much of the worker's budget meanwhile ...
    slow = socket.create_connection(("127.0.0.1", sw.ports["http"]), timeout=GUARD_S)
    slow.sendall(b"POST /checkv2 HTTP/1.1\r\nHost: x\r\nContent-Length: 800000\r\n\r\nSubj")
    # ... so a second one cannot have as much: 503, come back later.
    other = socket.create_connection(("127.0.0.1", sw.ports["http"]), timeout=GUARD_S)
    other.sendall(b"POST /checkv2 HTTP/1.1\r\nHost: x\r\nContent-Length: 800000\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += other.recv(4096)
    assert head.startswith(b"HTTP/1.1 503 ")
    other.close()
    slow.sendall(b"ject: hi\r\n\r\n" + b"a" * (800000 - 16))
    answer = reply_of_head(slow)
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    slow.close()


def reply_of_head(sock: socket.socket) -> bytes:
    sock.settimeout(GUARD_S)
    head = b""
    while b"\r\n\r\n" not in head and (chunk := sock.recv(4096)):
        head += chunk
    return head
