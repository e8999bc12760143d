"""``RedisVerdicts``: the verdict history on the Store's Redis (one server, Sentinel or Cluster).

Keys, all under one hash tag so that a Redis Cluster keeps them on one master and one
pipeline or script may touch them together (``ns`` is the Store's namespace):

``ns:h:{verdicts}:seq``        the last record id (INCRBY)
``ns:h:{verdicts}:ids``        sorted set: record id -> its time
``ns:h:{verdicts}:rec``        hash: record id -> the record as JSON
``ns:h:{verdicts}:kept``       hash: record id -> its raw message (``keep_messages``)
``ns:h:{verdicts}:keptz``      sorted set: kept record id -> its time
``ns:h:{verdicts}:keptbytes``  the kept messages' total size
``ns:h:{verdicts}:K:HOUR``     a hash of counters per hour, ``K`` as in
                               ``verdicts.counter_updates``: ``a`` and ``i`` fields are
                               ``MINUTE|name``, the others the name; each key expires
                               ``counters_s`` after its hour

A batch of records is two round trips: an INCRBY for the ids of the records that have none
yet (:meth:`RedisVerdicts.assign_ids`), then one script that writes each record whose id is
not stored yet, with its kept message and its counters, and trims the records beyond
``max_verdicts`` and the kept messages beyond their age or total size. The script is atomic
and writes a record once: a batch written again after an answer that was lost (the write
done, its reply timed out) adds nothing, provided its records kept the ids they were given
(the recorder keeps them, :mod:`seawall.metrics.recorder`). Reads: ``get`` one HGET,
``minutes`` one pipeline of HGETALLs (one per hour), ``search`` walks the ids newest first
in chunks of 500 (ZREVRANGEBYSCORE, HMGET) and filters in the process, so it reads at most
``max_verdicts`` records. Every Redis error is a :class:`~seawall.errors.StoreError`.

The history has a client of its own (:meth:`RedisVerdicts.from_url`) with a socket timeout
of ``TIMEOUT_S``, not the Store's fraction of a second: its writes are off the reply's
path, and a loaded Redis should delay a batch rather than fail it (a batch retried after
a timeout is not written twice, but it is sent twice).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import msgspec

from seawall.store.verdicts import (
    HOUR,
    DomainStats,
    Search,
    Side,
    VerdictRecord,
    counter_updates,
    decode_record,
    domain_stats,
    encode_record,
    hour_range,
    matches,
    minute_range,
    top,
)

if TYPE_CHECKING:
    from seawall.config import HistorySettings
    from seawall.store.redis import RedisStore

_CHUNK = 500
TIMEOUT_S = 5.0  # the history's own socket and connect timeout (a URL's own wins)

# KEYS: ids, rec, kept, keptz, keptbytes, then the counter hashes the batch touches. ARGV:
# the counters' TTL, max records, oldest kept time, max kept bytes, the batch as
# MessagePack, then the raw messages kept.  Per record the batch holds its id, time, JSON,
# the index in ARGV of its raw message (0: none kept), and its counter updates as (index
# of the hash in KEYS, field) pairs, one flat list.  (The raw messages go apart because
# Redis's MessagePack reader knows no binary strings.)  A record whose id is in the rec
# hash already was written by an earlier try of this batch: nothing of it is written
# again.  The counters of the new records are summed and added once per field.  Then the
# trim: the oldest records beyond max records, kept messages older than the oldest kept
# time, then the oldest kept messages while their total is over max kept bytes.
_WRITE = """
local counts = {}
for _, r in ipairs(cmsgpack.unpack(ARGV[5])) do
    local id, t = r[1], r[2]
    if redis.call('HSETNX', KEYS[2], id, r[3]) == 1 then
        redis.call('ZADD', KEYS[1], t, id)
        if r[4] > 0 then
            local raw = ARGV[r[4]]
            redis.call('HSET', KEYS[3], id, raw)
            redis.call('ZADD', KEYS[4], t, id)
            redis.call('INCRBY', KEYS[5], #raw)
        end
        local updates = r[5]
        for i = 1, #updates, 2 do
            local k, field = updates[i], updates[i + 1]
            local hash = counts[k]
            if hash == nil then
                hash = {}
                counts[k] = hash
            end
            hash[field] = (hash[field] or 0) + 1
        end
    end
end
for k, hash in pairs(counts) do
    for field, n in pairs(hash) do
        redis.call('HINCRBY', KEYS[k], field, n)
    end
    redis.call('EXPIRE', KEYS[k], ARGV[1])
end
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[2])
if excess > 0 then
    local old = redis.call('ZRANGE', KEYS[1], 0, excess - 1)
    redis.call('ZREMRANGEBYRANK', KEYS[1], 0, excess - 1)
    for i = 1, #old, 1000 do
        redis.call('HDEL', KEYS[2], unpack(old, i, math.min(i + 999, #old)))
    end
end
local function drop(id)
    local size = redis.call('HSTRLEN', KEYS[3], id)
    redis.call('HDEL', KEYS[3], id)
    redis.call('ZREM', KEYS[4], id)
    redis.call('DECRBY', KEYS[5], size)
    return size
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', '(' .. ARGV[3])) do
    drop(id)
end
local total = tonumber(redis.call('GET', KEYS[5]) or '0')
local limit = tonumber(ARGV[4])
while total > limit do
    local oldest = redis.call('ZRANGE', KEYS[4], 0, 99)
    if #oldest == 0 then
        redis.call('SET', KEYS[5], 0)
        break
    end
    for _, id in ipairs(oldest) do
        if total <= limit then break end
        total = total - drop(id)
    end
end
return 0
"""


class RedisVerdicts:
    """The history on Redis; see the module docstring for the keys."""

    def __init__(self, store: RedisStore, settings: HistorySettings) -> None:
        self.store = store
        self.settings = settings
        self._prefix = store.key("h", "{verdicts}")

    @classmethod
    def from_url(cls, url: str, settings: HistorySettings) -> RedisVerdicts:
        """The history on the Redis at ``url`` (the Store's), on a client of its own with
        ``TIMEOUT_S`` timeouts; raises :class:`~seawall.errors.ConfigError` for a bad URL."""
        from seawall.store.redis import RedisStore

        return cls(RedisStore.from_url(url, socket_timeout=TIMEOUT_S), settings)

    def _key(self, name: str) -> str:
        return f"{self._prefix}:{name}"

    async def record(self, record: VerdictRecord, raw: bytes | None = None) -> int:
        return (await self.record_many([(record, raw)]))[0]

    async def assign_ids(self, records: Sequence[VerdictRecord]) -> list[VerdictRecord]:
        """``records``, each without an id (0) given its id now (one INCRBY); the others as
        they are.  A batch written with the ids it was given is written once, however often
        it is sent."""
        missing = sum(1 for r in records if not r.id)
        if not missing:
            return list(records)
        async with self.store.session("history") as client:
            last = int(await client.incrby(self._key("seq"), missing))
        next_id = last - missing + 1
        out: list[VerdictRecord] = []
        for record in records:
            if not record.id:
                record = msgspec.structs.replace(record, id=next_id)
                next_id += 1
            out.append(record)
        return out

    async def record_many(self, items: Sequence[tuple[VerdictRecord, bytes | None]]) -> list[int]:
        if not items:
            return []
        settings = self.settings
        records = await self.assign_ids([record for record, _ in items])
        keys = [self._key(k) for k in ("ids", "rec", "kept", "keptz", "keptbytes")]
        hashes: dict[str, int] = {}  # a counter hash's key -> its index in KEYS (from 1)
        batch: list[tuple[str, str, str, int, list[int | str]]] = []
        raws: list[bytes] = []
        for record, (_, raw) in zip(records, items, strict=True):
            keep = (
                raw is not None
                and settings.keep_messages
                and len(raw) <= settings.keep_message_max_bytes
            )
            updates: list[int | str] = []
            for kind, bucket, name in counter_updates(record):
                key = self._key(f"{kind}:{bucket - bucket % HOUR}")
                index = hashes.get(key)
                if index is None:
                    keys.append(key)
                    index = hashes[key] = len(keys)
                updates += (index, f"{bucket}|{name}" if kind in ("a", "i") else name)
            stored = encode_record(msgspec.structs.replace(record, kept=keep)).decode()
            at = 0
            if keep and raw is not None:
                raws.append(raw)
                at = 5 + len(raws)  # ARGV[6] is the first raw message
            batch.append((str(record.id), repr(record.time), stored, at, updates))
        args = (
            math.ceil(settings.counters_s + HOUR),
            settings.max_verdicts,
            repr(time.time() - settings.keep_messages_s),
            settings.keep_messages_max_bytes,
            msgspec.msgpack.encode(batch),
        )
        async with self.store.session("history") as client:
            await client.eval(_WRITE, len(keys), *keys, *args, *raws)
        return [record.id for record in records]

    async def minutes(self, start: float, end: float) -> list[tuple[int, dict[str, int]]]:
        span = minute_range(start, end)
        out: dict[int, dict[str, int]] = {m: {} for m in span}
        for field, count in await self._fields("a", span.start, span.stop):
            minute, _, action = field.partition("|")
            bucket = int(minute)
            if bucket in out:
                out[bucket][action] = out[bucket].get(action, 0) + count
        return list(out.items())

    async def infected(self, start: float, end: float) -> list[tuple[int, int]]:
        span = minute_range(start, end)
        out = dict.fromkeys(span, 0)
        for field, count in await self._fields("i", span.start, span.stop):
            bucket = int(field.partition("|")[0])
            if bucket in out:
                out[bucket] += count
        return list(out.items())

    async def top_symbols(self, start: float, end: float, limit: int = 20) -> list[tuple[str, int]]:
        return top(await self._summed("s", start, end), limit)

    async def domains(
        self, start: float, end: float, side: Side, limit: int = 50
    ) -> list[DomainStats]:
        kind = "r" if side == "recipient" else "f"
        return domain_stats(await self._summed(kind, start, end), limit)

    async def search(self, query: Search, limit: int = 100) -> list[VerdictRecord]:
        found: list[VerdictRecord] = []
        if limit <= 0:
            return found
        high: float | str = "+inf"
        if query.end is not None:
            high = query.end
        if query.older_than is not None:
            high = query.older_than[0] if high == "+inf" else min(float(high), query.older_than[0])
        low: float | str = "-inf" if query.start is None else query.start
        offset = 0
        rec = self._key("rec")
        while len(found) < limit:
            async with self.store.session("history search") as client:
                ids = cast(
                    list[bytes],
                    await client.zrevrangebyscore(
                        self._key("ids"), high, low, start=offset, num=_CHUNK
                    ),
                )
                rows = cast(list[bytes | None], await client.hmget(rec, ids) if ids else [])
            offset += len(ids)
            records = [decode_record(row) for row in rows if row is not None]
            records.sort(key=lambda r: (r.time, r.id), reverse=True)
            found.extend(r for r in records if matches(r, query))
            if len(ids) < _CHUNK:
                break
        return found[:limit]

    async def get(self, record_id: int) -> VerdictRecord | None:
        async with self.store.session("history get") as client:
            row = cast(bytes | None, await client.hget(self._key("rec"), str(record_id)))
        return None if row is None else decode_record(row)

    async def kept_message(self, record_id: int) -> bytes | None:
        async with self.store.session("history kept") as client:
            pipe = client.pipeline(transaction=False)
            pipe.zscore(self._key("keptz"), str(record_id))
            pipe.hget(self._key("kept"), str(record_id))
            when, raw = await pipe.execute()
        if when is None or raw is None or when < time.time() - self.settings.keep_messages_s:
            return None
        return bytes(raw)

    async def close(self) -> None:
        await self.store.close()

    async def _fields(self, kind: str, start: int, stop: int) -> list[tuple[str, int]]:
        """Every field of the ``kind`` hashes of the hours overlapping ``[start, stop)``."""
        hours = range(start - start % HOUR, stop, HOUR)
        async with self.store.session("history counters") as client:
            pipe = client.pipeline(transaction=False)
            for hour in hours:
                pipe.hgetall(self._key(f"{kind}:{hour}"))
            replies = await pipe.execute()
        out: list[tuple[str, int]] = []
        for reply in replies:
            for field, count in reply.items():
                name = field.decode() if isinstance(field, bytes) else str(field)
                out.append((name, int(count)))
        return out

    async def _summed(self, kind: str, start: float, end: float) -> dict[str, int]:
        span = hour_range(start, end)
        out: dict[str, int] = {}
        for name, count in await self._fields(kind, span.start, span.stop):
            out[name] = out.get(name, 0) + count
        return out
