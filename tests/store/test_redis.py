"""What only the Redis backend has: its URLs, key layout and TTLs, a Cluster's slots, faults.

The Store contract itself runs on Redis, a Redis Cluster and Sentinel in test_contract.py;
what only Sentinel has (its failover) is in test_sentinel.py.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio.connection
from redis.crc import key_slot
from tests.redis_servers import RedisClusterServers, RedisServer, keys_with_ttls
from tests.store.sentinel_servers import RedisSentinelServers

from seawall.errors import ConfigError, StoreError
from seawall.store import BUCKETS
from seawall.store.redis import RedisStore

T0 = 1_008_000.0  # a bucket boundary, as in test_contract.py
W = 60.0
HALF = 3600.0


@dataclass
class Target:
    url: str
    servers: list[RedisServer]  # every master, to look at the keys


@pytest.fixture(params=["redis", "redis-cluster", "redis-sentinel"])
def target(request: pytest.FixtureRequest) -> Target:
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        return Target(url, [request.getfixturevalue("redis_server")])
    if request.param == "redis-sentinel":
        url = request.getfixturevalue("redis_sentinel_url")
        sentinels: RedisSentinelServers = request.getfixturevalue("redis_sentinels")
        return Target(url, [sentinels.master()])
    url = request.getfixturevalue("redis_cluster_url")
    cluster: RedisClusterServers = request.getfixturevalue("redis_cluster")
    return Target(url, cluster.masters)


@pytest.fixture
async def store(target: Target) -> AsyncIterator[RedisStore]:
    backend = RedisStore.from_url(target.url)
    yield backend
    await backend.close()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of the test's own, to stop, pause or fill up."""
    with RedisServer(tmp_path / "redis").running() as server:
        yield server


# The layout and the TTLs


async def test_every_key_has_a_ttl(store: RedisStore, target: Target) -> None:
    now = time.time()
    await store.incr("conn", window_s=W, now=now)
    await store.decay({"rep": (1.0, 0.0)}, half_life_s=HALF, now=now, ttl_s=600.0)
    await store.put("grey", b"x", ttl_s=30.0)
    await store.claim("lease", b"me", ttl_s=10.0)
    await store.put("snapshot", b"x")  # asked to be kept: the one key without a TTL
    ttls = keys_with_ttls(target.servers)
    assert set(ttls) == {
        b"seawall:c:conn",
        b"seawall:d:rep",
        b"seawall:v:grey",
        b"seawall:v:lease",
        b"seawall:v:snapshot",
    }
    # A counter lives until its newest bucket leaves the window: 0.9 to 1.0 window.
    assert (W - W / BUCKETS) * 1000 - 1000 < ttls[b"seawall:c:conn"] <= W * 1000
    assert 599_000 < ttls[b"seawall:d:rep"] <= 600_000
    assert 29_000 < ttls[b"seawall:v:grey"] <= 30_000
    assert 9_000 < ttls[b"seawall:v:lease"] <= 10_000
    assert ttls[b"seawall:v:snapshot"] == -1
    # Only adding extends a TTL; reading leaves it.
    await store.decay({"rep": (0.0, 0.0)}, half_life_s=HALF, now=now, ttl_s=9999.0)
    await store.incr("conn", window_s=W, now=now, amount=0)
    assert keys_with_ttls(target.servers)[b"seawall:d:rep"] <= 600_000


async def test_a_lagging_clock_never_shortens_a_counters_ttl(
    store: RedisStore, target: Target
) -> None:
    now = time.time()
    await store.incr("k", window_s=W, now=now)
    await store.incr("k", window_s=W, now=now - 30)  # another node, 30 s behind
    assert keys_with_ttls(target.servers)[b"seawall:c:k"] > (W - W / BUCKETS - 1) * 1000


async def test_stale_buckets_are_dropped_by_the_next_add(store: RedisStore, target: Target) -> None:
    for second in range(0, 300, 3):
        await store.incr("busy", window_s=W, now=T0 + second)
    (server,) = [s for s in target.servers if b"seawall:c:busy" in keys_with_ttls([s])]
    with server.client() as client:
        assert client.hlen("seawall:c:busy") == BUCKETS
    assert await store.incr("busy", window_s=W, now=T0 + 299, amount=0) == 20


async def test_keys_are_namespaced(target: Target) -> None:
    one = RedisStore.from_url(target.url, namespace="mx-a")
    two = RedisStore.from_url(target.url, namespace="mx-b")
    try:
        await one.put("k", b"one")
        await one.incr("k", window_s=W, now=T0, amount=3)
        assert await two.get("k") is None
        assert await two.incr("k", window_s=W, now=T0, amount=0) == 0
        await two.decay({"k": (1.0,)}, half_life_s=HALF, now=T0, ttl_s=60.0)
        assert await one.decay({"k": (0.0,)}, half_life_s=HALF, now=T0, ttl_s=60.0) == {}
        await two.delete("k")
        assert await one.get("k") == b"one"
    finally:
        await one.close()
        await two.close()
    assert set(keys_with_ttls(target.servers)) == {b"mx-a:v:k", b"mx-a:c:k"}


async def test_concurrent_adds_from_two_clients_all_count(target: Target) -> None:
    """Two nodes, simulated: each script's read-modify-write is atomic.  (300 calls at once
    on a busy 2-core machine: a generous timeout, since this is about atomicity.)"""
    one, two = (RedisStore.from_url(target.url, socket_timeout=5.0) for _ in range(2))
    try:
        adds = [s.incr("k", window_s=W, now=T0) for s in [one, two] * 100]
        decays = [
            s.decay({"d": (1.0,)}, half_life_s=HALF, now=T0, ttl_s=60) for s in [one, two] * 50
        ]
        await asyncio.gather(*adds, *decays)
        assert await one.incr("k", window_s=W, now=T0, amount=0) == 200
        assert (await two.decay({"d": (0.0,)}, half_life_s=HALF, now=T0, ttl_s=60))["d"].values == (
            100.0,
        )
    finally:
        await one.close()
        await two.close()


async def test_a_flushed_script_cache_is_reloaded(store: RedisStore, target: Target) -> None:
    await store.incr("k", window_s=W, now=T0)
    await store.decay({f"d{i}": (1.0,) for i in range(8)}, half_life_s=HALF, now=T0, ttl_s=60)
    for server in target.servers:  # what a restart or a failover to a fresh node does
        with server.client() as client:
            client.script_flush()
    assert await store.incr("k", window_s=W, now=T0) == 2
    got = await store.decay({f"d{i}": (1.0,) for i in range(8)}, half_life_s=HALF, now=T0, ttl_s=60)
    assert {d.values for d in got.values()} == {(2.0,)}


# URLs and configuration


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("memcached://127.0.0.1:11211", "unknown scheme"),
        ("127.0.0.1:6379", "unknown scheme"),
        ("redis+sentinels://127.0.0.1:26379/seawall", "unknown scheme"),
        ("redis+sentinel://127.0.0.1:26379", "names the master"),
        ("redis+sentinel://127.0.0.1:26379/", "names the master"),
        ("redis+sentinel://127.0.0.1:26379/seawall/0/1", "names the master"),
        ("redis+sentinel://127.0.0.1:26379/seawall/x", "database 'x' is not a number"),
        ("redis+sentinel://127.0.0.1:26379/seawall?bogus=1", "unknown option bogus"),
        ("redis+sentinel://127.0.0.1:26379/seawall?ssl_certfile=/c", "unknown option ssl_certfile"),
        ("redis+sentinel://127.0.0.1:26379,:26380/seawall", "node ':26380' has no host"),
        ("redis://127.0.0.1:6379/0?bogus=1", "unknown option bogus"),
        ("redis://127.0.0.1:6379/0?ssl_ca_certs=/ca.pem", "unknown option ssl_ca_certs"),
        ("redis://127.0.0.1:notaport/0", "Port"),
        ("redis+cluster://127.0.0.1:7000/3", "only database 0"),
        ("redis+cluster://127.0.0.1:7000?db=3", "unknown option db"),
        ("redis+cluster://127.0.0.1:7000,127.0.0.1:x", "node '127.0.0.1:x'"),
        ("redis+cluster://127.0.0.1:7000,", "node '' has no host"),
    ],
)
def test_a_bad_url_is_a_config_error(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RedisStore.from_url(url)


def test_config_errors_hide_the_password() -> None:
    with pytest.raises(ConfigError) as caught:
        RedisStore.from_url("redis://user:s3cret@127.0.0.1:6379/0?bogus=1")
    assert "s3cret" not in str(caught.value)
    assert "user:***@127.0.0.1" in str(caught.value)


@pytest.mark.parametrize("namespace", ["", "a{b}", "{seawall}"])
def test_a_bad_namespace_is_a_config_error(namespace: str) -> None:
    with pytest.raises(ConfigError, match="namespace"):
        RedisStore.from_url("redis://127.0.0.1:6379/0", namespace=namespace)


def test_timeouts_and_limits_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="socket_timeout must be positive"):
        RedisStore.from_url("redis://127.0.0.1:6379/0", socket_timeout=0)
    with pytest.raises(ConfigError, match="socket_connect_timeout must be positive"):
        RedisStore.from_url("redis://127.0.0.1:6379/0?socket_connect_timeout=0")
    with pytest.raises(ConfigError, match="max_connections must be positive"):
        RedisStore.from_url("redis+cluster://127.0.0.1:7000?max_connections=0")
    store = RedisStore.from_url("redis://127.0.0.1:6379/0?socket_timeout=2", socket_timeout=1)
    assert (store.socket_timeout, store.connect_timeout) == (2.0, 1.0)  # the URL wins


def test_accepted_urls() -> None:
    for url in [
        "redis://127.0.0.1:6379/0?socket_timeout=0.5&socket_connect_timeout=0.1",
        "rediss://user:pw@redis.example:6380/1?ssl_ca_certs=/etc/ssl/ca.pem&ssl_cert_reqs=required",
        "unix:///run/redis/redis.sock?db=2",
        "redis+cluster://10.0.0.1:7000,10.0.0.2:7000,[2001:db8::1]:7000/?max_connections=50",
        "rediss+cluster://10.0.0.1:7000?ssl_check_hostname=false",
        "redis+sentinel://10.0.0.1:26379,10.0.0.2,[2001:db8::1]:26379/seawall",
        "redis+sentinel://user:pw@10.0.0.1:26379/seawall/3?socket_timeout=0.5",
        "rediss+sentinel://10.0.0.1/mx-state?db=2&ssl_ca_certs=/etc/ssl/ca.pem",
    ]:
        store = RedisStore.from_url(url)  # parses only: nothing connects before a call
        assert store.cluster == ("+cluster" in url)
        assert store.sentinel == ("+sentinel" in url)


async def test_a_database_number_and_a_unix_socket(
    redis_server: RedisServer, redis_url: str
) -> None:
    on_db = RedisStore.from_url(f"redis://{redis_server.address}/5")
    on_socket = RedisStore.from_url(f"unix://{redis_server.unix_socket}?db=2")
    try:
        await on_db.put("k", b"five")
        await on_socket.put("k", b"two")
    finally:
        await on_db.close()
        await on_socket.close()
    with redis_server.client(5) as five, redis_server.client(2) as two:
        assert five.get("seawall:v:k") == b"five"
        assert two.get("seawall:v:k") == b"two"


def test_replies_are_parsed_by_hiredis() -> None:
    assert "Hiredis" in redis.asyncio.connection.DefaultParser.__name__


# Faults: every one is a StoreError, quickly, and the store recovers by itself


async def _every_call(store: RedisStore, kind: str) -> list[float]:
    """Run each kind of call, expecting StoreError from each, raised for a redis-py error
    of class ``kind``; their durations in seconds (each guarded against a hang)."""
    calls = [
        store.get("k"),
        store.put("k", b"x", ttl_s=60),
        store.incr("k", window_s=W, now=T0),
        store.incr("k", window_s=W, now=T0, amount=0),
        store.decay({"d": (1.0,)}, half_life_s=HALF, now=T0, ttl_s=60),
        store.delete("k"),
    ]
    took = []
    for call in calls:
        start = time.perf_counter()
        where = r"state store redis://127\.0\.0\.1:\d+/0: .* failed \(" + kind + r"\)"
        with pytest.raises(StoreError, match=where):
            await asyncio.wait_for(call, 60)
        took.append(time.perf_counter() - start)
    return took


async def test_redis_down_is_a_quick_store_error_then_recovers(own_server: RedisServer) -> None:
    # A socket timeout far beyond the guard: a pass proves no reply was waited for.
    store = RedisStore.from_url(own_server.url, socket_timeout=30.0)
    try:
        assert await store.incr("k", window_s=W, now=T0) == 1  # the pool has a connection
        own_server.stop()
        assert max(await _every_call(store, "ConnectionError")) < 10  # refused: no wait
        own_server.start()  # empty: no persistence
        assert await store.incr("k", window_s=W, now=T0) == 1
        await store.put("k", b"back")
        assert await store.get("k") == b"back"
    finally:
        await store.close()


async def test_a_hung_redis_times_out_then_recovers(own_server: RedisServer) -> None:
    store = RedisStore.from_url(own_server.url, socket_timeout=0.1)
    try:
        await store.put("k", b"x")
        own_server.pause()
        try:
            took = await _every_call(store, "TimeoutError")
        finally:
            own_server.resume()
        assert min(took) > 0.09  # each call waited for its own socket timeout
        assert await store.get("k") == b"x"  # no late reply read as this one's
        assert await store.incr("n", window_s=W, now=T0) == 1
    finally:
        await store.close()


async def test_out_of_memory_refuses_writes_but_not_reads(own_server: RedisServer) -> None:
    store = RedisStore.from_url(own_server.url)
    try:
        await store.put("kept", b"x")
        await store.incr("c", window_s=W, now=T0, amount=2)
        await store.decay({"d": (1.0,)}, half_life_s=HALF, now=T0, ttl_s=60)
        with own_server.client() as client:
            client.config_set("maxmemory-policy", "noeviction")
            client.config_set("maxmemory", "1mb")

        async def fill() -> None:  # ~900 kB at start: full after a few puts
            for i in range(1000):
                await store.put(f"fill:{i}", b"x" * 16384)

        with pytest.raises(StoreError, match="maxmemory"):
            await fill()
        with pytest.raises(StoreError, match="maxmemory"):
            await store.incr("c", window_s=W, now=T0)
        with pytest.raises(StoreError, match="maxmemory"):
            await store.decay({"d": (1.0,)}, half_life_s=HALF, now=T0, ttl_s=60)
        assert await store.get("kept") == b"x"
        assert await store.incr("c", window_s=W, now=T0, amount=0) == 2
        read = await store.decay({"d": (0.0,)}, half_life_s=HALF, now=T0, ttl_s=60)
        assert read["d"].values == (1.0,)
        await store.delete("kept")  # frees memory: allowed
    finally:
        await store.close()


async def test_closed_store_refuses_calls(redis_url: str) -> None:
    store = RedisStore.from_url(redis_url)
    await store.put("k", b"x")
    await store.close()
    await store.close()  # twice is fine
    with pytest.raises(StoreError, match="closed"):
        await store.get("k")


# Processes and event loops


def _forked_child(store: RedisStore) -> None:
    async def work() -> None:
        for _ in range(10):
            await store.incr("k", window_s=W, now=T0)
        await store.close()

    asyncio.run(work())


async def test_an_instance_inherited_across_fork_reconnects(target: Target) -> None:
    """What `seawall serve` does: a store used before fork() is used in the workers."""
    store = RedisStore.from_url(target.url)
    try:
        await store.incr("k", window_s=W, now=T0)  # the parent's client and pool exist
        context = multiprocessing.get_context("fork")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads, 3.12+
            children = [context.Process(target=_forked_child, args=(store,)) for _ in range(2)]
            for child in children:
                child.start()
        for child in children:
            await asyncio.to_thread(child.join, 30)
        assert [child.exitcode for child in children] == [0, 0]
        assert await store.incr("k", window_s=W, now=T0, amount=0) == 21
    finally:
        await store.close()


def test_a_store_follows_a_new_event_loop(redis_url: str) -> None:
    store = RedisStore.from_url(redis_url)

    async def add() -> int:
        return await store.incr("k", window_s=W, now=T0)

    assert asyncio.run(add()) == 1
    assert asyncio.run(add()) == 2
    asyncio.run(store.close())


# A Redis Cluster


async def test_cluster_decay_updates_keys_in_different_slots(
    redis_cluster: RedisClusterServers, redis_cluster_url: str
) -> None:
    store = RedisStore.from_url(redis_cluster_url)
    keys = [f"rep:192.0.2.{i}" for i in range(12)] + ["{net:192.0.2.0}:a", "{net:192.0.2.0}:b"]
    names = [store.key("d", key).encode() for key in keys]
    assert len({key_slot(name) for name in names}) == 13  # the two tagged keys share one
    try:
        add = {key: (1.0, float(i)) for i, key in enumerate(keys)}
        first = await store.decay(add, half_life_s=HALF, now=T0, ttl_s=60)
        assert {key: d.values for key, d in first.items()} == add
        # Every master holds some of them: one call wrote on all three.
        held = [keys_with_ttls([master]) for master in redis_cluster.masters]
        assert all(held)
        assert sorted(name for keys_on in held for name in keys_on) == sorted(names)
        later = await store.decay(add, half_life_s=HALF, now=T0 + HALF, ttl_s=60)
        for i, key in enumerate(keys):
            assert later[key].values == pytest.approx((1.5, 1.5 * i))
            assert (later[key].first, later[key].last) == (T0, T0 + HALF)
        read = await store.decay(
            dict.fromkeys(keys, (0.0, 0.0)), half_life_s=HALF, now=T0 + HALF, ttl_s=60
        )
        assert {key: d.values for key, d in read.items()} == {
            key: d.values for key, d in later.items()
        }
    finally:
        await store.close()


async def test_cluster_delete_spans_slots(
    redis_cluster: RedisClusterServers, redis_cluster_url: str
) -> None:
    store = RedisStore.from_url(redis_cluster_url)
    try:
        names = [store.key(kind, "k").encode() for kind in "vcd"]
        assert len({key_slot(name) for name in names}) == 3
        await store.put("k", b"x")
        await store.incr("k", window_s=W, now=T0)
        await store.decay({"k": (1.0,)}, half_life_s=HALF, now=T0, ttl_s=60)
        assert len(keys_with_ttls(redis_cluster.masters)) == 3
        await store.delete("k")
        assert keys_with_ttls(redis_cluster.masters) == {}
    finally:
        await store.close()
