"""No process outlives the one that started it: the parent-death signal, and stopping a child.

Every process Seawall forks (``seawall serve``'s workers and campaign tracker, the tracker of
``seawall scan``) asks the kernel for SIGTERM when its parent dies, whatever kills the parent
(``kill -9`` and the OOM killer included), and so drains and exits instead of serving the old
configuration under PID 1.  Children stay in their parent's process group, so
``kill -- -PGID`` reaches them all.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import time

log = logging.getLogger("seawall.serve")

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# Loaded before any fork: the C library the interpreter already runs on.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def die_with_parent(parent: int, signo: int = signal.SIGTERM) -> None:
    """In a child just forked from ``parent``: get ``signo`` when the parent dies.

    If the parent died before the request was made, exit at once (status 0): the kernel
    would never send the signal.  Only Linux has the request; elsewhere this does nothing.
    """
    if _LIBC is None:
        return
    if _LIBC.prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(signo), 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        log.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(errno))
    if os.getppid() != parent:  # the parent died between the fork and the request
        os._exit(0)


def stop(pid: int, grace_s: float = 10.0) -> int | None:
    """SIGTERM the child ``pid``, SIGKILL it after ``grace_s``, and reap it; its wait status,
    or None when it was no child of ours (already reaped)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    killed = False
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if done:
            return status
        if not killed and time.monotonic() > deadline:
            log.warning("process %d did not stop in %gs; killing it", pid, grace_s)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            killed = True
        time.sleep(0.02)


def exited(pid: int) -> bool:
    """Whether the child ``pid`` has exited, without reaping it (its parent still will)."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None
