"""A private Postfix instance for integration tests: own config, queue, ports and log.

It listens on 127.0.0.1, relays everything to a sink on loopback, trusts
XCLIENT from loopback (so a test can speak as any client IP), and can be wired
to Seawall's milter and policy service.  Requires root (as CI runs) and the
Debian postfix package, which ``make test`` installs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

MASTER_CF = """\
{smtp_port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


def free_port() -> int:
    """A loopback port for a server to bind (tests/ports.py: outside the ephemeral range)."""
    from tests.ports import free_port as pick

    return pick()


@dataclass
class Postfix:
    """One Postfix instance under ``root``; ``start()`` then ``stop()``."""

    root: Path
    sink_port: int
    milter: str | None = None  # "inet:127.0.0.1:PORT"
    policy: str | None = None  # "inet:127.0.0.1:PORT"
    extra: dict[str, str] = field(default_factory=dict)
    smtp_port: int = field(default_factory=free_port)

    @property
    def config_dir(self) -> Path:
        return self.root / "etc"

    @property
    def queue_dir(self) -> Path:
        return self.root / "spool"

    @property
    def log_file(self) -> Path:
        return self.root / "maillog"

    def main_cf(self) -> dict[str, str]:
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.root / "data"),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "myhostname": "mx.seawall.test",
            "mydomain": "seawall.test",
            "mydestination": "",
            "mynetworks": "127.0.0.0/8",
            "relay_domains": "example.org",
            "default_transport": f"smtp:[127.0.0.1]:{self.sink_port}",
            "relay_transport": f"smtp:[127.0.0.1]:{self.sink_port}",
            "smtp_dns_support_level": "disabled",
            "smtpd_peername_lookup": "no",
            "smtpd_authorized_xclient_hosts": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "smtpd_recipient_restrictions": (
                f"check_policy_service {self.policy}" if self.policy else ""
            ),
            "maillog_file": str(self.log_file),
            "maillog_file_prefixes": str(self.root),
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "biff": "no",
            "smtpd_banner": "$myhostname ESMTP",
            "smtpd_client_connection_count_limit": "0",
            "smtpd_client_connection_rate_limit": "0",
            "anvil_rate_time_unit": "60s",
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "smtpd_error_sleep_time": "0",
            "smtpd_soft_error_limit": "1000",
            "smtpd_hard_error_limit": "1000",
            "default_process_limit": "100",
        }
        if self.milter:
            settings |= {
                "smtpd_milters": self.milter,
                "milter_protocol": "6",
                "milter_default_action": "tempfail",
                "milter_connect_timeout": "10s",
                "milter_command_timeout": "30s",
                "milter_content_timeout": "60s",
            }
        return settings | self.extra

    def start(self) -> None:
        if os.geteuid() != 0:
            raise RuntimeError("a private Postfix instance needs root (CI runs as root)")
        if shutil.which("postfix") is None:
            raise RuntimeError("postfix is not installed; `make test` installs it")
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)  # the postfix user must reach its queue and data dirs
        for parent in self.root.parents:
            if not parent.stat().st_mode & 0o001:
                raise RuntimeError(f"{parent} is not searchable by Postfix's own user")
        self.config_dir.mkdir(exist_ok=True)
        (self.root / "data").mkdir(exist_ok=True)
        self.queue_dir.mkdir(exist_ok=True)
        shutil.chown(self.root / "data", "postfix", "postfix")
        main = "".join(f"{k} = {v}\n" for k, v in self.main_cf().items())
        (self.config_dir / "main.cf").write_text(main)
        (self.config_dir / "master.cf").write_text(
            MASTER_CF.format(smtp_port=f"127.0.0.1:{self.smtp_port}")
        )
        for name in ("dynamicmaps.cf", "postfix-files"):
            src = Path("/etc/postfix") / name
            if src.exists():
                shutil.copy(src, self.config_dir / name)
        self._postfix("start")
        self._wait_listening()

    def _postfix(self, *args: str) -> None:
        subprocess.run(
            ["postfix", "-c", str(self.config_dir), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def _wait_listening(self) -> None:
        import socket

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.smtp_port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"postfix did not listen on {self.smtp_port}:\n{self.log()}")

    def stop(self) -> None:
        subprocess.run(
            ["postfix", "-c", str(self.config_dir), "stop"], capture_output=True, timeout=60
        )

    def flush(self) -> None:
        """Retry deferred mail now."""
        self._postfix("flush")

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def queue_files(self, queue: str) -> list[Path]:
        """Queue files in ``hold``, ``deferred``, ``active``, ``incoming`` or ``maildrop``."""
        base = self.queue_dir / queue
        if not base.exists():
            return []
        return sorted(p for p in base.rglob("*") if p.is_file())

    def queued(self) -> int:
        return sum(len(self.queue_files(q)) for q in ("incoming", "active", "deferred", "maildrop"))
