"""Case stores for the zombie tests: embedded (SQLite) and on a real redis-server."""

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

from seawall.config import Config
from seawall.zombies.store import CaseBook, open_case_store


@pytest.fixture(params=["sqlite", "redis", "cluster"])
async def book(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CaseBook]:
    """The same CaseStore contract on each backend."""
    if request.param in ("redis", "cluster"):
        url = request.getfixturevalue(
            "redis_url" if request.param == "redis" else "redis_cluster_url"
        )
        config = Config(state=url, state_dir=str(tmp_path))
    else:
        config = Config(state_dir=str(tmp_path))
    store = open_case_store(config)
    yield store
    await store.close()
