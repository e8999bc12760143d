"""bench.summary: the speed ratios against Rspamd that `make bench` prints last."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench.summary import main, summary


def _rspamd(rows: list[tuple[int, float, float]]) -> dict[str, object]:
    runs = [
        {
            "concurrency": c,
            "msgs_per_s": r,
            "p99_ms": p99,
            "server_cpu_ms_per_msg": 1.5,
            "quiet_estimate_msgs_per_s": 1200.0,
        }
        for c, r, p99 in rows
    ]
    return {"phases": {"no_bayes": {"runs": runs}, "bayes": {"runs": []}}}


def _write(directory: Path) -> None:
    results = {
        "throughput": {
            "seawall_2": [{"msgs_per_s": 900.0}, {"msgs_per_s": 1100.0}],
            "rspamd": _rspamd([(4, 400.0, 20.0), (16, 500.0, 50.0), (64, 450.0, 200.0)]),
        }
    }
    serve = {
        "date": "2026-12-06 10:00 UTC",
        "loadavg_start": [1.5, 1.0, 0.5],
        "seawall_checkv2": [
            {
                "concurrency": 4,
                "msgs_per_s": 800.0,
                "p99_ms": 10.0,
                "server_cpu_ms_per_msg": 2.0,
                "quiet_estimate_msgs_per_s": 900.0,
            },
            {"concurrency": 16, "msgs_per_s": 700.0, "p99_ms": 60.0},
            {"concurrency": 64, "msgs_per_s": 600.0, "p99_ms": 150.0},
        ],
        "rspamd": _rspamd([(4, 500.0, 20.0), (16, 450.0, 50.0), (64, 450.0, 200.0)]),
        "milter": {
            "postfix_alone": {"msgs_per_s": 700.0, "p50_ms": 10.0},
            "seawall": {"msgs_per_s": 300.0, "p50_ms": 25.0, "filter_cpu_ms_per_msg": 3.5},
            "rspamd": {"msgs_per_s": 150.0, "p50_ms": 50.0, "filter_cpu_ms_per_msg": 1.25},
            "added_p50_ms": {"seawall": 15.0, "rspamd": 40.0},
        },
    }
    (directory / "results.json").write_text(json.dumps(results))
    (directory / "serve.json").write_text(json.dumps(serve))


def test_the_three_ratios_against_rspamd_and_whether_each_target_is_met(tmp_path: Path) -> None:
    _write(tmp_path)
    text = "\n".join(summary(tmp_path))
    # scan: the mean of Seawall's rounds over Rspamd's fastest concurrency (1000 / 500)
    assert "Seawall 1000.0 msg/s" in text
    assert "Rspamd 500.0 msg/s (c=16): 2.00x, target >= 2.0x: met" in text
    lines = text.splitlines()
    c4 = next(line for line in lines if line.strip().startswith("c=4 "))
    assert "1.60x" in c4
    assert c4.endswith(": met")
    c16 = next(line for line in lines if line.strip().startswith("c=16 "))
    assert c16.endswith("NOT met")  # 1.56x, but p99 60 ms over Rspamd's 50 ms
    c64 = next(line for line in lines if line.strip().startswith("c=64 "))
    assert "1.33x" in c64
    assert c64.endswith("NOT met")
    assert "(added +15.00 ms)" in text
    assert "(added +40.00 ms)" in text
    assert "Seawall over Rspamd: 2.00x, target >= 1.0x: met" in text
    assert "2026-12-06 10:00 UTC, load 1.50" in text
    # CPU per message, the steadier figure on a shared machine: only where both have it
    assert "server CPU per message: Seawall 2.00 ms, Rspamd 1.50 ms" in text
    assert "(client included) 0.75x" in text
    assert text.count("server CPU per message") == 1
    assert "filter CPU per message: Seawall 3.50 ms, Rspamd 1.25 ms" in text


def test_missing_results_say_which_benchmark_writes_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "not measured (python -m bench.run writes results.json)" in out
    assert out.count("not measured (python -m bench.serve writes serve.json)") == 2


def test_unreadable_results_exit_2(tmp_path: Path) -> None:
    (tmp_path / "serve.json").write_text("{not json")
    assert main(["--dir", str(tmp_path)]) == 2
