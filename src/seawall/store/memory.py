"""``MemoryStore``: the Store in a dict, for tests and single-process use."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from seawall.store.base import BUCKETS, Decayed, bucket_expiry, bucket_range, decayed

# Operations between sweeps of expired buckets and values; a sweep walks every key.
_SWEEP_EVERY = 10_000


class MemoryStore:
    """Counters and values of one process, bucketed exactly as the SQLite store is.

    Sharing the bucket arithmetic with :class:`~seawall.store.sqlite.SqliteStore` keeps
    the contract suite honest: both answer the same totals for the same calls.
    """

    def __init__(self) -> None:
        # key -> {bucket: (count, expiry)}
        self._counters: dict[str, dict[int, tuple[int, float]]] = {}
        # key -> (value, wall-clock expiry or None)
        self._values: dict[str, tuple[bytes, float | None]] = {}
        # key -> (counters at `since`, since, first, last, wall-clock expiry)
        self._decay: dict[str, tuple[list[float], float, float, float, float]] = {}
        self._ops = 0
        self._now = 0.0  # the callers' clock at the last incr, for sweeping counters

    async def incr(self, key: str, *, window_s: float, now: float, amount: int = 1) -> int:
        first, last = bucket_range(now, window_s)
        buckets = self._counters.get(key)
        if amount:
            if buckets is None:
                buckets = self._counters[key] = {}
            count, _ = buckets.get(last, (0, 0.0))
            buckets[last] = (count + amount, bucket_expiry(last, window_s))
            # Drop this key's stale buckets here, so a busy key stays at BUCKETS entries.
            if len(buckets) > BUCKETS:
                for bucket in [b for b in buckets if b < first]:
                    del buckets[bucket]
        self._now = now
        self._tick()
        if not buckets:
            return 0
        return sum(count for bucket, (count, _) in buckets.items() if first <= bucket <= last)

    async def get(self, key: str) -> bytes | None:
        self._tick()
        item = self._values.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= time.time():
            del self._values[key]
            return None
        return value

    async def put(self, key: str, value: bytes, *, ttl_s: float | None = None) -> None:
        self._tick()
        expires = None if ttl_s is None else time.time() + ttl_s
        self._values[key] = (bytes(value), expires)

    async def claim(self, key: str, value: bytes, *, ttl_s: float) -> bytes:
        held = await self.get(key)
        if held is None or held == value:
            await self.put(key, value, ttl_s=ttl_s)
            return bytes(value)
        return held

    async def decay(
        self,
        updates: Mapping[str, Sequence[float]],
        *,
        half_life_s: float,
        now: float,
        ttl_s: float,
    ) -> dict[str, Decayed]:
        self._tick()
        decayed((), now, now, half_life_s)  # validates half_life_s
        wall = time.time()
        out: dict[str, Decayed] = {}
        for key, amounts in updates.items():
            row = self._decay.get(key)
            if row is not None and (row[4] <= wall or len(row[0]) != len(amounts)):
                row = None
            adding = any(amounts)
            if row is None:
                if not adding:
                    continue
                values, first, last = [0.0] * len(amounts), now, now
            else:
                values = decayed(row[0], row[1], now, half_life_s)
                first, last = row[2], row[3]
            since = max(now, row[1]) if row is not None else now
            expires = row[4] if row is not None else wall + ttl_s
            if adding:
                values = [v + a for v, a in zip(values, amounts, strict=True)]
                last, expires = max(last, now), wall + ttl_s
            self._decay[key] = (values, since, first, last, expires)
            out[key] = Decayed(tuple(values), first, last)
        return out

    async def delete(self, key: str) -> None:
        self._values.pop(key, None)
        self._counters.pop(key, None)
        self._decay.pop(key, None)

    async def close(self) -> None:
        self._values.clear()
        self._counters.clear()
        self._decay.clear()

    def _tick(self) -> None:
        """Every ``_SWEEP_EVERY`` operations, forget what has expired."""
        self._ops += 1
        if self._ops % _SWEEP_EVERY:
            return
        wall = time.time()
        for key in [k for k, (_, exp) in self._values.items() if exp is not None and exp <= wall]:
            del self._values[key]
        for key in [k for k, row in self._decay.items() if row[4] <= wall]:
            del self._decay[key]
        for key, buckets in list(self._counters.items()):
            for bucket in [b for b, (_, exp) in buckets.items() if exp <= self._now]:
                del buckets[bucket]
            if not buckets:
                del self._counters[key]
