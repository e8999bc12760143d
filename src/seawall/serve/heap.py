"""Give the heap's free pages back to the system now and then (glibc only).

A worker's heap is a mix of long-lived objects (the caches, the classifier's tables) and
short-lived ones (each connection's buffers and state, each message's parse).  Under
thousands of hostile connections opened and closed every second beside the scans, glibc's
malloc keeps the pages that Python freed in the middle of its arenas for reuse, and the
worker's resident size creeps up although what it holds does not.  ``malloc_trim(0)``
hands every whole free page of every arena back to the kernel (``MADV_DONTNEED``), so once
a minute (``serve.heap_trim_s``) keeps the RSS an admin watches at what the worker uses.
Elsewhere (musl, macOS) it is not needed and not done.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import time
from collections.abc import Callable

log = logging.getLogger("seawall.worker")


def malloc_trim() -> Callable[[], bool] | None:
    """glibc's ``malloc_trim(0)`` (True when it gave memory back), or None without glibc."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
        trim = ctypes.CDLL(None).malloc_trim
    except (ValueError, OSError, AttributeError):
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
