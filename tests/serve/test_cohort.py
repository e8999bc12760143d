"""serve/cohort.py: the messages waiting in a worker are scanned as a cohort, each with the
verdict scan_message gives it, its own deadline, failures and cancellation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import pytest

from seawall.batch import _frozen_engine
from seawall.config import load_config
from seawall.detectors.base import Context, Hit
from seawall.engine import BudgetExceeded, Engine, Scan
from seawall.message import Envelope, Message, ParseLimits
from seawall.policy.model import Action, Verdict
from seawall.policy.scores import load_scores
from seawall.serve.cohort import COHORT, Cohorts

ENV = Envelope(client_ip="198.51.100.7", mail_from="a@example.org", rcpts=("b@example.org",))


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    config = load_config(None, state_dir=str(tmp_path_factory.mktemp("state")))
    eng = _frozen_engine(config)  # learns nothing: the second scan sees what the first saw
    yield eng
    eng.close()


def _same(a: Verdict, b: Verdict) -> None:
    assert (a.action, a.score, a.language, a.campaign, a.forced_by) == (
        b.action,
        b.score,
        b.language,
        b.campaign,
        b.forced_by,
    )
    assert list(a.symbols.items()) == list(b.symbols.items())


def test_corpus_messages_in_cohorts_get_the_verdicts_of_scan_message(
    engine: Engine, sa_subset: dict[str, list[Path]]
) -> None:
    paths = sa_subset["test_spam"][:40] + sa_subset["test_ham"][:40]
    raws = [p.read_bytes() for p in paths]
    loop = engine.event_loop()
    alone = [
        loop.run_until_complete(engine.scan_message(ENV, raw, deadline=None)).verdict
        for raw in raws
    ]
    cohorts = Cohorts(engine)

    async def together() -> list[Scan]:
        return await asyncio.gather(*(cohorts.scan(ENV, raw, deadline=None) for raw in raws))

    scans = loop.run_until_complete(together())
    # The first is scanned at once, alone; the 79 queued meanwhile go in cohorts of 16.
    assert cohorts.sizes == {1: 1, COHORT: 4, 15: 1}
    for one, scan in zip(alone, scans, strict=True):
        _same(scan.verdict, one)
    assert {s.verdict.action for s in scans} != {Action.NO_ACTION}  # spam among them


class _PicksOne:
    """A CPU detector that fails on one message only, by its subject, and yields the loop."""

    name: ClassVar[str] = "picky"
    symbols: ClassVar[dict[str, str]] = {"PICKY_OK": "fine"}
    io: ClassVar[bool] = False

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]:
        if msg.subject != "lead":
            await asyncio.sleep(0.005)  # a turn of the loop inside the stage
        if msg.subject == "bad":
            raise RuntimeError("boom")
        return (Hit("PICKY_OK"),)


class _Slow:
    """A network-bound detector; 'late' answers after 5 s and records its cancellation."""

    name: ClassVar[str] = "slow"
    symbols: ClassVar[dict[str, str]] = {"SLOW": "answered"}
    io: ClassVar[bool] = True

    def __init__(self) -> None:
        self.cancelled: list[str] = []

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]:
        try:
            if msg.subject in {"late", "gone"}:
                await asyncio.sleep(5)
        except asyncio.CancelledError:
            self.cancelled.append(msg.subject)
            raise
        return (Hit("SLOW"),)


def _raw(subject: str) -> bytes:
    return b"From: a@b.example\r\nSubject: %s\r\n\r\nhello\r\n" % subject.encode()


def _engine(slow: _Slow, io_timeout_s: float) -> Engine:
    return Engine(
        scores=load_scores(),
        detectors=[_PicksOne(), slow],
        limits=ParseLimits(),
        io_timeout_s=io_timeout_s,
    )


async def test_one_message_s_failures_and_budget_stay_its_own(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import seawall.engine as engine_module

    real = engine_module.parse_message

    def broken(raw: bytes, *args: object, **kwargs: object) -> Message:
        if b"Subject: parser bug" in raw:
            raise ValueError("parser bug")
        return real(raw, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine_module, "parse_message", broken)
    slow = _Slow()
    cohorts = Cohorts(_engine(slow, io_timeout_s=0.2))
    subjects = ["lead", "ok", "bad", "late", "parser bug", "spent", "ok too"]
    # "spent" has 12 ms of budget: the picky stage of the six after "lead" takes 6 x 5 ms.
    deadlines = {"spent": time.perf_counter() + 0.012}
    results = await asyncio.gather(
        *(cohorts.scan(ENV, _raw(s), deadline=deadlines.get(s)) for s in subjects),
        return_exceptions=True,
    )
    assert cohorts.sizes == {1: 1, 6: 1}  # "lead" alone, the others queued meanwhile
    spent = results.pop(5)
    assert isinstance(spent, BudgetExceeded)
    assert spent.args == ("picky",)
    assert slow.cancelled == ["late"]  # at the I/O deadline; "spent"'s answer was there
    verdicts = []
    for result in results:
        assert isinstance(result, Scan)
        verdicts.append(result.verdict)
    lead, ok, bad, late, parser_bug, ok_too = verdicts
    for fine in (lead, ok, ok_too):
        assert set(fine.symbols) == {"PICKY_OK", "SLOW"}
    assert bad.symbols["DETECTOR_FAILED"].options == ("picky",)
    assert "SLOW" in bad.symbols
    assert late.symbols["DETECTOR_TIMEOUT"].options == ("slow",)
    assert "PICKY_OK" in late.symbols
    assert parser_bug.forced_by == "PARSE_FAILED"
    assert "detector picky failed" in caplog.text


async def test_a_caller_gone_cancels_its_own_scan_only() -> None:
    slow = _Slow()
    cohorts = Cohorts(_engine(slow, io_timeout_s=30.0))
    subjects = ["lead", "one", "gone", "two", "three"]
    tasks = [asyncio.create_task(cohorts.scan(ENV, _raw(s), deadline=None)) for s in subjects]
    while not cohorts.sizes[4]:
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.007)  # the cohort is inside the picky stage (4 x 5 ms)
    tasks[2].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert cohorts.sizes == {1: 1, 4: 1}
    assert isinstance(results[2], asyncio.CancelledError)
    assert slow.cancelled == ["gone"]  # its network detector stopped with it
    for result in (*results[:2], *results[3:]):
        assert isinstance(result, Scan)
        assert set(result.verdict.symbols) == {"PICKY_OK", "SLOW"}
    # Cancelled while still queued behind another's scan: it is never scanned.
    first = asyncio.create_task(cohorts.scan(ENV, _raw("one"), deadline=None))
    await asyncio.sleep(0.002)  # "one" is in its stages
    queued = asyncio.create_task(cohorts.scan(ENV, _raw("gone"), deadline=None))
    await asyncio.sleep(0)
    queued.cancel()
    assert isinstance((await first), Scan)
    with pytest.raises(asyncio.CancelledError):
        await queued
    await asyncio.sleep(0.05)
    assert cohorts.sizes == {1: 2, 4: 1}
    assert slow.cancelled == ["gone"]


async def test_a_message_alone_is_scanned_at_once_and_arrivals_join_the_next_cohort() -> None:
    slow = _Slow()
    cohorts = Cohorts(_engine(slow, io_timeout_s=30.0))
    alone = await asyncio.wait_for(cohorts.scan(ENV, _raw("one"), deadline=None), 10)
    assert set(alone.verdict.symbols) == {"PICKY_OK", "SLOW"}
    assert cohorts.sizes == {1: 1}
    first = asyncio.create_task(cohorts.scan(ENV, _raw("first"), deadline=None))
    for _ in range(10_000):  # "first" is in its stages when the others arrive
        if cohorts._alone:
            break
        await asyncio.sleep(0)
    assert cohorts._alone
    later = [cohorts.scan(ENV, _raw(f"m{n}"), deadline=None) for n in range(COHORT + 3)]
    scans = await asyncio.wait_for(asyncio.gather(first, *later), 30)
    assert all("PICKY_OK" in s.verdict.symbols for s in scans)
    assert cohorts.sizes == {1: 2, COHORT: 1, 3: 1}


class _Gate:
    """A CPU detector that holds the messages whose subject starts with "held"."""

    name: ClassVar[str] = "gate"
    symbols: ClassVar[dict[str, str]] = {}
    io: ClassVar[bool] = False

    def __init__(self) -> None:
        self.open = asyncio.Event()

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]:
        if msg.subject.startswith("held"):
            await self.open.wait()
        return ()


async def test_a_stopped_scanner_fails_what_waits_without_hanging() -> None:
    gate = _Gate()
    # The network detector's turn of the loop lets the others arrive while "lead" is scanned.
    engine = Engine(scores=load_scores(), detectors=[gate, _Slow()], limits=ParseLimits())
    cohorts = Cohorts(engine)
    subjects = ["lead", "held 1", "held 2"]
    tasks = [asyncio.create_task(cohorts.scan(ENV, _raw(s), deadline=None)) for s in subjects]
    for _ in range(1000):  # "lead" alone, then the runner, held at the gate with the others
        if cohorts._runner is not None:
            break
        await asyncio.sleep(0.001)
    assert cohorts._runner is not None
    cohorts._runner.cancel()
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
    assert isinstance(results[0], Scan)
    assert [type(r).__name__ for r in results[1:]] == ["ScanStopped", "ScanStopped"]
    assert cohorts._runner is None
    assert cohorts.sizes == {1: 1, 2: 1}


async def test_service_with_cohorts_keeps_its_budget_fail_policy_and_verdicts(
    tmp_path: Path,
) -> None:
    from tests.serve.test_service import RAW, configured, engine_for

    from seawall.serve.service import Service
    from seawall.store.memory import MemoryStore

    config = configured(tmp_path, budget_s=0.2, cohort=COHORT)
    service = Service(engine_for(config, slow=True), config, store=MemoryStore())
    assert service.cohorts is not None
    spent = await asyncio.gather(*(service.check(ENV, RAW) for _ in range(3)))
    assert {v.forced_by for v in spent} == {"SCAN_TIMEOUT"}
    assert service.stats.actions["soft reject"] == 3
    assert service.cohorts.sizes == {1: 1, 2: 1}

    config = configured(tmp_path, budget_s=0.0005, cohort=COHORT)
    huge = await Service(engine_for(config), config).check(ENV, RAW + b"word " * 200_000)
    assert huge.forced_by == "SCAN_TIMEOUT"

    config = configured(tmp_path, cohort=COHORT)
    engine = engine_for(config)

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug")

    engine._finish = broken  # type: ignore[method-assign]
    failed = await Service(engine, config).check(ENV, RAW)
    assert failed.forced_by == "SCAN_FAILED"

    one_by_one = Service(engine_for(configured(tmp_path)), configured(tmp_path))
    assert one_by_one.cohorts is None
    together = Service(engine_for(config), config)
    raws = [RAW.replace(b"meeting", b"meeting %d" % n) for n in range(20)]
    alone = [await one_by_one.check(Envelope(), raw) for raw in raws]
    grouped = await asyncio.gather(*(together.check(Envelope(), raw) for raw in raws))
    assert together.cohorts is not None
    assert together.cohorts.sizes == {1: 1, COHORT: 1, 3: 1}
    for a, b in zip(alone, grouped, strict=True):
        assert (a.action, a.score, list(a.symbols)) == (b.action, b.score, list(b.symbols))
