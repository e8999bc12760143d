"""A Redis Cluster master killed (SIGKILL) under the store and the classifier's weights.

The cluster is three masters each with a replica and a 1 s ``cluster-node-timeout``
(``redis_ha_cluster`` in tests/redis_servers.py).  Before each kill every master's writes
are acknowledged by its replica (``WAIT``), so nothing written is lost with the master and
the test is deterministic.  What the store declares (store/redis.py): every Redis error
is a quick StoreError, no retries, and it recovers by itself, without being reopened.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from tests.redis_servers import (  # noqa: F401
    RedisHaCluster,
    RedisServer,
    redis_ha_cluster,
    redis_ha_cluster_url,
)

from seawall.classifier import Classifier
from seawall.classifier.redis_weights import RedisWeights
from seawall.config import ClassifierSettings
from seawall.errors import StoreError
from seawall.message import Message, parse_message
from seawall.store.redis import RedisStore

T0 = 1_008_000.0  # a bucket boundary, as in test_contract.py
W = 60.0
HALF = 3600.0
KEYS = [f"k{i}" for i in range(240)]  # their counter, value and decay keys span all masters
# A call during the outage: a refused connection, or CLUSTERDOWN (redis-py sleeps 0.25 s
# before raising it). The busy store's socket timeout is BUSY_TIMEOUT_S, so a call that
# waited for a reply instead would take that long: QUICK_S tells the two apart on any load.
BUSY_TIMEOUT_S = 30.0
QUICK_S = BUSY_TIMEOUT_S / 3
OUTAGE_S = 20.0  # the failover itself takes 2-3 s


async def _write_everything(store: RedisStore) -> None:
    for i, key in enumerate(KEYS):
        await store.incr(key, window_s=W, now=T0, amount=i + 1)
        await store.put(key, f"value {i}".encode())
    # One call spanning every slot of the decay keys: one script per slot, in a pipeline.
    await store.decay(
        {key: (float(i), 1.0) for i, key in enumerate(KEYS)}, half_life_s=HALF, now=T0, ttl_s=600
    )


async def _assert_everything_there(store: RedisStore) -> None:
    for i, key in enumerate(KEYS):
        assert await store.incr(key, window_s=W, now=T0, amount=0) == i + 1, key
        assert await store.get(key) == f"value {i}".encode(), key
    read = await store.decay(dict.fromkeys(KEYS, (0.0, 0.0)), half_life_s=HALF, now=T0, ttl_s=600)
    assert {key: d.values for key, d in read.items()} == {
        key: (float(i), 1.0) for i, key in enumerate(KEYS)
    }


async def test_a_killed_master_fails_over_and_the_store_carries_on(
    redis_ha_cluster: RedisHaCluster,  # noqa: F811
    redis_ha_cluster_url: str,  # noqa: F811
) -> None:
    cluster = redis_ha_cluster
    # called all through the outage
    busy = RedisStore.from_url(redis_ha_cluster_url, socket_timeout=BUSY_TIMEOUT_S)
    idle = RedisStore.from_url(redis_ha_cluster_url)  # not called during it: a stale slot map
    try:
        await _write_everything(busy)
        masters = cluster.masters()
        for kind in "cvd":  # spread over every master
            assert {cluster.master_of(busy.key(kind, k)).port for k in KEYS} == {
                m.port for m in masters
            }, kind
        victim = cluster.master_of(busy.key("v", KEYS[0]))
        on_victim = [k for k in KEYS if cluster.master_of(busy.key("v", k)) is victim]
        elsewhere = next(k for k in KEYS if cluster.master_of(busy.key("v", k)) is not victim)
        (replica,) = cluster.replicas_of(victim)
        await idle.get(on_victim[0])  # idle holds a connection to the victim and its slot map
        cluster.sync_replicas()  # WAIT: every write so far is on the replicas too

        killed = time.monotonic()
        cluster.kill(victim)

        # (a) During the outage every call is a quick StoreError, never a hang.
        failed: list[float] = []
        other: list[tuple[bool, float]] = []  # a key of a surviving master: (ok, seconds)
        spanning: list[tuple[bool, float]] = []  # a decay over every master's slots
        while True:
            assert time.monotonic() - killed < OUTAGE_S, "no call succeeded after the kill"
            started = time.perf_counter()
            try:
                assert await busy.get(on_victim[0]) == b"value 0"
                break
            except StoreError:
                failed.append(time.perf_counter() - started)
            started = time.perf_counter()
            try:
                await busy.get(elsewhere)
                other.append((True, time.perf_counter() - started))
            except StoreError:
                other.append((False, time.perf_counter() - started))
            started = time.perf_counter()
            try:
                await busy.decay(
                    dict.fromkeys(KEYS, (0.0, 0.0)), half_life_s=HALF, now=T0, ttl_s=600
                )
                spanning.append((True, time.perf_counter() - started))
            except StoreError:
                spanning.append((False, time.perf_counter() - started))
            await asyncio.sleep(0.05)
        back_after = time.monotonic() - killed
        assert failed, "the first call after the kill succeeded: was the master killed?"
        assert max(failed) < QUICK_S, failed
        assert max(took for _, took in other) < QUICK_S, other
        assert max(took for _, took in spanning) < QUICK_S, spanning
        assert not any(ok for ok, _ in spanning[:-1])  # a slot of the dead master each time

        # (b) The replica took over; the store works again without being reopened.
        promoted = cluster.wait_failover(victim)
        failover_s = time.monotonic() - killed
        assert promoted is replica
        idle_failures = 0
        while True:
            try:
                assert await idle.get(on_victim[0]) == b"value 0"
                break
            except StoreError:
                # redis-py learns the new slot map only after a call fails on the dead
                # node: that call is a StoreError, the next one goes to the promoted replica
                idle_failures += 1
                assert idle_failures <= 1, "the idle store did not refresh its slot map"
        # (c) What was written before the kill (and acknowledged by WAIT) is all there.
        await _assert_everything_there(busy)
        await _assert_everything_there(idle)
        # Writes go to the promoted replica too, from both stores.
        assert await busy.incr(on_victim[0], window_s=W, now=T0) == 2
        assert await idle.incr(on_victim[0], window_s=W, now=T0) == 3
        await idle.put(on_victim[1], b"after")
        assert await busy.get(on_victim[1]) == b"after"
        with promoted.client() as client:
            assert client.get(busy.key("v", on_victim[1])) == b"after"
        print(
            f"\nfailover: {len(failed)} calls failed on the dead master's slots, the slowest"
            f" {max(failed) * 1000:.1f} ms; {sum(not ok for ok, _ in other)} of {len(other)}"
            f" calls on a surviving master failed, the slowest"
            f" {max(t for _, t in other) * 1000:.1f} ms; {sum(not ok for ok, _ in spanning)}"
            f" of {len(spanning)} decays over every master failed, the slowest"
            f" {max(t for _, t in spanning) * 1000:.1f} ms; the busy store worked again"
            f" {back_after:.2f} s after the kill, the cluster reported the failover after"
            f" {failover_s:.2f} s; the idle store failed {idle_failures} call(s) first"
        )
    finally:
        await busy.close()
        await idle.close()


def _settings() -> ClassifierSettings:
    return ClassifierSettings(hash_bits=16, reload_interval_s=0.0, min_learns=2)


def _message(i: int, spam: bool) -> Message:
    body = (
        "Replica watches at a fraction of the price, cheap pills, order today now!"
        if spam
        else "Shall we meet at noon by the old station? Bring the papers for the review."
    )
    head = f"From: a@example.com\nTo: b@example.org\nSubject: note {i}\nMessage-ID: <{i}@x>\n"
    return parse_message(f"{head}\n{body} {i}\n".encode())


def test_the_classifier_weights_survive_a_failover(
    redis_ha_cluster: RedisHaCluster,  # noqa: F811
    redis_ha_cluster_url: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from seawall.classifier import redis_weights

    # After a failed reload check the scanner waits this long before it checks again
    # (10 s in production, to spare its event loop while Redis hangs).
    monkeypatch.setattr(redis_weights, "_PROBE_BACKOFF_S", 0.5)
    cluster = redis_ha_cluster
    learner = Classifier(RedisWeights(redis_ha_cluster_url), _settings())
    scanner = Classifier(RedisWeights(redis_ha_cluster_url), _settings())
    probe = _message(1000, True)
    try:
        for i in range(6):
            learner.learn(_message(i, i % 2 == 0), i % 2 == 0)
        assert scanner.counts == (3, 3)
        margin = scanner.margin(probe)
        assert margin > 0
        # Every classifier key is in the {classifier} slot: kill the master serving it.
        victim = cluster.master_of("seawall:{classifier}:meta")
        (replica,) = cluster.replicas_of(victim)
        cluster.sync_replicas()
        killed = time.monotonic()
        cluster.kill(victim)

        # A reload during the outage keeps the weights it has, without raising: the check
        # tries once, for at most 0.1 s.
        started = time.monotonic()
        assert scanner.store.changed() is False
        reload_s = time.monotonic() - started
        assert scanner.margin(probe) == margin

        promoted = cluster.wait_failover(victim)
        failover_s = time.monotonic() - killed
        assert promoted is replica
        # The learned model was replicated: the same counts and margins on the replica.
        fresh = Classifier(RedisWeights(redis_ha_cluster_url), _settings())
        try:
            assert fresh.counts == (3, 3)
            assert fresh.margin(probe) == margin
        finally:
            fresh.close()
        # Learning goes on, on the promoted replica, and the other process sees it.
        started = time.monotonic()
        assert learner.learn(_message(100, True), True)
        learn_s = time.monotonic() - started
        learner.learn(_message(101, False), False)
        time.sleep(max(0.0, 0.5 - (time.monotonic() - started)))  # the backoff has passed
        assert scanner.counts == (4, 4)
        assert scanner.margin(probe) != margin
        with promoted.client() as client:
            assert client.hget("seawall:{classifier}:meta", "spam") == b"4"
        print(
            f"\nclassifier failover: a reload during the outage took {reload_s:.2f} s and kept"
            f" the weights; the cluster reported the failover after {failover_s:.2f} s; the"
            f" first learn after it took {learn_s * 1000:.0f} ms"
        )
    finally:
        learner.close()
        scanner.close()
