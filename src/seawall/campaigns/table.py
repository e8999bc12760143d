"""The index's storage: slot numbers handed out from a free stack, and the band table that
files representatives under their band keys.  Both are numpy arrays with no Python object
per cluster; ``index.py`` decides what goes in them.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

ENTRIES = 16  # entries per bucket of the band table
_U32 = np.uint64(32)
_LOW16 = np.uint64(0xFFFF)

Ints = NDArray[np.intp]
Place = tuple[Ints, NDArray[np.uint16]]  # the buckets and tags of some band keys


class Slots:
    """Slot numbers ``0 .. capacity - 1``, handed out and taken back through a free stack."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.free = np.arange(capacity - 1, -1, -1, dtype=np.int32)
        self.top = capacity

    @property
    def used(self) -> int:
        return self.capacity - self.top

    def take(self) -> int:
        self.top -= 1
        return int(self.free[self.top])

    def give(self, slots: NDArray[np.int32] | Ints) -> None:
        self.free[self.top : self.top + slots.size] = slots
        self.top += slots.size

    def reserve(self, count: int) -> None:
        """Mark slots ``0 .. count - 1`` taken and all others free."""
        self.top = self.capacity - count
        self.free[: self.top] = np.arange(self.capacity - 1, count - 1, -1, dtype=np.int32)

    def grow(self, capacity: int) -> None:
        fresh = np.arange(capacity - 1, self.capacity - 1, -1, dtype=np.int32)
        self.free = np.concatenate((fresh, self.free[: self.top]))
        self.top = self.free.size
        self.free = np.concatenate((self.free, np.zeros(capacity - self.top, dtype=np.int32)))
        self.capacity = capacity


class BandTable:
    """Band key to representative: buckets of ``ENTRIES`` entries, each a ring buffer.

    A key's top 32 bits pick its bucket and 16 other bits are kept as a tag: a false match
    costs one signature comparison, never a wrong answer.  A new entry overwrites the
    oldest of its bucket, so a hot key (boilerplate shared by many messages) cannot grow
    without bound, and entries left behind by a replaced representative age out by
    themselves; evicted clusters remove theirs.
    """

    def __init__(self, buckets: int) -> None:
        self.buckets = buckets
        self.tags = np.zeros((buckets, ENTRIES), dtype=np.uint16)
        self.reps = np.full((buckets, ENTRIES), -1, dtype=np.int32)
        self.head = np.zeros(buckets, dtype=np.uint8)  # the next entry to overwrite
        self.written = 0  # entries ever written: a representative's keys age by it

    @property
    def capacity(self) -> int:
        return self.reps.size

    @property
    def nbytes(self) -> int:
        return self.tags.nbytes + self.reps.nbytes + self.head.nbytes

    def locate(self, keys: NDArray[np.uint64]) -> Place:
        # Multiply-shift maps the top 32 bits onto any number of buckets (Lemire 2019); the
        # tag is the low 16 bits, which band keys fold from the top half.
        buckets = (((keys >> _U32) * np.uint64(self.buckets)) >> _U32).astype(np.intp)
        return buckets, (keys & _LOW16).astype(np.uint16)

    def find(self, place: Place) -> NDArray[np.int32]:
        """Representatives filed under any of the located keys, once per shared key."""
        buckets, tags = place
        found: NDArray[np.int32] = self.reps[buckets][self.tags[buckets] == tags[:, None]]
        return found[found >= 0]

    def add(self, place: Place, rep: int) -> None:
        """File ``rep`` under each of its located keys."""
        buckets, tags = place
        column = self.head[buckets]
        self.tags[buckets, column] = tags
        self.reps[buckets, column] = rep
        self.head[buckets] = (column + 1) % ENTRIES
        self.written += buckets.size
        lost = self.tags[buckets, column] != tags
        if lost.any():  # two keys in one bucket: the second took the first one's entry
            self.add_many((buckets[lost], tags[lost]), np.full(int(lost.sum()), rep, np.int32))

    def add_many(self, place: Place, reps: NDArray[np.int32]) -> None:
        """File each ``reps[i]`` under the ``i``-th located key, however many share a bucket."""
        order = np.argsort(place[0], kind="stable")
        buckets, tags, reps = place[0][order], place[1][order], reps[order]
        # The i-th key bound for a bucket goes i entries past its head; past ENTRIES of
        # them, the later ones win.
        rank = np.arange(buckets.size) - np.searchsorted(buckets, buckets)
        column = (self.head[buckets] + rank) % ENTRIES
        self.tags[buckets, column] = tags
        self.reps[buckets, column] = reps
        last = np.append(buckets[1:] != buckets[:-1], True)
        self.head[buckets[last]] = (column[last] + 1) % ENTRIES
        self.written += buckets.size

    def remove(self, keys: NDArray[np.uint64], reps: NDArray[np.int32]) -> None:
        """Drop the entries filing ``reps[i]`` under ``keys[i]`` (gone already is fine)."""
        buckets, tags = self.locate(keys)
        hit = (self.reps[buckets] == reps[:, None]) & (self.tags[buckets] == tags[:, None])
        rows, columns = np.nonzero(hit)
        self.reps[buckets[rows], columns] = -1

    def entries(self) -> int:
        return int(np.count_nonzero(self.reps >= 0))
