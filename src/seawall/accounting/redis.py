"""``RedisSessions``: accounting sessions on the state's Redis, Sentinel or Cluster.

Key layout (``ns`` is the namespace, ``seawall``; ``id`` is ``NAS NUL Acct-Session-Id``):

``ns:acct:{ip}:s``  hash: id -> the session (``merge.Stored``, msgpack)
``ns:acct:{ip}:z``  sorted set: id by start, for ``who`` (ZREVRANGEBYSCORE ... LIMIT 0 1)
``ns:acct:{ip}:e``  sorted set: id by when it stopped or was last heard of, for retention
``ns:acct:nas:N``   hash: Acct-Session-Id -> its addresses, the NAS's open sessions, for
                    Accounting-On/Off and for a Stop that names no address
``ns:acct:user:A``  sorted set: ``ip NUL id`` by stop (+inf while open), for ``sessions_of``

The three keys of an address share its hash tag, so one script reads or writes them in one
slot of a Cluster.  A write is compare-and-set: the client reads the session, merges the
record (``merge.py``, the same code as the SQLite backend), and a script stores the result
only if the session is still what was read (else it reads again); that script also drops
the address's sessions that ended ``retention_s`` before the record.  Every key written gets
a TTL of ``retention_s``, so an address, NAS or account unheard of that long vanishes.  A
batch of records costs two pipelined round trips per run of session records, and a few
more per Accounting-On/Off.  No KEYS or SCAN.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import NoScriptError

from seawall.accounting.merge import Stored, close_at, effective, merge
from seawall.accounting.records import Record, Session, Status, lookup_keys
from seawall.store.redis import RedisStore

log = logging.getLogger("seawall.accounting")

# KEYS: the address's s, z, e; ARGV: id, the session as read ("" for none), the new one,
# its start, its end, the retention horizon, the TTL in ms.  1 when written, 0 when the
# session changed since it was read.
_PUT = """
local held = redis.call('HGET', KEYS[1], ARGV[1])
if (held or '') ~= ARGV[2] then
    return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
local stale = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[6], 'LIMIT', 0, 100)
for _, id in ipairs(stale) do
    redis.call('HDEL', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZREM', KEYS[3], id)
end
for i = 1, 3 do
    redis.call('PEXPIRE', KEYS[i], ARGV[7])
end
return 1
"""

# KEYS: the address's z, s; ARGV: the time.  The sessions with the latest start at or
# before it (usually one).
_WHO = """
local top = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[1], '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
if #top == 0 then
    return {}
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], top[2], top[2])
return redis.call('HMGET', KEYS[2], unpack(ids))
"""

# KEYS: the address's z, s; ARGV: until.  The sessions that started by then.
_HISTORY = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if #ids == 0 then
    return {}
end
return redis.call('HMGET', KEYS[2], unpack(ids))
"""

# KEYS[1] a NAS's open sessions (a hash) or an account's sessions (a sorted set); ARGV: the
# TTL in ms, "hash" or "zset", then pairs: field and addresses ("" removes the field), or
# member and score.
_INDEX = """
local key, kind = KEYS[1], ARGV[2]
for i = 3, #ARGV, 2 do
    if kind == 'zset' then
        redis.call('ZADD', key, ARGV[i + 1], ARGV[i])
    elseif ARGV[i + 1] == '' then
        redis.call('HDEL', key, ARGV[i])
    else
        redis.call('HSET', key, ARGV[i], ARGV[i + 1])
    end
end
if redis.call('EXISTS', key) == 1 then
    redis.call('PEXPIRE', key, ARGV[1])
end
return 1
"""

_ATTEMPTS = 5  # compare-and-set rounds before a conflict is an error (another writer)


@dataclass(slots=True)
class _Op:
    ip: str
    nas: str
    session_id: str
    records: list[Record]
    old: Stored | None = None
    new: Stored | None = None


class RedisSessions:
    """Sessions on Redis; see the module docstring."""

    def __init__(self, store: RedisStore, *, retention_s: float) -> None:
        self._store = store
        self.retention_s = retention_s
        self._ns = f"{store.namespace}:acct"
        self._shas: dict[str, str] = {}

    @classmethod
    def from_url(
        cls, url: str, *, retention_s: float, timeout_s: float | None = None
    ) -> RedisSessions:
        """Sessions on ``url`` (the forms of ``seawall.store.redis``); ConfigError for a
        URL it refuses.  ``timeout_s`` bounds each reply (default 0.25 s)."""
        if timeout_s is None:
            return cls(RedisStore.from_url(url), retention_s=retention_s)
        return cls(RedisStore.from_url(url, socket_timeout=timeout_s), retention_s=retention_s)

    def _ip_keys(self, ip: str) -> tuple[str, str, str]:
        base = f"{self._ns}:{{{ip}}}"
        return f"{base}:s", f"{base}:z", f"{base}:e"

    async def who(self, ip: str, at: float) -> Session | None:
        for key in _keys(ip):
            s, z, _ = self._ip_keys(key)
            rows = await self._script("who", _WHO, [z, s], [repr(float(at))])
            found = [Stored.decode(r) for r in rows if r is not None]
            live = [x for x in found if x.stop is None or x.stop > at]
            if live:
                return max(live, key=lambda x: (x.stop is None, x.last)).session()
        return None

    async def history(self, ip: str, since: float, until: float) -> list[Session]:
        out: list[Session] = []
        for key in _keys(ip):
            s, z, _ = self._ip_keys(key)
            rows = await self._script("history", _HISTORY, [z, s], [repr(float(until))])
            stored = [Stored.decode(r) for r in rows if r is not None]
            # An open session's successor may start after ``until``: ask for it.
            later = [x for x in stored if x.stop is None]
            if later:
                nxt = await self._next_start(z, s, max(x.start for x in later))
                if nxt is not None and nxt.start > until:  # else it is in ``stored``
                    stored.append(nxt)
            out += [
                x
                for x in effective(stored)
                if x.start <= until and (x.stop is None or x.stop > since)
            ]
        return sorted(out, key=lambda x: x.start)

    async def _next_start(self, z: str, s: str, after: float) -> Stored | None:
        async with self._store._call("accounting history") as conn:
            ids = await _client(conn).zrangebyscore(z, f"({after!r}", "+inf", start=0, num=1)
            if not ids:
                return None
            row = await _client(conn).hget(s, ids[0])
        return None if row is None else Stored.decode(row)

    async def sessions_of(self, account: str, since: float, until: float) -> list[Session]:
        user = f"{self._ns}:user:{account}"
        async with self._store._call("accounting sessions_of") as conn:
            members = await _client(conn).zrangebyscore(user, f"({float(since)!r}", "+inf")
            if not members:
                return []
            pipe = _client(conn).pipeline(transaction=False)
            for member in members:
                ip, _, sid = bytes(member).partition(b"\0")
                pipe.hget(self._ip_keys(ip.decode())[0], sid)
            rows = await pipe.execute()
            gone = [m for m, r in zip(members, rows, strict=True) if r is None]
            if gone:  # dropped from its address by retention: drop the reference too
                await _client(conn).zrem(user, *gone)
        out = [Stored.decode(r) for r in rows if r is not None]
        return sorted(
            (x.session() for x in out if x.start <= until and x.account == account),
            key=lambda x: x.start,
        )

    async def add(self, records: Sequence[Record]) -> int:
        changed = 0
        run: list[Record] = []
        for record in records:
            if record.status in (Status.ON, Status.OFF):
                changed += await self._add_run(run)
                run = []
                changed += await self._close_nas(record)
            else:
                run.append(record)
        return changed + await self._add_run(run)

    async def close(self) -> None:
        await self._store.close()

    async def _add_run(self, records: list[Record]) -> int:
        if not records:
            return 0
        nameless = [r for r in records if not r.ips]
        ips_of: dict[tuple[str, str], tuple[str, ...]] = {}
        if nameless:
            async with self._store._call("accounting add") as conn:
                pipe = _client(conn).pipeline(transaction=False)
                for r in nameless:
                    pipe.hget(f"{self._ns}:nas:{r.nas}", r.session_id)
                for r, value in zip(nameless, await pipe.execute(), strict=True):
                    if value:
                        ips_of[(r.nas, r.session_id)] = tuple(bytes(value).decode().split(","))
        ops: dict[tuple[str, str, str], _Op] = {}
        seen: dict[tuple[str, str], tuple[str, ...]] = {}  # addresses named in this run
        for r in records:
            if r.ips:
                seen[(r.nas, r.session_id)] = r.ips
            ips = r.ips or seen.get((r.nas, r.session_id)) or ips_of.get((r.nas, r.session_id), ())
            if not ips:
                log.debug("%s of %s on %s: no address known", r.status.value, r.session_id, r.nas)
            for ip in ips:
                op = ops.setdefault((ip, r.nas, r.session_id), _Op(ip, r.nas, r.session_id, []))
                op.records.append(r)
        return await self._apply(list(ops.values()))

    async def _close_nas(self, record: Record) -> int:
        nas_key = f"{self._ns}:nas:{record.nas}"
        async with self._store._call("accounting close") as conn:
            held = await _client(conn).hgetall(nas_key)
        ops = [
            _Op(ip, record.nas, bytes(sid).decode(), [record])
            for sid, ips in held.items()
            for ip in bytes(ips).decode().split(",")
        ]
        changed = await self._apply(ops)
        # Sessions dropped by retention while open, or stopped already: off the NAS's list
        # (the ones just closed left it as they were written).
        gone = {op.session_id for op in ops if op.old is None or op.old.stop is not None}
        if gone:
            async with self._store._call("accounting close") as conn:
                await _client(conn).hdel(nas_key, *gone)
        return changed

    async def _apply(self, ops: list[_Op]) -> int:
        """Read, merge and compare-and-set ``ops`` until none conflicts."""
        changed = 0
        pending = ops
        for _ in range(_ATTEMPTS):
            if not pending:
                return changed
            async with self._store._call("accounting add") as conn:
                pipe = _client(conn).pipeline(transaction=False)
                for op in pending:
                    pipe.hget(self._ip_keys(op.ip)[0], f"{op.nas}\0{op.session_id}")
                rows = await pipe.execute()
            writes: list[_Op] = []
            for op, row in zip(pending, rows, strict=True):
                op.old = None if row is None else Stored.decode(row)
                new = op.old
                for r in op.records:
                    if r.status in (Status.ON, Status.OFF):
                        new = None if new is None else (close_at(new, r.time) or new)
                    else:
                        new = merge(new, r, op.ip)
                if new is not None and new != op.old:
                    op.new = new
                    writes.append(op)
            results = await self._write(writes)
            pending = [op for op, ok in zip(writes, results, strict=True) if not ok]
            changed += len(writes) - len(pending)
        if pending:
            log.warning("accounting: %d sessions kept changing under this writer", len(pending))
        return changed

    async def _write(self, ops: list[_Op]) -> list[bool]:
        """One pipeline: each session's compare-and-set, then the NASes' and the accounts'
        indexes, one script per key for the whole batch."""
        if not ops:
            return []
        ttl = str(max(1, int(self.retention_s * 1000)))
        put = self._shas.get("put") or await self._load("put", _PUT)
        index = self._shas.get("index") or await self._load("index", _INDEX)
        results: list[bool] = []
        async with self._store._call("accounting add") as conn:
            for attempt in range(2):
                pipe = _client(conn).pipeline(transaction=False)
                for op in ops:
                    new = op.new
                    assert new is not None
                    horizon = max(r.time for r in op.records) - self.retention_s
                    args = [
                        f"{op.nas}\0{op.session_id}",
                        b"" if op.old is None else op.old.encode(),
                        new.encode(),
                        repr(new.start),
                        repr(new.end),
                        repr(horizon),
                        ttl,
                    ]
                    pipe.evalsha(put, 3, *self._ip_keys(op.ip), *args)
                for key, pairs in self._indexes(ops).items():
                    pipe.evalsha(index, 1, key, ttl, *pairs)
                replies = await pipe.execute(raise_on_error=False)
                if attempt == 0 and any(isinstance(r, NoScriptError) for r in replies):
                    put = await self._load("put", _PUT)
                    index = await self._load("index", _INDEX)
                    continue  # a script not run writes nothing; the indexes are idempotent
                for reply in replies:
                    if isinstance(reply, Exception):
                        raise reply
                results = [bool(r) for r in replies[: len(ops)]]
                break
        return results

    def _indexes(self, ops: list[_Op]) -> dict[str, list[str]]:
        """The ``_INDEX`` arguments of each NAS's and account's key: a NAS's open sessions
        (field, addresses) and its stopped ones (field, ""); an account's sessions (member,
        stop or +inf)."""
        out: dict[str, list[str]] = {}
        for op in ops:
            new = op.new
            assert new is not None
            nas = out.setdefault(f"{self._ns}:nas:{new.nas}", ["hash"])
            ips = ",".join(op.records[-1].ips) or new.ip
            nas += [new.session_id, ips if new.stop is None else ""]
            user = out.setdefault(f"{self._ns}:user:{new.account}", ["zset"])
            score = "+inf" if new.stop is None else repr(new.stop)
            user += [f"{new.ip}\0{new.nas}\0{new.session_id}", score]
        return out

    async def _script(self, name: str, source: str, keys: list[str], args: list[str]) -> Any:
        sha = self._shas.get(name) or await self._load(name, source)
        async with self._store._call(f"accounting {name}") as conn:
            try:
                return await _client(conn).evalsha(sha, len(keys), *keys, *args)
            except NoScriptError:
                pass
        sha = await self._load(name, source)
        async with self._store._call(f"accounting {name}") as conn:
            return await _client(conn).evalsha(sha, len(keys), *keys, *args)

    async def _load(self, name: str, source: str) -> str:
        async with self._store._call("accounting script load") as conn:
            await _client(conn).script_load(source)  # on every primary of a Cluster
        sha = hashlib.sha1(source.encode()).hexdigest()
        self._shas[name] = sha
        return sha


def _client(conn: Any) -> Any:
    """The connection's client, untyped: redis-py's stubs type replies too loosely."""
    return conn.client


def _keys(ip: str) -> tuple[str, ...]:
    try:
        return lookup_keys(ip)
    except ValueError:
        raise ValueError(f"{ip!r} is not an IP address") from None
