"""The recorder: verdicts into the history and the Prometheus counters, by front end."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from seawall.config import HistorySettings
from seawall.message import Envelope
from seawall.metrics import prom
from seawall.metrics.recorder import FRONTEND, Recorder, TaggedApp, header_section, tagged
from seawall.policy.model import Action, SymbolResult, Verdict
from seawall.store.verdicts import Search
from seawall.store.verdicts_sqlite import SqliteVerdicts

ROOT = Path(__file__).resolve().parents[2]
RAW = b"From: a@b.example\r\nSubject: hello there\r\nMessage-ID: <r1@b.example>\r\n\r\nbody\r\n"

# prometheus-client keeps one multiprocess folder per process: one for this module's tests.
_DIR: list[Path] = []


@pytest.fixture(scope="module")
def prom_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not _DIR:
        path = tmp_path_factory.mktemp("prometheus")
        prom.prepare_dir(path)
        _DIR.append(path)
    return _DIR[0]


@pytest.fixture
async def history(tmp_path: Path) -> AsyncIterator[SqliteVerdicts]:
    verdicts = SqliteVerdicts.open(tmp_path / "verdicts.sqlite", HistorySettings())
    yield verdicts
    await verdicts.close()


def verdict(action: Action, *symbols: tuple[str, tuple[str, ...]]) -> Verdict:
    return Verdict(
        score=1.0,
        required=15.0,
        action=action,
        symbols={name: SymbolResult(name, 1.0, options, "") for name, options in symbols},
        language=None,
        elapsed_ms=2.0,
    )


def samples(path: Path) -> dict[str, float]:
    text = prom.exposition(path).decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def value(all_samples: dict[str, float], name: str, **labels: str) -> float:
    total = 0.0
    for key, v in all_samples.items():
        base, _, rest = key.partition("{")
        have = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if base == name and all(have.get(k) == want for k, want in labels.items()):
            total += v
    return total


async def test_counts_and_history_by_front_end(prom_dir: Path, history: SqliteVerdicts) -> None:
    metrics = prom.Metrics()
    recorder = Recorder(history, metrics, HistorySettings())
    before = samples(prom_dir)
    env = Envelope(client_ip="192.0.2.9", mail_from="a@b.example", rcpts=("u@example.net",))

    async def milter_connection(reader: object, writer: object) -> None:
        recorder.observe(env, RAW, verdict(Action.REJECT, ("CLAMAV_VIRUS", ("Worm.Sober",))), 5)

    # Each connection and request is a task of its own, as in the worker.
    await asyncio.create_task(tagged("milter", milter_connection)(None, None))
    assert FRONTEND.get() == "other"  # set in the connection's context only

    async def app(scope: object, receive: object, send: object) -> None:
        recorder.observe(env, RAW, verdict(Action.NO_ACTION, ("DETECTOR_TIMEOUT", ("dnsbl",))), 3)

    await asyncio.create_task(TaggedApp(app)({}, None, None))
    recorder.observe(env, RAW, verdict(Action.ADD_HEADER, ("DETECTOR_FAILED", ("clamav",))), 1)
    await recorder.flush()

    after = samples(prom_dir)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("seawall_messages_total", action="reject", frontend="milter") == 1
    assert delta("seawall_messages_total", action="no action", frontend="http") == 1
    assert delta("seawall_messages_total", action="add header", frontend="other") == 1
    assert delta("seawall_scan_seconds_count", frontend="milter") == 1
    assert delta("seawall_scan_seconds_sum", frontend="milter") == pytest.approx(0.005)
    assert delta("seawall_infected_messages_total") == 1
    assert delta("seawall_symbol_hits_total", symbol="CLAMAV_VIRUS") == 1
    assert delta("seawall_detector_timeouts_total", detector="dnsbl") == 1
    assert delta("seawall_detector_failures_total", detector="clamav") == 1
    assert value(after, "seawall_workers") >= 1

    rows = await history.search(Search())
    assert [(r.frontend, r.action, r.subject) for r in rows] == [
        ("other", "add header", "hello there"),
        ("http", "no action", "hello there"),
        ("milter", "reject", "hello there"),
    ]
    assert rows[-1].infected
    assert rows[-1].size == len(RAW)


async def test_a_failing_history_keeps_rows_then_drops_them_at_close(
    prom_dir: Path, tmp_path: Path
) -> None:
    broken = SqliteVerdicts.open(tmp_path / "v.sqlite", HistorySettings())
    await broken.close()  # every write now fails with a StoreError
    recorder = Recorder(broken, prom.Metrics(), HistorySettings(max_pending=2))
    before = samples(prom_dir)

    def delta(name: str, **labels: str) -> float:
        return value(samples(prom_dir), name, **labels) - value(before, name, **labels)

    env = Envelope(client_ip="192.0.2.9")
    for _ in range(3):  # the third is beyond max_pending
        recorder.observe(env, RAW, verdict(Action.NO_ACTION), 1)
    assert not await recorder.flush()
    assert delta("seawall_history_dropped_total") == 1  # only the one beyond the bound
    assert delta("seawall_messages_total", action="no action") == 2
    assert not await recorder.flush()  # retried: counted once
    assert delta("seawall_messages_total", action="no action") == 2
    await recorder.close(retry_s=0)  # gives up on the two it still holds
    assert delta("seawall_history_dropped_total") == 3
    assert delta("seawall_messages_total", action="no action") == 2


def hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another process's writer, as SQLite sees it: a connection in a write transaction."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    return holder


async def test_a_locked_history_keeps_the_batch_and_writes_it_later(
    prom_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "v.sqlite"
    history = SqliteVerdicts.open(path, HistorySettings(), busy_timeout_s=0.1)
    recorder = Recorder(history, prom.Metrics(), HistorySettings())
    before = samples(prom_dir)

    def delta(name: str, **labels: str) -> float:
        return value(samples(prom_dir), name, **labels) - value(before, name, **labels)

    holder = hold_write_lock(path)
    for i in range(3):
        recorder.observe(Envelope(queue_id=f"L{i}"), RAW, verdict(Action.REJECT), 1)
    assert not await recorder.flush()  # "database is locked" past the busy timeout
    assert recorder.recorded == 0
    assert delta("seawall_messages_total", action="reject") == 3  # counted at once
    recorder.observe(Envelope(queue_id="L3"), RAW, verdict(Action.REJECT), 1)
    holder.execute("ROLLBACK")
    holder.close()
    assert await recorder.flush()
    rows = await history.search(Search())
    assert [r.queue_id for r in rows] == ["L3", "L2", "L1", "L0"]  # in order, none lost
    assert delta("seawall_messages_total", action="reject") == 4  # each counted once
    assert delta("seawall_history_dropped_total") == 0
    await recorder.close()


async def test_the_bounds_cover_the_batch_being_written(prom_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    history = SqliteVerdicts.open(path, HistorySettings(), busy_timeout_s=60)
    recorder = Recorder(history, prom.Metrics(), HistorySettings(max_pending=3))
    before = value(samples(prom_dir), "seawall_history_dropped_total")
    holder = hold_write_lock(path)
    for i in range(2):
        recorder.observe(Envelope(queue_id=f"W{i}"), RAW, verdict(Action.NO_ACTION), 1)
    writing = asyncio.create_task(recorder.flush())
    await asyncio.sleep(0)  # the write has begun: it waits for the lock
    for i in range(2, 5):  # two are being written: room for one more
        recorder.observe(Envelope(queue_id=f"W{i}"), RAW, verdict(Action.NO_ACTION), 1)
    holder.execute("ROLLBACK")
    holder.close()
    assert await writing
    assert await recorder.flush()
    rows = await history.search(Search())
    assert [r.queue_id for r in rows] == ["W2", "W1", "W0"]
    assert value(samples(prom_dir), "seawall_history_dropped_total") - before == 2
    await recorder.close()


async def test_close_retries_a_write_the_lock_delays(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    history = SqliteVerdicts.open(path, HistorySettings(), busy_timeout_s=0.1)
    recorder = Recorder(history, None, HistorySettings())
    holder = hold_write_lock(path)
    recorder.observe(Envelope(queue_id="C1"), RAW, verdict(Action.NO_ACTION), 1)
    loop = asyncio.get_running_loop()
    loop.call_later(0.3, holder.execute, "ROLLBACK")
    await recorder.close(retry_s=120)  # a guard against a hang; the lock goes in 0.3 s
    holder.close()
    reopened = SqliteVerdicts.open(path, HistorySettings())
    try:
        assert [r.queue_id for r in await reopened.search(Search())] == ["C1"]
    finally:
        await reopened.close()


async def test_writes_in_the_background_and_on_close(tmp_path: Path) -> None:
    settings = HistorySettings(flush_s=0.05, keep_messages=True)
    history = SqliteVerdicts.open(tmp_path / "v.sqlite", settings)
    recorder = Recorder(history, None, settings)
    recorder.start()
    recorder.observe(Envelope(queue_id="A1"), RAW, verdict(Action.NO_ACTION), 1)
    for _ in range(200):  # a guard against a hang, not a timing assertion
        if recorder.recorded:
            break
        await asyncio.sleep(0.05)
    assert recorder.recorded == 1
    recorder.observe(Envelope(queue_id="A2"), RAW, verdict(Action.NO_ACTION), 1)
    await recorder.close()  # writes what is left, then closes the history
    reopened = SqliteVerdicts.open(tmp_path / "v.sqlite", HistorySettings(keep_messages=True))
    try:
        rows = await reopened.search(Search())
        assert [r.queue_id for r in rows] == ["A2", "A1"]
        assert await reopened.kept_message(rows[0].id) == RAW
    finally:
        await reopened.close()


def test_the_grafana_dashboard_reads_metrics_seawall_exposes(prom_dir: Path) -> None:
    import json

    from seawall.metrics import routes

    dashboard = json.loads((ROOT / "docs" / "grafana-seawall.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    wanted = {
        re.sub(r"_(total|bucket|sum|count)$", "", n)
        for e in exprs
        for n in re.findall(r"seawall_\w+", e)
    }
    metrics = prom.Metrics()
    exposed = {m._name for m in vars(metrics).values() if hasattr(m, "_name")}
    exposed |= set(re.findall(r"``(seawall_\w+)", routes.__doc__ or ""))
    assert wanted <= exposed, wanted - exposed
    assert {"seawall_messages", "seawall_cases", "seawall_scan_seconds"} <= wanted


async def test_the_queue_holds_header_sections_within_max_pending_bytes(tmp_path: Path) -> None:
    big = RAW + b"x" * 100_000
    header = header_section(big)
    assert header == RAW[: RAW.index(b"\r\n\r\n") + 2]
    history = SqliteVerdicts.open(tmp_path / "v.sqlite", HistorySettings())
    recorder = Recorder(history, None, HistorySettings(max_pending_bytes=2 * len(header)))
    for i in range(3):  # the third is beyond max_pending_bytes
        recorder.observe(Envelope(queue_id=f"B{i}"), big, verdict(Action.NO_ACTION), 1)
    await recorder.flush()
    rows = await history.search(Search())
    assert [(r.queue_id, r.size, r.subject) for r in rows] == [
        ("B1", len(big), "hello there"),
        ("B0", len(big), "hello there"),
    ]
    await history.close()
