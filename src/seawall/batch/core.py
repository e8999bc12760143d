"""What one batch scan is made of: its limits, the record of a message, and a cohort of
messages read and scanned together (``Engine.scan_many``); the engine of a scan that reads
the state and learns nothing.  :mod:`seawall.batch` runs them in order, here or in worker
processes (:mod:`seawall.batch.workers`).
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Iterator, Sequence

import msgspec

from seawall.campaigns.frozen import FrozenTracker
from seawall.config import Config
from seawall.engine import Engine, build_engine
from seawall.message import Envelope
from seawall.message.sniff import kind_of
from seawall.policy.model import Verdict
from seawall.serve import tracker as campaign_tracker
from seawall.sources import Unit
from seawall.store import Store, open_store
from seawall.store.overlay import Overlay

log = logging.getLogger("seawall.scan")

BATCH = 16  # messages per batch sent to a worker
# Messages scanned together, stage by stage (Engine.scan_many): a cohort of 16 spent 13-22%
# less CPU in the scan's stages than the same messages one by one (docs/benchmarks.md).
COHORT = 16
COHORT_BYTES = 4 << 20  # and at most this much raw mail (one message always fits)
# Messages in flight per worker.  Little's law asks for rate x wait (300 msg/s x 0.1 s =
# 30) on average, but answers come in bursts and a batch returns with its slowest message:
# with 64, a worker behind a 100 ms resolver still fell idle and scanned 13-30% slower than
# without lists; with 256, a median 7% (docs/benchmarks.md).
WINDOW = 256
WINDOW_BYTES = 64 << 20  # and at most this much raw mail in flight (one message always fits)
DEPTH = 20  # batches queued per worker (DEPTH * BATCH >= WINDOW keeps the window full)
NOT_MAIL = "DEFECT_NOT_MAIL"
BATCH_IO_TIMEOUT_S = 30.0  # the engine's I/O budget in a batch scan, at least (_for_batch)
# How long a campaign copy's answer may wait for its campaign's first judgements in a batch
# scan, at least (_for_batch; off stays off).  A copy's judgement comes back once the CPU
# work of the WINDOW messages ahead of it is done: up to 1.7 s at p99 on a loaded 2-core
# host, past the live default of 1 s (docs/benchmarks.md, "Verdicts and scan order").
BATCH_HOLD_S = 10.0
# Objects allocated, less those freed, between two young collections while a scan runs.
# Nearly all of a message's objects go by reference count when it is done: collections
# over whole scans of the SpamAssassin test half found no cycle at all, and at Python's 700
# each worker ran 120-130 young collections (and 11 older ones) for 4% of its CPU; at this
# threshold 4-5 young ones for a fifth of that (docs/benchmarks.md, "Throughput").
SCAN_GC_YOUNG = 10_000


class Record(msgspec.Struct, frozen=True, gc=False):
    """One scanned message, as ``seawall scan --json`` prints it."""

    path: str
    score: float
    required: float
    action: str
    symbols: dict[str, float]
    options: dict[str, list[str]]
    language: str | None
    campaign: str | None
    elapsed_ms: float
    size: int


def _failed(engine: Engine, unit: Unit, symbol: str, why: str) -> Record:
    return Record(
        path=unit.path,
        score=0.0,
        required=engine.scores.required,
        action="soft reject",
        symbols={symbol: 0.0},
        options={symbol: [why]},
        language=None,
        campaign=None,
        elapsed_ms=0.0,
        size=0,
    )


async def scan_unit(engine: Engine, unit: Unit) -> Record:
    """Read and scan one message; never raises (a failure is a "soft reject" record)."""
    try:
        raw = unit.read()
    except OSError as exc:
        return _failed(engine, unit, "READ_ERROR", exc.strerror or str(exc))
    try:
        scan = await engine.scan_message(Envelope(), raw)
    except Exception as exc:
        log.exception("scanning %s failed", unit.path)
        return _failed(engine, unit, "SCAN_FAILED", f"{type(exc).__name__}: {exc}")
    return _record(unit, raw, scan.verdict)


async def scan_cohort(engine: Engine, units: Sequence[Unit]) -> list[Record]:
    """Read and scan ``units`` together, stage by stage (:meth:`Engine.scan_many`), a
    record for each in order; never raises for one message's failure (its record is a
    "soft reject", as with :func:`scan_unit`)."""
    raws: list[bytes] = []
    records: list[Record | None] = []
    for unit in units:
        try:
            raws.append(unit.read())
            records.append(None)
        except OSError as exc:
            records.append(_failed(engine, unit, "READ_ERROR", exc.strerror or str(exc)))
    scans = iter(await engine.scan_many(raws) if raws else ())
    read = iter(raws)
    out: list[Record] = []
    for unit, record in zip(units, records, strict=True):
        if record is None:
            raw, scan = next(read), next(scans)
            if isinstance(scan, Exception):
                log.error("scanning %s failed", unit.path, exc_info=scan)
                why = f"{type(scan).__name__}: {scan}"
                record = _failed(engine, unit, "SCAN_FAILED", why)
            elif isinstance(scan, BaseException):
                raise scan
            else:
                record = _record(unit, raw, scan.verdict)
        out.append(record)
    return out


def cohorts(units: Sequence[Unit], sizes: Sequence[int]) -> Iterator[tuple[list[Unit], int]]:
    """``units`` cut into cohorts scanned together: ``COHORT`` messages and
    ``COHORT_BYTES`` at most (one message always fits), with their size in bytes."""
    group: list[Unit] = []
    held = 0
    for unit, size in zip(units, sizes, strict=True):
        if group and (len(group) >= COHORT or held + size > COHORT_BYTES):
            yield group, held
            group, held = [], 0
        group.append(unit)
        held += size
    if group:
        yield group, held


@contextlib.contextmanager
def scan_gc() -> Iterator[None]:
    """For a scan in this process: what start-up loaded is frozen (no collection walks it
    again, and a forked worker leaves its pages shared) and young collections run every
    ``SCAN_GC_YOUNG`` objects; both undone at the end."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(threshold[0], SCAN_GC_YOUNG), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _record(unit: Unit, raw: bytes, verdict: Verdict) -> Record:
    record = to_record(unit.path, verdict, len(raw))
    if NOT_MAIL in record.symbols:  # what it is instead: "xz archive", "ELF binary", ...
        record = msgspec.structs.replace(
            record, options={**record.options, NOT_MAIL: [kind_of(raw)]}
        )
    return record


def to_record(path: str, verdict: Verdict, size: int) -> Record:
    return Record(
        path=path,
        score=verdict.score,
        required=verdict.required,
        action=verdict.action.value,
        symbols={name: s.score for name, s in verdict.symbols.items()},
        options={name: list(s.options) for name, s in verdict.symbols.items() if s.options},
        language=verdict.language,
        campaign=verdict.campaign,
        elapsed_ms=verdict.elapsed_ms,
        size=size,
    )


def _for_batch(config: Config) -> Config:
    """``config`` with the I/O budget and the campaign hold a batch scan needs.

    No client waits on a batch: the budget only guards against a peer that hangs, and each
    network detector keeps its own bound below ``engine.io_timeout_s`` (the DNS lists'
    wait, clamd's timeout).  What the engine's deadline would cut in a scan is the wait
    for a local peer (the campaign tracker, the store) behind the CPU work of the
    ``WINDOW`` messages in flight: on a loaded machine, that took the campaign and
    reputation symbols from some messages and not others, run to run.  The campaign hold
    (``detectors.campaigns.hold_s``) waits behind the same work, so a scan's is longer too.
    """
    engine = config.engine
    if engine.io_timeout_s < BATCH_IO_TIMEOUT_S:
        engine = msgspec.structs.replace(engine, io_timeout_s=BATCH_IO_TIMEOUT_S)
    campaigns = config.detectors.campaigns
    if 0 < campaigns.hold_s < BATCH_HOLD_S:
        campaigns = msgspec.structs.replace(
            campaigns, hold_s=min(BATCH_HOLD_S, engine.io_timeout_s / 2)
        )
    if engine is config.engine and campaigns is config.detectors.campaigns:
        return config
    detectors = msgspec.structs.replace(config.detectors, campaigns=campaigns)
    return msgspec.structs.replace(config, engine=engine, detectors=detectors)


def _frozen_engine(config: Config) -> Engine:
    """An engine that reads the state and learns nothing (each forked worker its copy)."""
    client = None
    if config.detectors.campaigns.enabled:
        tracker = campaign_tracker.load(config)
        tracker.events = None
        client = FrozenTracker(tracker)
    engine = build_engine(config, tracker=client, store=_overlay(config))
    engine.freeze()
    return engine


def _overlay(config: Config, own: Store | None = None) -> Overlay:
    """The state's store read through, this scan's own counts kept in memory (or in
    ``own``)."""
    return Overlay(lambda: open_store(config), own)
