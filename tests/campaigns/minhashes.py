"""Made-up MinHash signatures for the tracker's tests: a campaign's own, and its copies."""

from __future__ import annotations

import numpy as np

from seawall.campaigns import Fingerprint
from seawall.campaigns.fingerprint import PERMUTATIONS


def signature(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 2**16, PERMUTATIONS).astype(np.uint16)


def copy_of(sig: np.ndarray, rng: np.random.Generator) -> Fingerprint:
    """A copy of ``sig`` with a fifth of its slots changed (about 0.8 alike)."""
    out = sig.copy()
    slots = rng.choice(PERMUTATIONS, PERMUTATIONS // 5, replace=False)
    out[slots] = rng.integers(0, 2**16, slots.size)
    return Fingerprint.from_minhash(out, tokens=100)
