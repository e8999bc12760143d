"""The master lookup on Sentinel: its own timeout (``?sentinel_timeout=``, 1 s by default),
longer than the calls', so a Sentinel slow for a moment, as on a busy host, fails no call."""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Iterator

import pytest
from tests.store.sentinel_servers import RedisSentinelServers

from seawall.errors import ConfigError, StoreError
from seawall.store.redis import SENTINEL_TIMEOUT_S, RedisStore


def test_the_lookup_timeout_by_default_and_from_the_url() -> None:
    hosts = "redis+sentinel://127.0.0.1:26379"
    default = RedisStore.from_url(f"{hosts}/seawall")
    assert default.socket_timeout == 0.25  # the calls keep theirs
    assert default.sentinel_timeouts == {
        "socket_timeout": SENTINEL_TIMEOUT_S,
        "socket_connect_timeout": SENTINEL_TIMEOUT_S,
    }
    longer = RedisStore.from_url(f"{hosts}/seawall?socket_timeout=3")
    assert longer.sentinel_timeouts["socket_timeout"] == 3.0  # never shorter than a call's
    assert longer.sentinel_timeouts["socket_connect_timeout"] == SENTINEL_TIMEOUT_S
    chosen = RedisStore.from_url(f"{hosts}/seawall/2?sentinel_timeout=0.4&socket_timeout=3")
    assert chosen.sentinel_timeouts == {"socket_timeout": 0.4, "socket_connect_timeout": 0.4}
    for bad in ("0", "-1", "nan", "soon"):
        with pytest.raises(ConfigError, match="sentinel_timeout"):
            RedisStore.from_url(f"{hosts}/seawall?sentinel_timeout={bad}")
    with pytest.raises(ConfigError, match="unknown option sentinel_timeout"):
        RedisStore.from_url("redis://127.0.0.1:6379/0?sentinel_timeout=1")


@pytest.fixture
def paused_sentinel(redis_sentinels: RedisSentinelServers) -> Iterator[signal.Signals]:
    """The session's Sentinel; SIGCONT whatever the test did to it."""
    (watcher,) = redis_sentinels.watchers
    assert watcher.proc is not None
    try:
        yield signal.SIGSTOP
    finally:
        watcher.proc.send_signal(signal.SIGCONT)


async def test_eight_new_connections_wait_out_a_slow_sentinel(
    redis_sentinels: RedisSentinelServers,
    redis_sentinel_url: str,
    paused_sentinel: signal.Signals,
) -> None:
    (watcher,) = redis_sentinels.watchers
    assert watcher.proc is not None
    store = RedisStore.from_url(redis_sentinel_url)
    try:
        # The Sentinel answers nothing for half a second: longer than a call's 0.25 s,
        # within the lookup's 1 s.  Eight claims at once: eight lookups at once.
        watcher.proc.send_signal(paused_sentinel)
        asyncio.get_running_loop().call_later(0.5, watcher.proc.send_signal, signal.SIGCONT)
        won = await asyncio.gather(*(store.claim("lease", bytes([i]), ttl_s=5.0) for i in range(8)))
        assert len(set(won)) == 1
    finally:
        await store.close()


async def test_a_hung_sentinel_costs_the_lookup_timeout_then_the_next_answers(
    redis_sentinel_url: str,
) -> None:
    with socket.socket() as hung:  # accepts (the kernel does), never answers
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)
        port = hung.getsockname()[1]
        first = redis_sentinel_url.replace("://", f"://127.0.0.1:{port},", 1)
        store = RedisStore.from_url(f"{first}?sentinel_timeout=0.3")
        alone = RedisStore.from_url(
            f"redis+sentinel://127.0.0.1:{port}/seawall?sentinel_timeout=0.3"
        )
        try:
            await store.put("k", b"x")
            assert await store.get("k") == b"x"
            with pytest.raises(StoreError, match="No master found"):
                await alone.get("k")
        finally:
            await store.close()
            await alone.close()
