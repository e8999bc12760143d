"""Listing reads only what it must, and keeps every error case: what a file holds, how a
bad path fails, and what a unit reads back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from seawall.sources import (
    _FIRST_READ,
    _HEAD,
    _READ_WHOLE,
    Unit,
    _mbox_units,
    iter_units,
    units_of_file,
)

MSG = b"From: a@example.com\nSubject: %d\n\nbody %d\n"
FROM = b"From sender@example.com  Thu Aug 22 12:36:23 2002\n"


def _cases() -> list[bytes]:
    pad = b"x" * (_HEAD - len(FROM) - 1) + b"\n"  # the first _HEAD bytes end on this line
    cases = [
        FROM + pad + FROM + MSG % (2, 2),  # a second message right after the first _HEAD
        FROM + pad[:-2] + b"\nFrom b@example.com Mon Jan  1 00:00:01 2024\n" + MSG % (2, 2),
        FROM + MSG % (1, 1) + b"\nFrom the desk of\n",  # "From " with too few words
        FROM.replace(b"\n", b"\r\n") + b"Subject: 1\r\n\r\nbody\r\n",  # CRLF
        b"From " + b"a " * _HEAD + b"\n" + MSG % (1, 1),  # a From_ line longer than _HEAD
        b"From a@b.c Thu Aug 22 12:36:23 2002\nFrom: x\n\nFrom here to there\n",  # a body
        b"From\n",  # the word alone
        b"\n" + FROM + MSG % (1, 1),  # a message starting with an empty line
    ]
    # Around the end of the first read: the file's size, and a second From_ line.
    one = FROM + MSG % (1, 1)
    cases += [one + b"z" * (_FIRST_READ - len(one) + k) for k in (-1, 0, 1)]
    fill = [b"z" * (_FIRST_READ - len(FROM) + k) for k in (-7, -6, -5, 0, 1)]
    cases += [FROM + z + b"\n" + FROM + MSG % (2, 2) for z in fill]
    return cases


@pytest.mark.parametrize("content", _cases())
def test_split_as_the_mbox_reader_splits_it(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "f"
    path.write_bytes(content)
    units = units_of_file(str(path))
    if content.startswith(b"From "):
        assert units == _mbox_units(str(path))
    else:
        assert units == [Unit(str(path), str(path))]
    assert all(u.read() in content for u in units)


def test_a_large_file_with_a_from_line_is_split_by_the_mbox_reader(tmp_path: Path) -> None:
    path = tmp_path / "big"
    body = b"line of body text\n" * (_READ_WHOLE // 18 + 1)
    path.write_bytes(FROM + MSG % (1, 1) + body + FROM + MSG % (2, 2))
    units = units_of_file(str(path))
    assert [u.path for u in units] == [f"{path}#1", f"{path}#2"]
    assert units[0].read().endswith(body)
    assert units[1].read().endswith(b"body 2\n")
    (path.parent / "big1").write_bytes(FROM + MSG % (1, 1) + body)
    [one] = units_of_file(str(path.parent / "big1"))
    assert one.path == str(path.parent / "big1")
    assert one.read() == MSG % (1, 1) + body


def test_a_message_file_is_one_unit_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "m.eml"
    content = MSG % (1, 1) + b"From the desk of the president\n" + b"y" * 100_000
    path.write_bytes(content)
    assert units_of_file(str(path)) == [Unit(str(path), str(path))]
    assert Unit(str(path), str(path)).read() == content


def test_unit_reads_its_range_and_a_grown_file_to_its_end(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    assert Unit("f", str(path), 2, 5).read() == b"234"
    assert Unit("f", str(path), 8, 20).read() == b"89"  # the file is shorter than the range
    assert Unit("f", str(path), 20).read() == b""
    with path.open("ab") as fh:  # appended after listing: read to the end as it is now
        fh.write(b"abc" * 30_000)
    assert Unit("f", str(path), 7).read() == b"789" + b"abc" * 30_000
    assert Unit("f", str(path)).size() == 90_010


def test_an_empty_file_and_a_file_of_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert units_of_file(str(empty)) == [Unit(str(empty), str(empty))]
    only = tmp_path / "only"
    only.write_bytes(FROM)
    assert units_of_file(str(only)) == _mbox_units(str(only))
    assert [u.read() for u in units_of_file(str(only))] == [b""]


def test_a_dangling_link_in_a_tree_fails_with_its_path(tmp_path: Path) -> None:
    (tmp_path / "ok").write_bytes(MSG % (1, 1))
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError) as info:
        list(iter_units([tmp_path]))
    assert info.value.filename == str(tmp_path / "gone")


def test_a_directory_is_no_file_of_messages(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError) as info:
        units_of_file(str(tmp_path))
    assert info.value.filename == str(tmp_path)  # as open() names it
    with pytest.raises(IsADirectoryError) as info:
        Unit("d", str(tmp_path)).read()
    assert info.value.filename == str(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_a_file_that_fails_to_read_is_named(tmp_path: Path) -> None:
    # Reading a process's memory at offset 0 fails (EIO: nothing is mapped there; or
    # EACCES where ptrace is restricted), for root too.
    with pytest.raises(OSError, match="Input/output error|Permission denied") as info:
        units_of_file("/proc/self/mem")
    assert info.value.filename == "/proc/self/mem"
    out = subprocess.run(
        [sys.executable, "-m", "seawall", "scan", "/proc/self/mem", "--state", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode != 0
    assert "cannot read /proc/self/mem: " in out.stderr
    assert "Traceback" not in out.stderr


def test_an_unreadable_file_fails_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_bytes(MSG % (1, 1))
    path.chmod(0)
    if os.geteuid() != 0:
        with pytest.raises(PermissionError) as info:
            units_of_file(str(path))
        assert info.value.filename == str(path)
        return
    # Root reads any file: the listing runs as nobody in a forked child, as when a scan
    # meets another user's mail.
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child's verdict is what the parent asserts)
        answer = "read"
        try:
            os.setgid(65534)
            os.setuid(65534)
            units_of_file(str(path))
        except PermissionError as exc:
            answer = str(exc.filename)
        except BaseException as exc:
            answer = repr(exc)
        os.write(write, answer.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as fh:
        answer = fh.read().decode()
    os.waitpid(child, 0)
    assert answer == str(path)


def test_scan_names_the_path_it_cannot_read(tmp_path: Path) -> None:
    tree = tmp_path / "mail"
    tree.mkdir()
    (tree / "ok").write_bytes(MSG % (1, 1))
    (tree / "gone").symlink_to(tmp_path / "nowhere")
    out = subprocess.run(
        [sys.executable, "-m", "seawall", "scan", str(tree), "--state", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode != 0
    assert f"no such file or directory: {tree / 'gone'}" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_file_gone_after_listing_fails_its_read_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "m.eml"
    path.write_bytes(MSG % (1, 1))
    [unit] = list(iter_units([tmp_path]))
    path.unlink()
    with pytest.raises(FileNotFoundError) as info:  # the worker's READ_ERROR record
        unit.read()
    assert info.value.filename == str(path)
    assert unit.size() == 0
