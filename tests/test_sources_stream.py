"""A stream (a pipe, a FIFO, /dev/stdin) cannot be read twice: listing reads it once and
its messages carry their bytes, split as a file of the same bytes is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from seawall.sources import Unit, iter_units, units_of_file

MSG = b"From: a@example.com\nSubject: %d\n\nbody %d\n"
FROM = b"From sender@example.com  Thu Aug 22 12:36:23 2002\n"
CASES = [
    MSG % (1, 1),  # one message
    b"",  # nothing at all
    FROM + MSG % (1, 1),  # one message after its From_ line
    FROM + MSG % (1, 1) + FROM + MSG % (2, 2) + FROM + MSG % (3, 3),  # an mbox
    FROM + MSG % (1, 1) + b"\nFrom the desk of\n",  # "From " with too few words
    FROM + b"x" * 200_000 + b"\n" + FROM + MSG % (2, 2),  # more than a pipe's buffer
]


def _through_fifo(tmp_path: Path, content: bytes) -> list[Unit]:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "wb") as fh:
            fh.write(content)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    units = units_of_file(str(fifo))
    writer.join(timeout=30)
    return units


@pytest.mark.parametrize("content", CASES)
def test_a_fifo_is_read_once_and_split_as_a_file(tmp_path: Path, content: bytes) -> None:
    file = tmp_path / "file"
    file.write_bytes(content)
    from_file = units_of_file(str(file))
    from_fifo = _through_fifo(tmp_path, content)
    assert [u.read() for u in from_fifo] == [u.read() for u in from_file]
    assert [u.size() for u in from_fifo] == [u.size() for u in from_file]
    fifo = str(tmp_path / "fifo")
    assert [u.path for u in from_fifo] == [u.path.replace(str(file), fifo) for u in from_file]
    assert all(u.data is not None for u in from_fifo)  # nothing left to read again


def test_a_fifo_in_a_listing(tmp_path: Path) -> None:
    content = FROM + MSG % (1, 1) + FROM + MSG % (2, 2)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(content), daemon=True)
    writer.start()
    units = list(iter_units([fifo]))
    writer.join(timeout=30)
    assert [u.read() for u in units] == [MSG % (1, 1), MSG % (2, 2)]


def test_scan_of_a_pipe_on_stdin(tmp_path: Path) -> None:
    """`cat mbox | seawall scan /dev/stdin` scans each message of the mbox, in the workers,
    not an empty message read again from a drained pipe."""
    mbox = FROM + MSG % (1, 1) + FROM + MSG % (2, 2)
    out = subprocess.run(
        [sys.executable, "-m", "seawall", "scan", "--json", "--workers", "2"]
        + ["--state", str(tmp_path / "s"), "/dev/stdin"],
        input=mbox,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr.decode()
    records = [json.loads(line) for line in out.stdout.splitlines() if line.startswith(b"{")]
    assert [(r["path"], r["size"]) for r in records] == [
        ("/dev/stdin#1", len(MSG % (1, 1))),
        ("/dev/stdin#2", len(MSG % (2, 2))),
    ]
    assert all("DEFECT_EMPTY" not in r["symbols"] for r in records)
