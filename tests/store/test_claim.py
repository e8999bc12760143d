"""Leases (``Store.claim``): one holder at a time, renewals, expiry; on every backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.store.backends import BACKENDS, open_backend

from seawall.store import Store


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    backend = open_backend(request.param, request, tmp_path)
    yield backend
    await backend.close()


async def test_the_first_claim_wins_and_renews(store: Store) -> None:
    assert await store.claim("lease", b"a", ttl_s=5.0) == b"a"
    assert await store.claim("lease", b"b", ttl_s=5.0) == b"a"  # held: b is told who holds it
    assert await store.claim("lease", b"a", ttl_s=5.0) == b"a"  # a renewal
    assert await store.get("lease") == b"a"


async def test_an_expired_lease_passes_on(store: Store) -> None:
    assert await store.claim("lease", b"a", ttl_s=0.05) == b"a"
    await asyncio.sleep(0.1)
    assert await store.claim("lease", b"b", ttl_s=5.0) == b"b"
    assert await store.claim("lease", b"a", ttl_s=5.0) == b"b"


async def test_a_deleted_lease_is_free(store: Store) -> None:
    await store.claim("lease", b"a", ttl_s=5.0)
    await store.delete("lease")
    assert await store.claim("lease", b"b", ttl_s=5.0) == b"b"


async def test_concurrent_claims_have_one_winner(store: Store) -> None:
    won = await asyncio.gather(*(store.claim("lease", bytes([i]), ttl_s=5.0) for i in range(8)))
    assert len(set(won)) == 1
