"""The classifier's weights and learn log on Redis, shared by every node.

The same design as the embedded tables (``store.py``): a snapshot of the whole weight vector
plus a log of the changes since, which every process replays; a scanning process reads the
generation every ``reload_interval_s`` and fetches only what is new, never the weights per
scan.  A learn on any node is therefore seen by every node within ``reload_interval_s``.

Keys (``{namespace}:{classifier}:...``; the braces are a Redis Cluster hash tag, so every
classifier key lives in one slot and a learn commits in one MULTI/EXEC there too):

==================  ====  ==================================================================
``meta``            hash  ``bits``, ``features``, ``generation``, ``snapshot``, ``spam``,
                          ``ham`` (as the ``classifier_meta`` table)
``weights``         str   8-byte generation, then the float32 vectors (8 MiB at 20 bits)
``deltas``          hash  generation -> one change's steps; dropped at each snapshot (at most
                          200 between snapshots)
``digests``         hash  message digest -> id of each learned message
``learned``         hash  id -> label, coefficients, time and digest (exact unlearning)
``examples``        hash  id -> the features of a recent message, for replay (at most
                          ``memory_messages``, about 2 bytes a feature)
``labels``          hash  id -> label of each example (listing them reads no features)
``next``            str   the last id handed out
``vectors``         hash  message digest -> label byte and symbol vector (the second stage's
                          data, at most ``max_messages``)
``vectors_at``      zset  message digest by the time it was recorded (the oldest go first)
``scores``          str   the fitted table of learned symbol scores (JSON); meta ``scores``
                          counts its versions
``calibration``     str   the histograms of unseen margins that place the reject margin
                          (``calibration.py``, 8 KiB); meta ``calibration`` counts versions
``lock``            str   the writer's token, with a 30 s expiry
==================  ====  ==================================================================

None of these expire: they are the model.  ``digests`` and ``learned`` grow by about 60
bytes per message learned, as the embedded table does; the rest are bounded.

One writer at a time, as with SQLite's ``BEGIN IMMEDIATE``: :meth:`write` takes ``lock``
(``SET NX PX``), collects the writes (reads inside see them), and commits them in one
MULTI/EXEC; a failure discards them all.  The client is synchronous: the classifier is called
from a thread (learning) or between scans on a worker's loop (a reload: one ``HGET`` every
``reload_interval_s``; a failing Redis then keeps the weights already held).
"""

from __future__ import annotations

import logging
import os
import struct
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from seawall.classifier.store import (
    Coef,
    Keys,
    Learned,
    Step,
    Vector,
    decode_delta,
    decode_slots,
    encode_delta,
    encode_slots,
)
from seawall.config import redact_url
from seawall.errors import StoreError
from seawall.quietlog import QuietLog
from seawall.store.redis import sync_client

log = logging.getLogger("seawall.classifier")
_quiet = QuietLog(log)

_LOCK_MS = 30_000  # a writer that died lets go after this
_TIMEOUT_S = 5.0  # one command of a learn, which may move 8 MiB (on a thread)
# The reload check runs on a worker's event loop every reload_interval_s: it gets a client
# of its own that gives up after 0.1 s, and after a failure it is not tried again for
# _PROBE_BACKOFF_S, so a hung Redis costs a worker at most 0.1 s in 10 s.
_PROBE_TIMEOUT_S = 0.1
_PROBE_BACKOFF_S = 10.0
# Everything a client raises for a server it cannot reach or use (a Cluster with every
# node down raises RedisClusterException, which is not a RedisError).
_FAILURES = (redis.RedisError, redis.exceptions.RedisClusterException, OSError)
_GEN = struct.Struct("<q")
_RECORD = struct.Struct("<Bddd")  # label, coefficients (full, content), learned at; digest
_DELTA = struct.Struct("<II")  # lengths of the slots and sizes blobs; the amounts follow
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


@dataclass
class _Pending:
    """The writes of one transaction, and what reads inside it must see."""

    meta: dict[str, int] = field(default_factory=dict)
    digests: dict[bytes, int | None] = field(default_factory=dict)  # None: deleted
    learned: dict[int, bytes | None] = field(default_factory=dict)
    examples: dict[int, bytes | None] = field(default_factory=dict)
    labels: dict[int, bool | None] = field(default_factory=dict)
    deltas: dict[int, bytes] = field(default_factory=dict)
    snapshot: tuple[int, bytes] | None = None
    vectors: dict[bytes, bytes | None] = field(default_factory=dict)  # None: evicted
    vectors_at: dict[bytes, float] = field(default_factory=dict)
    table: bytes | None = None
    calibration: bytes | None = None


class RedisWeights:
    """The classifier's :class:`~seawall.classifier.store.WeightStore` on Redis."""

    def __init__(
        self, url: str, *, namespace: str = "seawall", timeout_s: float = 30.0, client: Any = None
    ) -> None:
        self.where = redact_url(url)
        self._url = url
        self._timeout_s = timeout_s
        base = f"{namespace}:{{classifier}}:"
        self._k = {
            name: base + name
            for name in (
                "meta",
                "weights",
                "deltas",
                "digests",
                "learned",
                "examples",
                "labels",
                "next",
                "lock",
                "vectors",
                "vectors_at",
                "scores",
                "calibration",
            )
        }
        self._client = client
        self._pid = os.getpid() if client is not None else 0
        self._probe: Any = None
        self._probe_pid = 0
        self._quiet_until = 0.0
        self._pending: _Pending | None = None
        self._seen: int | None = None
        self._release: Any = None
        try:
            self._r.ping()
        except _FAILURES as exc:
            raise StoreError(f"cannot reach the classifier store {self.where}: {exc}") from None

    @property
    def _r(self) -> Any:
        # A connection must not cross fork(): a forked worker makes its own.
        if self._client is None or self._pid != os.getpid():
            self._client = sync_client(self._url, timeout_s=_TIMEOUT_S)
            self._pid = os.getpid()
            self._release = None
        return self._client

    def _call(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self._r, method)(*args)
        except _FAILURES as exc:
            raise StoreError(f"classifier store {self.where}: {exc}") from None

    def close(self) -> None:
        for client, pid in ((self._client, self._pid), (self._probe, self._probe_pid)):
            if client is not None and pid == os.getpid():
                client.close()
        self._client = self._probe = None

    @contextmanager
    def write(self, wait_s: float | None = None) -> Iterator[None]:
        token = uuid.uuid4().hex
        deadline = time.monotonic() + (self._timeout_s if wait_s is None else wait_s)
        while not self._take_lock(token):
            if time.monotonic() > deadline:
                raise StoreError(f"classifier store {self.where}: another writer holds the lock")
            time.sleep(0.01)
        self._pending = _Pending()
        try:
            yield
            self._commit(self._pending)
        finally:
            self._pending = None
            try:
                if self._release is None:
                    self._release = self._r.register_script(_RELEASE)
                self._release(keys=[self._k["lock"]], args=[token])
            except _FAILURES as exc:  # it expires by itself
                log.warning("could not release the classifier lock: %s", exc)

    def _take_lock(self, token: str) -> bool:
        try:
            return bool(self._r.set(self._k["lock"], token, px=_LOCK_MS, nx=True))
        except _FAILURES as exc:
            raise StoreError(f"classifier store {self.where}: {exc}") from None

    def _commit(self, p: _Pending) -> None:
        k = self._k
        try:
            pipe = self._r.pipeline(transaction=True)
            if p.meta:
                pipe.hset(k["meta"], mapping=p.meta)
            for table, values in (
                ("digests", p.digests),
                ("learned", p.learned),
                ("examples", p.examples),
            ):
                dead = [key for key, value in values.items() if value is None]
                live = {key: value for key, value in values.items() if value is not None}
                if dead:
                    pipe.hdel(k[table], *dead)
                if live:
                    pipe.hset(k[table], mapping=live)
            dead_labels = [key for key, value in p.labels.items() if value is None]
            if dead_labels:
                pipe.hdel(k["labels"], *dead_labels)
            live_labels = {key: int(v) for key, v in p.labels.items() if v is not None}
            if live_labels:
                pipe.hset(k["labels"], mapping=live_labels)
            if p.snapshot is not None:
                gen, blob = p.snapshot
                pipe.set(k["weights"], _GEN.pack(gen) + blob)
                old = [g for g in self._delta_gens() if g <= gen]
                if old:
                    pipe.hdel(k["deltas"], *old)
            gone = [key for key, value in p.vectors.items() if value is None]
            if gone:
                pipe.hdel(k["vectors"], *gone)
                pipe.zrem(k["vectors_at"], *gone)
            fresh = {key: value for key, value in p.vectors.items() if value is not None}
            if fresh:
                pipe.hset(k["vectors"], mapping=fresh)
                pipe.zadd(k["vectors_at"], {key: p.vectors_at[key] for key in fresh})
            if p.table is not None:
                pipe.set(k["scores"], p.table)
            if p.calibration is not None:
                pipe.set(k["calibration"], p.calibration)
            kept = {g: d for g, d in p.deltas.items() if p.snapshot is None or g > p.snapshot[0]}
            if kept:
                pipe.hset(k["deltas"], mapping=kept)
            pipe.execute()
        except _FAILURES as exc:
            raise StoreError(f"classifier store {self.where}: {exc}") from None

    @contextmanager
    def read(self) -> Iterator[None]:
        yield  # each read is one command; _sync heals itself if a writer came between

    def changed(self) -> bool:
        if self._pending is None and time.monotonic() < self._quiet_until:
            return False  # failed a moment ago: keep the weights, spare the event loop
        try:
            if self._probe is None or self._probe_pid != os.getpid():
                self._probe = sync_client(self._url, timeout_s=_PROBE_TIMEOUT_S)
                self._probe.set_retry(Retry(NoBackoff(), 0))  # one try: it is on the loop
                self._probe_pid = os.getpid()
            raw = self._probe.hget(self._k["meta"], "generation")
        except _FAILURES as exc:
            self._quiet_until = time.monotonic() + _PROBE_BACKOFF_S
            _quiet.warning(
                "reload",
                "classifier store %s unreachable, keeping the weights: %s",
                self.where,
                exc,
            )
            return False
        gen = int(raw) if raw is not None else 0
        changed, self._seen = gen != self._seen, gen
        return changed

    def meta(self) -> dict[str, int]:
        found = {k.decode(): int(v) for k, v in self._call("hgetall", self._k["meta"]).items()}
        if self._pending is not None:
            found.update(self._pending.meta)
        return found

    def set_meta(self, **values: int) -> None:
        assert self._pending is not None, "set_meta outside write()"
        self._pending.meta.update(values)

    def snapshot(self) -> tuple[int, Vector] | None:
        if self._pending is not None and self._pending.snapshot is not None:
            blob = _GEN.pack(self._pending.snapshot[0]) + self._pending.snapshot[1]
        else:
            blob = self._call("get", self._k["weights"])
        if blob is None:
            return None
        (gen,) = _GEN.unpack_from(blob)
        vector: Vector = np.frombuffer(blob, dtype="<f4", offset=_GEN.size).astype(np.float32)
        return int(gen), vector

    def save_snapshot(self, generation: int, weights: Vector) -> None:
        assert self._pending is not None, "save_snapshot outside write()"
        self._pending.snapshot = (generation, weights.astype("<f4").tobytes())
        self._pending.meta.update(snapshot=generation, generation=generation)

    def _delta_gens(self) -> list[int]:
        return [int(g) for g in self._call("hkeys", self._k["deltas"])]

    def deltas_after(self, generation: int) -> Iterator[tuple[int, list[Step]]]:
        stored = {int(g): d for g, d in self._call("hgetall", self._k["deltas"]).items()}
        if self._pending is not None:
            stored.update(self._pending.deltas)
        for gen in sorted(g for g in stored if g > generation):
            data = stored[gen]
            slots_len, sizes_len = _DELTA.unpack_from(data)
            at = _DELTA.size
            blob, sizes = (
                data[at : at + slots_len],
                data[at + slots_len : at + slots_len + sizes_len],
            )
            yield gen, decode_delta(blob, sizes, data[at + slots_len + sizes_len :])

    def append_delta(self, generation: int, steps: list[Step]) -> None:
        assert self._pending is not None, "append_delta outside write()"
        blob, sizes, amounts = encode_delta(steps)
        self._pending.deltas[generation] = (
            _DELTA.pack(len(blob), len(sizes)) + blob + sizes + amounts
        )
        self._pending.meta["generation"] = generation

    def _record(self, id_: int) -> tuple[bool, Coef, float, bytes] | None:
        data: bytes | None
        if self._pending is not None and id_ in self._pending.learned:
            data = self._pending.learned[id_]
        else:
            data = self._call("hget", self._k["learned"], id_)
        if data is None:
            return None
        spam, full, content, at = _RECORD.unpack_from(data)
        return bool(spam), (full, content), at, data[_RECORD.size :]

    def _put_record(self, id_: int, spam: bool, coef: Coef, at: float, digest: bytes) -> None:
        assert self._pending is not None, "a write outside write()"
        self._pending.learned[id_] = _RECORD.pack(int(spam), *coef, at) + digest

    def find(self, digest: bytes) -> Learned | None:
        if self._pending is not None and digest in self._pending.digests:
            id_ = self._pending.digests[digest]
        else:
            raw = self._call("hget", self._k["digests"], digest)
            id_ = int(raw) if raw is not None else None
        if id_ is None:
            return None
        record = self._record(id_)
        return None if record is None else Learned(id_, record[0], record[1])

    def insert(self, digest: bytes, spam: bool, coef: Coef, now: float) -> int:
        assert self._pending is not None, "insert outside write()"
        id_ = int(self._call("incr", self._k["next"]))
        self._pending.digests[digest] = id_
        self._put_record(id_, spam, coef, now, digest)
        return id_

    def relabel(self, id_: int, spam: bool, coef: Coef, now: float) -> None:
        record = self._record(id_)
        if record is not None:
            self._put_record(id_, spam, coef, now, record[3])

    def add_coef(self, amounts: list[tuple[Coef, int]]) -> None:
        for amount, id_ in amounts:
            record = self._record(id_)
            if record is not None:
                spam, coef, at, digest = record
                total = (coef[0] + amount[0], coef[1] + amount[1])
                self._put_record(id_, spam, total, at, digest)

    def delete(self, id_: int) -> None:
        assert self._pending is not None, "delete outside write()"
        record = self._record(id_)
        if record is not None:
            self._pending.digests[record[3]] = None
        self._pending.learned[id_] = None
        self._pending.examples[id_] = None
        self._pending.labels[id_] = None

    def example(self, id_: int) -> Keys | None:
        if self._pending is not None and id_ in self._pending.examples:
            data = self._pending.examples[id_]
        else:
            data = self._call("hget", self._k["examples"], id_)
        return decode_slots(data) if data is not None else None

    def example_ids(self) -> list[tuple[int, bool]]:
        labels = {int(i): bool(int(s)) for i, s in self._call("hgetall", self._k["labels"]).items()}
        if self._pending is not None:
            for id_, label in self._pending.labels.items():
                if label is None:
                    labels.pop(id_, None)
                else:
                    labels[id_] = label
        return sorted(labels.items())

    def put_example(self, id_: int, spam: bool, slots: Keys) -> None:
        assert self._pending is not None, "put_example outside write()"
        self._pending.examples[id_] = encode_slots(slots)
        self._pending.labels[id_] = spam

    def drop_examples(self, ids: list[int]) -> None:
        assert self._pending is not None, "drop_examples outside write()"
        for id_ in ids:
            self._pending.examples[id_] = None
            self._pending.labels[id_] = None

    def put_vectors(self, rows: list[tuple[bytes, bool, bytes]], now: float, keep: int) -> None:
        assert self._pending is not None, "put_vectors outside write()"
        pending = self._pending
        for digest, spam, vector in rows:
            pending.vectors[digest] = bytes([spam]) + vector
            pending.vectors_at[digest] = now
        stored = int(self._call("zcard", self._k["vectors_at"]))
        excess = stored + len(rows) - keep
        if excess <= 0:
            return
        old = [
            digest
            for digest in self._call("zrange", self._k["vectors_at"], 0, excess - 1)
            if digest not in pending.vectors_at
        ]
        fresh = [digest for digest, _, _ in rows][: max(0, excess - len(old))]
        for digest in old + fresh:  # the oldest first, then this batch's first rows
            pending.vectors[digest] = None
            pending.vectors_at.pop(digest, None)

    def vectors(self) -> list[tuple[bool, bytes]]:
        stored = dict(self._call("hgetall", self._k["vectors"]))
        if self._pending is not None:
            stored.update(self._pending.vectors)
        return [(bool(v[0]), v[1:]) for v in stored.values() if v]

    def scores_table(self) -> bytes | None:
        if self._pending is not None and self._pending.table is not None:
            return self._pending.table
        blob: bytes | None = self._call("get", self._k["scores"])
        return blob

    def save_scores_table(self, blob: bytes) -> None:
        assert self._pending is not None, "save_scores_table outside write()"
        self._pending.table = blob
        self._pending.meta["scores"] = self.meta().get("scores", 0) + 1

    def calibration(self) -> bytes | None:
        if self._pending is not None and self._pending.calibration is not None:
            return self._pending.calibration
        blob: bytes | None = self._call("get", self._k["calibration"])
        return blob

    def save_calibration(self, blob: bytes, version: int) -> None:
        assert self._pending is not None, "save_calibration outside write()"
        self._pending.calibration = blob
        self._pending.meta["calibration"] = version
