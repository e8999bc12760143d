"""The one scan path: hostile input always gets a verdict, fast; detector failures are contained."""

from __future__ import annotations

import base64
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import pytest

from seawall.config import load_config
from seawall.detectors.base import Context, Hit
from seawall.engine import Engine, build_engine
from seawall.message import Envelope, Message, ParseLimits
from seawall.policy.model import Action
from seawall.policy.scores import load_scores


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    config = load_config(None, state_dir=str(tmp_path_factory.mktemp("state")))
    eng = build_engine(config)
    yield eng
    eng.close()


def _multipart(parts: int) -> bytes:
    body = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(parts))
    return (
        b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        + body
        + b"--b--\r\n"
    )


def _nested(depth: int) -> bytes:
    head = b"From: a@example.com\r\n"
    out = head
    for i in range(depth):
        out += b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
    out += b"Content-Type: text/plain\r\n\r\ndeep\r\n"
    for i in reversed(range(depth)):
        out += b"--b%d--\r\n" % i
    return out


CASES = {
    "empty": (b"", "DEFECT_EMPTY"),
    "binary_garbage": (bytes(range(256)) * 400, "DEFECT_BINARY_GARBAGE"),
    "fifty_megabytes": (
        b"From: a@example.com\r\nSubject: big\r\n\r\n"
        + b"A" * 76
        + b"\r\n" * 1
        + (b"x" * 998 + b"\r\n") * 52_000,
        "DEFECT_TOO_LARGE",
    ),
    "ten_thousand_parts": (_multipart(10_000), "DEFECT_TOO_MANY_PARTS"),
    "nesting_200_deep": (_nested(200), "DEFECT_NESTING_TOO_DEEP"),
    "megabyte_header_line": (
        b"From: a@example.com\r\nX-Long: " + b"y" * 1_048_576 + b"\r\n\r\nbody\r\n",
        "DEFECT_HEADER_TOO_LONG",
    ),
    "broken_base64": (
        b"From: a@example.com\r\nContent-Type: text/plain\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.b64encode(b"hello world " * 20)[:-3]
        + b"!!**\r\n",
        "DEFECT_BAD_BASE64",
    ),
    "unknown_charset": (
        b"From: a@example.com\r\nContent-Type: text/plain; charset=x-klingon-99\r\n\r\n"
        b"Gr\xfc\xdfe aus K\xf6ln\r\n",
        "DEFECT_UNKNOWN_CHARSET",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_input_gets_a_verdict_fast(engine: Engine, case: str) -> None:
    raw, symbol = CASES[case]
    tracemalloc.start()
    t0 = time.perf_counter()
    verdict = engine.scan_sync(Envelope(), raw).verdict
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert symbol in verdict.symbols, sorted(verdict.symbols)
    assert isinstance(verdict.action, Action)
    assert seconds < 60, f"{case} took {seconds:.2f}s"  # a hang guard: bench.hostile input
    # bounded memory: a few times the input at most, whatever the input does
    assert peak < 4 * len(raw) + 64 * 1024 * 1024, f"{case} peaked at {peak / 1e6:.0f} MB"


def test_unknown_charset_text_still_readable(engine: Engine) -> None:
    scan = engine.scan_sync(Envelope(), CASES["unknown_charset"][0])
    assert "Grüße aus Köln" in scan.message.text


class _Exploding:
    name: ClassVar[str] = "exploding"
    symbols: ClassVar[dict[str, str]] = {}
    io: ClassVar[bool] = False

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]:
        raise RuntimeError("boom")


class _Slow:
    name: ClassVar[str] = "slow"
    symbols: ClassVar[dict[str, str]] = {}
    io: ClassVar[bool] = True

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]:
        import asyncio

        await asyncio.sleep(5)
        return (Hit("NEVER"),)


class _Fine:
    name: ClassVar[str] = "fine"
    symbols: ClassVar[dict[str, str]] = {"FINE": "always"}
    io: ClassVar[bool] = True

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]:
        return (Hit("FINE", options=(ctx.language or "-",)),)


def test_failing_and_slow_detectors_are_contained(caplog: pytest.LogCaptureFixture) -> None:
    eng = Engine(
        scores=load_scores(),
        detectors=[_Exploding(), _Slow(), _Fine()],
        limits=ParseLimits(),
        io_timeout_s=0.05,
    )
    try:
        verdict = eng.scan_sync(Envelope(), b"From: a@b.example\r\n\r\nhello\r\n").verdict
    finally:
        eng.close()
    assert verdict.symbols["DETECTOR_FAILED"].options == ("exploding",)
    assert verdict.symbols["DETECTOR_TIMEOUT"].options == ("slow",)
    assert "FINE" in verdict.symbols
    assert verdict.symbols["DETECTOR_FAILED"].score == 0.0
    assert "detector exploding failed" in caplog.text


def test_stage_times_are_recorded(engine: Engine) -> None:
    before = engine.times.messages
    engine.scan_sync(Envelope(), b"From: a@b.example\r\nSubject: hi\r\n\r\nhello there\r\n")
    assert engine.times.messages == before + 1
    assert {"parse", "language", "policy"} <= set(engine.times.seconds)


def test_language_in_every_verdict(engine: Engine) -> None:
    raw = (
        "From: a@b.example\nSubject: Konto\nContent-Type: text/plain; charset=utf-8\n\n"
        "Sehr geehrter Kunde, Ihr Konto wurde vorübergehend gesperrt. Bitte bestätigen Sie "
        "Ihre Daten, damit wir es wieder freischalten können.\n"
    ).encode()
    assert engine.scan_sync(Envelope(), raw).verdict.language == "de"


def test_path_to_state_is_honoured(tmp_path: Path) -> None:
    config = load_config(None, state_dir=str(tmp_path / "s"))
    eng = build_engine(config)
    eng.close()
    assert (tmp_path / "s").exists()


def test_parser_bug_tempfails_instead_of_crashing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import seawall.engine as engine_module

    real = engine_module.parse_message

    def broken(raw: bytes, *args: object, **kwargs: object) -> Message:
        if raw:
            raise ValueError("parser bug")
        return real(raw, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine_module, "parse_message", broken)
    eng = Engine(scores=load_scores(), detectors=[], limits=ParseLimits())
    try:
        verdict = eng.scan_sync(Envelope(), b"From: a@b.example\r\n\r\nhi\r\n").verdict
    finally:
        eng.close()
    assert verdict.action is Action.SOFT_REJECT
    assert verdict.forced_by == "PARSE_FAILED"
    assert "parser failed" in caplog.text


class _StoreDown:
    name: ClassVar[str] = "storedown"
    symbols: ClassVar[dict[str, str]] = {}
    io: ClassVar[bool] = False

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]:
        from seawall.errors import StoreError

        raise StoreError("state store redis://127.0.0.1:6379/0: get failed (ConnectionError)")


def test_a_store_that_is_down_is_one_line_a_minute_and_a_bug_every_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    eng = Engine(scores=load_scores(), detectors=[_StoreDown(), _Exploding()], limits=ParseLimits())
    try:
        for _ in range(50):
            verdict = eng.scan_sync(Envelope(), b"From: a@b.example\r\n\r\nhello\r\n").verdict
            assert set(verdict.symbols["DETECTOR_FAILED"].options) <= {"storedown", "exploding"}
    finally:
        eng.close()
    down = [r for r in caplog.records if "storedown" in r.getMessage()]
    bugs = [r for r in caplog.records if "exploding" in r.getMessage()]
    assert len(down) == 1
    assert down[0].exc_info is None  # one line, no traceback
    assert "get failed" in down[0].getMessage()
    assert len(bugs) == 50
    assert all(r.exc_info for r in bugs)
