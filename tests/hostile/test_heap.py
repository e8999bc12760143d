"""A worker gives the free pages of its heap back to the system (``serve.heap_trim_s``).

Found by ``bench.hostile load``: under 2,000 hostile connections opened and closed beside
the scans, the workers' RSS grew about 5 MiB a minute while what Python held did not
(tracemalloc flat between minutes 6 and 10 of the hostile block): glibc kept the freed
pages in the middle of the main arena and of the store threads' arenas.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable

import pytest
from tests.integration.seawall_proc import Seawall

from seawall.serve.heap import malloc_trim

GUARD_S = 60.0  # only against a hang
MIB = 2**20

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
