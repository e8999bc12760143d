"""Batch scanning: order, nothing lost, DNS waits overlapped, a dead worker is an error."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest
from tests.dnslists.dnsserver import Behaviour, DnsServer

from seawall.batch import (
    BATCH,
    BATCH_HOLD_S,
    BATCH_IO_TIMEOUT_S,
    COHORT,
    COHORT_BYTES,
    DEPTH,
    NOT_MAIL,
    WINDOW,
    WINDOW_BYTES,
    Record,
    _dispatch,
    _for_batch,
    _Window,
    _Worker,
    cohorts,
    scan_units,
)
from seawall.config import Config, DnsblSettings, load_config
from seawall.errors import ScanError
from seawall.sources import Unit

ZONE = "zen.test"
DELAY_S = 0.3


def _message(n: int) -> bytes:
    return (
        f"Received: from pc{n}.example (pc{n}.example [81.2.{n // 200}.{n % 200 + 1}])\r\n"
        f"\tby mx.isp.example with ESMTP id {n:06d}; Fri, 27 Nov 2026 10:00:00 +0000\r\n"
        f"From: sender{n}@example.org\r\nTo: user@isp.example\r\n"
        f"Subject: note {n}\r\nMessage-ID: <{n}@example.org>\r\n\r\n"
        f"Hello, this is message number {n} about the meeting.\r\n"
    ).encode()


def _units(root: Path, count: int) -> list[Unit]:
    root.mkdir(parents=True, exist_ok=True)
    units = []
    for n in range(count):
        path = root / f"{n:04d}.eml"
        path.write_bytes(_message(n))
        units.append(Unit(str(path), str(path)))
    return units


def _config(tmp_path: Path, dns: str | None = None) -> Config:
    base = load_config(None)
    detectors = msgspec.structs.replace(
        base.detectors,
        classifier=msgspec.structs.replace(base.detectors.classifier, enabled=False),
    )
    if dns is not None:
        zen = msgspec.structs.replace(DnsblSettings().lists[0], zone=ZONE)
        dnsbl = msgspec.structs.replace(
            DnsblSettings(), enabled=True, nameservers=(dns,), lists=(zen,)
        )
        detectors = msgspec.structs.replace(detectors, dnsbl=dnsbl)
    return msgspec.structs.replace(base, state_dir=str(tmp_path / "state"), detectors=detectors)


@pytest.mark.parametrize("workers", [1, 2])
def test_records_come_back_in_order_and_a_missing_file_is_reported(
    tmp_path: Path, workers: int
) -> None:
    units = _units(tmp_path / "mail", 3 * BATCH + 5)
    units.insert(20, Unit(str(tmp_path / "gone.eml"), str(tmp_path / "gone.eml")))
    records = list(scan_units(units, _config(tmp_path), workers=workers))
    assert [r.path for r in records] == [u.path for u in units]
    gone = records[20]
    assert gone.action == "soft reject"
    assert "READ_ERROR" in gone.symbols
    assert all("READ_ERROR" not in r.symbols for r in records[:20] + records[21:])


@pytest.mark.parametrize("workers", [1, 2])
def test_dns_waits_overlap_across_messages(tmp_path: Path, workers: int) -> None:
    count = 160
    listed = {f"{n % 200 + 1}.{n // 200}.2.81.{ZONE}": ["127.0.0.4"] for n in range(0, count, 3)}
    with DnsServer(Behaviour(listed=listed, delay_s=DELAY_S)) as server:
        units = _units(tmp_path / "mail", count)
        records = list(scan_units(units, _config(tmp_path, server.address), workers=workers))
    # A message asks the one list about its one address: one message at a time would keep
    # one query waiting at the server.  Scanned a window at a time, the waits overlap.
    assert server.most_in_flight >= 20, server.most_in_flight
    flagged = [n for n, r in enumerate(records) if "RBL_SPAMHAUS_XBL" in r.symbols]
    assert flagged == list(range(0, count, 3))
    assert not any("DNSBL_TIMEOUT" in r.symbols for r in records)


@dataclass(frozen=True)
class _Fatal(Unit):
    """A message whose reading kills the worker process outright."""

    def read(self) -> bytes:
        os._exit(3)


def test_a_dead_worker_stops_the_run_with_a_clear_error(tmp_path: Path) -> None:
    units: list[Unit] = list(_units(tmp_path / "mail", 4 * BATCH))
    units[2 * BATCH + 1] = _Fatal(units[2 * BATCH + 1].path, units[2 * BATCH + 1].file)
    seen: list[Record] = []

    def scan_all() -> None:
        seen.extend(scan_units(units, _config(tmp_path), workers=2))

    with pytest.raises(ScanError, match=r"scan worker \d+ exited with 3 while holding \d+"):
        scan_all()
    assert len(seen) <= 2 * BATCH  # nothing from or after the lost batch was made up
    assert not multiprocessing.active_children()


def test_stopping_early_leaves_no_worker_behind(tmp_path: Path) -> None:
    units = _units(tmp_path / "mail", 8 * BATCH)
    records = scan_units(units, _config(tmp_path), workers=2)
    assert next(records).path == units[0].path
    records.close()
    assert not multiprocessing.active_children()


def test_the_window_bounds_messages_and_bytes_in_flight() -> None:
    async def run() -> None:
        window = _Window()
        await window.enter(1, 2 * WINDOW_BYTES)  # one message always fits, however big
        second = asyncio.ensure_future(window.enter(1, 1))
        await asyncio.sleep(0.01)
        assert not second.done()
        window.leave(1, 2 * WINDOW_BYTES)
        await asyncio.wait_for(second, 1)
        for _ in range(WINDOW - 1):
            await window.enter(1, 1)
        extra = asyncio.ensure_future(window.enter(1, 1))
        await asyncio.sleep(0.01)
        assert not extra.done()  # WINDOW messages in flight already
        window.leave(1, 1)
        await asyncio.wait_for(extra, 1)
        assert (window.count, window.bytes) == (WINDOW, WINDOW)
        # A cohort enters whole: it waits until all its messages fit.
        window.leave(COHORT - 1, COHORT - 1)
        cohort = asyncio.ensure_future(window.enter(COHORT, COHORT))
        await asyncio.sleep(0.01)
        assert not cohort.done()
        window.leave(1, 1)
        await asyncio.wait_for(cohort, 1)
        assert (window.count, window.bytes) == (WINDOW, WINDOW)

    asyncio.run(run())


def test_cohorts_hold_at_most_cohort_messages_and_bytes_and_keep_the_order() -> None:
    units = [Unit(f"m{i}", f"m{i}") for i in range(2 * COHORT + 3)]
    sizes = [10] * len(units)
    sizes[5] = COHORT_BYTES  # one message always fits, alone
    groups = list(cohorts(units, sizes))
    assert [u for members, _ in groups for u in members] == units
    assert all(1 <= len(members) <= COHORT for members, _ in groups)
    assert [size for _, size in groups] == [
        sum(sizes[units.index(u)] for u in members) for members, _ in groups
    ]
    assert ([units[5]], COHORT_BYTES) in groups
    assert all(size <= COHORT_BYTES for _, size in groups)
    assert list(cohorts([], [])) == []


def test_unit_size_is_known_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "m.eml"
    path.write_bytes(b"x" * 100)
    assert Unit(str(path), str(path)).size() == 100
    assert Unit(str(path), str(path), start=10, end=60).size() == 50
    assert Unit(str(path), str(path), start=30).size() == 70
    assert Unit("gone", str(tmp_path / "gone")).size() == 0


class _Conn:
    def __init__(self) -> None:
        self.sent: list[int] = []

    def send(self, item: tuple[int, list[Unit]]) -> None:
        self.sent.append(item[0])


def _idle_worker() -> _Worker:
    worker = _Worker.__new__(_Worker)
    worker.conn = _Conn()  # type: ignore[assignment]
    worker.held = {}
    return worker


def test_batches_are_dealt_in_turn_so_a_short_run_is_shared() -> None:
    pool = [_idle_worker(), _idle_worker()]
    batches = [[Unit(f"m{n}", f"m{n}")] for n in range(5)]
    assert _dispatch(pool, batches, 0) == 5
    assert [w.conn.sent for w in pool] == [[0, 2, 4], [1, 3]]  # type: ignore[attr-defined]
    many = [[Unit("m", "m")]] * (3 * DEPTH)
    pool = [_idle_worker(), _idle_worker()]
    assert _dispatch(pool, many, 0) == 2 * DEPTH  # each holds DEPTH, the rest waits
    del pool[1].held[1]  # worker 1 returned a batch
    assert _dispatch(pool, many, 2 * DEPTH) == 2 * DEPTH + 1
    assert pool[1].conn.sent[-1] == 2 * DEPTH  # type: ignore[attr-defined]


# --- what a scan writes back into the state ---------------------------------------------------

SPAMMER = "81.2.200.9"  # sent spam before the scan, by the state's reputation


def _wave(root: Path, count: int) -> list[Unit]:
    """One campaign: the same offer from one address to many recipients."""
    root.mkdir(parents=True, exist_ok=True)
    units = []
    for n in range(count):
        path = root / f"{n:04d}.eml"
        path.write_bytes(
            (
                f"Received: from bot.example (bot.example [{SPAMMER}])\r\n"
                f"\tby mx.isp.example with ESMTP id W{n:05d}; Fri, 27 Nov 2026 10:00:00 +0000\r\n"
                f"From: deals@shop.example\r\nTo: user{n}@isp.example\r\n"
                f"Subject: Cheap watches, today only\r\nMessage-ID: <w{n}@shop.example>\r\n\r\n"
                f"Dear user{n}, buy cheap watches at http://watches.example/o?i={n} now.\r\n"
            ).encode()
        )
        units.append(Unit(str(path), str(path)))
    return units


def _learning_config(tmp_path: Path) -> Config:
    config = _config(tmp_path)
    detectors = msgspec.structs.replace(
        config.detectors,
        campaigns=msgspec.structs.replace(config.detectors.campaigns, enabled=True),
        reputation=msgspec.structs.replace(config.detectors.reputation, enabled=True),
    )
    return msgspec.structs.replace(config, detectors=detectors)


def _what_the_state_knows(config: Config) -> tuple[int, float]:
    """(campaigns saved, the spammer's reputation volume)."""
    from seawall.reputation import Reputation
    from seawall.serve import tracker as campaign_tracker
    from seawall.store import open_store

    async def volume() -> float:
        store = open_store(config)
        try:
            own, _ = await Reputation(store, config.detectors.reputation).read(SPAMMER, time.time())
        finally:
            await store.close()
        return 0.0 if own is None else own.volume

    return len(campaign_tracker.load(config).campaigns), asyncio.run(volume())


def _seed_spammer(config: Config) -> None:
    from seawall.reputation import Reputation
    from seawall.store import open_store

    async def seed() -> None:
        store = open_store(config)
        reputation = Reputation(store, config.detectors.reputation)
        for _ in range(20):
            await reputation.record(SPAMMER, spam=True, ham=False, now=time.time())
        await reputation.flush()
        await store.close()

    asyncio.run(seed())


@pytest.mark.parametrize("workers", [1, 2])
def test_a_scan_reads_the_state_and_writes_nothing_back(tmp_path: Path, workers: int) -> None:
    config = _learning_config(tmp_path)
    _seed_spammer(config)
    before = _what_the_state_knows(config)
    assert before[0] == 0
    assert before[1] > 0
    units = _wave(tmp_path / "mail", 3 * BATCH)
    records = list(scan_units(units, config, workers=workers))
    # It reads: the state's reputation of the sender, its own campaign within the run; and
    # it counts what it sees within the run (the wave scores as ham, so the share drops).
    if workers == 1:
        # The first sees the state's record alone; later ones also the ham counted before
        # them (which, depends on how a cohort's reads and verdicts interleave).
        assert records[0].options["REP_IP_SPAM"][1] == "spam=20.0 ham=0.0 volume=20.0"
        later = [r.options["REP_IP_SPAM"][1] for r in records[1:] if "REP_IP_SPAM" in r.symbols]
        assert later
        assert all("ham=0.0" not in seen for seen in later)
    else:
        # The workers share what they count: a worker's first message may already see
        # the other's ham, but the first one read (before any count was written) sees the
        # state's record alone.
        assert any("REP_IP_SPAM" in r.symbols for r in records)
    assert len({r.campaign for r in records} - {None}) == 1
    assert records[-1].campaign is not None
    # It writes nothing back: no campaign saved, the sender's reputation as it was (decayed
    # by the seconds the test took).
    assert _what_the_state_knows(config) == pytest.approx(before, rel=1e-3)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_scan_that_feeds_the_state_leaves_its_campaigns_and_counts(
    tmp_path: Path, workers: int
) -> None:
    config = _learning_config(tmp_path)
    units = _wave(tmp_path / "mail", 3 * BATCH)
    records = list(scan_units(units, config, workers=workers, feed=True))
    assert records[-1].campaign is not None
    campaigns, volume = _what_the_state_knows(config)
    assert campaigns == 1
    assert volume == pytest.approx(len(units), rel=0.01)


def test_input_that_is_not_mail_is_marked_with_what_it_is(tmp_path: Path) -> None:
    import lzma

    units = _units(tmp_path / "mail", 2)
    packed = tmp_path / "mail.tar.xz"
    packed.write_bytes(lzma.compress(_message(7)))
    units.append(Unit(str(packed), str(packed)))
    records = list(scan_units(units, _config(tmp_path), workers=1))
    assert [NOT_MAIL in r.symbols for r in records] == [False, False, True]
    assert records[2].options[NOT_MAIL] == ["xz archive"]
    assert records[2].symbols[NOT_MAIL] == 0.0  # a mark, not evidence


def test_the_private_campaign_tracker_of_a_scan_dies_with_it(tmp_path: Path) -> None:
    """A scan killed with -9 does not leave its own campaign tracker behind."""
    import subprocess
    import sys
    import textwrap

    import psutil

    script = f"""
        import time
        from seawall.batch import _private_tracker
        from seawall.campaigns.tracker import Tracker
        from seawall.config import load_config

        config = load_config(state_dir={str(tmp_path)!r})
        with _private_tracker(Tracker(config.detectors.campaigns)) as private:
            print(private.wait().encode().hex())
            time.sleep(60)
        """
    with subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as scan:
        assert scan.stdout is not None
        name = bytes.fromhex(scan.stdout.readline().strip()).decode()
        assert name.startswith("\0seawall-scan-")
        [tracker] = psutil.Process(scan.pid).children()
        scan.kill()
    tracker.wait(10)  # psutil.TimeoutExpired if it outlived the scan


def _with(config: Config, *, io_timeout_s: float, hold_s: float) -> Config:
    engine = msgspec.structs.replace(config.engine, io_timeout_s=io_timeout_s)
    campaigns = msgspec.structs.replace(config.detectors.campaigns, hold_s=hold_s)
    detectors = msgspec.structs.replace(config.detectors, campaigns=campaigns)
    return msgspec.structs.replace(config, engine=engine, detectors=detectors)


def test_a_batch_scan_waits_longer_for_peers_and_for_a_campaign_s_judgements(
    tmp_path: Path,
) -> None:
    """Nothing waits on a scan's answers: the live bounds (the I/O budget, the campaign
    hold) are raised for it, a hold that is off stays off, and longer settings are kept."""
    live = load_config(None, state_dir=str(tmp_path))
    assert live.detectors.campaigns.hold_s < BATCH_HOLD_S  # the live default is shorter
    batch = _for_batch(live)
    assert batch.engine.io_timeout_s == BATCH_IO_TIMEOUT_S
    assert batch.detectors.campaigns.hold_s == BATCH_HOLD_S
    assert batch.detectors.campaigns.hold_s < batch.engine.io_timeout_s
    assert live.detectors.campaigns.hold_s == load_config(None).detectors.campaigns.hold_s

    off = _for_batch(_with(live, io_timeout_s=2.0, hold_s=0.0))
    assert off.detectors.campaigns.hold_s == 0.0
    assert off.engine.io_timeout_s == BATCH_IO_TIMEOUT_S

    longer = _with(live, io_timeout_s=60.0, hold_s=20.0)
    assert _for_batch(longer) is longer
