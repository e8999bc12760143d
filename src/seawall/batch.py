"""Scan many messages with a pool of worker processes, each with its own Engine.

Used by ``seawall scan``, ``eval`` and ``demo``.  Results come back in input
order.  A message that cannot even be read (a vanished file) is still reported,
with the action "soft reject" and the symbol ``READ_ERROR``: nothing is dropped.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Iterator, Sequence

import msgspec

from seawall.campaigns import wire as campaign_wire
from seawall.campaigns.client import LocalTracker
from seawall.config import Config
from seawall.engine import Engine, StageTimes, build_engine
from seawall.message import Envelope
from seawall.policy.model import Verdict
from seawall.sources import Unit

BATCH = 16


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


def scan_unit(engine: Engine, unit: Unit) -> Record:
    try:
        raw = unit.read()
    except OSError as exc:
        return Record(
            path=unit.path,
            score=0.0,
            required=engine.scores.required,
            action="soft reject",
            symbols={"READ_ERROR": 0.0},
            options={"READ_ERROR": [exc.strerror or str(exc)]},
            language=None,
            campaign=None,
            elapsed_ms=0.0,
            size=0,
        )
    return to_record(unit.path, engine.scan_sync(Envelope(), raw).verdict, len(raw))


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


_engine: Engine | None = None


def _init_worker(config: Config) -> None:
    global _engine
    if _engine is None:  # spawn start method: nothing was inherited
        _engine = build_engine(config)


def _scan_batch(units: Sequence[Unit]) -> tuple[bytes, StageTimes]:
    """Scan in a worker; the records travel as one MessagePack blob (far cheaper for the
    parent to decode than a pickle of each record)."""
    assert _engine is not None, "worker not initialised"
    before = StageTimes(dict(_engine.times.seconds), _engine.times.messages)
    records = [scan_unit(_engine, unit) for unit in units]
    _engine.flush_sync()  # the batch's reputation counts, before the worker may exit
    delta = StageTimes(
        {k: v - before.seconds.get(k, 0.0) for k, v in _engine.times.seconds.items()},
        _engine.times.messages - before.messages,
    )
    return _ENCODER.encode(records), delta


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(list[Record])


def _batches(units: Sequence[Unit]) -> Iterator[Sequence[Unit]]:
    for i in range(0, len(units), BATCH):
        yield units[i : i + BATCH]


def scan_units(
    units: Sequence[Unit], config: Config, *, workers: int, times: StageTimes | None = None
) -> Iterator[Record]:
    """Scan ``units`` in order with ``workers`` processes (1: in this process).

    Campaigns are tracked across the whole run (by a tracker process when there are
    several workers) and saved into the state dir at the end.
    """
    campaigns = config.detectors.campaigns.enabled
    if workers <= 1 or len(units) <= BATCH:
        tracker = campaign_wire.load(config) if campaigns else None
        engine = build_engine(config, tracker=LocalTracker(tracker) if tracker else None)
        try:
            for unit in units:
                yield scan_unit(engine, unit)
        finally:
            if times is not None:
                times.merge(engine.times)
            engine.close()
            if tracker is not None:
                campaign_wire.save(config, tracker)
        return
    with contextlib.ExitStack() as stack:
        remote = None
        if campaigns:
            stack.enter_context(campaign_wire.tracker_process(config))
            remote = campaign_wire.RemoteTracker(campaign_wire.address(config))
        yield from _scan_forked(units, config, workers, times, build_engine(config, tracker=remote))


def _scan_forked(
    units: Sequence[Unit],
    config: Config,
    workers: int,
    times: StageTimes | None,
    engine: Engine,
) -> Iterator[Record]:
    global _engine
    try:
        # fork: the workers inherit the loaded engine (language model, classifier weights)
        # and start in milliseconds; its pages stay shared until written.
        method = "fork" if hasattr(os, "fork") else "spawn"
        _engine = engine if method == "fork" else None
        context = multiprocessing.get_context(method)
        with context.Pool(workers, initializer=_init_worker, initargs=(config,)) as pool:
            for blob, delta in pool.imap(_scan_batch, _batches(units)):
                if times is not None:
                    times.merge(delta)
                yield from _DECODER.decode(blob)
    finally:
        _engine = None
        engine.close()
