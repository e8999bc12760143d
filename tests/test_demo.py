"""`make demo`: a wave through a live seawall serve for DEMO_SECONDS; and the offline demo's
summary line says what the table shows: ham greylisted is not hidden."""

from __future__ import annotations

import asyncio
import re
import shlex
import subprocess
import sys
from collections import Counter
from pathlib import Path

import psutil

from seawall.config import HistorySettings, load_config
from seawall.demo import at_the_actions
from seawall.store.verdicts import Search, VerdictRecord
from seawall.store.verdicts_sqlite import SqliteVerdicts
from seawall.users import Users

ROOT = Path(__file__).resolve().parents[1]


def test_ham_held_back_is_named_beside_the_share_flagged() -> None:
    table = Counter({("ham", "no action"): 688, ("ham", "greylist"): 1, ("spam", "reject"): 300})
    line = at_the_actions(table, 0.9712, 0.0)
    assert line == (
        "  at the default actions: 97.1% of spam flagged (add header or worse), 0.00% of ham"
        " flagged; 1 ham greylisted (delayed, not flagged)"
    )
    table[("ham", "soft reject")] = 2
    assert at_the_actions(table, 0.9712, 0.0).endswith(
        "; 1 ham greylisted, 2 ham soft rejected (delayed, not flagged)"
    )


def test_nothing_is_added_when_no_ham_was_held_back() -> None:
    table = Counter({("ham", "no action"): 10, ("ham", "add header"): 1, ("spam", "greylist"): 4})
    assert at_the_actions(table, 0.5, 0.0909).endswith("9.09% of ham flagged")


def test_make_demo_serves_a_wave_for_demo_seconds_and_exits_0(tmp_path: Path) -> None:
    """`make demo DEMO_SECONDS=N`: the command make runs, run for N seconds on a folder the
    test keeps; the wave reached seawall serve, the printed login works, nothing is left."""
    state = tmp_path / "demo"
    dry = subprocess.run(
        ["make", "-n", "demo", "DEMO_SECONDS=5", f"DEMO_ARGS=--learn-max 200 --state {state}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    # Under `make test`, the inner make also prints "make[1]: Leaving directory ...".
    lines = [line for line in dry.stdout.splitlines() if line and not line.startswith("make")]
    command = shlex.split(lines[-1])
    assert command[:2] == [".venv/bin/seawall", "demo"]
    assert command[2:4] == ["--seconds", "5"]
    done = subprocess.run(
        [sys.executable, "-m", "seawall", *command[1:]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,  # learning and starting on a busy machine; the wave itself is 5 s
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    url = re.search(r"dashboard:\s+(http://127\.0\.0\.1:\d+/ui/)", out)
    login = re.search(r"login:\s+demo / (\S+)", out)
    assert url, out
    assert login, out
    counts = [int(n) for n in re.findall(r"s  (\d+) messages", out)]
    assert counts, out
    assert counts[-1] > 0, out

    config = load_config(state / "seawall.toml")
    users = Users(config.users)
    assert users.check("demo", login[1]) is not None
    assert users.check("demo", login[1] + "x") is None

    async def recorded() -> list[VerdictRecord]:
        history = SqliteVerdicts.open(state / "state" / "verdicts.sqlite", HistorySettings())
        try:
            return await history.search(Search(), limit=10_000)
        finally:
            await history.close()

    records = asyncio.run(recorded())
    assert records
    over = "SMTP through a private Postfix" if "private Postfix" in out else "HTTP"
    assert {r.frontend for r in records} == ({"milter"} if over != "HTTP" else {"http"})
    assert not [
        p
        for p in psutil.process_iter(["cmdline"])
        if str(state) in " ".join(p.info["cmdline"] or ())
    ]
