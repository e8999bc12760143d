"""A private rbldnsd for integration tests: zones written by the test, on a free UDP port.

rbldnsd (Debian package rbldnsd, which ``make test`` installs) serves ``ip4set``,
``ip6trie`` and ``dnset`` zones from a directory; a zone may combine several datasets.
Started as root (as CI runs) it chroots into it (``-r``) and switches to its own user
(``-u rbldns``), so the directory and its files must be world-readable; as another user
it cannot chroot and reads them from there (``-w``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.query


def free_udp_port() -> int:
    """A UDP port outside the ephemeral range, where DNS queries take theirs (tests/ports.py)."""
    from tests.ports import free_port

    return free_port("udp")


@dataclass
class Rbldnsd:
    """``zones``: zone name -> (dataset type, data file text), or a list of them for a zone
    served from several datasets (IPv4 and IPv6).  ``start()`` then ``stop()``."""

    root: Path
    zones: dict[str, tuple[str, str] | list[tuple[str, str]]]
    port: int = field(default_factory=free_udp_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("rbldnsd", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
        if binary is None:
            raise RuntimeError("rbldnsd is not installed; `make test` installs it")
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        specs = []
        for n, (zone, datasets) in enumerate(self.zones.items()):
            for m, (kind, text) in enumerate(
                datasets if isinstance(datasets, list) else [datasets]
            ):
                data = self.root / f"zone{n}-{m}.{kind}"
                data.write_text(text)
                data.chmod(0o644)
                specs.append(f"{zone}:{kind}:{data.name}")
        args = [binary, "-n", "-b", f"127.0.0.1/{self.port}", "-t", "300"]
        if os.geteuid() == 0:  # chroot into the zones, then drop to rbldnsd's own user
            args += ["-r", str(self.root), "-u", _daemon_user()]
        else:  # chroot needs root; read the zones from the working directory instead
            args += ["-w", str(self.root)]
        with (self.root / "rbldnsd.log").open("wb") as log:
            self.proc = subprocess.Popen([*args, *specs], stdout=log, stderr=subprocess.STDOUT)
        self._wait_answering(next(iter(self.zones)))

    def _wait_answering(self, zone: str) -> None:
        query = dns.message.make_query(f"1.0.0.127.{zone}", "A")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"rbldnsd exited {self.proc.returncode}:\n{self.log()}")
            try:
                dns.query.udp(query, "127.0.0.1", port=self.port, timeout=0.2)
                return
            except (dns.exception.Timeout, OSError):
                continue
        raise RuntimeError(f"rbldnsd did not answer on {self.port}:\n{self.log()}")

    def log(self) -> str:
        path = self.root / "rbldnsd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _daemon_user() -> str:
    for name in ("rbldns", "nobody"):  # the Debian package creates rbldns
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("no unprivileged user for rbldnsd (rbldns or nobody)")
