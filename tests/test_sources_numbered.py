"""`file#N`, as scan reports the Nth message of an mbox, is accepted as input too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from seawall.sources import iter_units

MSG = b"From: a@example.com\nSubject: number %d\n\nbody %d\n"


def mbox(tmp_path: Path) -> Path:
    box = tmp_path / "box.mbox"
    box.write_bytes(
        b"From alice@example.com Mon Jan  1 00:00:00 2024\n" + MSG % (1, 1) + b"\n"
        b"From bob@example.com Mon Jan  1 00:00:01 2024\n" + MSG % (2, 2) + b"\n"
        b"From carol@example.com Mon Jan  1 00:00:02 2024\n" + MSG % (3, 3)
    )
    return box


def test_the_nth_message_of_an_mbox(tmp_path: Path) -> None:
    box = mbox(tmp_path)
    (unit,) = iter_units([f"{box}#2"])
    assert unit.path == f"{box}#2"
    assert b"Subject: number 2" in unit.read()
    assert [u.path for u in iter_units([box])][1] == unit.path  # what scan reports
    with pytest.raises(FileNotFoundError, match=r"box.mbox#4 \(.*box.mbox holds 3 messages\)"):
        list(iter_units([f"{box}#4"]))
    for bad in (f"{box}#0", f"{box}#x", f"{tmp_path / 'none.mbox'}#1"):
        with pytest.raises(FileNotFoundError):
            list(iter_units([bad]))


def test_a_file_whose_name_has_a_hash_is_that_file(tmp_path: Path) -> None:
    odd = tmp_path / "invoice#2"
    odd.write_bytes(MSG % (9, 9))
    (unit,) = iter_units([odd])
    assert unit.path == str(odd)
    plain = tmp_path / "one.eml"
    plain.write_bytes(MSG % (5, 5))
    (first,) = iter_units([f"{plain}#1"])
    assert b"number 5" in first.read()


def test_seawall_scan_takes_mbox_n(tmp_path: Path) -> None:
    box = mbox(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "seawall", "scan", "--json", f"{box}#3", "--state", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert f'"path":"{box}#3"' in out.stdout.replace(" ", "")
    assert len(out.stdout.splitlines()) == 1
