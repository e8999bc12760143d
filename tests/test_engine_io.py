"""The engine's network-bound detectors under their one deadline, and the feedback's budget."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import ClassVar

import pytest

from seawall.detectors.base import Context, Hit
from seawall.engine import Engine
from seawall.message import Envelope, Message, ParseLimits
from seawall.policy.model import Verdict
from seawall.policy.scores import load_scores

RAW = b"From: a@b.example\r\nSubject: hi\r\n\r\nhello\r\n"


class _Io:
    io: ClassVar[bool] = True
    symbols: ClassVar[dict[str, str]] = {}

    def __init__(self, name: str, delay_s: float, error: Exception | None = None) -> None:
        self.name = name  # type: ignore[misc]
        self.delay_s = delay_s
        self.error = error

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]:
        await asyncio.sleep(self.delay_s)
        if self.error is not None:
            raise self.error
        return (Hit(f"X_{self.name.upper()}"),)


class _Started(_Io):
    """A detector with ``start``: its answer is a future, there at once or later."""

    def start(self, msg: Message, ctx: Context) -> Awaitable[Sequence[Hit]]:
        future: asyncio.Future[Sequence[Hit]] = asyncio.get_running_loop().create_future()
        hits = (Hit(f"X_{self.name.upper()}"),)
        if self.delay_s == 0:
            future.set_result(hits)
        else:
            asyncio.get_running_loop().call_later(self.delay_s, future.set_result, hits)
        return future


def _scan(*detectors: object, timeout_s: float = 0.3) -> Verdict:
    engine = Engine(
        scores=load_scores(),
        detectors=detectors,  # type: ignore[arg-type]
        limits=ParseLimits(),
        io_timeout_s=timeout_s,
    )
    try:
        return engine.scan_sync(Envelope(), RAW).verdict
    finally:
        engine.close()


def test_every_answer_inside_the_deadline_is_taken() -> None:
    verdict = _scan(_Started("cached", 0), _Io("late", 0.05), _Started("later", 0.1), _Io("now", 0))
    assert {"X_CACHED", "X_LATE", "X_LATER", "X_NOW"} <= set(verdict.symbols)
    assert "DETECTOR_TIMEOUT" not in verdict.symbols


def test_past_the_deadline_what_is_missing_times_out_and_what_is_there_counts() -> None:
    verdict = _scan(
        _Io("slow", 5),
        _Started("cached", 0),
        _Started("stuck", 5),
        _Io("quick", 0.01),
        timeout_s=0.2,
    )
    assert verdict.symbols["DETECTOR_TIMEOUT"].options == ("slow", "stuck")
    assert {"X_CACHED", "X_QUICK"} <= set(verdict.symbols)  # answered before the deadline


def test_a_detectors_own_timeout_is_its_alone() -> None:
    verdict = _scan(_Io("own", 0.01, TimeoutError("its resolver")), _Io("next", 0.05))
    assert verdict.symbols["DETECTOR_TIMEOUT"].options == ("own",)
    assert "X_NEXT" in verdict.symbols


def test_a_failing_detector_fails_alone(caplog: pytest.LogCaptureFixture) -> None:
    verdict = _scan(_Io("bad", 0.01, RuntimeError("boom")), _Started("later", 0.05))
    assert verdict.symbols["DETECTOR_FAILED"].options == ("bad",)
    assert "X_LATER" in verdict.symbols
    assert "detector bad failed" in caplog.text


class _Learner:
    io: ClassVar[bool] = False
    symbols: ClassVar[dict[str, str]] = {}

    def __init__(self, name: str, heard: list[str], delay_s: float = 0.0, fail: bool = False):
        self.name = name  # type: ignore[misc]
        self.heard = heard
        self.delay_s = delay_s
        self.fail = fail

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]:
        return ()

    async def after_verdict(self, msg: Message, verdict: Verdict, now: float) -> None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("cannot learn")
        self.heard.append(self.name)


def test_feedback_reaches_every_learner_past_one_that_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    heard: list[str] = []
    _scan(_Learner("a", heard), _Learner("bad", heard, fail=True), _Learner("b", heard, 0.01))
    assert heard == ["a", "b"]
    assert "detector bad failed after the verdict" in caplog.text


def test_feedback_shares_one_budget(caplog: pytest.LogCaptureFixture) -> None:
    heard: list[str] = []
    verdict = _scan(
        _Learner("a", heard), _Learner("stuck", heard, 5), _Learner("b", heard), timeout_s=0.1
    )
    assert verdict.action  # the message still has its verdict
    assert heard == ["a"]  # the stuck one was cancelled at the budget; b was not heard
    assert "detector stuck failed after the verdict" in caplog.text
