"""A worker gives the free pages of its heap back to the system (``serve.heap_trim_s``).

Found by ``bench.hostile load``: under 2,000 hostile connections opened and closed beside
the scans, the workers' RSS grew about 5 MiB a minute while what Python held did not
(tracemalloc flat between minutes 6 and 10 of the hostile block): glibc kept the freed
pages in the middle of the main arena and of the store threads' arenas, and a trim cannot
give back the free top of a thread's own arena: so the supervisor and each worker also cap
glibc's arenas (``serve.malloc_arena_max``) and fix its mmap threshold
(``serve.malloc_mmap_threshold``) at start.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from tests.hostile.conftest import TRAINER
from tests.hostile.http import HAM, post
from tests.integration.seawall_proc import Seawall

from seawall.serve.heap import malloc_trim

GUARD_S = 60.0  # only against a hang
MIB = 2**20
HEAP_MAX = 64 * MIB  # glibc's thread arena: a heap of its own, 64 MiB reserved and aligned

glibc = pytest.mark.skipif(not os.confstr("CS_GNU_LIBC_VERSION"), reason="glibc's malloc")


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@glibc
def test_malloc_trim_gives_back_the_pages_freed_between_live_chunks() -> None:
    trim = malloc_trim()
    assert trim is not None
    # Chunks above Python's small-object size come from glibc; one in eight stays alive,
    # pinning the heap's top, so freeing the rest gives nothing back by itself.
    rng = random.Random(15)
    kept: list[bytearray] = []
    freed: list[bytearray] = []
    for i in range(40_000):
        chunk = bytearray(rng.randint(1024, 6144))
        (kept if i % 8 == 0 else freed).append(chunk)
    freed_bytes = sum(len(c) for c in freed)
    freed.clear()
    before = rss()
    assert trim() is True
    given_back = before - rss()
    assert given_back > freed_bytes // 2, (given_back / MIB, freed_bytes / MIB)
    assert len(kept) == 5_000


@glibc
def test_a_worker_trims_its_heap_every_heap_trim_s(serve: Callable[..., Seawall]) -> None:
    sw = serve(heap_trim_s=0.5, extra='[logging]\nlevel = "debug"\n')
    deadline = time.monotonic() + GUARD_S
    while "malloc_trim" not in sw.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    trims = [line for line in sw.log().splitlines() if "malloc_trim" in line]
    assert trims, sw.log()[-3000:]
    time.sleep(1.5)
    assert sum("malloc_trim" in line for line in sw.log().splitlines()) > len(trims)


# A fresh interpreter (mallopt is process-wide): tune, then four threads allocate blocks
# from glibc (over Python's 512-byte small objects) at once; report the arenas that
# malloc_info lists, and whether a 100 kB block is mapped on its own (mallinfo2's hblks).
PROBE = """
import ctypes, json, os, sys, tempfile, threading
from seawall.serve.heap import tune_malloc

tuned = tune_malloc(int(sys.argv[1]), int(sys.argv[2]))
libc = ctypes.CDLL(None)
names = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in names.split()]
libc.mallinfo2.restype = Info
barrier = threading.Barrier(4)
held = []
def work():
    held.append([bytearray(2000) for _ in range(200)])
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
before = libc.mallinfo2().hblks
block = bytearray(100_000)
mapped = libc.mallinfo2().hblks - before
with tempfile.TemporaryFile() as out:
    libc.fdopen.restype = ctypes.c_void_p
    libc.fdopen.argtypes = [ctypes.c_int, ctypes.c_char_p]
    libc.fflush.argtypes = [ctypes.c_void_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    stream = libc.fdopen(os.dup(out.fileno()), b"w")
    libc.malloc_info(0, stream)
    libc.fflush(stream)
    out.seek(0)
    arenas = out.read().count(b"<heap nr=")
print(json.dumps({"tuned": tuned, "arenas": arenas, "mapped": mapped}))
"""


def probe(arena_max: int, mmap_threshold: int) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(arena_max), str(mmap_threshold)],
        capture_output=True,
        text=True,
        timeout=GUARD_S,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


@glibc
def test_tune_malloc_caps_the_arenas_and_maps_large_blocks_on_their_own() -> None:
    tuned = probe(1, 65536)
    assert tuned == {
        "tuned": {"arena_max": 1, "mmap_threshold": 65536, "trim_threshold": 131072},
        "arenas": 1,
        "mapped": 1,
    }
    # glibc's defaults: an arena per thread (up to 8 per core), and 100 kB under the
    # dynamic threshold's 128 KiB start stays in the heap.
    default = probe(0, 0)
    assert default["tuned"] == {}
    assert default["arenas"] == 5  # the main thread's and the four threads'
    assert default["mapped"] == 0


def thread_arenas(pid: int) -> int:
    """glibc arenas of threads in ``pid``: anonymous mappings that start on a 64 MiB
    boundary and, with the reserved (---p) rest that follows, span 64 MiB."""
    rows = []
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            rows.append((start, end, fields[1], len(fields) > 5))
    count = 0
    for i, (start, end, perms, named) in enumerate(rows):
        if named or start % HEAP_MAX or not perms.startswith("rw"):
            continue
        if i + 1 < len(rows) and rows[i + 1][:1] == (end,) and rows[i + 1][2].startswith("---"):
            end = rows[i + 1][1]
        count += end - start == HEAP_MAX
    return count


def worker_pids(sw: Seawall) -> list[int]:
    deadline = time.monotonic() + GUARD_S
    while not (pids := re.findall(r"worker (\d+) serving", sw.log())):
        assert time.monotonic() < deadline, sw.log()[-3000:]
        time.sleep(0.2)
    return [int(pid) for pid in pids]


@glibc
@pytest.mark.parametrize("arena_max", [1, 0])
def test_a_worker_caps_its_arenas_or_leaves_glibc_alone(
    serve: Callable[..., Seawall], arena_max: int
) -> None:
    sw = serve(malloc_arena_max=arena_max, http={"allow_learn": True})
    (pid,) = worker_pids(sw)
    for path in ("/checkv2", "/learnspam", "/learnham", "/checkv2"):
        # the token checked and the message learnt in threads, as every learn is
        status, _ = post(sw.url(path), HAM, token=TRAINER, timeout=GUARD_S)
        assert status == 200, path
    arenas = thread_arenas(pid)
    if arena_max:
        assert arenas == 0
        assert "malloc mmap_threshold=131072 trim_threshold=262144 arena_max=1" in sw.log()
    else:  # glibc's default: the store's and the loop's helper threads have their own
        assert arenas >= 1
        assert "malloc mmap_threshold=131072 trim_threshold=262144\n" in sw.log()


def test_without_settings_glibc_is_left_alone(serve: Callable[..., Seawall]) -> None:
    sw = serve(malloc_arena_max=0, malloc_mmap_threshold=0)
    worker_pids(sw)
    assert "malloc as glibc's defaults" in sw.log()
