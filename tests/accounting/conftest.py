"""Backends of the accounting tests: SQLite, and real Redis servers (tests/redis_servers.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.redis_servers import (  # noqa: F401
    redis_cluster,
    redis_cluster_url,
    redis_server,
    redis_url,
)

from seawall.accounting import Sessions
from seawall.accounting.redis import RedisSessions
from seawall.accounting.sqlite import SqliteSessions

BACKENDS = ["sqlite", "redis", "redis-cluster"]
RETENTION_S = 30 * 86400.0


def open_backend(
    name: str, request: pytest.FixtureRequest, tmp_path: Path, retention_s: float = RETENTION_S
) -> Sessions:
    """A fresh, empty backend ``name``."""
    if name == "sqlite":
        return SqliteSessions.open(tmp_path / "state.sqlite", retention_s=retention_s)
    fixture = {"redis": "redis_url", "redis-cluster": "redis_cluster_url"}[name]
    url = request.getfixturevalue(fixture)
    return RedisSessions.from_url(url, retention_s=retention_s, timeout_s=5.0)


@pytest.fixture(params=BACKENDS)
async def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Sessions]:
    backend = open_backend(request.param, request, tmp_path)
    try:
        yield backend
    finally:
        await backend.close()
