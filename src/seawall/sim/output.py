"""Where a run goes: .eml files with their envelopes, an MTA, or /checkv2; and the truth file.

``run`` is what ``seawall simulate`` does; the writers are usable on their own.
"""

from __future__ import annotations

import bisect
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from seawall.errors import ConfigError
from seawall.sim.model import SimMessage, SimSettings
from seawall.sim.radius import write_radius_detail
from seawall.sim.replay import Outcome, ReplayClock, ReplayStats, Transport, replay
from seawall.sim.traffic import plan_traffic, render
from seawall.sim.world import build_world

_WINDOW_S = 600.0  # rates are measured over ten simulated minutes
_LEAD_S = 0.5  # wall seconds between setting a replay's clock and its first message


def envelope_record(name: str, message: SimMessage) -> dict[str, Any]:
    e = message.envelope
    return {
        "file": name,
        "at": message.at,
        "client_ip": e.client_ip,
        "helo": e.helo,
        "mail_from": e.mail_from,
        "rcpts": list(e.rcpts),
        "hostname": e.hostname,
        "queue_id": e.queue_id,
        "user": e.user,
    }


class TruthWriter:
    """One JSON line per message, in run order even when outcomes arrive out of order."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.waiting: dict[int, str] = {}
        self.next = 0

    def write(self, n: int, message: SimMessage, extra: dict[str, Any] | None = None) -> None:
        record = {"n": n, **asdict(message.truth), **(extra or {})}
        self.waiting[n] = json.dumps(record, ensure_ascii=False)
        while self.next in self.waiting:
            self.stream.write(self.waiting.pop(self.next) + "\n")
            self.next += 1


@dataclass(slots=True)
class Tally:
    """Counts by kind, campaign and outcome, and the peak rates (per 10-minute window)."""

    kinds: Counter[str] = field(default_factory=Counter)
    campaigns: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    times: dict[str, list[float]] = field(default_factory=dict)

    def add(self, message: SimMessage) -> None:
        truth = message.truth
        self.kinds[truth.kind] += 1
        self.times.setdefault("all", []).append(truth.at)
        if truth.campaign is not None:
            self.campaigns[truth.campaign] += 1
            self.times.setdefault(truth.campaign, []).append(truth.at)

    def peak_per_hour(self, key: str = "all") -> int:
        """The busiest ten minutes of ``key`` ("all" or a campaign), as messages per hour."""
        times = sorted(self.times.get(key, ()))
        best = max(
            (bisect.bisect_left(times, t + _WINDOW_S) - i for i, t in enumerate(times)), default=0
        )
        return round(best * 3600.0 / _WINDOW_S)


@dataclass(frozen=True, slots=True)
class RunReport:
    tally: Tally
    seconds: float
    radius_records: int | None = None
    replay: ReplayStats | None = None
    clock: ReplayClock | None = None

    def lines(self) -> list[str]:
        t = self.tally
        total = sum(t.kinds.values())
        out = [
            f"simulated {total} messages in {self.seconds:.1f}s: "
            + ", ".join(f"{k} {n}" for k, n in sorted(t.kinds.items())),
            f"peak rate {t.peak_per_hour()} msg/h over 10 minutes (all mail)",
        ]
        for name, n in sorted(t.campaigns.items()):
            out.append(f"  {name:<16} {n:6d} messages, peak {t.peak_per_hour(name)} msg/h")
        if t.outcomes:
            out.append("outcomes: " + ", ".join(f"{k} {n}" for k, n in t.outcomes.most_common()))
        if self.replay is not None:
            out.append(
                f"sent in {self.replay.seconds:.1f}s with {self.replay.attempts} attempts; "
                f"at worst {self.replay.max_lag_s:.1f}s behind schedule"
            )
        if self.radius_records is not None:
            live = " live, in replay wall time" if self.clock is not None else ""
            out.append(f"wrote {self.radius_records} RADIUS accounting records{live}")
        if self.clock is not None:
            c = self.clock
            out.append(f"replay clock: simulated {c.base:.3f} was wall {c.wall0:.3f}, x{c.speed:g}")
        return out


def transport_for(url: str) -> Transport:
    """The transport for ``smtp://host:port`` or ``http://host:port``; ConfigError otherwise."""
    from seawall.sim.checkv2 import CheckV2Transport
    from seawall.sim.smtp import SmtpTransport

    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("smtp", "http") or not parts.hostname or port == -1:
        raise ConfigError(f"--to {url!r}: give smtp://host:port or http://host:port")
    if parts.scheme == "smtp":
        return SmtpTransport(parts.hostname, port or 25)
    return CheckV2Transport(parts.hostname, port or 80, path=parts.path or "/checkv2")


def _counted(messages: Iterator[SimMessage], tally: Tally) -> Iterator[SimMessage]:
    for message in messages:
        tally.add(message)
        yield message


def run(
    settings: SimSettings,
    *,
    out: str | Path | None = None,
    to: str | None = None,
    truth: str | Path | None = None,
    radius: str | Path | None = None,
    workers: int = 8,
    progress: IO[str] | None = None,
) -> RunReport:
    """Simulate ``settings`` into a folder (``out``) or to a server (``to``), or just count.

    With ``to``, ``radius`` is written live as the replay goes, in its wall time (see
    :mod:`seawall.sim.radius_live`); without, at the end in simulated time.
    """
    t0 = time.perf_counter()
    transport = transport_for(to) if to else None
    world = build_world(settings)
    plan = plan_traffic(settings, world)
    tally = Tally()
    messages = _counted((render(plan, event) for event in plan.events), tally)
    folder = Path(out) if out is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    if truth is not None:
        Path(truth).parent.mkdir(parents=True, exist_ok=True)
    truth_stream = open(truth, "w", encoding="utf-8") if truth is not None else None  # noqa: SIM115
    writer = TruthWriter(truth_stream) if truth_stream is not None else None
    stats = clock = live = None
    records: int | None = None
    try:
        if transport is not None:
            base = plan.events[0].at if plan.events else settings.start
            clock = ReplayClock(base, time.time() + _LEAD_S, settings.speed)
            if radius is not None:
                from seawall.sim.radius_live import LiveDetail

                live = LiveDetail(world, radius, clock)
                live.start()
            stats = _send(messages, transport, settings, writer, tally, workers, progress, clock)
        else:
            _write(messages, folder, writer, len(plan.events))
    finally:
        if truth_stream is not None:
            truth_stream.close()
        if live is not None:
            records = live.close()
    if radius is not None and live is None:
        records = write_radius_detail(world, radius)
    return RunReport(tally, time.perf_counter() - t0, records, stats, clock)


def _write(
    messages: Iterator[SimMessage], folder: Path | None, writer: TruthWriter | None, total: int
) -> None:
    width = max(6, len(str(total)))
    envelopes = (folder / "envelopes.jsonl").open("w", encoding="utf-8") if folder else None
    try:
        for n, message in enumerate(messages):
            name = f"{n + 1:0{width}d}.eml"
            if folder is not None and envelopes is not None:
                (folder / name).write_bytes(message.raw)
                envelopes.write(json.dumps(envelope_record(name, message)) + "\n")
            if writer is not None:
                writer.write(n, message, {"file": name} if folder else None)
    finally:
        if envelopes is not None:
            envelopes.close()


def _send(
    messages: Iterator[SimMessage],
    transport: Transport,
    settings: SimSettings,
    writer: TruthWriter | None,
    tally: Tally,
    workers: int,
    progress: IO[str] | None,
    clock: ReplayClock,
) -> ReplayStats:
    last = [time.monotonic()]

    def record(n: int, message: SimMessage, outcome: Outcome) -> None:
        tally.outcomes[outcome.status] += 1
        if outcome.verdict is not None:
            tally.outcomes[f"action {outcome.verdict.get('action')}"] += 1
        if writer is not None:
            extra: dict[str, Any] = {
                "outcome": outcome.as_dict(),
                "wall_at": round(clock.wall(message.at), 3),  # when it was due to be sent
            }
            if outcome.verdict is not None:
                extra["verdict"] = outcome.verdict
            writer.write(n, message, extra)
        if progress is not None and time.monotonic() - last[0] >= 5.0:
            last[0] = time.monotonic()
            done = sum(v for k, v in tally.outcomes.items() if not k.startswith("action "))
            print(f"simulate: {done} messages done", file=progress, flush=True)

    try:
        return replay(
            messages, transport, record, speed=settings.speed, workers=workers, clock=clock
        )
    finally:
        transport.close()


def default_progress() -> IO[str] | None:
    return sys.stderr if sys.stderr.isatty() else None
