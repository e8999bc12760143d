"""Give the heap's free pages back to the system now and then (glibc only).

A worker's heap is a mix of long-lived objects (the caches, the classifier's tables) and
short-lived ones (each connection's buffers and state, each message's parse).  Under
thousands of hostile connections opened and closed every second beside the scans, glibc's
malloc keeps the pages that Python freed in the middle of its arenas for reuse, and the
worker's resident size creeps up although what it holds does not.  ``malloc_trim(0)``
hands every whole free page of every arena back to the kernel (``MADV_DONTNEED``), so once
a minute (``serve.heap_trim_s``) keeps the RSS an admin watches at what the worker uses.
Elsewhere (musl, macOS) it is not needed and not done.

A trim does not give back the free top of a thread's own arena (glibc trims only the main
arena's top), and glibc's mmap threshold is dynamic: it rises to the largest mapped block
freed, the trim threshold with it, and from then on such blocks stay in the heap.  Under
hostile churn a worker thread's arena then grew with nothing in use in it.  So at start,
before any thread, the supervisor and each worker set ``mallopt`` (``tune_malloc``): a
fixed mmap threshold (``serve.malloc_mmap_threshold``), so that large blocks (message
bodies, a connection's reads) are mapped and unmapped on their own and every arena's free
top is trimmed, and optionally a cap on the arenas (``serve.malloc_arena_max``).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import time
from collections.abc import Callable

log = logging.getLogger("seawall.worker")


# glibc's <malloc.h> parameter numbers for mallopt
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


def _libc() -> ctypes.CDLL | None:
    """The C library when it is glibc (the tunings below are glibc's), else None."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
        return ctypes.CDLL(None)
    except (ValueError, OSError):
        return None


def tune_malloc(arena_max: int, mmap_threshold: int) -> dict[str, int]:
    """Set glibc's malloc parameters; returns those that were set (none without glibc).

    ``arena_max`` > 0 caps the arenas (threads beyond share them); ``mmap_threshold`` > 0
    maps every allocation of that many bytes or more on its own and fixes the threshold
    (glibc's dynamic one rises to the largest block freed, so that later bodies of that
    size stay in the heap), with the trim threshold at twice it as glibc's dynamic rule
    keeps it.  0 leaves glibc's default.  Call it before any thread allocates: the cap
    counts only arenas made after it.
    """
    libc = _libc()
    if libc is None:
        return {}
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    wanted: dict[str, tuple[int, int]] = {}
    if mmap_threshold > 0:
        wanted["mmap_threshold"] = (M_MMAP_THRESHOLD, mmap_threshold)
        wanted["trim_threshold"] = (M_TRIM_THRESHOLD, 2 * mmap_threshold)
    if arena_max > 0:
        wanted["arena_max"] = (M_ARENA_MAX, arena_max)
    done: dict[str, int] = {}
    for name, (param, value) in wanted.items():
        if mallopt(param, value) == 1:
            done[name] = value
        else:
            log.warning("mallopt %s=%d refused by glibc", name, value)
    return done


def malloc_trim() -> Callable[[], bool] | None:
    """glibc's ``malloc_trim(0)`` (True when it gave memory back), or None without glibc."""
    libc = _libc()
    if libc is None:
        return None
    try:
        trim = libc.malloc_trim
    except AttributeError:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: bool(trim(0))


async def trim_forever(interval_s: float) -> None:
    """Every ``interval_s``, give the free pages of the heap back (a no-op without glibc, or
    with ``interval_s`` 0)."""
    trim = malloc_trim() if interval_s > 0 else None
    if trim is None:
        return
    while True:
        await asyncio.sleep(interval_s)
        t0 = time.perf_counter()
        gave = trim()
        log.debug("malloc_trim: %s in %.1f ms", gave, (time.perf_counter() - t0) * 1000)
