"""One contract for every Store backend (memory, SQLite, one Redis, a Redis Cluster), then what
only a shared file can show: other processes.  Redis's own behaviour is in test_redis.py."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import sys
import textwrap
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.store.backends import BACKENDS, open_backend

from seawall.config import Config
from seawall.errors import StoreError
from seawall.store import BUCKETS, FILENAME, SqliteStore, Store, open_store

T0 = 1_008_000.0  # a bucket boundary for every window below (a multiple of each span)
W = 60.0  # window; one bucket is W / BUCKETS = 6 s


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    backend = open_backend(request.param, request, tmp_path)
    yield backend
    await backend.close()


def open_sqlite(folder: Path) -> SqliteStore:
    return SqliteStore.open(folder / FILENAME)


async def test_incr_counts_within_the_window(store: Store) -> None:
    assert await store.incr("k", window_s=W, now=T0) == 1
    assert await store.incr("k", window_s=W, now=T0 + 1) == 2
    assert await store.incr("k", window_s=W, now=T0 + 30, amount=5) == 7
    assert await store.incr("other", window_s=W, now=T0 + 30) == 1


async def test_amount_zero_only_reads(store: Store) -> None:
    assert await store.incr("k", window_s=W, now=T0, amount=0) == 0
    await store.incr("k", window_s=W, now=T0, amount=3)
    assert await store.incr("k", window_s=W, now=T0 + 1, amount=0) == 3
    assert await store.incr("k", window_s=W, now=T0 + 2, amount=0) == 3


async def test_counts_leave_the_window(store: Store) -> None:
    await store.incr("k", window_s=W, now=T0)  # first second of a bucket: counted a full W
    await store.incr("k", window_s=W, now=T0 + 20)
    assert await store.incr("k", window_s=W, now=T0 + W - 0.001, amount=0) == 2
    assert await store.incr("k", window_s=W, now=T0 + W, amount=0) == 1
    assert await store.incr("k", window_s=W, now=T0 + 20 + W, amount=0) == 0
    assert await store.incr("k", window_s=W, now=T0 + 10 * W) == 1  # a fresh start


async def test_window_is_exact_to_one_bucket(store: Store) -> None:
    span = W / BUCKETS
    # An event counts until its bucket leaves the window, W - span to W seconds after it:
    # one in the last half second of a bucket counts for W - span + 0.5 s.
    await store.incr("k", window_s=W, now=T0 + span - 0.5)
    assert await store.incr("k", window_s=W, now=T0 + W - 0.001, amount=0) == 1
    assert await store.incr("k", window_s=W, now=T0 + W, amount=0) == 0


async def test_windows_of_different_keys_are_independent(store: Store) -> None:
    await store.incr("short", window_s=10.0, now=T0)
    await store.incr("long", window_s=3600.0, now=T0)
    assert await store.incr("short", window_s=10.0, now=T0 + 11, amount=0) == 0
    assert await store.incr("long", window_s=3600.0, now=T0 + 11, amount=0) == 1


async def test_incr_refuses_a_window_that_is_not_positive(store: Store) -> None:
    with pytest.raises(ValueError, match="window_s"):
        await store.incr("k", window_s=0.0, now=T0)


async def test_put_get_and_overwrite(store: Store) -> None:
    assert await store.get("v") is None
    await store.put("v", b"one")
    assert await store.get("v") == b"one"
    await store.put("v", b"\x00two")
    assert await store.get("v") == b"\x00two"


async def test_values_expire_after_their_ttl(store: Store) -> None:
    await store.put("long", b"x", ttl_s=3600.0)
    await store.put("now", b"x", ttl_s=0.0)
    await store.put("soon", b"x", ttl_s=0.2)
    assert await store.get("long") == b"x"
    assert await store.get("now") is None
    await asyncio.sleep(0.3)
    assert await store.get("soon") is None
    await store.put("soon", b"again")  # no ttl: kept
    assert await store.get("soon") == b"again"


async def test_delete_removes_value_and_counter(store: Store) -> None:
    await store.put("k", b"x")
    await store.incr("k", window_s=W, now=T0, amount=4)
    await store.delete("k")
    await store.delete("never-set")
    assert await store.get("k") is None
    assert await store.incr("k", window_s=W, now=T0, amount=0) == 0


async def test_many_keys_and_buckets(store: Store) -> None:
    for i in range(200):
        await store.incr(f"ip:{i % 20}", window_s=W, now=T0 + i)
    # Each key sees only its own last W seconds: i = 159, 179 and 199 of (139, 199].
    assert await store.incr("ip:19", window_s=W, now=T0 + 199, amount=0) == 3


async def test_two_instances_on_one_file_share_counts(tmp_path: Path) -> None:
    """Two workers, simulated: each has its own connection and thread."""
    one, two = open_sqlite(tmp_path), open_sqlite(tmp_path)
    try:
        assert await one.incr("k", window_s=W, now=T0) == 1
        assert await two.incr("k", window_s=W, now=T0 + 1) == 2
        await asyncio.gather(*(s.incr("k", window_s=W, now=T0 + 2) for s in [one, two] * 50))
        assert await one.incr("k", window_s=W, now=T0 + 3, amount=0) == 102
        await two.put("v", b"shared")
        assert await one.get("v") == b"shared"
        await one.delete("v")
        assert await two.get("v") is None
    finally:
        await one.close()
        await two.close()


_CHILD = """
import asyncio, sys
from pathlib import Path
from seawall.store import SqliteStore

async def main() -> None:
    store = SqliteStore.open(Path(sys.argv[1]))
    for _ in range(int(sys.argv[2])):
        await store.incr("k", window_s=60.0, now=float(sys.argv[3]))
    await store.close()

asyncio.run(main())
"""


async def test_another_process_increments_the_same_key(tmp_path: Path) -> None:
    store = open_sqlite(tmp_path)
    try:
        await store.incr("k", window_s=W, now=T0)
        args = [sys.executable, "-c", textwrap.dedent(_CHILD), str(tmp_path / FILENAME)]
        children = [
            await asyncio.create_subprocess_exec(*args, "100", str(T0 + 1)) for _ in range(2)
        ]
        mine = [store.incr("k", window_s=W, now=T0 + 1) for _ in range(100)]
        await asyncio.gather(*mine)
        assert [await child.wait() for child in children] == [0, 0]
        assert await store.incr("k", window_s=W, now=T0 + 2, amount=0) == 301
    finally:
        await store.close()


def _forked_child(store: SqliteStore) -> None:
    async def work() -> None:
        for _ in range(10):
            await store.incr("k", window_s=W, now=T0)

    asyncio.run(work())


async def test_an_instance_inherited_across_fork_reconnects(tmp_path: Path) -> None:
    """What `seawall serve` does: a store opened before fork() is used in the workers."""
    store = open_sqlite(tmp_path)
    try:
        await store.incr("k", window_s=W, now=T0)  # the parent's thread and connection exist
        context = multiprocessing.get_context("fork")
        with warnings.catch_warnings():
            # Python 3.12+ warns about fork() in a process with threads; the store's
            # own thread is exactly what this test shows to be harmless.
            warnings.simplefilter("ignore", DeprecationWarning)
            child = context.Process(target=_forked_child, args=(store,))
            child.start()
        await asyncio.to_thread(child.join, 30)
        assert child.exitcode == 0
        assert await store.incr("k", window_s=W, now=T0, amount=0) == 11
    finally:
        await store.close()


async def test_expired_rows_are_purged(tmp_path: Path) -> None:
    store = SqliteStore.open(tmp_path / FILENAME, purge_interval_s=0.0)
    try:
        await store.put("gone", b"x", ttl_s=0.0)
        await store.put("kept", b"x")
        for i in range(30):
            await store.incr(f"old:{i}", window_s=W, now=T0)
        await store.incr("new", window_s=W, now=T0 + 2 * W)  # purges by this clock
        await store.get("kept")
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / FILENAME) as db:
        keys = {k for (k,) in db.execute("SELECT key FROM store_counters")}
        values = {k for (k,) in db.execute("SELECT key FROM store_values")}
    assert keys == {"new"}
    assert values == {"kept"}


async def test_closed_store_refuses_calls(tmp_path: Path) -> None:
    store = open_sqlite(tmp_path)
    await store.close()
    await store.close()  # twice is fine
    with pytest.raises(StoreError, match="closed"):
        await store.get("k")


async def test_sqlite_errors_become_store_errors(tmp_path: Path) -> None:
    store = open_sqlite(tmp_path)
    try:
        with sqlite3.connect(tmp_path / FILENAME) as db:
            db.execute("DROP TABLE store_values")
        with pytest.raises(StoreError, match="no such table"):
            await store.get("k")
    finally:
        await store.close()


def test_open_fails_with_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(StoreError, match="cannot open"):
        SqliteStore.open(tmp_path / "file" / FILENAME)


async def test_open_store_uses_the_state_dir(tmp_path: Path) -> None:
    store = open_store(Config(state_dir=str(tmp_path / "var")))
    try:
        await store.put("k", b"v")
    finally:
        await store.close()
    assert (tmp_path / "var" / "state.sqlite").is_file()


HALF = 3600.0  # half-life of the decaying counters below


async def test_decay_adds_and_halves_per_half_life(store: Store) -> None:
    got = await store.decay({"d": (1.0, 0.0, 1.0)}, half_life_s=HALF, now=T0, ttl_s=600)
    assert got["d"].values == (1.0, 0.0, 1.0)
    assert (got["d"].first, got["d"].last) == (T0, T0)
    await store.decay({"d": (1.0, 0.0, 1.0)}, half_life_s=HALF, now=T0, ttl_s=600)
    later = await store.decay({"d": (0, 0, 0)}, half_life_s=HALF, now=T0 + HALF, ttl_s=600)
    assert later["d"].values == pytest.approx((1.0, 0.0, 1.0))
    more = await store.decay({"d": (0, 2, 2)}, half_life_s=HALF, now=T0 + 2 * HALF, ttl_s=600)
    assert more["d"].values == pytest.approx((0.5, 2.0, 2.5))
    assert (more["d"].first, more["d"].last) == (T0, T0 + 2 * HALF)


async def test_decay_reads_leave_missing_keys_missing(store: Store) -> None:
    assert await store.decay({"nope": (0.0, 0.0)}, half_life_s=HALF, now=T0, ttl_s=600) == {}
    both = await store.decay(
        {"nope": (0.0, 0.0), "yes": (1.0, 0.0)}, half_life_s=HALF, now=T0, ttl_s=600
    )
    assert set(both) == {"yes"}
    # A clock that steps back never grows a counter.
    back = await store.decay({"yes": (0.0, 0.0)}, half_life_s=HALF, now=T0 - HALF, ttl_s=600)
    assert back["yes"].values == (1.0, 0.0)


async def test_decay_many_keys_in_one_call(store: Store) -> None:
    """A flush or a cohort's reads: hundreds of keys in one call (more than one statement's
    worth where the backend reads them by the batch), some known, some not, some twice."""
    known = {f"k{i}": (float(i), 1.0) for i in range(0, 700, 2)}
    await store.decay(known, half_life_s=HALF, now=T0, ttl_s=600)
    wanted = {f"k{i}": (0.0, 0.0) for i in range(700)}
    got = await store.decay(wanted, half_life_s=HALF, now=T0 + HALF, ttl_s=600)
    assert set(got) == set(known)
    assert got["k698"].values == pytest.approx((349.0, 0.5))
    assert got["k0"].first == T0
    more = {f"k{i}": (1.0, 0.0) for i in range(1, 700, 3)}  # known and new, written together
    written = await store.decay(more, half_life_s=HALF, now=T0 + HALF, ttl_s=600)
    assert set(written) == set(more)
    assert written["k4"].values == pytest.approx((3.0, 0.5))  # 4 halved, then 1 added
    assert written["k1"].values == (1.0, 0.0)
    assert written["k1"].first == T0 + HALF
    again = await store.decay(wanted, half_life_s=HALF, now=T0 + HALF, ttl_s=600)
    assert set(again) == set(known) | set(more)
    assert again["k4"].values == pytest.approx((3.0, 0.5))


async def test_decay_expires_and_deletes(store: Store) -> None:
    await store.decay({"d": (1.0,)}, half_life_s=HALF, now=T0, ttl_s=0.05)
    await store.decay({"e": (1.0,)}, half_life_s=HALF, now=T0, ttl_s=600)
    await asyncio.sleep(0.1)
    assert await store.decay({"d": (0.0,)}, half_life_s=HALF, now=T0, ttl_s=600) == {}
    fresh = await store.decay({"d": (2.0,)}, half_life_s=HALF, now=T0 + 5, ttl_s=600)
    assert fresh["d"].values == (2.0,)
    assert fresh["d"].first == T0 + 5
    await store.delete("e")
    assert await store.decay({"e": (0.0,)}, half_life_s=HALF, now=T0, ttl_s=600) == {}
    # A different number of counters under one key starts afresh instead of failing.
    assert (await store.decay({"d": (1.0, 1.0)}, half_life_s=HALF, now=T0, ttl_s=9))[
        "d"
    ].values == (1.0, 1.0)
    with pytest.raises(ValueError, match="half_life_s"):
        await store.decay({"d": (1.0,)}, half_life_s=0, now=T0, ttl_s=9)
