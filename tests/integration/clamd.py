"""A private clamd for integration tests: its own clamd.conf, signature database, sockets, log.

Official signatures cannot be downloaded here, so the database is built by the test: a
body signature of the EICAR test string and MD5 hash signatures of the test's own files.
Nothing of the system's clamd (its service, /etc/clamav, /var/lib/clamav, freshclam) is
used.  Requires the Debian clamav-daemon package, which ``make test`` installs.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.postfix import free_port

# The EICAR anti-virus test string, in two pieces so this file is not itself a test file.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_NAME = "Seawall.Test.EICAR.UNOFFICIAL"  # clamd adds .UNOFFICIAL to non-official names


def database(hashes: dict[str, bytes]) -> dict[str, str]:
    """Signature files: EICAR anywhere in any file (.ndb), and ``name -> content`` (.hdb)."""
    files = {"seawall-test.ndb": f"Seawall.Test.EICAR:0:*:{EICAR.hex()}\n"}
    if hashes:
        files["seawall-test.hdb"] = "".join(
            f"{hashlib.md5(data).hexdigest()}:{len(data)}:{name}\n" for name, data in hashes.items()
        )
    return files


@dataclass
class ClamdServer:
    """One clamd under a fresh directory in /tmp; ``start()`` then ``stop()``."""

    hashes: dict[str, bytes] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)  # more database files: name -> text
    options: dict[str, str] = field(default_factory=dict)  # more clamd.conf settings
    stream_max_length: str = "25M"  # as Debian's clamd.conf
    # AppArmor's profile for clamd (Debian, Ubuntu) allows files under /tmp only.
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="clamd-", dir="/tmp")))
    tcp_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    started_in_s: float = 0.0  # from exec to the first PONG

    @property
    def tcp_address(self) -> str:
        return f"127.0.0.1:{self.tcp_port}"

    @property
    def unix_address(self) -> str:
        return str(self.root / "clamd.sock")

    def signatures(self) -> int:
        """The signature count clamd logged when it loaded its database."""
        log = (self.root / "clamd.log").read_text(errors="replace")
        found = re.findall(r"Loaded (\d+) signatures", log)
        return int(found[-1]) if found else 0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def conf(self) -> str:
        settings = {
            "Foreground": "yes",
            "TCPSocket": str(self.tcp_port),
            "TCPAddr": "127.0.0.1",
            "LocalSocket": self.unix_address,
            "DatabaseDirectory": str(self.root / "db"),
            "TemporaryDirectory": str(self.root / "tmp"),
            "LogFile": str(self.root / "clamd.log"),
            "PidFile": str(self.root / "clamd.pid"),
            "StreamMaxLength": self.stream_max_length,
            "MaxThreads": "4",
            "SelfCheck": "0",  # the database never changes under a test
            "Bytecode": "no",
        }
        settings |= self.options
        return "".join(f"{key} {value}\n" for key, value in settings.items())

    def start(self) -> None:
        binary = shutil.which("clamd") or next(
            (p for p in ("/usr/sbin/clamd", "/usr/bin/clamd") if os.path.exists(p)), None
        )
        if binary is None:
            raise RuntimeError("clamd is not installed; `make test` installs clamav-daemon")
        for sub in ("db", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for name, text in (database(self.hashes) | self.extra).items():
            (self.root / "db" / name).write_text(text)
        (self.root / "clamd.conf").write_text(self.conf())
        Path(self.unix_address).unlink(missing_ok=True)
        t0 = time.perf_counter()
        with open(self.root / "stdout.log", "ab") as out:
            self.proc = subprocess.Popen(
                [binary, "-c", str(self.root / "clamd.conf")],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = t0 + 60
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"clamd exited with {self.proc.returncode}:\n{self.log()}")
            if self._pong():
                self.started_in_s = time.perf_counter() - t0
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"clamd did not answer PING in 60 s:\n{self.log()}")

    def _pong(self) -> bool:
        for family, address in (
            (socket.AF_UNIX, self.unix_address),
            (socket.AF_INET, ("127.0.0.1", self.tcp_port)),
        ):
            try:
                with socket.socket(family, socket.SOCK_STREAM) as sock:
                    sock.settimeout(1)
                    sock.connect(address)
                    sock.sendall(b"zPING\0")
                    if sock.recv(16) != b"PONG\0":
                        return False
            except OSError:
                return False
        return True

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)  # a paused clamd cannot act on SIGTERM
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: the sockets close at once, without a reply."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)
        self.proc = None

    def pause(self) -> None:
        """SIGSTOP: connections are accepted by the kernel, never answered."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        parts = []
        for name in ("clamd.log", "stdout.log"):
            with contextlib.suppress(FileNotFoundError):
                parts.append((self.root / name).read_text(errors="replace")[-4000:])
        return "\n".join(parts)
