"""The verdict history on Redis rides out a Redis that stalls, as a loaded host's does."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.redis_servers import RedisServer

from seawall.config import Config, HistorySettings
from seawall.message import Envelope
from seawall.metrics.recorder import Recorder
from seawall.policy.model import Action, Verdict
from seawall.store.verdicts import Search, open_verdicts
from seawall.store.verdicts_redis import RedisVerdicts

RAW = b"From: a@b.example\r\nSubject: stalled\r\n\r\nbody\r\n"


def verdict() -> Verdict:
    return Verdict(
        score=0.0, required=15.0, action=Action.NO_ACTION, symbols={}, language=None, elapsed_ms=1.0
    )


async def test_a_history_write_waits_out_a_stalled_redis(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis").running() as server:
        config = Config(state=server.url, state_dir=str(tmp_path / "state"))
        history = open_verdicts(config)
        assert isinstance(history, RedisVerdicts)
        recorder = Recorder(history, None, HistorySettings())
        recorder.observe(Envelope(queue_id="R1"), RAW, verdict(), 1)
        assert await recorder.flush()  # connected, before the stall
        recorder.observe(Envelope(queue_id="R2"), RAW, verdict(), 1)
        server.pause()  # the kernel takes the request; nothing answers for a second
        asyncio.get_running_loop().call_later(1.0, server.resume)
        # The Store's own timeout (0.25 s) would fail this write; the history's waits.
        assert await recorder.flush()
        found = await history.search(Search())
        assert [r.queue_id for r in found] == ["R2", "R1"]
        await recorder.close()
