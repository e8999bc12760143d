"""Run ``seawall serve`` as a real subprocess on free loopback ports, for integration tests."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.postfix import free_port

# A user who may learn (HTTP Bearer, spamd User), for the tests that teach a running server
# (learning is off by default and needs [serve.http] allow_learn plus this token).
LEARNER = "trainer:correct horse battery"
LEARN_AUTH = {"Authorization": f"Bearer {LEARNER}"}


def learner_users() -> str:
    """The [users.trainer] table of ``LEARNER``, as `seawall user add` writes it."""
    from seawall.users import hash_password

    secret = hash_password(LEARNER.partition(":")[2])
    return f'[users.trainer]\npassword = "{secret}"\nroles = ["learn"]\n'


@dataclass
class Seawall:
    """A ``seawall serve`` process; ``config`` is extra TOML appended to the generated one."""

    root: Path
    state: Path
    workers: int = 1
    extra: str = ""  # more TOML tables, e.g. "[detectors.language]\nscores = {de = 11.0}"
    shared: str = ""  # a Redis URL: the state every node shares (``state``)
    scores: str = ""
    ports: dict[str, int] = field(
        default_factory=lambda: {n: free_port() for n in ("http", "milter", "spamd", "policy")}
    )
    proc: subprocess.Popen[bytes] | None = None

    @property
    def config_file(self) -> Path:
        return self.root / "seawall.toml"

    @property
    def log_file(self) -> Path:
        return self.root / "seawall.log"

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports['http']}{path}"

    def write_config(self, **serve: object) -> None:
        """The config file: these ports, ``serve`` keys, ``section`` tables and ``scores``.

        ``serve`` takes ServeSettings keys, and ``policy={...}`` (or milter, spamd,
        http) for the front ends' own keys.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        lines = [f"state_dir = {_toml(str(self.state))}"]
        if self.shared:
            lines.append(f"state = {_toml(self.shared)}")
        if self.scores:
            (self.root / "scores.toml").write_text(self.scores)
            lines.append(f"scores_file = {_toml(str(self.root / 'scores.toml'))}")
        front: dict[str, dict[str, object]] = {name: {} for name in self.ports}
        lines += ["[serve]", f"workers = {self.workers}"]
        for key, value in serve.items():
            if key in front:
                assert isinstance(value, dict)
                front[key].update(value)
            else:
                lines.append(f"{key} = {_toml(value)}")
        for name, port in self.ports.items():
            lines += [f"[serve.{name}]", f'listen = "127.0.0.1:{port}"']
            lines += [f"{k} = {_toml(v)}" for k, v in front[name].items()]
        self.config_file.write_text("\n".join(lines) + "\n" + self.extra + "\n")

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.config_file.exists():
            self.write_config()
        since = len(self.log())  # the log is appended to: a restart reads on from here
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "seawall", "serve", "--config", str(self.config_file)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.wait_ready(since=since)

    def wait_ready(self, timeout: float = 120.0, since: int = 0) -> None:
        """Until every worker has logged "worker PID serving" (in the log after ``since``)
        and /ping answers: each worker logs it once all its front ends accept, and the
        supervisor bound the sockets before it started any.  ``timeout`` only guards
        against a hang."""
        import urllib.request

        wanted = self.workers or len(os.sched_getaffinity(0)) or 1
        deadline = time.monotonic() + timeout
        serving: set[str] = set()
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"seawall serve exited {self.proc.returncode}:\n{self.log()}")
            serving = set(re.findall(r"worker (\d+) serving", self.log()[since:]))
            if len(serving) >= wanted:
                try:
                    with urllib.request.urlopen(self.url("/ping"), timeout=10) as resp:
                        if resp.read().strip() == b"pong":
                            return
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError(
            f"seawall serve: {len(serving)} of {wanted} workers serving after {timeout} s:\n"
            f"{self.log()}"
        )

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def signal(self, signo: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signo)

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def port_open(self, name: str) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.ports[name]), timeout=1):
                return True
        except OSError:
            return False


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(map(_toml, value)) + "]"
    raise TypeError(f"no TOML for {value!r}")


def policy(sw: Seawall, client: str, instance: str) -> str:
    """Ask ``sw``'s policy service about one RCPT from ``client``; the action it answers."""
    request = (
        "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
        f"client_address={client}\nclient_name=unknown\ninstance={instance}\n"
        "sender=a@sender.example\nrecipient=bob@example.org\n\n"
    )
    with socket.create_connection(("127.0.0.1", sw.ports["policy"]), timeout=10) as sock:
        sock.sendall(request.encode())
        reply = b""
        while not reply.endswith(b"\n\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply.decode().strip().removeprefix("action=")
