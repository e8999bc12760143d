"""No process outlives its parent: the parent-death signal, as real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from seawall.serve import lifecycle

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")


def python(script: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def gone(pid: int, timeout: float) -> bool:
    """Whether ``pid`` (not our child) exits within ``timeout`` seconds."""
    try:
        psutil.Process(pid).wait(timeout)
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired:
        return False
    return True


def test_a_child_gets_sigterm_when_its_parent_is_killed() -> None:
    with python(
        """
        import os, signal, time
        from seawall.serve import lifecycle

        me = os.getpid()
        pid = os.fork()
        if pid == 0:
            lifecycle.die_with_parent(me)
            signal.signal(signal.SIGTERM, lambda *_: os._exit(15))
            time.sleep(60)
            os._exit(0)
        print(pid)
        time.sleep(60)
        """
    ) as parent:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        time.sleep(0.3)  # the child has asked for the signal
        assert psutil.Process(child).ppid() == parent.pid
        parent.kill()
    assert gone(child, 5), "the child outlived its parent"


def test_a_child_whose_parent_died_before_it_asked_exits() -> None:
    with python(
        """
        import os
        from seawall.serve import lifecycle

        lifecycle.die_with_parent(os.getppid() + 1_000_000)  # not our parent: it "died"
        print("still here")
        """
    ) as orphan:
        out, _ = orphan.communicate(timeout=30)
    assert orphan.returncode == 0
    assert out == ""


def test_the_campaign_tracker_of_a_scan_dies_with_it(tmp_path: Path) -> None:
    """``seawall scan`` runs its tracker in ``tracker_process``: a scan killed with -9 does
    not leave it behind."""
    with python(
        f"""
        import time
        from seawall.config import load_config
        from seawall.serve import tracker

        config = load_config(state_dir={str(tmp_path)!r})
        with tracker.tracker_process(config) as pid:
            print(pid)
            time.sleep(60)
        """
    ) as scan:
        assert scan.stdout is not None
        pid = int(scan.stdout.readline())
        assert psutil.Process(pid).ppid() == scan.pid
        assert os.getpgid(pid) == os.getpgid(scan.pid)
        scan.kill()
    assert gone(pid, 10), "the campaign tracker outlived the scan"
    # SIGTERM let it save its state on the way out.
    from seawall.config import load_config
    from seawall.serve import tracker

    assert not tracker.running(load_config(state_dir=str(tmp_path)))


def test_stop_kills_a_child_that_ignores_sigterm() -> None:
    with python(
        """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready")
        time.sleep(60)
        """
    ) as child:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        started = time.monotonic()
        status = lifecycle.stop(child.pid, grace_s=0.5)
        assert status is not None
        assert os.WIFSIGNALED(status)
        assert os.WTERMSIG(status) == signal.SIGKILL
        assert time.monotonic() - started < 30  # a hang guard: the child sleeps 60 s
        assert lifecycle.stop(child.pid) is None  # reaped already: nothing to do
        child.returncode = -signal.SIGKILL  # reaped by stop, not by Popen


def test_exited_leaves_the_child_to_be_reaped() -> None:
    with python("import sys; sys.exit(3)") as child:
        deadline = time.monotonic() + 10
        while not lifecycle.exited(child.pid):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert lifecycle.exited(child.pid)  # asking again does not reap it either
        assert child.wait(5) == 3
