"""The backends every Store test runs on, made fresh and empty for one test."""

from __future__ import annotations

from pathlib import Path

import pytest

from seawall.store import FILENAME, MemoryStore, SqliteStore, Store
from seawall.store.redis import RedisStore

# Redis servers start only for the tests that use them (see tests/redis_servers.py).
BACKENDS = ["memory", "sqlite", "redis", "redis-cluster", "redis-sentinel"]
TEST_TIMEOUT_S = 5.0


def open_backend(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """A fresh, empty ``name`` store."""
    if name == "memory":
        return MemoryStore()
    if name == "sqlite":
        return SqliteStore.open(tmp_path / FILENAME)
    fixture = {"redis": "redis_url", "redis-cluster": "redis_cluster_url"}
    url = request.getfixturevalue(fixture.get(name, "redis_sentinel_url"))
    # These tests hold what every backend stores, not how fast: a reply slower than the
    # shipped 0.25 s (a loaded CI host) is not a failure of theirs.  test_redis.py holds the
    # timeouts themselves.
    return RedisStore.from_url(url, socket_timeout=TEST_TIMEOUT_S)
