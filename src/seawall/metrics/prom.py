"""Prometheus metrics of ``seawall serve``, summed over the forked workers.

prometheus-client's multiprocess mode: every worker writes its counters and histograms into
files of its own (``*_<pid>.db``) in one folder named by ``PROMETHEUS_MULTIPROC_DIR``, and a
scrape (:func:`exposition`, in whichever worker answers it) adds up every file there.  The
supervisor empties the folder when it starts (:func:`prepare_dir`), before any worker, and
calls :func:`mark_dead` for each worker it reaps, which drops that worker's live gauges;
its counters stay, so totals never go back when a worker is replaced or a SIGHUP starts a
new generation, as the client's documentation prescribes.

Metric names (counters get ``_total`` in the exposition):

``seawall_messages{action, frontend}``           verdicts given
``seawall_symbol_hits{symbol}``                  verdicts with each symbol
``seawall_infected_messages``                    verdicts with an infected-mail finding
``seawall_scan_seconds{frontend}``               histogram: time to a verdict, queueing
                                                 for a scan slot included
``seawall_detector_timeouts{detector}``          a detector out of time (DETECTOR_TIMEOUT)
``seawall_detector_failures{detector}``          a detector that failed (DETECTOR_FAILED)
``seawall_store_errors{backend}``                failed calls to the state store
``seawall_history_dropped``                      verdicts the history could not take
``seawall_workers``                              live workers (a live-sum gauge)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from seawall.config import Config

ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def metrics_dir(config: Config) -> Path:
    """The folder of the multiprocess files: ``[serve.metrics] dir`` or
    ``<state_dir>/prometheus``."""
    configured = config.serve.metrics.dir
    return Path(configured) if configured else Path(config.state_dir) / "prometheus"


def prepare_dir(path: Path) -> None:
    """Create ``path``, delete the files an earlier run left there, and name it in the
    environment the workers inherit.  Called by the supervisor before any worker starts.

    Raises OSError when the folder cannot be made or emptied.
    """
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.db"):
        old.unlink(missing_ok=True)
    os.environ[ENV] = str(path)


def active_dir() -> Path | None:
    """The folder this process writes its metrics to, when one was prepared."""
    value = os.environ.get(ENV)
    return Path(value) if value else None


def mark_dead(pid: int) -> None:
    """Drop the live gauges of a worker that exited (its counters stay in the sums)."""
    path = active_dir()
    if path is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]


class Metrics:
    """The metrics one worker updates.  Make it in the worker, after the fork, once
    :func:`prepare_dir` has named the folder."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram, values

        # The mode is picked when prometheus_client is first imported; a process that
        # imported it before the folder was named would keep one process's values.
        if not getattr(values.ValueClass, "_multiprocess", False):
            values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        kw: dict[str, Any] = {"registry": None}  # read back by the multiprocess collector
        self.messages = Counter("seawall_messages", "Verdicts given", ["action", "frontend"], **kw)
        self.symbols = Counter("seawall_symbol_hits", "Verdicts with each symbol", ["symbol"], **kw)
        self.infected = Counter(
            "seawall_infected_messages", "Verdicts with an infected-mail finding", **kw
        )
        self.latency = Histogram(
            "seawall_scan_seconds",
            "Seconds to a verdict, waiting for a scan slot included",
            ["frontend"],
            buckets=LATENCY_BUCKETS,
            **kw,
        )
        self.timeouts = Counter(
            "seawall_detector_timeouts", "Detectors out of time", ["detector"], **kw
        )
        self.failures = Counter(
            "seawall_detector_failures", "Detectors that failed", ["detector"], **kw
        )
        self.store_errors = Counter(
            "seawall_store_errors", "Failed calls to the state store", ["backend"], **kw
        )
        self.history_dropped = Counter(
            "seawall_history_dropped",
            "Verdicts the verdict history could not take (queue full, store down)",
            **kw,
        )
        self.workers = Gauge(
            "seawall_workers", "Worker processes serving", multiprocess_mode="livesum", **kw
        )
        self.workers.set(1)
        self._store_errors_seen: dict[str, int] = {}

    def sync_store_errors(self, errors: Mapping[str, int]) -> None:
        """Add what ``errors`` (this process's running totals) gained since the last call."""
        for backend, total in errors.items():
            seen = self._store_errors_seen.get(backend, 0)
            if total > seen:
                self.store_errors.labels(backend).inc(total - seen)
                self._store_errors_seen[backend] = total


class LiveGauge:
    """A gauge read at scrape time (campaigns, cases): its samples as label dicts."""

    def __init__(
        self, name: str, help_text: str, samples: Iterable[tuple[Mapping[str, str], float]]
    ) -> None:
        self.name = name
        self.help_text = help_text
        self.samples = list(samples)


def exposition(path: Path, gauges: Iterable[LiveGauge] = ()) -> bytes:
    """The text exposition of every worker's metrics under ``path``, and ``gauges``.

    Reads every file of the folder: run it on a thread, not the event loop.
    """
    from prometheus_client import CollectorRegistry, generate_latest, multiprocess
    from prometheus_client.core import GaugeMetricFamily, Metric
    from prometheus_client.registry import Collector

    class Fixed(Collector):
        """Metric families computed before the scrape."""

        def __init__(self, families: list[Metric]) -> None:
            self.families = families

        def collect(self) -> Iterable[Metric]:
            return iter(self.families)

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(path))  # type: ignore[no-untyped-call]
    families: list[Metric] = []
    for gauge in gauges:
        labels = sorted({k for sample, _ in gauge.samples for k in sample})
        family = GaugeMetricFamily(gauge.name, gauge.help_text, labels=labels or None)
        for sample, value in gauge.samples:
            if labels:
                family.add_metric([sample.get(k, "") for k in labels], value)
            else:
                family.add_metric([], value)
        families.append(family)
    if families:
        registry.register(Fixed(families))
    return generate_latest(registry)
