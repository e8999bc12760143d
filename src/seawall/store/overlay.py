"""``Overlay``: a store read through to another one, whose writes stay in this process.

``seawall scan`` uses it so that an offline scan reads what ``seawall serve`` has counted
(sender reputation) and counts what it sees within the run, without writing any of it back
into the state that serve uses: every answer is the base store's plus this process's own,
as if the scan ran on a copy of the state.  Exponential decay is linear, so the decaying
counters of the two add up exactly; window counters add up bucket by bucket.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from seawall.store.base import Decayed, Store
from seawall.store.memory import MemoryStore


class Overlay:
    """The base store (opened on first use) read through, with writes kept in memory.

    A key deleted here reads as missing, whatever the base holds.
    """

    def __init__(self, open_base: Callable[[], Store], own: Store | None = None) -> None:
        """``own`` holds the writes: this process's memory, unless given (a scan's workers
        share a throw-away SQLite file, so that each sees what the others counted)."""
        self._open_base = open_base
        self._base: Store | None = None
        self.own: Store = own if own is not None else MemoryStore()
        self._deleted: set[str] = set()

    @property
    def base(self) -> Store:
        if self._base is None:
            self._base = self._open_base()
        return self._base

    async def incr(self, key: str, *, window_s: float, now: float, amount: int = 1) -> int:
        own = await self.own.incr(key, window_s=window_s, now=now, amount=amount)
        if key in self._deleted:
            return own
        return own + await self.base.incr(key, window_s=window_s, now=now, amount=0)

    async def get(self, key: str) -> bytes | None:
        value = await self.own.get(key)
        if value is not None or key in self._deleted:
            return value
        return await self.base.get(key)

    async def put(self, key: str, value: bytes, *, ttl_s: float | None = None) -> None:
        await self.own.put(key, value, ttl_s=ttl_s)

    async def claim(self, key: str, value: bytes, *, ttl_s: float) -> bytes:
        """A lease of this process only: the base's leases are not taken."""
        return await self.own.claim(key, value, ttl_s=ttl_s)

    async def decay(
        self,
        updates: Mapping[str, Sequence[float]],
        *,
        half_life_s: float,
        now: float,
        ttl_s: float,
    ) -> dict[str, Decayed]:
        own = await self.own.decay(updates, half_life_s=half_life_s, now=now, ttl_s=ttl_s)
        reads = {k: [0.0] * len(v) for k, v in updates.items() if k not in self._deleted}
        if not reads:
            return own
        base = await self.base.decay(reads, half_life_s=half_life_s, now=now, ttl_s=ttl_s)
        out = dict(base)
        for key, mine in own.items():
            theirs = base.get(key)
            if theirs is None or len(theirs.values) != len(mine.values):
                out[key] = mine
            else:
                out[key] = Decayed(
                    tuple(a + b for a, b in zip(theirs.values, mine.values, strict=True)),
                    min(theirs.first, mine.first),
                    max(theirs.last, mine.last),
                )
        return out

    async def delete(self, key: str) -> None:
        await self.own.delete(key)
        self._deleted.add(key)

    async def close(self) -> None:
        await self.own.close()
        if self._base is not None:
            await self._base.close()
            self._base = None
