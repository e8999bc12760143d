"""The verdict history on Redis rides out a Redis that stalls, as a loaded host's does."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from tests.redis_servers import RedisServer

from seawall.config import Config, HistorySettings
from seawall.message import Envelope
from seawall.metrics.recorder import Recorder
from seawall.policy.model import Action, Verdict
from seawall.store.redis import RedisStore
from seawall.store.verdicts import Search, VerdictRecord, open_verdicts
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


class _StallsOnItsFirstWrite(RedisVerdicts):
    """The real history on a real server, stopped while its first batch is on the wire: the
    write reaches Redis, its answer never reaches the client in time."""

    def __init__(self, server: RedisServer, settings: HistorySettings) -> None:
        super().__init__(RedisStore.from_url(server.url, socket_timeout=0.3), settings)
        self.server = server
        self.writes = 0

    async def record_many(self, items: Sequence[tuple[VerdictRecord, bytes | None]]) -> list[int]:
        self.writes += 1
        if self.writes == 1:
            self.server.pause()
        return await super().record_many(items)


async def test_a_batch_retried_after_a_lost_answer_is_written_once(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis").running() as server:
        history = _StallsOnItsFirstWrite(server, HistorySettings())
        recorder = Recorder(history, None, HistorySettings())
        recorder.observe(Envelope(queue_id="L1"), RAW, verdict(), 1)
        try:
            assert not await recorder.flush()  # the answer timed out: kept, to be retried
        finally:
            server.resume()
        # Redis did the write all the same, once it ran again.
        for _ in range(100):
            if await history.search(Search()):
                break
            await asyncio.sleep(0.05)
        assert [r.queue_id for r in await history.search(Search())] == ["L1"]
        assert await recorder.flush()  # the retry
        assert history.writes == 2
        found = await history.search(Search())
        assert [r.queue_id for r in found] == ["L1"]
        minute = int(found[0].time) - int(found[0].time) % 60
        assert await history.minutes(minute, minute) == [(minute, {"no action": 1})]
        await recorder.close()
