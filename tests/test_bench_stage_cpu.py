"""bench/stage_cpu.py: the whole engine timed one by one and in cohorts, same verdicts."""

from __future__ import annotations

from pathlib import Path

from bench.stage_cpu import engine_us


def test_the_engine_is_timed_both_ways_on_the_same_verdicts(tmp_path: Path) -> None:
    raws = [
        b"From: a%d@example.org\r\nSubject: note %d\r\n\r\nThe minutes of meeting %d are at "
        b"https://wiki.example.org/m/%d, the budget is agreed.\r\n" % (n, n, n, n)
        for n in range(20)
    ]
    raws.append(b"")  # a defect on its own, in the second cohort
    figures = engine_us(str(tmp_path / "state"), raws, 1)
    assert set(figures) == {"engine_one_us", "engine_cohort_us"}
    assert all(value > 0 for value in figures.values())
