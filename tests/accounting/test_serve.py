"""``seawall serve`` follows the detail files and runs the listener in one process, on the
state that ``seawall accounting import`` and ``who`` use at the same time."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from tests.accounting.test_listener import free_udp_port
from tests.integration.seawall_proc import Seawall

SECRET = "s3cret-of-the-nas"
T = 1795780800


def record(sid: str, user: str, ip: str, t: int, status: str = "Start") -> bytes:
    return (
        f'Fri Nov 27 12:00:00 2026\n\tAcct-Session-Id = "{sid}"\n'
        f'\tAcct-Status-Type = {status}\n\tUser-Name = "{user}"\n'
        f"\tNAS-IP-Address = 192.0.2.1\n\tFramed-IP-Address = {ip}\n\tTimestamp = {t}\n\n"
    ).encode()


def seawall(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seawall", *args], capture_output=True, text=True, timeout=120
    )


def eventually(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen in {timeout} s: {what}")
        time.sleep(0.2)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Seawall, Path, int]]:
    detail = tmp_path / "radacct" / "detail"
    detail.parent.mkdir()
    detail.write_bytes(record("A1", "alice", "198.19.0.5", T))
    port = free_udp_port()
    sw = Seawall(tmp_path / "sw", tmp_path / "state")
    sw.extra = (
        f'[accounting]\nfiles = ["{detail}"]\nlisten = "127.0.0.1:{port}"\n'
        f'secret = "{SECRET}"\npoll_s = 0.1\n'
    )
    sw.start()
    try:
        yield sw, detail, port
    finally:
        sw.stop()


def who(sw: Seawall, ip: str, at: int) -> str:
    done = seawall("accounting", "who", "--config", str(sw.config_file), ip, "--at", str(at))
    return done.stdout.split("\t")[0] if done.returncode == 0 else ""


def test_serve_tails_listens_and_shares_the_state(
    served: tuple[Seawall, Path, int], tmp_path: Path
) -> None:
    sw, detail, port = served
    eventually(lambda: who(sw, "198.19.0.5", T + 1) == "alice", "the file read at start")
    with detail.open("ab") as f:
        f.write(record("A1", "alice", "198.19.0.5", T + 60, "Stop"))
        f.write(record("B1", "bob", "198.19.0.5", T + 60))
    eventually(lambda: who(sw, "198.19.0.5", T + 60) == "bob", "an appended record")
    # logrotate renames the file and FreeRADIUS starts a new one.
    os.rename(detail, detail.with_name("detail-20261127"))
    detail.write_bytes(record("C1", "carol", "198.19.0.6", T + 90))
    eventually(lambda: who(sw, "198.19.0.6", T + 91) == "carol", "the rotated file")
    # An import into the same state while serve runs, visible at once.
    other = tmp_path / "old-detail"
    other.write_bytes(record("D1", "dave", "198.19.0.7", T - 3600))
    done = seawall("accounting", "import", "--config", str(sw.config_file), str(other))
    assert done.returncode == 0, done.stderr
    assert who(sw, "198.19.0.7", T) == "dave"
    # The listener, asked by radclient.
    radclient = shutil.which("radclient")
    assert radclient is not None
    sent = subprocess.run(
        [radclient, "-r", "2", "-t", "2", f"127.0.0.1:{port}", "acct", SECRET],
        input=(
            'Acct-Status-Type = Start\nAcct-Session-Id = "E1"\nUser-Name = "erin"\n'
            f"NAS-IP-Address = 192.0.2.9\nFramed-IP-Address = 198.19.0.8\n"
            f"Event-Timestamp = {T + 120}\n"
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert who(sw, "198.19.0.8", T + 120) == "erin"  # answered only once stored
    assert "accounting process" in sw.log()


def test_the_accounting_process_is_restarted_and_dies_with_serve(
    served: tuple[Seawall, Path, int],
) -> None:
    sw, detail, _ = served
    assert sw.proc is not None
    parent = psutil.Process(sw.proc.pid)

    def accounting_pid() -> int:
        eventually(lambda: "accounting process" in sw.log(), "the accounting process")
        line = [x for x in sw.log().splitlines() if "accounting process" in x and "started" in x]
        return int(line[-1].split("accounting process ")[1].split()[0])

    first = accounting_pid()
    assert first in [c.pid for c in parent.children()]
    os.kill(first, signal.SIGKILL)
    eventually(lambda: accounting_pid() != first, "a new accounting process")
    second = accounting_pid()
    with detail.open("ab") as f:
        f.write(record("B1", "bob", "198.19.0.9", T + 5))
    eventually(lambda: who(sw, "198.19.0.9", T + 5) == "bob", "records after the restart")
    # SIGHUP with another file to follow: a new accounting process follows it.
    other = detail.with_name("detail-other")
    other.write_bytes(record("C1", "carol", "198.19.0.10", T + 9))
    sw.extra = sw.extra.replace(str(detail), str(other))
    sw.write_config()
    sw.signal(signal.SIGHUP)
    eventually(lambda: who(sw, "198.19.0.10", T + 9) == "carol", "the file named after SIGHUP")
    third = accounting_pid()
    assert third != second
    assert not psutil.pid_exists(second) or psutil.Process(second).status() == "zombie"
    second = third
    assert sw.stop() == 0
    assert not psutil.pid_exists(second) or psutil.Process(second).status() == "zombie"


def test_loud_at_the_start(tmp_path: Path) -> None:
    from seawall.config import AccountingSettings
    from seawall.errors import ConfigError
    from seawall.serve.accounting import bind, secret_of

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        settings = AccountingSettings(listen=f"127.0.0.1:{port}", secret="x")
        with pytest.raises(ConfigError, match="accounting.listen"):
            bind(settings)
    missing = AccountingSettings(secret_file=str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="accounting.secret_file"):
        secret_of(missing)
    (tmp_path / "secret").write_text("  from-a-file \nignored\n")
    assert secret_of(AccountingSettings(secret_file=str(tmp_path / "secret"))) == b"from-a-file"
    # No secret: no listener, and nothing bound.
    assert bind(AccountingSettings()) is None
