"""docs/seawall.service: the systemd unit for ``seawall serve``."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[1] / "docs" / "seawall.service"


def unit() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=True, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser


def test_the_unit_runs_serve_sandboxed_as_its_own_user() -> None:
    service = unit()["Service"]
    assert service["User"] == service["Group"] == "seawall"
    assert service["ExecStart"].split()[1:] == ["serve", "--config", "/etc/seawall/seawall.toml"]
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["KillMode"] == "mixed"
    assert service["ProtectSystem"] == "strict"
    state = service["Environment"].removeprefix("SEAWALL_STATE_DIR=")
    assert state == "/var/lib/seawall"
    assert state in service["ReadWritePaths"].split()
    assert service["StateDirectory"] == "seawall"
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectHome"):
        assert service[key] == "yes", key
    assert service["CapabilityBoundingSet"] == ""
    assert set(service["RestrictAddressFamilies"].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert int(service["LimitNOFILE"]) >= 65536
    assert service["RestartPreventExitStatus"] == "2"  # a bad configuration: no restart loop
    assert unit()["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verify_accepts_it(tmp_path: Path) -> None:
    # verify wants the program to exist: this checkout's, in place of /opt/seawall's.
    seawall = Path(sys.executable).with_name("seawall")
    text = UNIT.read_text().replace("/opt/seawall/bin/seawall", str(seawall))
    (tmp_path / "seawall.service").write_text(text)
    out = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(tmp_path / "seawall.service")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Unknown keys and bad values are only warnings (exit 0): none may be printed.
    assert out.returncode == 0, out.stderr
    assert "seawall.service" not in out.stderr + out.stdout, out.stderr
