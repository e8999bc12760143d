"""A real ``seawall serve`` finds a zombie and shares it: its desk process writes the zone,
a real rbldnsd serves it over DNS, /api/v1/zombies lists it, and walling and releasing
the case from the command line rewrite the export files the firewall loads."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest
from tests.integration.seawall_proc import Seawall
from tests.zombies.sharing.rbl import lookup, rbldnsd, wait_for
from tests.zombies.test_cli import detail
from tests.zombies.test_serve_desk import cases, scan, worm

from seawall.cli import main
from seawall.zombies.sharing.zone import write_atomically


def test_serve_publishes_the_zombie_and_walls_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tmp_path.chmod(0o755)
    now = int(time.time())
    radius = tmp_path / "detail"
    radius.write_text(detail([("Start", now - 600, "alice", "10.1.2.3", "s1")]))
    zone_dir = tmp_path / "zone"
    zone_dir.mkdir()
    zone_file = zone_dir / "zombies.ip4set"
    write_atomically(zone_file, "$TTL 60\n127.0.0.2 :127.0.0.3:up\n")  # until serve writes it
    exports = tmp_path / "exports"
    sw = Seawall(tmp_path / "sw", tmp_path / "state")
    sw.extra = (
        "[trusted]\nprivate_is_trusted = false\n"
        '[isp]\nnetworks = ["10.0.0.0/8"]\ndynamic = ["10.1.0.0/16"]\n'
        f'[accounting]\nfiles = ["{radius}"]\nlisten = ""\n'
        f'[remediation]\nmode = "enforce"\nexport_dir = "{exports}"\n'
        f'[sharing]\nzone_file = "{zone_file}"\nrefresh_s = 1.0\nzone_txt = "zombie $"\n'
    )
    with rbldnsd(zone_dir, "zombies.ip4set") as port:
        sw.start()
        try:
            assert lookup(port, "10.1.2.3") is None
            for n in range(2):
                assert scan(sw, worm(n), "10.1.2.3", f"Q{n}")["action"] == "reject"
            # Two worm copies: a case, notified by the policy (score 20 >= 10), so listed.
            assert wait_for(port, "10.1.2.3", ("127.0.0.2", "zombie 10.1.2.3")) == (
                "127.0.0.2",
                "zombie 10.1.2.3",
            ), (zone_file.read_text(), sw.log()[-3000:])
            ((case,),) = [cases(sw, capsys)]
            assert case["account"] == "alice"
            assert case["state"] == "notified"

            with urllib.request.urlopen(sw.url("/api/v1/zombies"), timeout=30) as resp:
                feed = json.loads(resp.read())
            assert [(e["ip"], e["class"], e["code"]) for e in feed["entries"]] == [
                ("10.1.2.3", "own", "127.0.0.2")
            ]

            config = ["--config", str(sw.config_file)]
            assert main(["cases", "wall", "alice", "--reason", "confirmed", *config]) == 0
            nft = (exports / "walled.nft").read_text()
            assert "add element inet seawall walled { 10.1.2.3 }" in nft
            assert '"alice"' in (exports / "walled.users").read_text()
            assert main(["cases", "release", "alice", "--reason", "cleaned", *config]) == 0
            assert "10.1.2.3" not in (exports / "walled.nft").read_text()
            # Released: no longer an active zombie; the desk's clock rewrites the zone.
            assert wait_for(port, "10.1.2.3", None) is None
        finally:
            assert sw.stop() == 0
