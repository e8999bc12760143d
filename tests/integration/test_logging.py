"""``seawall serve`` logging to a file that logrotate renames, and to syslog."""

from __future__ import annotations

import re
import signal
import socket
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.integration.seawall_proc import Seawall

HAM = (
    b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: lunch\r\n"
    b"Date: Fri, 27 Nov 2026 10:00:00 +0000\r\nMessage-ID: <lunch-1@example.org>\r\n\r\n"
    b"Shall we meet at noon by the station? I will bring the papers.\r\n"
)


@dataclass
class Logged(Seawall):
    """A Seawall whose log lines go where ``read`` finds them (not to its stderr)."""

    read: Callable[[], str] = lambda: ""

    def log(self) -> str:
        return super().log() + self.read()


def wait_for(what: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def scan(sw: Seawall, queue_id: str) -> None:
    headers = {"IP": "198.51.100.7", "Queue-Id": queue_id}
    request = urllib.request.Request(sw.url("/checkv2"), data=HAM, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as resp:
        resp.read()


def pids(text: str, pattern: str) -> set[int]:
    return {int(pid) for pid in re.findall(pattern, text)}


def test_a_rotated_file_is_reopened_by_every_process_on_sigusr1(workdir: Path) -> None:
    path = workdir / "log" / "seawall.log"
    path.parent.mkdir()
    rotated = path.with_name("seawall.log.1")

    def read() -> str:
        return "".join(p.read_text() for p in (rotated, path) if p.exists())

    extra = f'[logging]\ntarget = "file"\nfile = "{path}"\n'
    sw = Logged(root=workdir / "sw", state=workdir / "state", workers=2, extra=extra, read=read)
    sw.start()
    try:
        assert sw.proc is not None
        wait_for(lambda: len(pids(path.read_text(), r"worker (\d+) serving")) == 2)
        wait_for(lambda: "campaign tracker" in path.read_text())
        first = path.read_text()
        workers = pids(first, r"worker (\d+) serving")
        (tracker,) = pids(first, r"campaign tracker (\d+) serving")
        assert "seawall serve: 2 workers" in first
        assert "queue_id" not in sw.log_file.read_text()  # nothing on stderr

        path.rename(rotated)  # logrotate's rename, then its postrotate:
        sw.signal(signal.SIGUSR1)
        every = {sw.proc.pid, tracker, *workers}
        wait_for(lambda: path.exists() and pids(path.read_text(), r"\[(\d+)\] INFO") >= every)
        reopened = path.read_text()
        assert pids(reopened, r"\[(\d+)\] INFO seawall.logs: reopened the log file") == every
        for n in range(6):  # both workers' lines (the accept loop shares them out)
            scan(sw, f"Q{n}")
        wait_for(lambda: path.read_text().count("queue_id=Q") == 6)
        assert "queue_id=" not in rotated.read_text()
        assert sw.stop() == 0
        assert "stopped" in path.read_text()
        assert not path.with_name("seawall.log.2").exists()
    finally:
        sw.stop()


def test_serve_logs_to_syslog(workdir: Path) -> None:
    address = str(workdir / "log.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as syslog:
        syslog.bind(address)
        syslog.setblocking(False)
        received: list[str] = []

        def read() -> str:
            while True:
                try:
                    received.append(syslog.recv(65536).decode().rstrip("\0") + "\n")
                except BlockingIOError:
                    return "".join(received)

        extra = f'[logging]\ntarget = "syslog"\nsyslog_address = "{address}"\n'
        sw = Logged(root=workdir / "sw", state=workdir / "state", extra=extra, read=read)
        sw.start()
        try:
            scan(sw, "SYSLOG1")
            wait_for(lambda: "queue_id=SYSLOG1" in sw.log())
        finally:
            sw.stop()
        lines = sw.log().splitlines()
    # mail (2) * 8 + info (6) = 22, and the tag names the process that wrote the line.
    (served,) = [line for line in lines if "queue_id=SYSLOG1" in line]
    assert re.match(r"<22>seawall\[\d+\]: INFO seawall.scan: queue_id=SYSLOG1 client=", served)
    assert any(re.match(r"<22>seawall\[\d+\]: INFO seawall.serve: stopped$", x) for x in lines)
    assert "queue_id" not in sw.log_file.read_text()
