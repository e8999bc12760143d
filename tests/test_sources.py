from __future__ import annotations

from pathlib import Path

import pytest

from seawall.sources import _mbox_units, iter_units, units_of_file

MSG = b"From: a@example.com\nSubject: %d\n\nbody %d\n"


def test_file_tree_and_maildir(tmp_path: Path) -> None:
    for sub in ("cur", "new", "tmp"):
        (tmp_path / "Maildir" / sub).mkdir(parents=True)
    (tmp_path / "Maildir" / "cur" / "1:2,S").write_bytes(MSG % (1, 1))
    (tmp_path / "Maildir" / "new" / "2").write_bytes(MSG % (2, 2))
    (tmp_path / "Maildir" / "tmp" / "3").write_bytes(b"half written")
    (tmp_path / "Maildir" / "dovecot-uidlist").write_bytes(b"3 V1 N1")
    units = list(iter_units([tmp_path / "Maildir"]))
    assert sorted(Path(u.path).name for u in units) == ["1:2,S", "2"]
    assert units[0].read().startswith(b"From: a@example.com")


def test_mbox_is_split_and_from_lines_dropped(tmp_path: Path) -> None:
    box = tmp_path / "box.mbox"
    box.write_bytes(
        b"From alice@example.com Mon Jan  1 00:00:00 2024\n" + MSG % (1, 1) + b"\n"
        b"From bob@example.com Mon Jan  1 00:00:01 2024\n" + MSG % (2, 2) + b"\n"
        b"From carol@example.com Mon Jan  1 00:00:02 2024\n" + MSG % (3, 3)
    )
    units = list(iter_units([box]))
    assert [u.path for u in units] == [f"{box}#1", f"{box}#2", f"{box}#3"]
    assert units[1].read().startswith(b"From: a@example.com\nSubject: 2")
    assert b"From bob" not in units[1].read()
    assert units[2].read().endswith(b"body 3\n")


def test_single_message_with_from_line_keeps_plain_path(tmp_path: Path) -> None:
    one = tmp_path / "00001.abc"
    one.write_bytes(b"From sender@example.com  Thu Aug 22 12:36:23 2002\n" + MSG % (1, 1))
    [unit] = list(iter_units([one]))
    assert unit.path == str(one)
    assert unit.read().startswith(b"From: a@example.com")


def test_missing_path_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        list(iter_units([tmp_path / "nope"]))


def test_empty_file_is_one_message(tmp_path: Path) -> None:
    empty = tmp_path / "empty.eml"
    empty.write_bytes(b"")
    [unit] = list(iter_units([empty]))
    assert unit.read() == b""


FROM_LINE = b"From sender@example.com  Thu Aug 22 12:36:23 2002\n"


@pytest.mark.parametrize(
    "content",
    [
        FROM_LINE + MSG % (1, 1),  # one message: read whole, not mapped
        FROM_LINE + FROM_LINE + MSG % (1, 1),  # a From_ line right after the first
        FROM_LINE + b"From me\n" + MSG % (1, 1),  # "From " that is no separator
        FROM_LINE + MSG % (1, 1) + b"\n" + FROM_LINE + MSG % (2, 2),
        b"From sender@example.com " + b"x" * 2000 + b"\n" + MSG % (1, 1),  # a long first line
        b"From sender@example.com Thu Aug 22 12:36:23 2002",  # the From_ line alone
    ],
)
def test_a_file_is_split_as_the_mbox_reader_splits_it(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "f"
    path.write_bytes(content)
    assert units_of_file(str(path)) == _mbox_units(str(path))
