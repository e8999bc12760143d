"""``RedisStore``: the Store on Redis or a Redis Cluster, shared by several MX nodes.

Open it with ``RedisStore.from_url(url, namespace="seawall")``:

``redis://[user:password@]host:port/db``   one server (``db`` defaults to 0)
``rediss://…``                             the same over TLS
``unix:///path/to/redis.sock?db=N``        one server on a Unix socket
``redis+cluster://[user:password@]host:port,host:port,…``
                                           a Redis Cluster; the comma-separated nodes are
                                           seeds (one is enough, more survive a seed's
                                           outage), the rest of the cluster is discovered
``rediss+cluster://…``                     a Redis Cluster over TLS
``redis+sentinel://[user:password@]host:port,host:port,…/service_name[/db]``
                                           a master and its replicas watched by Redis
                                           Sentinel: the comma-separated hosts are the
                                           Sentinels (port 26379 by default; one is enough,
                                           more survive a Sentinel's outage), asked for the
                                           address of the master named ``service_name``;
                                           the credentials and ``db`` are the master's
``rediss+sentinel://…``                    the same with TLS to the master (the Sentinels
                                           are asked in clear, without credentials)

Query options: ``socket_timeout`` and ``socket_connect_timeout`` (seconds; by default the
``socket_timeout`` given to ``from_url``, 0.25 s), ``max_connections`` (calls in flight per
process, default 32: each holds a connection, one per master in a Cluster; more wait for
one up to the socket timeout), ``client_name``, ``health_check_interval``, ``db`` (not for a
cluster), and for TLS ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``, ``ssl_cert_reqs``
and ``ssl_check_hostname``; on Sentinel URLs ``sentinel_timeout`` (below).  Anything else is
a :class:`~seawall.errors.ConfigError`.  Error messages show the URL without its password.

Key layout (``ns`` is the namespace, ``key`` the caller's key as it is):

``ns:c:key``  a sliding-window counter: one hash, one field per bucket number holding that
              bucket's count.  One key per counter rather than one per bucket: a hash of
              at most ``BUCKETS`` small fields is a listpack, a few bytes a field, where
              each Redis key costs a dict entry, an expiry entry and an object (~70 bytes);
              the script then touches one key (one slot in a Cluster), and a read is one
              HMGET.  Each add drops the buckets that have left the window and sets the TTL
              to when the newest bucket leaves it (0.9 to 1.0 window from now); the TTL only
              ever grows, so a node whose clock lags cannot cut another's buckets short.
``ns:v:key``  a value (``put``, ``claim``): a string, with ``PX`` when it has a ``ttl_s``;
              a put without one is kept until overwritten or deleted, as the caller asked
``ns:d:key``  decaying counters: one string of packed little-endian doubles (``since``,
              ``first``, ``last``, the counters), exact both ways, ``PX`` ``ttl_s`` from
              the last add

Every counter and decay key expires by itself; nothing ever lists keys (no KEYS, no SCAN).

Round trips: ``incr`` one EVALSHA (a Lua script adds to the bucket, drops stale ones, sums
the live ones and extends the TTL); ``incr(amount=0)`` one HMGET of the window's buckets;
``get``, ``put`` one GET, SET (a ``ttl_s`` under 1 ms is a DEL: the value reads as missing
at once); ``claim`` one EVALSHA (GET, then SET PX if the lease is free or the caller's);
``delete`` one DEL of the three keys; ``decay`` one EVALSHA over all its keys, or one MGET
when it only reads (so reads still work when ``maxmemory`` refuses writes).  A script the
server does not know (first use, restart, SCRIPT FLUSH) costs a SCRIPT LOAD and a second
EVALSHA, once.

Redis Cluster: a script may only touch keys of one slot, so ``decay`` groups its keys by
slot and runs the script once per slot, all in one pipeline (redis-py sends each master its
share concurrently: one round trip per master, in parallel); ``delete`` and the read-only
``decay`` are split by slot the same way.  Each key's read-modify-write is atomic; keys of
one slot are updated together.  Keys hash by the Cluster's rule and neither the namespace
nor the layout adds braces, so callers that want keys updated in one step give them a
common ``{hash tag}``.  A call that fails may have updated the slots of the masters that
answered.

Failures: every Redis error (refused or dropped connection, timeout, OOM under
``maxmemory``, cluster errors) is a :class:`~seawall.errors.StoreError`, raised at once
without a retry (a retry after a timeout could add twice; the callers fail open).  A dead
Redis costs a call at most the connect timeout, a hung one the socket timeout.  The pool
checks a connection before reusing it, so the first call after Redis is back reconnects.

Sentinel: each new connection first asks the Sentinels, in turn until one answers, where
the master is (a Sentinel that is down costs a refused connection, a hung one the
Sentinel timeout), then connects to it; nothing is asked while the connections last.
``sentinel_timeout`` bounds each connection to a Sentinel and each answer from it; by
default ``SENTINEL_TIMEOUT_S`` (1 s), or the store's own timeouts where they are longer.
Longer than the calls' own: a lookup is two processes and two round trips more than a
call, a burst of calls on new connections asks the Sentinels all at once, and on a busy
host a lookup that gave up at a quarter of a second failed every one of those calls, where
Redis's own clients wait seconds.  A hung Sentinel then costs a new connection that long
before the next Sentinel is asked.  When the
master dies its connections fail, and calls are StoreErrors until the Sentinels agree it
is down and promote a replica (``down-after-milliseconds`` plus the election, a few
seconds), then the next call connects to the new master: no call waits for the failover,
nothing needs reopening.  A master demoted to replica answers writes with READONLY, which
drops the connection the same way.  Writes the master took but had not yet replicated are
lost with it, as Redis replication is asynchronous.

Fork and event loops: the client and its pool are made on first use in each process and
event loop; one made before ``fork()`` or on another loop is never used or closed again
(its sockets belong to the parent, or to that loop), so ``seawall serve`` may build the
store in the supervisor and use it in every worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import struct
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import ConnectionPool, parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.client import Redis as SyncRedis
from redis.cluster import ClusterNode as SyncClusterNode
from redis.cluster import RedisCluster as SyncRedisCluster
from redis.commands.core import AsyncScript
from redis.crc import key_slot
from redis.exceptions import NoScriptError, RedisClusterException, RedisError
from redis.sentinel import Sentinel as SyncSentinel
from redis.sentinel import SentinelConnectionPool as SyncSentinelConnectionPool
from redis.typing import EncodableT

from seawall.config import redact_url
from seawall.errors import ConfigError, StoreError
from seawall.store.base import BUCKETS, ERRORS, Decayed, bucket_expiry, bucket_range, decayed

DEFAULT_TIMEOUT_S = 0.25
# Each connection to a Sentinel and each answer from it (the master lookup); see above.
SENTINEL_TIMEOUT_S = 1.0
# Calls in flight per process (each needs a connection; a Cluster's pipeline one per master);
# more wait for one to finish, up to the socket timeout.  ``?max_connections=`` sets it.
DEFAULT_MAX_CONNECTIONS = 32

# KEYS[1] the counter's hash; ARGV: the current bucket, BUCKETS, the amount, the TTL in ms.
_INCR = """
local key = KEYS[1]
local last = tonumber(ARGV[1])
local first = last - tonumber(ARGV[2]) + 1
redis.call('HINCRBY', key, ARGV[1], ARGV[3])
local fields = redis.call('HGETALL', key)
local total, stale = 0, {}
for i = 1, #fields, 2 do
    local bucket = tonumber(fields[i])
    if bucket < first then
        stale[#stale + 1] = fields[i]
    elseif bucket <= last then
        total = total + tonumber(fields[i + 1])
    end
end
if #stale > 0 then
    redis.call('HDEL', key, unpack(stale))
end
local ttl = tonumber(ARGV[4])
if redis.call('PTTL', key) < ttl then
    redis.call('PEXPIRE', key, ttl)
end
return total
"""

# KEYS[1] a lease's value key; ARGV: the claimant's value, the TTL in ms.  Returns what the
# key holds after: the claimant's value when it took or renewed the lease.
_CLAIM = """
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[1] then
    return held
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]
"""

# KEYS: decay keys; ARGV: now, the half-life, the TTL in ms, then each key's amounts as
# packed little-endian doubles.  Returns, per key, its first, last and counters packed the
# same way, or false (nil) for a key that is missing and only read.  Numbers go in and out
# as packed doubles because Lua numbers returned to Redis are truncated to integers.
_DECAY = """
local now = tonumber(ARGV[1])
local half_life = tonumber(ARGV[2])
local ttl = ARGV[3]
local out = {}
for i, key in ipairs(KEYS) do
    local packed = ARGV[3 + i]
    local n = #packed / 8
    local amounts, adding = {}, false
    for j = 1, n do
        amounts[j] = struct.unpack('<d', packed, 8 * j - 7)
        if amounts[j] ~= 0 then adding = true end
    end
    local row = redis.call('GET', key)
    local values, since, first, last
    if row and #row == 8 * (n + 3) then
        since, first, last = struct.unpack('<ddd', row)
        local factor = 0.5 ^ (math.max(0, now - since) / half_life)
        values = {}
        for j = 1, n do
            values[j] = struct.unpack('<d', row, 8 * j + 17) * factor
        end
        since = math.max(now, since)
    elseif adding then
        values = {}
        for j = 1, n do values[j] = 0 end
        since, first, last = now, now, now
    end
    if values == nil then
        out[i] = false
    else
        local parts = {}
        for j = 1, n do
            if adding then values[j] = values[j] + amounts[j] end
            parts[j] = struct.pack('<d', values[j])
        end
        if adding then
            last = math.max(last, now)
            redis.call('SET', key, struct.pack('<ddd', since, first, last) .. table.concat(parts),
                'PX', ttl)
        end
        out[i] = struct.pack('<dd', first, last) .. table.concat(parts)
    end
end
return out
"""

# Query options accepted in a URL; TLS ones only with rediss.
_OPTIONS = {
    "socket_timeout",
    "socket_connect_timeout",
    "client_name",
    "health_check_interval",
    "max_connections",
    "db",
}
_TLS_OPTIONS = {
    "ssl_ca_certs",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_cert_reqs",
    "ssl_check_hostname",
}
_SCHEMES = (
    "redis",
    "rediss",
    "unix",
    "redis+cluster",
    "rediss+cluster",
    "redis+sentinel",
    "rediss+sentinel",
)
_SENTINEL_PORT = 26379

# Clients made before fork() or on an event loop since gone: never used or closed again
# (their sockets belong to the parent, or to that loop), only kept from the collector.
_ABANDONED: list[object] = []

_Client = Redis | RedisCluster


@dataclass(frozen=True, slots=True)
class _Endpoint:
    where: str  # the URL without credentials, for messages
    url: str
    # A cluster's seed nodes, or the Sentinels; () for a single server.
    nodes: tuple[tuple[str, int], ...]
    options: dict[str, Any]  # connection options from the URL's query and credentials
    service: str = ""  # the master's name on the Sentinels; "" without Sentinels
    sentinel_timeout: float | None = None  # the URL's ?sentinel_timeout=, if any

    @property
    def cluster(self) -> bool:
        return bool(self.nodes) and not self.service


@dataclass(slots=True)
class _Connection:
    """The client of one process and event loop, with its scripts registered."""

    client: _Client
    pid: int
    loop: asyncio.AbstractEventLoop
    incr: AsyncScript
    claim: AsyncScript
    decay: AsyncScript
    slots: asyncio.Semaphore  # calls in flight, each on its own connection (per master)


class RedisStore:
    """The Store on Redis; see the module docstring for the URL forms and the key layout.

    Nothing connects before the first call, in the process and event loop that makes it.
    """

    def __init__(
        self,
        endpoint: _Endpoint,
        *,
        namespace: str,
        socket_timeout: float,
        connect_timeout: float,
    ) -> None:
        self._endpoint = endpoint
        self.namespace = namespace
        options = endpoint.options  # a URL's own options win
        self.socket_timeout: float = options.get("socket_timeout", socket_timeout)
        self.connect_timeout: float = options.get("socket_connect_timeout", connect_timeout)
        self.max_connections: int = options.get("max_connections", DEFAULT_MAX_CONNECTIONS)
        # Sentinel: the master lookup's connect and reply timeouts (see the docstring).
        self.sentinel_timeouts = _sentinel_timeouts(
            endpoint, self.socket_timeout, self.connect_timeout
        )
        self._conn: _Connection | None = None
        self._closed = False

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        namespace: str = "seawall",
        socket_timeout: float = DEFAULT_TIMEOUT_S,
        connect_timeout: float | None = None,
    ) -> RedisStore:
        """A store on ``url``; raises :class:`ConfigError` for a URL or namespace it refuses.

        ``socket_timeout`` bounds each reply and ``connect_timeout`` (default: the same)
        each connection attempt; a URL's own ``?socket_timeout=`` wins over both.
        """
        if not namespace or "{" in namespace or "}" in namespace:
            raise ConfigError(
                f"Redis namespace {namespace!r}: it must be non-empty and without braces"
                " (braces would pick the Redis Cluster slot of every key)"
            )
        store = cls(
            _parse(url),
            namespace=namespace,
            socket_timeout=socket_timeout,
            connect_timeout=socket_timeout if connect_timeout is None else connect_timeout,
        )
        for name, value in (
            ("socket_timeout", store.socket_timeout),
            ("socket_connect_timeout", store.connect_timeout),
            ("max_connections", store.max_connections),
            ("sentinel_timeout", min(store.sentinel_timeouts.values())),
        ):
            if not value > 0:  # also refuses NaN
                raise ConfigError(f"Redis URL {store._endpoint.where!r}: {name} must be positive")
        return store

    @property
    def cluster(self) -> bool:
        """True when the store is on a Redis Cluster."""
        return self._endpoint.cluster

    @property
    def sentinel(self) -> bool:
        """True when the store finds its master through Redis Sentinel."""
        return bool(self._endpoint.service)

    def __repr__(self) -> str:
        return f"RedisStore({self._endpoint.where!r}, namespace={self.namespace!r})"

    def key(self, kind: str, key: str) -> str:
        """The Redis key of ``key``: ``kind`` is ``c`` (counter), ``v`` (value), ``d`` (decay)."""
        return f"{self.namespace}:{kind}:{key}"

    async def incr(self, key: str, *, window_s: float, now: float, amount: int = 1) -> int:
        first, last = bucket_range(now, window_s)
        name = self.key("c", key)
        async with self._call("incr") as conn:
            if not amount:
                counts = await conn.client.hmget(name, [str(b) for b in range(first, last + 1)])
                return sum(int(c) for c in counts if c is not None)
            ttl_ms = _ms(bucket_expiry(last, window_s) - now)
            total = await conn.incr(keys=[name], args=[last, BUCKETS, int(amount), ttl_ms])
        return int(total)

    async def get(self, key: str) -> bytes | None:
        async with self._call("get") as conn:
            value = await conn.client.get(self.key("v", key))
        if isinstance(value, str):  # only with decode_responses, which this client never sets
            return value.encode()
        return value

    async def put(self, key: str, value: bytes, *, ttl_s: float | None = None) -> None:
        name = self.key("v", key)
        async with self._call("put") as conn:
            if ttl_s is None:
                await conn.client.set(name, bytes(value))
            elif ttl_s * 1000 < 1:  # gone already: Redis refuses PX 0
                await conn.client.delete(name)
            else:
                await conn.client.set(name, bytes(value), px=_ms(ttl_s))

    async def claim(self, key: str, value: bytes, *, ttl_s: float) -> bytes:
        async with self._call("claim") as conn:
            held = await conn.claim(keys=[self.key("v", key)], args=[bytes(value), _ms(ttl_s)])
        return bytes(held)

    async def decay(
        self,
        updates: Mapping[str, Sequence[float]],
        *,
        half_life_s: float,
        now: float,
        ttl_s: float,
    ) -> dict[str, Decayed]:
        decayed((), now, now, half_life_s)  # validates half_life_s in the caller
        items = [(key, tuple(map(float, amounts))) for key, amounts in updates.items()]
        if not items:
            return {}
        names = [self.key("d", key) for key, _ in items]
        out: dict[str, Decayed] = {}
        if not any(any(amounts) for _, amounts in items):  # reads only: no script, no write
            async with self._call("decay") as conn:
                if isinstance(conn.client, RedisCluster):
                    rows = await conn.client.mget_nonatomic(names)
                else:
                    rows = await conn.client.mget(names)
            for (key, amounts), row in zip(items, rows, strict=True):
                n = len(amounts)
                if row is not None and len(row) == 8 * (n + 3):
                    since, first, last, *values = struct.unpack(f"<{n + 3}d", row)
                    out[key] = Decayed(tuple(decayed(values, since, now, half_life_s)), first, last)
            return out
        head: list[EncodableT] = [repr(float(now)), repr(float(half_life_s)), _ms(ttl_s)]
        packed = [struct.pack(f"<{len(amounts)}d", *amounts) for _, amounts in items]
        async with self._call("decay") as conn:
            if isinstance(conn.client, RedisCluster):
                results = await self._decay_by_slot(conn, names, packed, head)
            else:
                results = await conn.decay(keys=names, args=[*head, *packed])
        for (key, amounts), result in zip(items, results, strict=True):
            if result is not None:
                first, last, *values = struct.unpack(f"<{len(amounts) + 2}d", result)
                out[key] = Decayed(tuple(values), first, last)
        return out

    async def delete(self, key: str) -> None:
        names = [self.key(kind, key) for kind in ("v", "c", "d")]
        async with self._call("delete") as conn:
            if isinstance(conn.client, RedisCluster):
                pipe = conn.client.pipeline()
                for group in _by_slot(names).values():
                    pipe.delete(*(names[i] for i in group))
                await pipe.execute()
            else:
                await conn.client.delete(*names)

    @contextlib.asynccontextmanager
    async def session(self, what: str) -> AsyncIterator[Redis | RedisCluster]:
        """This process's client for one call of a layer that keeps keys of its own (the
        verdict history): within the limit of calls in flight, and every Redis error a
        :class:`StoreError` naming ``what``.  Keys are the caller's to name (``key()``)."""
        async with self._call(what) as conn:
            yield conn.client

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if conn.pid != os.getpid() or conn.loop is not asyncio.get_running_loop():
            _ABANDONED.append(conn)
            return
        with contextlib.suppress(RedisError, RedisClusterException, OSError):
            await conn.client.aclose()

    async def _decay_by_slot(
        self, conn: _Connection, names: list[str], packed: list[bytes], head: list[EncodableT]
    ) -> list[bytes | None]:
        """The decay script once per slot, all in one pipeline; results in ``names`` order."""
        assert isinstance(conn.client, RedisCluster)
        groups = list(_by_slot(names).values())
        results: list[bytes | None] = [None] * len(names)
        pending = list(range(len(groups)))
        for attempt in range(2):
            pipe = conn.client.pipeline()
            for g in pending:
                keys = [names[i] for i in groups[g]]
                args = head + [packed[i] for i in groups[g]]
                pipe.evalsha(conn.decay.sha, len(keys), *keys, *args)
            replies = await pipe.execute(raise_on_error=False)
            missing = []
            for g, reply in zip(pending, replies, strict=True):
                if isinstance(reply, NoScriptError) and attempt == 0:
                    missing.append(g)  # not run on that master: safe to run again
                elif isinstance(reply, Exception):
                    raise reply
                else:
                    for i, result in zip(groups[g], reply, strict=True):
                        results[i] = result
            if not missing:
                break
            await conn.client.script_load(_DECAY)  # on every master
            pending = missing
        return results

    def _connection(self) -> _Connection:
        """This process's and event loop's client, made on first use."""
        if self._closed:
            raise StoreError(f"the state store {self._endpoint.where} is closed")
        loop = asyncio.get_running_loop()
        conn = self._conn
        if conn is not None and conn.pid == os.getpid() and conn.loop is loop:
            return conn
        if conn is not None:
            _ABANDONED.append(conn)
        self._conn = None
        client = self._client()
        self._conn = _Connection(
            client,
            os.getpid(),
            loop,
            client.register_script(_INCR),
            client.register_script(_CLAIM),
            client.register_script(_DECAY),
            asyncio.Semaphore(self.max_connections),
        )
        return self._conn

    def _client(self) -> _Client:
        endpoint = self._endpoint
        # No retries: a retry after a timeout could add twice, and the caller fails open.
        retry = Retry(NoBackoff(), 0)
        options = endpoint.options | {
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.connect_timeout,
            "max_connections": self.max_connections,
        }
        with self._errors("connect"):
            if endpoint.service:
                sentinels = Sentinel(
                    endpoint.nodes,
                    sentinel_kwargs={**self.sentinel_timeouts, "retry": retry},
                )
                # The pool asks the Sentinels for the master on each new connection.
                master: _SentinelMaster = sentinels.master_for(
                    endpoint.service, redis_class=_SentinelMaster, retry=retry, **options
                )
                return master
            if endpoint.nodes:
                nodes = [ClusterNode(host, port) for host, port in endpoint.nodes]
                return RedisCluster(startup_nodes=nodes, retry=retry, **options)
            # from_pool: the client owns the pool, and aclose() closes its connections
            return Redis.from_pool(ConnectionPool(retry=retry, **options))

    @contextlib.asynccontextmanager
    async def _call(self, what: str) -> AsyncIterator[_Connection]:
        """This process's client for one call, within the limit of calls in flight."""
        conn = self._connection()
        try:
            async with asyncio.timeout(self.socket_timeout):
                await conn.slots.acquire()
        except TimeoutError:
            raise StoreError(
                f"state store {self._endpoint.where}: {what} failed: {self.max_connections}"
                f" calls (max_connections) still in flight after {self.socket_timeout} s"
            ) from None
        try:
            with self._errors(what):
                yield conn
        finally:
            conn.slots.release()

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except (RedisError, RedisClusterException, OSError) as exc:
            kind = type(exc).__name__
            ERRORS["redis"] += 1
            raise StoreError(
                f"state store {self._endpoint.where}: {what} failed ({kind}): {exc}"
            ) from None


class _SentinelMaster(Redis):
    """The master's client from ``Sentinel.master_for``: closing it also closes the
    Sentinels' own clients, which nothing else holds."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        try:
            await super().aclose(close_connection_pool)
        finally:
            pool = self.connection_pool
            if isinstance(pool, SentinelConnectionPool):
                await pool.sentinel_manager.aclose()


def _sentinel_timeouts(
    endpoint: _Endpoint, socket_timeout: float, connect_timeout: float
) -> dict[str, float]:
    """The Sentinels' ``socket_timeout`` and ``socket_connect_timeout``: the URL's
    ``sentinel_timeout``, else ``SENTINEL_TIMEOUT_S`` or the store's own when longer."""
    if endpoint.sentinel_timeout is not None:
        reply = connect = endpoint.sentinel_timeout
    else:
        reply = max(SENTINEL_TIMEOUT_S, socket_timeout)
        connect = max(SENTINEL_TIMEOUT_S, connect_timeout)
    return {"socket_timeout": reply, "socket_connect_timeout": connect}


def _ms(seconds: float) -> int:
    """Whole milliseconds, rounded up and at least one: Redis refuses an expiry of 0."""
    return max(1, math.ceil(seconds * 1000))


def _by_slot(names: Sequence[str]) -> dict[int, list[int]]:
    """Indexes of ``names`` grouped by Redis Cluster slot, in order."""
    groups: dict[int, list[int]] = {}
    for i, name in enumerate(names):
        groups.setdefault(key_slot(name.encode()), []).append(i)
    return groups


def _parse(url: str) -> _Endpoint:
    """Check ``url`` and split it into what the clients need; ConfigError when it is wrong."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    where = redact_url(url)
    if not sep or scheme not in _SCHEMES:
        known = ", ".join(f"{s}://" for s in _SCHEMES)
        raise ConfigError(f"Redis URL {where!r}: unknown scheme (expected {known})")
    tls = scheme.startswith("rediss")
    query = urlsplit(url).query if "?" in url else ""
    cluster = scheme.endswith("+cluster")
    sentinel = scheme.endswith("+sentinel")
    allowed = (_OPTIONS - ({"db"} if cluster else set())) | (_TLS_OPTIONS if tls else set())
    if sentinel:
        allowed.add("sentinel_timeout")
    unknown = sorted({name for name, _ in parse_qsl(query)} - allowed)
    if unknown:
        raise ConfigError(
            f"Redis URL {where!r}: unknown option {', '.join(unknown)}"
            f" (known: {', '.join(sorted(allowed))})"
        )
    if not cluster and not sentinel:
        try:
            options: dict[str, Any] = dict(parse_url(url))
        except ValueError as exc:
            raise ConfigError(f"Redis URL {where!r}: {exc}") from None
        return _Endpoint(where=where, url=url, nodes=(), options=options)
    # Several host:port in the netloc, which urllib cannot parse in one go.
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    netloc, tail = rest[:end], rest[end:]
    userinfo, _, hosts = netloc.rpartition("@")
    path = tail.partition("?")[0]
    service, db = "", None
    if cluster and path not in ("", "/", "/0"):
        raise ConfigError(f"Redis URL {where!r}: a Redis Cluster has only database 0")
    if sentinel:
        service, db = _service_and_db(path, where)
    nodes: list[tuple[str, int]] = []
    for host in hosts.split(","):
        try:
            parts = urlsplit(f"//{host.strip()}")
            port = parts.port or (_SENTINEL_PORT if sentinel else 6379)
        except ValueError as exc:
            raise ConfigError(f"Redis URL {where!r}: node {host!r}: {exc}") from None
        if not parts.hostname:
            raise ConfigError(f"Redis URL {where!r}: node {host!r} has no host")
        nodes.append((parts.hostname, port))
    single = f"{'rediss' if tls else 'redis'}://{userinfo + '@' if userinfo else ''}x"
    try:
        options = dict(parse_url(f"{single}?{query}" if query else single))
    except ValueError as exc:
        raise ConfigError(f"Redis URL {where!r}: {exc}") from None
    for name in ("host", "port", "connection_class") + (("db",) if cluster else ()):
        options.pop(name, None)
    sentinel_timeout = None
    if "sentinel_timeout" in options:
        try:
            sentinel_timeout = float(options.pop("sentinel_timeout"))
        except ValueError:
            raise ConfigError(f"Redis URL {where!r}: sentinel_timeout is not a number") from None
    if db is not None:
        options.setdefault("db", db)  # ?db= wins, as in a redis:// URL
    if tls:
        options["ssl"] = True
    return _Endpoint(
        where=where,
        url=url,
        nodes=tuple(nodes),
        options=options,
        service=service,
        sentinel_timeout=sentinel_timeout,
    )


def _service_and_db(path: str, where: str) -> tuple[str, int | None]:
    """The master's name and the database number in a Sentinel URL's path."""
    parts = path.split("/")[1:] if path else []
    if parts and not parts[-1]:
        parts.pop()  # a trailing slash
    service = unquote(parts[0]) if parts else ""
    if not service or len(parts) > 2 or any(c.isspace() for c in service):
        raise ConfigError(
            f"Redis URL {where!r}: a Sentinel URL names the master: host:port,…/service_name[/db]"
        )
    if len(parts) < 2:
        return service, None
    if not parts[1].isdigit():
        raise ConfigError(f"Redis URL {where!r}: database {parts[1]!r} is not a number")
    return service, int(parts[1])


def sync_client(url: str, *, timeout_s: float) -> Any:
    """A synchronous client for ``url`` (the classifier's weights, which learn on a
    thread), checked as the store's URLs are; ConfigError when it is wrong."""
    endpoint = _parse(url)
    if not endpoint.nodes:
        return SyncRedis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    if endpoint.service:
        # The URL's own options win, as in Redis.from_url; no retries, as there.
        options: dict[str, Any] = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
        options |= endpoint.options
        timeouts = _sentinel_timeouts(
            endpoint, options["socket_timeout"], options["socket_connect_timeout"]
        )
        sentinels = SyncSentinel(endpoint.nodes, sentinel_kwargs=timeouts)
        return sentinels.master_for(endpoint.service, redis_class=_SyncSentinelMaster, **options)
    credentials = {
        k: endpoint.options[k] for k in ("username", "password") if k in endpoint.options
    }
    return SyncRedisCluster(
        startup_nodes=[SyncClusterNode(h, p) for h, p in endpoint.nodes],  # type: ignore[no-untyped-call]
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        ssl=bool(endpoint.options.get("ssl")),
        **credentials,
    )


class _SyncSentinelMaster(SyncRedis):
    """``sync_client``'s master on Sentinel: closing it also closes the Sentinels' clients."""

    def close(self) -> None:
        try:
            super().close()
        finally:
            pool = self.connection_pool
            if isinstance(pool, SyncSentinelConnectionPool):
                pool.sentinel_manager.close()
