"""Sending-rate curves (a ramp, then a plateau with jitter) and the arrival times they give."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

_BUCKET_S = 60.0  # the rate is held for a minute at a time, jittered per minute
_LOGISTIC_SPAN = 2 * math.log(99)  # a logistic goes from 1% to 99% in this many time units


@dataclass(frozen=True, slots=True)
class RateCurve:
    """Messages per hour over simulated time: zero before ``start``, ramp, plateau, stop.

    >>> curve = RateCurve(start=0.0, stop=3600.0, peak_per_hour=8000, ramp_s=1200.0)
    >>> round(curve.level(600.0)), round(curve.level(1800.0))
    (4000, 7999)
    """

    start: float
    stop: float
    peak_per_hour: float
    ramp_s: float  # from ~1% to ~99% of the peak (logistic) or from 0 to the peak (linear)
    shape: str = "logistic"  # "logistic" | "linear" | "flat"
    jitter: float = 0.0  # each minute's rate is off by up to this fraction

    def level(self, t: float) -> float:
        """The rate at ``t`` before jitter, in messages per hour."""
        if not (self.start <= t < self.stop) or self.peak_per_hour <= 0:
            return 0.0
        if self.shape == "flat" or self.ramp_s <= 0:
            return float(self.peak_per_hour)
        x = (t - self.start) / self.ramp_s
        if self.shape == "linear":
            return self.peak_per_hour * min(1.0, x)
        return self.peak_per_hour / (1.0 + math.exp(-_LOGISTIC_SPAN * (x - 0.5)))

    def arrivals(self, rng: random.Random, limit: int | None = None) -> Iterator[float]:
        """Poisson arrival times under the curve (exact for the piecewise-constant rate).

        The rate is held for each minute (its midpoint's level times that minute's jitter);
        by memorylessness a gap that runs past a minute's end is simply drawn again there.
        """
        t = self.start
        n = 0
        while t < self.stop and (limit is None or n < limit):
            bucket_end = min(
                self.stop, self.start + (1 + (t - self.start) // _BUCKET_S) * _BUCKET_S
            )
            middle = min(self.stop - 1e-9, (t + bucket_end) / 2)
            factor = 1.0 + self.jitter * (2 * rng.random() - 1) if self.jitter else 1.0
            per_s = self.level(middle) * factor / 3600.0
            while True:
                if per_s <= 0:
                    t = bucket_end
                    break
                t += rng.expovariate(per_s)
                if t >= bucket_end:
                    t = bucket_end
                    break
                yield t
                n += 1
                if limit is not None and n >= limit:
                    return
