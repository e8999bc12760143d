"""Issue 15, defects 4 and 5: a learn waiting on the SQLite write lock froze the workers, and
store errors escaped as 500 with a traceback per request."""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.hostile.conftest import TRAINER, users_toml
from tests.hostile.http import HAM, get, post
from tests.hostile.test_connection_limits import milter_session
from tests.integration.seawall_proc import Seawall

GUARD_S = 60.0
RELOAD_EVERY_SCAN = "[detectors.classifier]\nreload_interval_s = 0.0\n"


def test_a_locked_state_delays_no_scan_and_tempfails_the_learn(
    serve: Callable[..., Seawall],
) -> None:
    sw = serve(
        http={"allow_learn": True},
        learn_wait_s=4.0,
        budget_s=10.0,
        extra=RELOAD_EVERY_SCAN,
    )
    assert post(sw.url("/learnham"), HAM, token=TRAINER)[0] == 200  # weights to keep using
    # Another process holds the database's write lock (a backup, a stuck writer ...).
    holder = sqlite3.connect(sw.state / "state.sqlite", timeout=0, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        learn: dict[str, object] = {}

        def learn_spam() -> None:
            t0 = time.monotonic()
            learn["answer"] = post(sw.url("/learnspam"), HAM, token=TRAINER, timeout=GUARD_S)
            learn["took_s"] = time.monotonic() - t0

        learner = threading.Thread(target=learn_spam)
        learner.start()
        time.sleep(0.5)  # the learn now waits on the lock, holding the classifier's
        t0 = time.monotonic()
        status, verdict = post(sw.url("/checkv2"), HAM, timeout=GUARD_S)
        check_s = time.monotonic() - t0
        assert status == 200
        # Within its budget: else the service marks it SCAN_TIMEOUT and tempfails it.
        assert "SCAN_TIMEOUT" not in verdict["symbols"]
        assert verdict["action"] != "soft reject"
        assert get(sw.url("/ping"), timeout=GUARD_S) == (200, b"pong\r\n")
        replies = asyncio.run(asyncio.wait_for(milter_session(sw.ports["milter"]), GUARD_S))
        assert replies[-1][0] in b"actyr"
        learner.join(GUARD_S)
        status, body = learn["answer"]  # type: ignore[misc]
        assert status == 503
        assert "try again later" in body["error"]
        print(
            f"/checkv2 {check_s:.3f}s while a learn waited; the learn gave up after "
            f"{learn['took_s']:.1f}s (learn_wait_s = 4)"
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert post(sw.url("/learnspam"), HAM, token=TRAINER)[0] == 200  # the lock is free again
    status, body = get(sw.url("/stat"))
    assert json.loads(body)["learned_spam"] == 1
    log = sw.log()
    assert "learning failed on the state store" in log
    assert "Traceback" not in log


@dataclass
class PipedSeawall(Seawall):
    """``seawall serve`` logging into a pipe, not a file: a limit on file sizes then stops
    the state from growing and leaves its log alone."""

    lines: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "seawall", "serve", "--config", str(self.config_file)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()
        self.wait_ready()

    def stop(self, timeout: float = 60.0) -> int:
        code = super().stop(timeout)
        self.pump.join(timeout)
        assert self.proc is not None
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return code

    def _pump(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.decode(errors="replace"))

    def log(self) -> str:
        return "".join(self.lines)


def test_a_full_disk_gives_the_documented_tempfail_logged_once(tmp_path: Path) -> None:
    sw = PipedSeawall(root=tmp_path / "sw", state=tmp_path / "state", workers=1)
    sw.extra = users_toml()
    sw.write_config(http={"allow_learn": True})
    sw.start()
    try:
        # The disk is full: no file of the worker may grow (RLIMIT_FSIZE: EFBIG from every
        # write past the end of a file, as ENOSPC on a full file system).
        pid = int(re.findall(r"worker (\d+) serving", sw.log())[-1])
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
        answers = [post(sw.url("/learnspam"), HAM + b"\n" * i, token=TRAINER) for i in range(5)]
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        assert {status for status, _ in answers} == {503}, answers
        assert post(sw.url("/checkv2"), HAM)[0] == 200
        assert post(sw.url("/learnspam"), HAM, token=TRAINER)[0] == 200  # space again
    finally:
        sw.stop()
    log = sw.log()
    assert log.count("learning failed on the state store") == 1, log  # once per interval
    assert "Traceback" not in log


def test_a_locked_store_does_not_hold_a_greylisted_reply_beyond_its_budget(
    tmp_path: Path,
) -> None:
    # Every message reaches the greylist threshold, and its triplet must be written.
    sw = Seawall(
        root=tmp_path / "sw",
        state=tmp_path / "state",
        workers=1,
        scores='[actions]\nreject = 1000.0\n"add header" = 500.0\ngreylist = -1000.0\n',
    )
    sw.write_config(budget_s=2.0)
    sw.start()
    try:
        holder = sqlite3.connect(sw.state / "state.sqlite", timeout=0, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # the store's write waits 5 s for this lock
        try:
            url = sw.url("/checkv2")
            request = urllib.request.Request(
                url, data=HAM, method="POST", headers={"IP": "192.0.2.7", "Rcpt": "a@b.example"}
            )
            with urllib.request.urlopen(request, timeout=GUARD_S) as response:
                verdict = json.loads(response.read())
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    finally:
        sw.stop()
    assert verdict["action"] == "no action"
    skipped = verdict["symbols"]["GREYLIST_SKIPPED"]
    assert skipped["options"] == ["state store too slow"]
