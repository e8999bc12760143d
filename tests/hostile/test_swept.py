"""A connection the sweeper closes at its header deadline ends quietly.

Found by ``bench.hostile load``: every spamd connection trickling its request line was closed
at ``header_timeout_s``, then its error reply was written to the closed transport, and the
worker logged a 20-line "Task exception was never retrieved" traceback for each (9,872 in
five minutes of 500 hostile connections).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from tests.hostile.conftest import users_toml
from tests.hostile.http import closed_by_peer
from tests.integration.seawall_proc import Seawall

GUARD_S = 60.0  # only against a hang

# A first byte and then a trickle that never completes the request's head.
TRICKLES = {
    "spamd": (b"CHECK SPAMC/1.5", b"X"),  # the request line never ends
    "policy": (b"request=smtpd_access_policy\nname=", b"X"),  # nor the attribute's line
    "http": (b"GET /ping HTTP/1.1\r\nX-A: ", b"X"),
    "milter": (b"\x00\x00\x00\x40O", b"\x00"),  # a 64-byte packet, a byte at a time
}


def trickle_until_closed(port: int, first: bytes, then: bytes, period_s: float) -> float:
    """Send ``first``, then ``then`` every ``period_s`` until the server closes; seconds."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=GUARD_S)
    t0 = time.monotonic()
    try:
        sock.sendall(first)
        while time.monotonic() - t0 < GUARD_S:
            if closed_by_peer(sock, timeout=period_s):
                return time.monotonic() - t0
            try:
                sock.sendall(then)
            except OSError:
                return time.monotonic() - t0
        raise AssertionError(f"still open after {GUARD_S:g}s")
    finally:
        sock.close()


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seawall]:
    """One ``seawall serve`` with a 1 s header deadline, for every front end's test."""
    root = tmp_path_factory.mktemp("swept")
    sw = Seawall(root=root / "sw", state=root / "state", workers=1, extra=users_toml())
    sw.write_config(header_timeout_s=1.0)
    sw.start()
    yield sw
    sw.stop()


@pytest.mark.parametrize("frontend", sorted(TRICKLES))
def test_a_trickled_head_is_closed_at_its_deadline_without_a_traceback(
    swept: Seawall, frontend: str
) -> None:
    sw = swept
    since = len(sw.log())
    first, then = TRICKLES[frontend]
    with ThreadPoolExecutor(3) as pool:
        took = list(
            pool.map(lambda _: trickle_until_closed(sw.ports[frontend], first, then, 0.3), range(3))
        )
    assert all(t < GUARD_S for t in took)
    time.sleep(0.5)  # the worker's last close is logged, if it logs anything
    log = sw.log()[since:]
    assert "Traceback" not in log, log[-3000:]
    assert "never retrieved" not in log
