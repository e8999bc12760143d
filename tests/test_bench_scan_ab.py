"""bench/scan_ab.py: the verdict comparison and the profile reader."""

from __future__ import annotations

from bench.scan_ab import _STAGE, Run, compare


def _run(records: dict[str, dict[str, object]]) -> Run:
    return Run("x", 1.0, len(records), records)


def test_each_kind_of_difference_is_counted() -> None:
    base = {
        "a": {"action": "reject", "score": 20.0, "symbols": {"X": 20.0}, "options": {}},
        "b": {"action": "no action", "score": 0.0, "symbols": {}, "language": "en"},
        "c": {"action": "no action", "score": 0.0, "symbols": {}},
    }
    new = {
        "a": {"action": "reject", "score": 20.0, "symbols": {"X": 20.0}, "options": {"X": ["1"]}},
        "b": {"action": "greylist", "score": 6.0, "symbols": {"Y": 6.0}, "language": "de"},
        "d": {"action": "no action", "score": 0.0, "symbols": {}},
    }
    counts = compare(_run(base), _run(new))
    assert counts == {
        "messages": 3,
        "missing": 2,  # c is not in new, d not in base
        "action": 1,
        "score": 1,
        "symbols": 1,
        "options": 1,
        "language": 1,
    }
    assert compare(_run(base), _run(dict(base))) == dict.fromkeys(counts, 0) | {"messages": 3}


def test_the_profile_lines_are_read() -> None:
    found = _STAGE.match("  parse           0.276   29.8%")
    assert found is not None
    assert (found.group(1), found.group(2)) == ("parse", "0.276")
    assert _STAGE.match("  io start       25.602") is None  # a wait, no share
    assert _STAGE.match("  total           0.929") is None
