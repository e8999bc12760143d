"""The fuzz harnesses work: seeds pass, crashes are recorded, and each target fuzzes briefly.

A broken harness (an import error, a check that fails on its own seeds, a runner that can
no longer read libFuzzer's output) is caught here by ``make test``; the long campaign is
``make fuzz``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from tests.fuzz.harness import TARGETS, keep_going, load, signature
from tests.fuzz.run import ROOT, SEEDS

from seawall.errors import MilterViolation
from seawall.frontends.milter.codec import decode_command


@pytest.mark.parametrize("target", list(TARGETS))
def test_every_seed_passes_its_check(target: str) -> None:
    seeds = sorted((SEEDS / target).iterdir())
    assert seeds, f"no seeds for {target}"
    check = load(target).check
    for seed in seeds:
        check(seed.read_bytes())


def test_a_crash_is_kept_once_per_place_and_fuzzing_goes_on(tmp_path: Path) -> None:
    def check(data: bytes) -> None:
        if data.startswith(b"x"):
            raise IndexError("boom")
        if data.startswith(b"y"):
            raise AssertionError("invariant")

    guarded = keep_going(check, f"{tmp_path}/")
    for data in (b"ok", b"x1", b"x2", b"y1", b"ok"):
        guarded(data)
    kept = sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".txt")
    assert len(kept) == 2
    assert {p.read_bytes() for p in tmp_path.iterdir() if p.suffix != ".txt"} == {b"x1", b"y1"}
    reports = [p.read_text() for p in tmp_path.glob("*.txt")]
    assert any(r.startswith("IndexError@test_harnesses.py:") for r in reports)


def test_signature_names_the_innermost_seawall_frame() -> None:
    with pytest.raises(MilterViolation) as caught:
        decode_command(b"Z", b"")
    assert signature(caught.value).startswith("MilterViolation@codec.py:")


@pytest.mark.parametrize("target", list(TARGETS))
def test_each_target_fuzzes_a_few_hundred_inputs(target: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.run", "--runs", "300", "--work", str(tmp_path), target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    row = re.search(rf"^{target}\s+([\d,]+)\s+\d+\s+\d+\s+(\d+)\s", result.stdout, re.MULTILINE)
    assert row is not None, report
    assert int(row.group(1).replace(",", "")) >= 300
    assert row.group(2) == "0"
    assert any((tmp_path / target / "corpus").iterdir()), "libFuzzer kept no input"
