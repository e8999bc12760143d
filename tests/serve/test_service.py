"""The Service: time budget, fail policy, greylisting and the spam history it feeds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

import msgspec
import pytest

from seawall.config import Config, load_config
from seawall.detectors.base import Context, Hit
from seawall.engine import Engine, build_engine
from seawall.errors import LearningDisabled
from seawall.message import Envelope, Message
from seawall.policy.model import Action
from seawall.serve.service import Service
from seawall.store.memory import MemoryStore

RAW = b"From: a@example.org\r\nSubject: hello\r\n\r\nJust a short note about the meeting.\r\n"
ENV = Envelope(client_ip="198.51.100.7", mail_from="a@example.org", rcpts=("b@example.org",))


class Slow:
    """A network-bound detector that never answers in time (failure injection)."""

    name = "slow"
    symbols = {"SLOW": "never seen"}
    io = True

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]:
        await asyncio.sleep(60)
        return ()


def configured(tmp_path: Path, **serve: object) -> Config:
    config = load_config(state_dir=str(tmp_path))
    return msgspec.structs.replace(
        config,
        serve=msgspec.structs.replace(config.serve, **serve),
        detectors=msgspec.structs.replace(
            config.detectors,
            classifier=msgspec.structs.replace(config.detectors.classifier, enabled=False),
        ),
    )


def engine_for(config: Config, *, slow: bool = False, io_timeout_s: float = 30.0) -> Engine:
    engine = build_engine(config)
    if slow:
        engine = Engine(
            scores=engine.scores,
            detectors=(*engine.detectors, Slow()),
            limits=engine.limits,
            identify_language=engine.identify_language,
            io_timeout_s=io_timeout_s,
        )
    return engine


async def test_a_spent_budget_tempfails_by_default(tmp_path: Path) -> None:
    config = configured(tmp_path, budget_s=0.2)
    service = Service(engine_for(config, slow=True), config, store=MemoryStore())
    verdict = await service.check(ENV, RAW)
    assert verdict.action is Action.SOFT_REJECT
    assert verdict.forced_by == "SCAN_TIMEOUT"
    assert verdict.skipped is None
    assert service.stats.actions["soft reject"] == 1


async def test_a_spent_budget_accepts_under_the_accept_policy(tmp_path: Path) -> None:
    config = configured(tmp_path, budget_s=0.2, fail_policy="accept")
    service = Service(engine_for(config, slow=True), config)
    verdict = await service.check(ENV, RAW)
    assert verdict.action is Action.NO_ACTION
    assert verdict.skipped == "timeout"
    assert "SCAN_TIMEOUT" in verdict.symbols


async def test_cpu_work_past_the_deadline_stops_between_stages(tmp_path: Path) -> None:
    config = configured(tmp_path, budget_s=0.0005)
    service = Service(engine_for(config), config)
    verdict = await service.check(ENV, RAW + b"word " * 200_000)
    assert verdict.forced_by == "SCAN_TIMEOUT"


async def test_an_internal_error_tempfails(tmp_path: Path) -> None:
    config = configured(tmp_path)
    engine = engine_for(config)

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug")

    engine.scan = broken  # type: ignore[method-assign]
    verdict = await Service(engine, config).check(ENV, RAW)
    assert verdict.action is Action.SOFT_REJECT
    assert verdict.forced_by == "SCAN_FAILED"


async def test_scans_beyond_max_scans_wait_for_a_slot(tmp_path: Path) -> None:
    config = configured(tmp_path, budget_s=0.3, max_scans=1)
    service = Service(engine_for(config, slow=True, io_timeout_s=0.1), config)
    # Each scan holds its slot 0.1 s (the slow detector's timeout); the third waits past 0.3 s.
    verdicts = await asyncio.gather(*(service.check(ENV, RAW) for _ in range(5)))
    timed_out = [v for v in verdicts if v.forced_by == "SCAN_TIMEOUT"]
    scanned = [v for v in verdicts if "DETECTOR_TIMEOUT" in v.symbols]
    assert scanned
    assert timed_out
    assert len(scanned) + len(timed_out) == 5


async def test_verdicts_feed_the_ip_history(tmp_path: Path) -> None:
    config = configured(tmp_path)
    store = MemoryStore()
    service = Service(engine_for(config), config, store=store)
    await service.check(ENV, RAW)
    await service.drain()
    from seawall.store.history import history_counts

    spam, ham = await history_counts(store, "198.51.100.7", now=time.time(), window_s=3600)
    assert (spam, ham) == (0, 1)


class CountingStore(MemoryStore):
    """A MemoryStore that counts its calls to ``incr`` that add something."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    async def incr(self, key: str, *, window_s: float, now: float, amount: int = 1) -> int:
        self.writes += amount > 0
        return await super().incr(key, window_s=window_s, now=now, amount=amount)


async def test_the_ip_history_is_written_in_batches_that_keep_every_verdict(
    tmp_path: Path,
) -> None:
    from seawall.serve.service import HISTORY_FLUSH_S
    from seawall.store.history import history_counts

    config = configured(tmp_path)
    store = CountingStore()
    service = Service(engine_for(config), config, store=store)
    other = Envelope(client_ip="203.0.113.9", mail_from="c@example.org", rcpts=("b@example.org",))
    await asyncio.gather(*(service.check(ENV, RAW) for _ in range(5)), service.check(other, RAW))
    # Written after HISTORY_FLUSH_S without anyone asking: one call per address and label.
    for _ in range(200):
        if store.writes:
            break
        await asyncio.sleep(HISTORY_FLUSH_S / 4)
    await asyncio.sleep(0.05)  # the batch's calls are all in flight together
    assert store.writes == 2
    now = time.time()
    assert await history_counts(store, ENV.client_ip, now=now, window_s=3600) == (0, 5)
    assert await history_counts(store, other.client_ip, now=now, window_s=3600) == (0, 1)
    # What waits at shutdown is written by drain, at once.
    await service.check(other, RAW)
    await service.drain()
    assert store.writes == 3
    assert await history_counts(store, other.client_ip, now=now, window_s=3600) == (0, 2)


async def test_greylist_tempfails_a_new_triplet_and_passes_a_patient_retry(
    tmp_path: Path,
) -> None:
    scores = tmp_path / "scores.toml"
    scores.write_text("[actions]\nreject = 50.0\ngreylist = -100.0\n")
    config = msgspec.structs.replace(
        configured(tmp_path, greylist_delay_s=0.2), scores_file=str(scores)
    )
    service = Service(engine_for(config), config, store=MemoryStore())
    assert (await service.check(ENV, RAW)).action is Action.GREYLIST
    assert (await service.check(ENV, RAW)).action is Action.GREYLIST  # too soon
    await asyncio.sleep(0.25)
    passed = await service.check(ENV, RAW)
    assert passed.action is Action.NO_ACTION
    assert "GREYLIST_PASSED" in passed.symbols
    other = Envelope(client_ip="203.0.113.1", mail_from="x@example.net", rcpts=("b@example.org",))
    assert (await service.check(other, RAW)).action is Action.GREYLIST
    # Without an envelope (spamc) nothing can be remembered: the message passes, and does
    # not claim a retry that never happened.
    bare = await service.check(Envelope(), RAW)
    assert bare.action is Action.NO_ACTION
    assert "GREYLIST_PASSED" not in bare.symbols
    assert bare.symbols["GREYLIST_SKIPPED"].options == ("no client address",)
    assert bare.symbols["GREYLIST_SKIPPED"].score == 0.0
    without_store = Service(engine_for(config), config)
    alone = await without_store.check(ENV, RAW)
    assert alone.action is Action.NO_ACTION
    assert alone.symbols["GREYLIST_SKIPPED"].options == ("no state store",)


async def test_learn_and_forget(tmp_path: Path) -> None:
    config = load_config(state_dir=str(tmp_path))
    engine = build_engine(config)
    service = Service(engine, config, classifier=engine.classifier)
    assert await service.learn(RAW, spam=True) is True
    assert await service.learn(RAW, spam=True) is False
    assert await service.forget(RAW) is True
    assert await service.forget(RAW) is False
    engine.close()


async def test_learning_with_the_classifier_off_is_an_error(tmp_path: Path) -> None:
    config = configured(tmp_path)
    service = Service(engine_for(config), config)
    with pytest.raises(LearningDisabled, match="disabled"):
        await service.learn(RAW, spam=True)


async def test_in_a_replay_the_greylist_delay_is_simulated_seconds(tmp_path: Path) -> None:
    scores = tmp_path / "scores.toml"
    scores.write_text("[actions]\nreject = 50.0\ngreylist = -100.0\n")
    base = configured(tmp_path, greylist_delay_s=300.0)
    policy = msgspec.structs.replace(base.serve.policy, replay_speed=1200.0)  # 300 s: 0.25 s
    serve = msgspec.structs.replace(base.serve, policy=policy)
    config = msgspec.structs.replace(base, serve=serve, scores_file=str(scores))
    service = Service(engine_for(config), config, store=MemoryStore())
    assert (await service.check(ENV, RAW)).action is Action.GREYLIST
    await asyncio.sleep(0.3)
    assert "GREYLIST_PASSED" in (await service.check(ENV, RAW)).symbols
