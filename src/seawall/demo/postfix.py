"""A private Postfix for the demo: its own configuration, queue and port, on loopback only.

Set up as docs/postfix.md's test instance: the simulated ISP's domain relayed and thrown
away (``discard:``) once Seawall has seen it, Seawall's milter and policy service wired in,
XCLIENT trusted from loopback so the replay speaks as each bot and server, and
``soft_bounce`` so a reject is a deferral that the replay retries.  Started with
``postfix -c DIR start``, which needs root and the Debian postfix package: :func:`usable`
says whether this machine has both.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

_MASTER_CF = """\
{listen} inet n - n - - smtpd
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


def usable() -> str | None:
    """None when a private Postfix can start here, else why not."""
    if shutil.which("postfix") is None and not Path("/usr/sbin/postfix").exists():
        return "Postfix is not installed"
    if os.geteuid() != 0:
        return "starting Postfix needs root"
    return None


class DemoPostfix:
    """One Postfix instance under ``root`` listening on ``127.0.0.1:port``."""

    def __init__(self, root: Path, port: int, *, milter: int, policy: int, domains: str) -> None:
        self.root = root
        self.port = port
        self.milter = milter
        self.policy = policy
        self.domains = domains

    @property
    def config_dir(self) -> Path:
        return self.root / "etc"

    @property
    def log_file(self) -> Path:
        return self.root / "maillog"

    def main_cf(self) -> dict[str, str]:
        return {
            "compatibility_level": "3.6",
            "queue_directory": str(self.root / "spool"),
            "data_directory": str(self.root / "data"),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "myhostname": "mx.demo.seawall.test",
            "mydestination": "",
            "relay_domains": self.domains,
            "relay_transport": "discard:simulated mail",
            "default_transport": "discard:simulated mail",
            "smtp_dns_support_level": "disabled",
            "smtpd_peername_lookup": "no",
            "smtpd_milters": f"inet:127.0.0.1:{self.milter}",
            "milter_protocol": "6",
            "milter_default_action": "tempfail",
            "milter_content_timeout": "60s",
            "smtpd_recipient_restrictions": (
                f"reject_unauth_destination, check_policy_service inet:127.0.0.1:{self.policy}"
            ),
            "smtpd_policy_service_default_action": "DUNNO",
            "smtpd_authorized_xclient_hosts": "127.0.0.1",
            "soft_bounce": "yes",
            "maillog_file": str(self.log_file),
            "maillog_file_prefixes": str(self.root),
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
            "smtpd_client_connection_count_limit": "0",
            "smtpd_client_connection_rate_limit": "0",
            "smtpd_error_sleep_time": "0",
            "smtpd_soft_error_limit": "1000",
            "smtpd_hard_error_limit": "1000",
            "default_process_limit": "50",
        }

    def start(self) -> None:
        """Write the configuration and start Postfix; RuntimeError when it does not listen."""
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)  # Postfix's own user reaches its queue and data
        for path in self.root.parents:
            if not path.stat().st_mode & 0o001:
                raise RuntimeError(f"{path} is not searchable by Postfix's own user")
        self.config_dir.mkdir(parents=True, exist_ok=True)
        for name in ("data", "spool"):
            (self.root / name).mkdir(exist_ok=True)
        shutil.chown(self.root / "data", "postfix", "postfix")
        main = "".join(f"{k} = {v}\n" for k, v in self.main_cf().items())
        (self.config_dir / "main.cf").write_text(main)
        (self.config_dir / "master.cf").write_text(
            _MASTER_CF.format(listen=f"127.0.0.1:{self.port}")
        )
        for name in ("dynamicmaps.cf", "postfix-files"):
            if (Path("/etc/postfix") / name).exists():
                shutil.copy(Path("/etc/postfix") / name, self.config_dir / name)
        self._postfix("start")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"Postfix did not listen on 127.0.0.1:{self.port}")

    def stop(self) -> None:
        subprocess.run(
            ["postfix", "-c", str(self.config_dir), "stop"], capture_output=True, timeout=60
        )

    def _postfix(self, *args: str) -> None:
        done = subprocess.run(
            ["postfix", "-c", str(self.config_dir), *args], capture_output=True, timeout=60
        )
        if done.returncode:
            raise RuntimeError(f"postfix {' '.join(args)}: {done.stderr.decode(errors='replace')}")
