"""Dev-only: memory of ``seawall serve``'s workers over a bench run (not part of Seawall).

Put this folder first on ``PYTHONPATH`` and set ``SEAWALL_BENCH_MEMTRACE`` to a folder;
with ``PYTHONTRACEMALLOC=N`` too, Python traces its allocations from start-up.  Every
forked child then writes, every ``SEAWALL_BENCH_MEMTRACE_S`` seconds (default 60):

- a line of ``mem-PID.jsonl``: RSS, glibc's ``mallinfo2`` (heap from brk, in mmaps,
  in use, free inside the heap, top chunk), and tracemalloc's traced bytes;
- ``malloc-PID-N.xml``: glibc's ``malloc_info`` (each arena's free and in-use bytes);
- ``snap-PID-N.pickle``: a tracemalloc snapshot when tracing, to compare by traceback.

Tracing from start-up slows a worker several times; ``SEAWALL_BENCH_MEMTRACE_AT_S``
starts it that many seconds after the fork instead (``..._FRAMES`` frames, default 8),
so that the snapshots hold only what was allocated since and is still alive.
"""

from __future__ import annotations

import ctypes
import json
import os
import threading
import time
import tracemalloc
from pathlib import Path


class MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _watch(folder: Path, every_s: float, trace_at_s: float, nframes: int) -> None:
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    libc.fdopen.restype = ctypes.c_void_p
    libc.fdopen.argtypes = [ctypes.c_int, ctypes.c_char_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    pid = os.getpid()
    started = time.monotonic()
    n = 0
    while True:
        time.sleep(every_s)
        n += 1
        if not tracemalloc.is_tracing() and time.monotonic() - started >= trace_at_s:
            tracemalloc.start(nframes)
        info = libc.mallinfo2()
        with open(f"/proc/{pid}/statm") as statm:
            rss = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        row = {
            "t_s": round(time.monotonic() - started),
            "n": n,
            "rss": rss,
            **{name: getattr(info, name) for name, _ in MallInfo2._fields_},
            "traced": tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0,
        }
        with (folder / f"mem-{pid}.jsonl").open("a") as out:
            out.write(json.dumps(row) + "\n")
        fd = os.open(folder / f"malloc-{pid}-{n}.xml", os.O_WRONLY | os.O_CREAT, 0o644)
        stream = libc.fdopen(fd, b"w")
        libc.malloc_info(0, stream)
        libc.fclose(stream)
        if tracemalloc.is_tracing():
            tracemalloc.take_snapshot().dump(str(folder / f"snap-{pid}-{n}.pickle"))


def _after_fork() -> None:
    with open("/proc/self/cmdline", "rb") as cmdline:
        if b"serve" not in cmdline.read().split(b"\0"):
            return
    folder = Path(os.environ["SEAWALL_BENCH_MEMTRACE"])
    every_s = float(os.environ.get("SEAWALL_BENCH_MEMTRACE_S", "60"))
    trace_at_s = float(os.environ.get("SEAWALL_BENCH_MEMTRACE_AT_S", "inf"))
    nframes = int(os.environ.get("SEAWALL_BENCH_MEMTRACE_FRAMES", "8"))
    watch = threading.Thread(
        target=_watch, args=(folder, every_s, trace_at_s, nframes), name="memtrace", daemon=True
    )
    watch.start()


if os.environ.get("SEAWALL_BENCH_MEMTRACE"):
    Path(os.environ["SEAWALL_BENCH_MEMTRACE"]).mkdir(parents=True, exist_ok=True)
    os.register_at_fork(after_in_child=_after_fork)
