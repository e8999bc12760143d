"""Issue 15, defect 2: idle and slow connections held every slot, and none was timed out."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
from collections.abc import Callable

import pytest
from tests.frontends.test_milter_server import (
    NO_REPLY,
    POSTFIX_ACTIONS,
    POSTFIX_PROTOCOL,
    Mta,
    z,
)
from tests.hostile.http import closed_by_peer, connect_from, get
from tests.integration.seawall_proc import Seawall

GUARD_S = 60.0  # only against a hang: a loaded 2-core machine may be slow, never this slow


def loopback(i: int) -> str:
    """The i-th loopback source address from 127.0.0.2 up (127.0.0.0/8 is all loopback)."""
    n = i + 2
    return f"127.0.{n // 250}.{n % 250 + 2}"


def idle_connections(port: int, count: int, first: int = 0) -> list[socket.socket]:
    """``count`` connections that say nothing, spread over 40 source addresses."""
    return [connect_from(loopback((first + i) % 40), port) for i in range(count)]


async def milter_session(port: int) -> list[tuple[bytes, bytes]]:
    """One whole message through the milter, as Postfix sends it; the final replies."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    mta = Mta(reader, writer)
    try:
        await mta.negotiate(6, POSTFIX_ACTIONS, POSTFIX_PROTOCOL)
        await mta.event(b"C", z("mx.example"), b"4", b"\x30\x39", z("192.0.2.7"))
        await mta.event(b"H", z("mx.example"))
        return await mta.message()
    finally:
        await mta.close()


@pytest.mark.usefixtures("many_files")
def test_thousands_of_idle_connections_do_not_deny_service(
    serve: Callable[..., Seawall],
) -> None:
    # One worker with the default caps (1,024 per listener): both floods go beyond them.
    sw = serve(workers=1, header_timeout_s=300.0)
    held = idle_connections(sw.ports["http"], 2500)
    held += idle_connections(sw.ports["milter"], 1500, first=7)
    try:
        t0 = time.monotonic()
        status, body = get(sw.url("/ping"), timeout=GUARD_S)
        ping_s = time.monotonic() - t0
        assert (status, body) == (200, b"pong\r\n")
        t0 = time.monotonic()
        replies = asyncio.run(asyncio.wait_for(milter_session(sw.ports["milter"]), GUARD_S))
        milter_s = time.monotonic() - t0
        assert replies[-1][0] in b"actyr"  # a final decision (accept, continue, ...)
        print(f"/ping {ping_s:.3f}s, milter session {milter_s:.3f}s behind 4,000 idle sockets")
        # Room was made by closing the longest idle: the first ones opened.
        assert closed_by_peer(held[0], timeout=GUARD_S)
        assert closed_by_peer(held[2500], timeout=GUARD_S)
        tables = json.loads(get(sw.url("/stat"))[1])["connections"]
        assert tables["http"]["evicted"] >= 2500 - 1024
        assert tables["milter"]["evicted"] >= 1500 - 1024
        assert tables["http"]["refused"] == tables["milter"]["refused"] == 0
    finally:
        for sock in held:
            sock.close()
    assert "Traceback" not in sw.log()


def test_slowloris_requests_are_closed_by_their_deadline(serve: Callable[..., Seawall]) -> None:
    sw = serve(header_timeout_s=1.0, body_timeout_s=1.5, milter={"idle_timeout_s": 2.0})
    port = sw.ports["http"]
    body = socket.create_connection(("127.0.0.1", port), timeout=GUARD_S)
    body.sendall(b"POST /checkv2 HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
    body.sendall(b"x" * 100)
    head = socket.create_connection(("127.0.0.1", port), timeout=GUARD_S)
    head.sendall(b"POST /checkv2 HTTP/1.1\r\nHost: x\r\n")
    # Bytes that trickle in do not extend the head's deadline.
    t0 = time.monotonic()
    closed = False
    for _ in range(int(GUARD_S / 0.5)):
        try:
            head.sendall(b"X")
        except OSError:
            closed = True
            break
        time.sleep(0.5)
    trickled_s = time.monotonic() - t0
    assert closed or closed_by_peer(head, timeout=1)
    assert closed_by_peer(body, timeout=GUARD_S)
    print(f"a trickled head was closed after {trickled_s:.1f}s (header_timeout_s = 1)")
    # A milter packet begun and never finished; a connection that says nothing at all.
    packet = socket.create_connection(("127.0.0.1", sw.ports["milter"]), timeout=GUARD_S)
    packet.sendall(struct.pack(">I", 13) + b"O\x00\x00")
    silent = socket.create_connection(("127.0.0.1", sw.ports["milter"]), timeout=GUARD_S)
    assert closed_by_peer(packet, timeout=GUARD_S)
    assert closed_by_peer(silent, timeout=GUARD_S)
    for sock in (body, head, packet, silent):
        sock.close()
    assert get(sw.url("/ping"))[0] == 200


def test_idle_policy_connection_is_closed_after_its_idle_timeout(
    serve: Callable[..., Seawall],
) -> None:
    sw = serve(policy={"idle_timeout_s": 2.0})
    with socket.create_connection(("127.0.0.1", sw.ports["policy"]), timeout=GUARD_S) as sock:
        sock.sendall(
            b"request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.9\n\n"
        )
        assert sock.recv(4096).startswith(b"action=")
        assert closed_by_peer(sock, timeout=GUARD_S)


def test_past_the_cap_per_client_new_connections_get_the_protocols_tempfail(
    serve: Callable[..., Seawall],
) -> None:
    sw = serve(max_connections_per_client=3)
    held = [
        socket.create_connection(("127.0.0.1", sw.ports[n]), timeout=GUARD_S)
        for n in ("http", "spamd", "policy", "milter")
        for _ in range(3)
    ]
    try:
        status, body = get(sw.url("/ping"), timeout=GUARD_S)
        assert status == 503
        assert b"retry later" in body
        with socket.create_connection(("127.0.0.1", sw.ports["spamd"]), timeout=GUARD_S) as s:
            s.sendall(b"PING SPAMC/1.5\r\n\r\n")
            assert s.recv(4096).startswith(b"SPAMD/1.0 75 EX_TEMPFAIL")
        with socket.create_connection(("127.0.0.1", sw.ports["policy"]), timeout=GUARD_S) as s:
            s.sendall(b"request=smtpd_access_policy\nprotocol_state=RCPT\n\n")
            assert s.recv(4096) == b"action=DEFER_IF_PERMIT Service temporarily unavailable\n\n"

        async def refused_milter() -> tuple[bytes, bytes]:
            reader, writer = await asyncio.open_connection("127.0.0.1", sw.ports["milter"])
            mta = Mta(reader, writer)
            await mta.negotiate(6, POSTFIX_ACTIONS, POSTFIX_PROTOCOL)
            events = [
                (b"C", z("mx.example") + b"4\x30\x39" + z("192.0.2.7")),
                (b"H", z("mx.example")),
                (b"M", z("<a@example.com>")),
            ]
            reply = (b"", b"")
            for code, payload in events:  # the first event Postfix waits on is tempfailed
                mta.send(code, payload)
                if not mta.protocol & NO_REPLY[code]:
                    reply = await mta.reply()
                    break
            await mta.close()
            return reply

        assert asyncio.run(asyncio.wait_for(refused_milter(), GUARD_S)) == (b"t", b"")
    finally:
        for sock in held:
            sock.close()
    assert "no room for a connection from 127.0.0.1" in sw.log()


def test_a_connection_answered_before_its_body_ended_is_timed_out_when_idle(
    serve: Callable[..., Seawall],
) -> None:
    sw = serve(http={"allow_learn": True, "keepalive_s": 2.0})
    sock = socket.create_connection(("127.0.0.1", sw.ports["http"]), timeout=GUARD_S)
    sock.sendall(b"POST /learnspam HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 401 ")  # no token: refused before the body is read
    sock.sendall(b"a" * 5000)  # the body ends after its answer
    assert closed_by_peer(sock, timeout=GUARD_S)  # then it idles, and idle ends
    sock.close()
