"""End to end: a simulated spam run sent to ``seawall serve`` over HTTP, checked against the
simulator's ground truth."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from tests.integration.seawall_proc import Seawall


def test_a_simulated_wave_is_blocked_after_its_first_copies(tmp_path: Path) -> None:
    sw = Seawall(root=tmp_path / "sw", state=tmp_path / "state", workers=2)
    sw.start()
    truth = tmp_path / "truth.jsonl"
    try:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "seawall",
                "simulate",
                "--seed",
                "3",
                "--campaigns",
                "2",
                "--zombies",
                "60",
                "--hours",
                "0.25",
                "--peak-per-hour",
                "1600",
                "--ham-per-hour",
                "400",
                "--speed",
                "400",
                "--to",
                sw.url(""),
                "--truth",
                str(truth),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, run.stderr[-2000:]
    finally:
        assert sw.stop() == 0
    lines = [json.loads(line) for line in truth.read_text().splitlines()]
    assert lines, run.stdout
    copies: dict[str, list[dict[str, object]]] = defaultdict(list)
    ham_flagged = ham = 0
    for line in lines:
        verdict = line["verdict"]
        if line["kind"] == "spam":
            copies[line["campaign"]].append(verdict)
        elif line["kind"] == "ham":
            ham += 1
            ham_flagged += any(
                s in verdict["symbols"] for s in ("CAMPAIGN_SPAM", "CAMPAIGN_BOTNET", "URIBL_LOCAL")
            )
    assert len(copies) == 2
    for campaign, verdicts in copies.items():
        later = verdicts[10:]
        assert len(later) >= 50, campaign
        blocked = [v for v in later if v["campaign"] and v["action"] in ("reject", "add header")]
        assert len(blocked) >= 0.99 * len(later), (campaign, len(blocked), len(later))
        assert len({v["campaign"] for v in blocked}) <= 2  # one campaign, rarely two clusters
    assert ham > 20
    assert ham_flagged == 0
