"""/metrics and the verdict history of a real ``seawall serve`` with two workers."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.seawall_proc import Seawall

from seawall.config import HistorySettings
from seawall.store.verdicts import Search
from seawall.store.verdicts_sqlite import SqliteVerdicts

MESSAGES = 40


def message(i: int) -> bytes:
    return (
        f"From: Alice <alice{i}@sender.example>\r\nTo: bob@customer.example\r\n"
        f"Subject: note {i}\r\nMessage-ID: <note-{i}@sender.example>\r\n"
        f"Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n\r\nSee you at {i} o'clock.\r\n"
    ).encode()


def checkv2(sw: Seawall, i: int) -> None:
    headers = {
        "Queue-Id": f"Q{i:04d}",
        "IP": f"198.51.100.{i % 250 + 1}",
        "From": f"alice{i}@sender.example",
        "Rcpt": "bob@customer.example",
        "Connection": "close",  # a new connection each time: both workers get some
    }
    req = urllib.request.Request(sw.url("/checkv2"), data=message(i), headers=headers)
    with urllib.request.urlopen(req, timeout=60) as resp:
        assert resp.status == 200


def scrape(sw: Seawall) -> dict[str, float]:
    """Every sample of /metrics: ``name{labels}`` -> value."""
    with urllib.request.urlopen(sw.url("/metrics"), timeout=30) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def total(samples: dict[str, float], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    out = 0.0
    for key, value in samples.items():
        base, _, rest = key.partition("{")
        if base != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if all(have.get(k) == v for k, v in labels.items()):
            out += value
    return out


def wait_for(check, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


@pytest.fixture
def seawall(tmp_path: Path) -> Iterator[Seawall]:
    sw = Seawall(
        tmp_path / "sw", tmp_path / "state", workers=2, extra="[serve.history]\nflush_s = 0.2"
    )
    sw.write_config()
    sw.start()
    try:
        yield sw
    finally:
        sw.stop()


def test_metrics_sum_both_workers_and_history_records(seawall: Seawall) -> None:
    for i in range(MESSAGES):
        checkv2(seawall, i)
    prom_dir = seawall.state / "prometheus"
    # Both workers scanned some: each wrote its own counter file.
    writers = wait_for(lambda: {p.name for p in prom_dir.glob("counter_*.db")})
    assert len(writers) == 2, writers

    def counted() -> dict[str, float] | None:
        samples = scrape(seawall)
        return samples if total(samples, "seawall_messages_total") == MESSAGES else None

    samples = wait_for(counted)
    assert samples, scrape(seawall)
    assert total(samples, "seawall_messages_total", frontend="http") == MESSAGES
    assert total(samples, "seawall_scan_seconds_count", frontend="http") == MESSAGES
    assert total(samples, "seawall_workers") == 2
    assert total(samples, "seawall_campaigns_live") >= 0
    assert total(samples, "seawall_scrape_errors", source="campaigns") == 0
    assert total(samples, "seawall_scrape_errors", source="cases") == 0
    assert 'seawall_cases{state="walled"}' in samples  # every state, 0 when none is in it
    # Every scrape sums the same, whichever worker answers it.
    for _ in range(4):
        assert total(scrape(seawall), "seawall_messages_total") == MESSAGES

    def recorded() -> list:  # type: ignore[type-arg]
        history = SqliteVerdicts.open(seawall.state / "verdicts.sqlite", HistorySettings())

        async def search() -> list:  # type: ignore[type-arg]
            try:
                return await history.search(Search(), limit=1000)
            finally:
                await history.close()

        return asyncio.run(search())

    # Each worker writes its records in batches, off the reply's path: wait for the last.
    def all_recorded() -> list | None:  # type: ignore[type-arg]
        rows = recorded()
        return rows if len(rows) == MESSAGES else None

    found = wait_for(all_recorded) or recorded()
    assert len(found) == MESSAGES
    assert {r.queue_id for r in found} == {f"Q{i:04d}" for i in range(MESSAGES)}
    one = next(r for r in found if r.queue_id == "Q0007")
    assert one.subject == "note 7"
    assert one.frontend == "http"
    assert one.message_id == "<note-7@sender.example>"
    assert one.recipients == ("bob@customer.example",)
    assert one.client_ip == "198.51.100.8"


def test_a_dead_workers_counters_stay_and_its_gauge_goes(seawall: Seawall) -> None:
    for i in range(10):
        checkv2(seawall, i)
    assert wait_for(lambda: total(scrape(seawall), "seawall_messages_total") == 10)
    stat_pids = wait_for(lambda: _worker_pids(seawall) if len(_worker_pids(seawall)) == 2 else None)
    assert stat_pids
    victim = sorted(stat_pids)[0]
    os.kill(victim, signal.SIGKILL)

    def replaced() -> bool:
        pids = _worker_pids(seawall)
        return len(pids) == 2 and victim not in pids

    assert wait_for(replaced)
    samples = wait_for(lambda: (s := scrape(seawall)) and total(s, "seawall_workers") == 2 and s)
    assert samples
    # Messages counted by the dead worker are still in the sum.
    assert total(samples, "seawall_messages_total") == 10


def _worker_pids(sw: Seawall) -> set[int]:
    """The workers alive now, as their "worker N serving" log lines name them."""
    import psutil

    pids = {int(p) for p in re.findall(r"worker (\d+) serving", sw.log())}
    alive = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.add(pid)
        except psutil.Error:
            pass
    return alive


def test_history_on_redis(tmp_path: Path, redis_url: str) -> None:
    """With the state on Redis, every worker writes the history there, searchable."""
    sw = Seawall(
        tmp_path / "sw",
        tmp_path / "state",
        workers=2,
        shared=redis_url,
        extra="[serve.history]\nflush_s = 0.2",
    )
    sw.write_config()
    sw.start()
    try:
        for i in range(12):
            checkv2(sw, i)
    finally:
        sw.stop()  # the workers write what they hold as they stop

    from seawall.store.redis import RedisStore
    from seawall.store.verdicts_redis import RedisVerdicts

    async def recorded() -> tuple[list, list]:  # type: ignore[type-arg]
        history = RedisVerdicts(RedisStore.from_url(redis_url), HistorySettings())
        try:
            found = await history.search(Search(), limit=100)
            minutes = await history.minutes(time.time() - 600, time.time())
            return found, minutes
        finally:
            await history.close()

    found, minutes = asyncio.run(recorded())
    assert sorted(r.queue_id for r in found) == [f"Q{i:04d}" for i in range(12)]
    assert sum(sum(counts.values()) for _, counts in minutes) == 12
    assert not (tmp_path / "state" / "verdicts.sqlite").exists()
