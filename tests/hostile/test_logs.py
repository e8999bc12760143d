"""Issue 15, defect 6: a forged log line, a traceback per aborted upload, an ERROR at a clean
stop."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

from tests.frontends.test_milter_server import POSTFIX_ACTIONS, POSTFIX_PROTOCOL, Mta, z
from tests.hostile.http import get
from tests.integration.seawall_proc import Seawall

GUARD_S = 60.0
FORGED = "seawall.scan: queue_id=4FORGED client=192.0.2.1 score=0.00/15.00 action=no_action"


def test_a_newline_in_a_milter_queue_id_cannot_forge_a_log_line(
    serve: Callable[..., Seawall],
) -> None:
    sw = serve()

    async def session() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", sw.ports["milter"])
        mta = Mta(reader, writer)
        await mta.negotiate(6, POSTFIX_ACTIONS, POSTFIX_PROTOCOL)
        await mta.event(b"C", z("mx.example"), b"4", b"\x30\x39", z("192.0.2.7"))
        await mta.message(queue_id=f"4Kx1\n2026-12-06 06:00:00,000 [1] INFO {FORGED}")
        await mta.close()

    asyncio.run(asyncio.wait_for(session(), GUARD_S))
    sw.stop()
    lines = sw.log().splitlines()
    assert not any(line.startswith("2026-12-06 06:00:00,000") for line in lines)
    logged = [line for line in lines if "queue_id=4Kx1" in line]
    assert len(logged) == 1
    assert "4Kx1\\x0a2026-12-06" in logged[0]  # escaped, on the verdict's own line


def test_an_aborted_upload_logs_no_traceback(serve: Callable[..., Seawall]) -> None:
    sw = serve()
    for _ in range(3):
        sock = socket.create_connection(("127.0.0.1", sw.ports["http"]), timeout=GUARD_S)
        sock.sendall(b"POST /checkv2 HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        sock.sendall(b"Subject: half a message\r\n\r\n" + b"a" * 20000)
        time.sleep(0.2)
        sock.close()  # the client gives up in the middle of its upload
    time.sleep(1)
    assert get(sw.url("/ping")) == (200, b"pong\r\n")
    log = sw.log()
    assert "Traceback" not in log
    assert "ERROR" not in log


def test_a_clean_stop_logs_no_error(serve: Callable[..., Seawall]) -> None:
    sw = serve()
    assert sw.stop() == 0
    log = sw.log()
    assert "campaign tracker" in log
    assert " ERROR " not in log, log
