"""The backends every Store test runs on, made fresh and empty for one test."""

from __future__ import annotations

from pathlib import Path

import pytest

from seawall.store import FILENAME, MemoryStore, SqliteStore, Store
from seawall.store.redis import RedisStore

# Redis servers start only for the tests that use them (see tests/redis_servers.py).
BACKENDS = ["memory", "sqlite", "redis", "redis-cluster", "redis-sentinel"]


def open_backend(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """A fresh, empty ``name`` store."""
    if name == "memory":
        return MemoryStore()
    if name == "sqlite":
        return SqliteStore.open(tmp_path / FILENAME)
    fixture = {"redis": "redis_url", "redis-cluster": "redis_cluster_url"}
    url = request.getfixturevalue(fixture.get(name, "redis_sentinel_url"))
    return RedisStore.from_url(url)
