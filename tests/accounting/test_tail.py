"""Following a detail file: appends, half-written records, and both kinds of rotation."""

from __future__ import annotations

import os
from pathlib import Path

from seawall.accounting import Record
from seawall.accounting.detail import Problem
from seawall.accounting.tail import DetailTail


def record(n: int) -> bytes:
    return (
        f'Fri Nov 27 12:00:00 2026\n\tAcct-Session-Id = "S{n}"\n\tAcct-Status-Type = Start\n'
        f'\tUser-Name = "user{n}"\n\tNAS-IP-Address = 192.0.2.1\n'
        f"\tFramed-IP-Address = 198.19.0.{n % 250}\n\tTimestamp = {1795780800 + n}\n\n"
    ).encode()


def ids(items: list[Record | Problem]) -> list[str]:
    assert not [i for i in items if isinstance(i, Problem)]
    return [i.session_id for i in items if isinstance(i, Record)]


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)


def test_appends_and_a_half_written_record(tmp_path: Path) -> None:
    path = tmp_path / "detail"
    path.write_bytes(record(1))
    tail = DetailTail(str(path))
    assert ids(tail.poll()) == ["S1"]
    assert tail.poll() == []
    half = len(record(2)) // 2
    append(path, record(2)[:half])
    assert tail.poll() == []  # not complete yet
    append(path, record(2)[half:] + record(3))
    assert ids(tail.poll()) == ["S2", "S3"]
    tail.close()


def test_rotation_by_renaming(tmp_path: Path) -> None:
    path = tmp_path / "detail"
    path.write_bytes(record(1))
    tail = DetailTail(str(path))
    assert ids(tail.poll()) == ["S1"]
    append(path, record(2))  # written before the rotation, not yet read
    os.rename(path, tmp_path / "detail-20261127")
    append(tmp_path / "detail-20261127", record(3))  # FreeRADIUS still had it open
    assert ids(tail.poll()) == ["S2", "S3"]  # no new file yet: the old one is read on
    path.write_bytes(record(4))
    assert ids(tail.poll()) == ["S4"]
    tail.close()


def test_rename_then_new_file_reads_the_old_files_rest_first(tmp_path: Path) -> None:
    path = tmp_path / "detail"
    path.write_bytes(record(1))
    tail = DetailTail(str(path))
    assert ids(tail.poll()) == ["S1"]
    append(path, record(2))
    os.rename(path, tmp_path / "detail.1")
    path.write_bytes(record(3))
    assert ids(tail.poll()) == ["S2", "S3"]
    append(path, record(4))
    assert ids(tail.poll()) == ["S4"]
    tail.close()


def test_copytruncate(tmp_path: Path) -> None:
    path = tmp_path / "detail"
    path.write_bytes(record(1) + record(2))
    tail = DetailTail(str(path))
    assert ids(tail.poll()) == ["S1", "S2"]
    (tmp_path / "detail.1").write_bytes(path.read_bytes())  # logrotate's copy
    with path.open("r+b") as f:
        f.truncate(0)
    append(path, record(3))
    assert ids(tail.poll()) == ["S3"]
    tail.close()


def test_a_file_that_appears_later(tmp_path: Path) -> None:
    path = tmp_path / "detail"
    tail = DetailTail(str(path))
    assert tail.poll() == []
    path.write_bytes(record(1))
    assert ids(tail.poll()) == ["S1"]
    tail.close()
