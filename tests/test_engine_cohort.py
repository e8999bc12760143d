"""Engine.scan_many: a cohort scanned stage by stage gets the verdicts of one-by-one scans."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import pytest

from seawall.batch import COHORT, _frozen_engine, scan_cohort
from seawall.config import load_config
from seawall.detectors.base import Context, Hit
from seawall.engine import Engine, Scan
from seawall.message import Envelope, Message, ParseLimits
from seawall.policy.model import Action, Verdict
from seawall.policy.scores import load_scores
from seawall.sources import Unit


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    config = load_config(None, state_dir=str(tmp_path_factory.mktemp("state")))
    eng = _frozen_engine(config)  # learns nothing: the second scan sees what the first saw
    yield eng
    eng.close()


def _messages() -> list[bytes]:
    out = [
        b"",
        bytes(range(256)) * 40,
        b"From: a@b.example\r\nSubject: hi\r\n\r\nhello there, see you at 5\r\n",
        (
            "From: bank@secure-login.example\nSubject: Konto gesperrt\n"
            "Content-Type: text/plain; charset=utf-8\n\n"
            "Sehr geehrter Kunde, Ihr Konto wurde vorübergehend gesperrt. Bitte bestätigen "
            "Sie Ihre Daten unter http://secure-login.example/verify damit wir es wieder "
            "freischalten können.\n"
        ).encode(),
        b"From: shop@deals.example\r\nSubject: 90% OFF today only\r\n"
        b"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n"
        b"Content-Type: text/plain\r\n\r\nCheap pills at www.pills.example now\r\n--b\r\n"
        b"Content-Type: text/html\r\n\r\n<html><body><p>Cheap <b>pills</b> at "
        b'<a href="http://pills.example/buy?id=7">our store</a>, click here.</p>'
        b'<div style="display:none">hidden words of a hash buster</div></body></html>\r\n'
        b"--b--\r\n",
        b"Received: from pc1.example (pc1.example [81.2.3.4])\r\n\tby mx.isp.example with "
        b"ESMTP id 1; Fri, 27 Nov 2026 10:00:00 +0000\r\nFrom: x@pc1.example\r\n"
        b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\nSee the attached invoice, please pay.\r\n",
    ]
    for n in range(2 * COHORT):
        out.append(
            b"From: user%d@example.org\r\nSubject: note %d\r\nMessage-ID: <%d@example.org>\r\n"
            b"\r\nMeeting notes number %d: the budget for item %d is agreed, see "
            b"https://wiki.example.org/page/%d for the minutes.\r\n" % (n, n, n, n, n * 7, n)
        )
    return out


def _same(a: Verdict, b: Verdict) -> None:
    assert (a.action, a.score, a.language, a.campaign) == (
        b.action,
        b.score,
        b.language,
        b.campaign,
    )
    assert list(a.symbols.items()) == list(b.symbols.items())


def test_a_cohort_gets_the_verdicts_of_one_by_one_scans(engine: Engine) -> None:
    raws = _messages()
    loop = engine.event_loop()
    alone = [engine.scan_sync(Envelope(), raw).verdict for raw in raws]
    before = engine.times.messages
    together = loop.run_until_complete(engine.scan_many(raws))
    assert engine.times.messages == before + len(raws)
    assert len(together) == len(raws)
    for one, scan in zip(alone, together, strict=True):
        assert isinstance(scan, Scan)
        _same(scan.verdict, one)
    assert {"parse", "language", "classifier", "policy"} <= set(engine.times.seconds)


class _PicksOne:
    """Fails on one message only, by its subject."""

    name: ClassVar[str] = "picky"
    symbols: ClassVar[dict[str, str]] = {"PICKY_OK": "fine"}
    io: ClassVar[bool] = False

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]:
        if msg.subject == "bad":
            raise RuntimeError("boom")
        return (Hit("PICKY_OK"),)


class _Slow:
    name: ClassVar[str] = "slow"
    symbols: ClassVar[dict[str, str]] = {"SLOW": "answers late for 'late'"}
    io: ClassVar[bool] = True

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]:
        if msg.subject == "late":
            await asyncio.sleep(5)
        return (Hit("SLOW", options=(ctx.language or "-",)),)


def test_one_message_s_failures_stay_its_own(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import seawall.engine as engine_module

    real = engine_module.parse_message

    def broken(raw: bytes, *args: object, **kwargs: object) -> Message:
        if b"Subject: parser bug" in raw:
            raise ValueError("parser bug")
        return real(raw, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine_module, "parse_message", broken)
    eng = Engine(
        scores=load_scores(),
        detectors=[_PicksOne(), _Slow()],
        limits=ParseLimits(),
        io_timeout_s=0.2,
    )
    subjects = ["ok", "bad", "late", "parser bug", "ok too"]
    raws = [b"From: a@b.example\r\nSubject: %s\r\n\r\nhello\r\n" % s.encode() for s in subjects]
    try:
        scans = eng.event_loop().run_until_complete(eng.scan_many(raws))
    finally:
        eng.close()
    verdicts = []
    for scan in scans:
        assert isinstance(scan, Scan)
        verdicts.append(scan.verdict)
    ok, bad, late, parser_bug, ok_too = verdicts
    for fine in (ok, ok_too):
        assert set(fine.symbols) == {"PICKY_OK", "SLOW"}
    assert bad.symbols["DETECTOR_FAILED"].options == ("picky",)
    assert "SLOW" in bad.symbols
    assert late.symbols["DETECTOR_TIMEOUT"].options == ("slow",)
    assert "PICKY_OK" in late.symbols
    assert parser_bug.action is Action.SOFT_REJECT
    assert parser_bug.forced_by == "PARSE_FAILED"
    assert "detector picky failed" in caplog.text


def test_a_cohort_read_from_files_keeps_its_order_and_reports_what_is_missing(
    engine: Engine, tmp_path: Path
) -> None:
    raws = _messages()[:COHORT]
    units = []
    for i, raw in enumerate(raws):
        path = tmp_path / f"{i:02d}.eml"
        path.write_bytes(raw)
        units.append(Unit(str(path), str(path)))
    units.insert(3, Unit("gone", str(tmp_path / "gone.eml")))
    records = engine.event_loop().run_until_complete(scan_cohort(engine, units))
    assert [r.path for r in records] == [u.path for u in units]
    assert records[3].symbols == {"READ_ERROR": 0.0}
    alone = [engine.scan_sync(Envelope(), raw).verdict for raw in raws]
    for record, verdict in zip(records[:3] + records[4:], alone, strict=True):
        assert (record.action, record.score) == (verdict.action.value, verdict.score)
        assert record.symbols == {name: s.score for name, s in verdict.symbols.items()}


class _Starts:
    """An I/O detector with a synchronous ``start()`` that records each call; it fails to
    start on a message whose subject is ``no start``."""

    io: ClassVar[bool] = True

    def __init__(self, name: str, calls: list[tuple[str, str]]) -> None:
        self.name = name
        self.symbols = {f"{name.upper()}_SEEN": "started"}
        self.calls = calls

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]:
        return await self.start(msg, ctx)

    def start(self, msg: Message, ctx: Context) -> asyncio.Future[Sequence[Hit]]:
        self.calls.append((self.name, msg.subject))
        if msg.subject == "no start":
            raise RuntimeError("cannot start")
        done: asyncio.Future[Sequence[Hit]] = asyncio.get_running_loop().create_future()
        done.set_result((Hit(f"{self.name.upper()}_SEEN", options=(msg.subject,)),))
        return done


def test_a_cohort_starts_its_io_detectors_one_detector_at_a_time() -> None:
    calls: list[tuple[str, str]] = []
    eng = Engine(
        scores=load_scores(),
        detectors=[_Starts("first", calls), _Starts("second", calls)],
        limits=ParseLimits(),
    )
    subjects = ["one", "no start", "three"]
    raws = [b"From: a@b.example\r\nSubject: %s\r\n\r\nhello\r\n" % s.encode() for s in subjects]
    try:
        loop = eng.event_loop()
        together = loop.run_until_complete(eng.scan_many(raws))
        assert calls == [("first", s) for s in subjects] + [("second", s) for s in subjects]
        calls.clear()
        alone = [eng.scan_sync(Envelope(), raw).verdict for raw in raws]
    finally:
        eng.close()
    assert calls == [(name, s) for s in subjects for name in ("first", "second")]
    verdicts = [scan.verdict for scan in together if isinstance(scan, Scan)]
    assert len(verdicts) == len(raws)
    for verdict, one in zip(verdicts, alone, strict=True):
        _same(verdict, one)
    assert verdicts[0].symbols["FIRST_SEEN"].options == ("one",)
    assert verdicts[2].symbols["SECOND_SEEN"].options == ("three",)
    assert "DETECTOR_FAILED" in verdicts[1].symbols
    assert not {"FIRST_SEEN", "SECOND_SEEN"} & set(verdicts[1].symbols)
    assert all("DETECTOR_FAILED" not in v.symbols for v in (verdicts[0], verdicts[2]))
