"""seawall scores show|fit on real corpus mail: the table beside the shipped scores."""

from __future__ import annotations

from pathlib import Path

import pytest

from seawall.cli import main


def _tree(tmp: Path, sa_subset: dict[str, list[Path]], part: str) -> Path:
    for label in ("spam", "ham"):
        folder = tmp / part / label
        folder.mkdir(parents=True)
        for path in sa_subset[f"{part}_{label}"][:60]:
            (folder / path.name).symlink_to(path)
    return tmp / part


def test_show_before_anything_was_learned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scores", "show", "--state", str(tmp_path / "state")]) == 0
    assert "no learned scores yet" in capsys.readouterr().out


def test_fit_records_and_prints_beside_the_shipped_scores(
    tmp_path: Path, sa_subset: dict[str, list[Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    state = str(tmp_path / "state")
    tree = _tree(tmp_path, sa_subset, "test")
    argv = ["--spam", str(tree / "spam"), "--ham", str(tree / "ham"), "--state", state]
    assert main(["scores", "fit", "--dry-run", *argv]) == 0
    out = capsys.readouterr().out
    assert "learned scores from 60 spam and 60 ham (not in force: needs 500 of each)" in out
    assert "shipped" in out
    assert main(["scores", "show", "--state", state]) == 0
    assert "no learned scores yet" in capsys.readouterr().out  # the dry run saved nothing
    assert main(["scores", "fit", *argv]) == 0
    capsys.readouterr()
    assert main(["scores", "show", "--state", state, "--all"]) == 0
    shown = capsys.readouterr().out
    assert "learned scores from 60 spam and 60 ham" in shown
    assert "URIBL_DBL_PHISH" in shown  # --all: never seen, shipped score kept


def test_fit_needs_both_classes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scores", "fit", "--spam", str(tmp_path), "--state", str(tmp_path / "s")]) == 1
    assert "--ham" in capsys.readouterr().err
