"""``seawall accounting import | who | history``."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from seawall.cli import main
from seawall.sim.model import SimSettings
from seawall.sim.radius import write_radius_detail
from seawall.sim.world import build_world

START = b"""Fri Nov 27 12:00:00 2026
\tAcct-Session-Id = "4D2B0001"
\tAcct-Status-Type = Start
\tUser-Name = "alice@example.net"
\tNAS-IP-Address = 192.0.2.1
\tFramed-IP-Address = 198.19.0.7
\tTimestamp = 1795780800

"""
STOP = START.replace(b"= Start", b"= Stop").replace(b"1795780800", b"1795781400")


def test_import_twice_then_who(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = str(tmp_path / "state")
    detail = tmp_path / "detail"
    detail.write_bytes(START + STOP)
    assert main(["accounting", "import", "--state", state, str(detail)]) == 0
    first = capsys.readouterr().out
    assert "imported 2 records (1 sessions new or changed)" in first
    assert main(["accounting", "import", "--state", state, str(detail)]) == 0
    assert "imported 2 records (0 sessions new or changed)" in capsys.readouterr().out
    args = ["accounting", "who", "--state", state, "198.19.0.7"]
    assert main([*args, "--at", "2026-11-27T12:09:59Z"]) == 0
    assert capsys.readouterr().out.split("\t")[:4] == [
        "alice@example.net", "198.19.0.7", "2026-11-27T12:00:00Z", "2026-11-27T12:10:00Z",
    ]  # fmt: skip
    assert main([*args, "--at", "1795781400", "--json"]) == 1  # stopped in that second
    assert json.loads(capsys.readouterr().out) == {
        "ip": "198.19.0.7", "at": 1795781400.0, "session": None,
    }  # fmt: skip
    assert main([*args, "--at", "2026-11-27T13:05:00+01:00", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["session"]["account"] == "alice@example.net"
    history = ["accounting", "history", "--state", state, "198.19.0.7", "--json"]
    assert main(history) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["account"], r["start"], r["stop"]) for r in rows] == [
        ("alice@example.net", 1795780800.0, 1795781400.0)
    ]


def test_garbage_is_reported_and_the_rest_imported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = str(tmp_path / "state")
    detail = tmp_path / "detail.gz"
    bad = b"Fri Nov 27 12:00:00 2026\n\tthis is not a record\n\n"
    detail.write_bytes(gzip.compress(bad + START))
    assert main(["accounting", "import", "--state", state, str(detail)]) == 1
    out, err = capsys.readouterr()
    assert f"{detail}:1: line 2: not an 'Attribute = value' line" in err
    assert "imported 1 records" in out
    assert "1 unreadable" in out
    assert main(["accounting", "who", "--state", state, "198.19.0.7", "--at", "1795780801"]) == 0


def test_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = str(tmp_path / "state")
    assert main(["accounting", "import", "--state", state, str(tmp_path / "nope")]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["accounting", "who", "--state", state, "300.1.1.1"]) == 1
    assert "not an IP address" in capsys.readouterr().err
    assert main(["accounting", "who", "--state", state, "198.19.0.7", "--at", "noon"]) == 1
    assert "not epoch seconds nor an ISO 8601 time" in capsys.readouterr().err


def test_the_simulated_detail_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    world = build_world(SimSettings(seed=5, zombies=30))
    detail = tmp_path / "radius.detail"
    count = write_radius_detail(world, detail)
    state = str(tmp_path / "state")
    assert main(["accounting", "import", "--state", state, str(detail)]) == 0
    assert f"imported {count} records" in capsys.readouterr().out
    session = next(s for s in world.sessions if s.stop <= world.end)
    at = str(session.stop - 1)
    assert main(["accounting", "who", "--state", state, session.ip, "--at", at]) == 0
    assert capsys.readouterr().out.startswith(session.account + "\t")


def test_import_and_who_on_redis(
    redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    detail = tmp_path / "detail"
    detail.write_bytes(START + STOP)
    assert main(["accounting", "import", "--state", redis_url, str(detail)]) == 0
    assert "1 sessions new or changed" in capsys.readouterr().out
    assert main(["accounting", "import", "--state", redis_url, str(detail)]) == 0
    assert "0 sessions new or changed" in capsys.readouterr().out
    args = ["accounting", "who", "--state", redis_url, "198.19.0.7", "--at", "1795781399"]
    assert main(args) == 0
    assert capsys.readouterr().out.startswith("alice@example.net\t198.19.0.7\t")
