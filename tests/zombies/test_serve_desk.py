"""A real ``seawall serve``: its workers' verdicts and rate hits and its abuse Maildir become
cases for the account that held the address, found by the desk process it runs."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import time
import urllib.request
from pathlib import Path

import pytest
from tests.integration.seawall_proc import Seawall, policy
from tests.zombies.reports import arf
from tests.zombies.test_cli import detail

from seawall.cli import main


def worm(n: int) -> bytes:
    payload = base64.b64encode(b"MZ\x90\x00" + bytes(200)).decode()
    return (
        "From: <x@spam.example>\r\nTo: <victim@example.org>\r\n"
        f"Subject: your invoice {n}\r\nMessage-ID: <worm{n}@bot>\r\n"
        "Date: Sun, 06 Dec 2026 06:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        "Content-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n"
        'Content-Type: application/octet-stream; name="invoice.pdf.exe"\r\n'
        'Content-Disposition: attachment; filename="invoice.pdf.exe"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n" + payload + "\r\n--b--\r\n"
    ).encode()


def scan(sw: Seawall, raw: bytes, ip: str, queue_id: str) -> dict[str, object]:
    request = urllib.request.Request(
        sw.url(f"/api/v1/scan?ip={ip}&queue_id={queue_id}"), data=raw, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        body: dict[str, object] = json.loads(resp.read())
    return body


def cases(sw: Seawall, capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    capsys.readouterr()
    assert main(["cases", "list", "--config", str(sw.config_file), "--json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def wait_for(check, timeout: float = 90.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.3)


@pytest.mark.parametrize("state", ["embedded", "redis"])
def test_serve_finds_the_zombie(
    state: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    now = int(time.time())
    radius = tmp_path / "detail"
    radius.write_text(detail([("Start", now - 600, "alice", "10.1.2.3", "s1")]))
    abuse = tmp_path / "abuse"
    for sub in ("new", "cur", "tmp"):
        (abuse / sub).mkdir(parents=True)
    sw = Seawall(tmp_path / "sw", tmp_path / "state")
    if state == "redis":  # the cases on the Redis every node shares; one desk by the lease
        sw.shared = request.getfixturevalue("redis_url")
    sw.extra = (
        "[trusted]\nprivate_is_trusted = false\n"  # our pools are private addresses here
        '[isp]\nnetworks = ["10.0.0.0/8"]\ndynamic = ["10.1.0.0/16"]\nrelays = ["10.0.0.25"]\n'
        f'[accounting]\nfiles = ["{radius}"]\nlisten = ""\n'
        f'[zombies]\nabuse_maildir = "{abuse}"\nscan_interval_s = 0.5\n'
    )
    sw.start()
    try:
        for n in range(2):
            verdict = scan(sw, worm(n), "10.1.2.3", f"Q{n}")
            assert verdict["action"] == "reject"
        scan(sw, worm(9), "10.0.0.25", "QR")  # through our relay: never evidence
        # The workers push evidence to the desk as it comes: the case may open on the first
        # copy before the second's evidence is in, so wait for both before reading it.
        wait_for(lambda: any(c.get("kinds") == {"worm": 2} for c in cases(sw, capsys)))
        found = cases(sw, capsys)
        assert found, sw.log()
        (case,) = found
        assert case["account"] == "alice"  # from the accounting the desk reads
        assert case["ips"] == ["10.1.2.3"]
        assert case["kinds"] == {"worm": 2}
        assert "zombie desk" in sw.log()

        # Rate hits of the policy service are evidence too (weak: once per window).
        for i in range(40):
            policy(sw, "10.1.2.3", f"i{i // 10}")
        # And a report from another network, read from the abuse Maildir.
        (abuse / "new" / "1.report.host").write_bytes(arf("10.1.2.3", "m9@x", when=now - 30))

        def grown() -> dict[str, object] | None:
            (c,) = cases(sw, capsys)
            kinds = c["kinds"]
            assert isinstance(kinds, dict)
            return c if "report" in kinds and "rate" in kinds else None

        case = wait_for(grown)
        assert case, (cases(sw, capsys), sw.log()[-3000:])
        assert case["kinds"] == {"worm": 2, "rate": 1, "report": 1}
        assert not list((abuse / "new").iterdir())
        assert [p.name for p in (abuse / "cur").iterdir()] == ["1.report.host:2,S"]
    finally:
        assert sw.stop() == 0


def test_a_desk_that_dies_is_restarted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sw = Seawall(tmp_path / "sw", tmp_path / "state")
    sw.extra = (
        "[trusted]\nprivate_is_trusted = false\n"
        '[isp]\nnetworks = ["10.0.0.0/8"]\ndynamic = ["10.1.0.0/16"]\n'
    )
    sw.start()
    try:

        def pids() -> list[int]:
            return [int(p) for p in re.findall(r"zombie desk (\d+) started", sw.log())]

        (first,) = wait_for(pids, 30)
        os.kill(first, signal.SIGKILL)
        restarted = wait_for(lambda: [p for p in pids() if p != first], 30)
        assert restarted, sw.log()
        assert f"zombie desk {first} exited" in sw.log()
        # The new desk takes what the workers push meanwhile: an address case (no accounting).
        for n in range(2):
            scan(sw, worm(n), "10.1.7.7", f"R{n}")
        found = wait_for(lambda: cases(sw, capsys))
        assert found, sw.log()
        assert found[0]["ip"] == "10.1.7.7"
        assert found[0]["account"] is None
    finally:
        assert sw.stop() == 0
