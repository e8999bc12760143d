"""Where the classifier keeps its weights and learn log: the ``WeightStore`` protocol, and
its embedded backend in ``state.sqlite`` (WAL; many readers, one writer at a time).  The
Redis backend, for several nodes, is ``redis_weights.py``.

Tables, all prefixed ``classifier_``, in the same file as the Store's:

``classifier_meta``      key/value: ``bits``, ``features`` (feature VERSION), ``generation``
                         (bumped by every change), ``snapshot`` (generation of the saved
                         vector), ``spam`` and ``ham`` (messages learned)
``classifier_weights``   one row: the whole float32 weight vector as a BLOB
``classifier_deltas``    one row per change since the snapshot: its steps (the slots of one
                         message and the float32 amount added to each), replayed in order
                         by other processes
``classifier_messages``  one row per learned message: digest, label, coefficients (what
                         was added times its vector to the full and the content model)
``classifier_examples``  the slots of the most recent messages, sampled for replay
``classifier_vectors``   per learned message, its symbol vector (``scores.py``), for the fit
``classifier_scores``    one row: the fitted table of learned symbol scores (JSON); the
                         meta key ``scores`` counts its versions
``classifier_calibration`` one row: the histograms of unseen margins (``calibration.py``)
                         that place the reject margin; the meta key ``calibration`` counts
                         its versions

A scanning process loads the snapshot once (a few milliseconds for 8 MiB) and
afterwards only replays the few new deltas, so learning is visible to every
worker within ``reload_interval_s`` without reloading the vector.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from seawall.errors import StoreError

log = logging.getLogger("seawall.classifier")

Keys = NDArray[np.uint32]  # a message's features, see seawall.classifier.features
Vector = NDArray[np.float32]
Step = tuple[Keys, float]  # add the amount times this message's vector
Coef = tuple[float, float]  # a message's sums of steps: full model, content model

FILENAME = "state.sqlite"  # the embedded Store's file: one file for all embedded state
LEGACY_FILENAME = "seawall.sqlite"  # where releases before the Redis backend kept it
_TABLES = ("meta", "weights", "deltas", "messages", "examples")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS classifier_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS classifier_weights (
    id INTEGER PRIMARY KEY CHECK (id = 0), generation INTEGER NOT NULL, vector BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS classifier_deltas (
    generation INTEGER PRIMARY KEY, slots BLOB NOT NULL, sizes BLOB NOT NULL,
    amounts BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS classifier_messages (
    id INTEGER PRIMARY KEY, digest BLOB NOT NULL UNIQUE, spam INTEGER NOT NULL,
    coef REAL NOT NULL, learned_at REAL NOT NULL, coef_content REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS classifier_examples (
    id INTEGER PRIMARY KEY, spam INTEGER NOT NULL, slots BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS classifier_vectors (
    digest BLOB PRIMARY KEY, spam INTEGER NOT NULL, vector BLOB NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS classifier_vectors_at ON classifier_vectors (at);
CREATE TABLE IF NOT EXISTS classifier_scores (
    id INTEGER PRIMARY KEY CHECK (id = 0), fitted BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS classifier_calibration (
    id INTEGER PRIMARY KEY CHECK (id = 0), histograms BLOB NOT NULL);
"""
_COLUMNS = "PRAGMA table_info(classifier_messages)"
_LEGACY_PRAGMA = "PRAGMA legacy.table_info(classifier_messages)"
_ADD_CONTENT = "ALTER TABLE classifier_messages ADD COLUMN coef_content REAL NOT NULL DEFAULT 0"
# What an earlier release's file has, where this one's has more columns.
_LEGACY_COLUMNS = {"messages": "id, digest, spam, coef, learned_at"}


@dataclass(frozen=True, slots=True)
class Learned:
    """A row of ``classifier_messages``."""

    id: int
    spam: bool
    coef: Coef


_STRIDE = 0xFFFF  # a uint16 of this value means "move on 65535, no key here"


def encode_slots(keys: Keys) -> bytes:
    """Sorted keys as uint16 gaps, about 2 bytes a key; a gap of 65535 or more takes
    ``gap // 65535`` extra entries of 65535 before its remainder."""
    gaps = np.diff(keys, prepend=np.uint32(0))
    strides, rest = np.divmod(gaps, np.uint32(_STRIDE))
    out = np.full(int(strides.sum()) + gaps.size, _STRIDE, dtype="<u2")
    out[np.cumsum(strides + 1) - 1] = rest
    return out.tobytes()


def decode_slots(blob: bytes) -> Keys:
    entries = np.frombuffer(blob, dtype="<u2").astype(np.uint32)
    keys: Keys = np.cumsum(entries, dtype=np.uint32)[entries != _STRIDE]
    return keys


class WeightStore(Protocol):
    """What the classifier needs of its storage.  Writes happen inside :meth:`write` (one
    writer at a time, all or nothing); reads of several tables that must agree inside
    :meth:`read`.  Every method raises StoreError when the backend fails."""

    where: str  # shown in errors: a file path or a Redis URL

    def close(self) -> None: ...
    def write(self, wait_s: float | None = None) -> AbstractContextManager[None]:
        """A write transaction, waiting at most ``wait_s`` (None: the store's own timeout)
        for another writer; StoreError when the lock or the write fails."""
        ...

    def read(self) -> AbstractContextManager[None]: ...
    def changed(self) -> bool:
        """Whether anyone committed since the last call."""
        ...

    def meta(self) -> dict[str, int]: ...
    def set_meta(self, **values: int) -> None: ...
    def snapshot(self) -> tuple[int, Vector] | None: ...
    def save_snapshot(self, generation: int, weights: Vector) -> None: ...
    def deltas_after(self, generation: int) -> Iterator[tuple[int, list[Step]]]: ...
    def append_delta(self, generation: int, steps: list[Step]) -> None: ...
    def find(self, digest: bytes) -> Learned | None: ...
    def insert(self, digest: bytes, spam: bool, coef: Coef, now: float) -> int: ...
    def relabel(self, id_: int, spam: bool, coef: Coef, now: float) -> None: ...
    def add_coef(self, amounts: list[tuple[Coef, int]]) -> None: ...
    def delete(self, id_: int) -> None: ...
    def example(self, id_: int) -> Keys | None: ...
    def example_ids(self) -> list[tuple[int, bool]]: ...
    def put_example(self, id_: int, spam: bool, slots: Keys) -> None: ...
    def drop_examples(self, ids: list[int]) -> None: ...
    def put_vectors(self, rows: list[tuple[bytes, bool, bytes]], now: float, keep: int) -> None:
        """Record (digest, label, symbol vector) rows, replacing a digest's earlier row;
        beyond ``keep`` rows the oldest are dropped."""
        ...

    def vectors(self) -> list[tuple[bool, bytes]]: ...
    def scores_table(self) -> bytes | None: ...
    def save_scores_table(self, blob: bytes) -> None: ...
    def calibration(self) -> bytes | None: ...
    def save_calibration(self, blob: bytes, version: int) -> None:
        """Replace the calibration and set the meta key ``calibration`` to ``version``."""
        ...


def encode_delta(steps: list[Step]) -> tuple[bytes, bytes, bytes]:
    """A change's steps as (slots, sizes, amounts) blobs, each step as compact as an example."""
    blobs = [encode_slots(slots) for slots, _ in steps]
    return (
        b"".join(blobs),
        np.array([len(b) for b in blobs], dtype="<u4").tobytes(),
        np.array([a for _, a in steps], dtype="<f4").tobytes(),
    )


def decode_delta(blob: bytes, sizes: bytes, amounts: bytes) -> list[Step]:
    ends = np.cumsum(np.frombuffer(sizes, dtype="<u4")).tolist()
    if not ends:  # a change of the learned scores alone: no steps
        return []
    starts = [0, *ends[:-1]]
    return [
        (decode_slots(blob[a:b]), float(amount))
        for a, b, amount in zip(
            starts, ends, np.frombuffer(amounts, dtype="<f4").tolist(), strict=True
        )
    ]


class SqliteWeights:
    """SQLite access for :class:`~seawall.classifier.Classifier`; every method is one statement.

    Writers call :meth:`write` (``BEGIN IMMEDIATE``: one writer at a time,
    others wait up to ``timeout_s``); readers call :meth:`read` for a consistent view.
    """

    def __init__(self, path: Path, *, timeout_s: float = 30.0) -> None:
        self.path = path
        self.where = str(path)
        self._timeout_s = timeout_s
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._connect()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints
            with self.write():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                columns = {row[1] for row in self._db.execute(_COLUMNS)}
                if "coef_content" not in columns:  # a file of features v3 or earlier
                    self._db.execute(_ADD_CONTENT)
            self._migrate(path.with_name(LEGACY_FILENAME))
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the classifier store {path}: {exc}") from None
        self._data_version = -1

    def _migrate(self, legacy: Path) -> None:
        """Take over a classifier learned into ``seawall.sqlite`` by an earlier release (once:
        the old file is renamed ``seawall.sqlite.migrated`` afterwards)."""
        if not legacy.exists() or legacy == self.path:
            return
        old = sqlite3.connect(legacy, timeout=self._timeout_s)
        try:  # fold its write-ahead log in, so the file alone holds everything
            old.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            old.close()
        self._db.execute("ATTACH DATABASE ? AS legacy", (str(legacy),))
        try:
            with self.write():
                if self._db.execute("SELECT 1 FROM classifier_meta LIMIT 1").fetchone():
                    return  # this file has a classifier already: leave the old one alone
                had = {row[1] for row in self._db.execute(_LEGACY_PRAGMA)}
                for table in _TABLES:
                    columns = "*" if "coef_content" in had else _LEGACY_COLUMNS.get(table, "*")
                    into = "" if columns == "*" else f" ({columns})"
                    self._db.execute(
                        f"INSERT INTO main.classifier_{table}{into}"
                        f" SELECT {columns} FROM legacy.classifier_{table}"
                    )
        finally:
            self._db.execute("DETACH DATABASE legacy")
        legacy.rename(legacy.with_name(LEGACY_FILENAME + ".migrated"))
        log.warning("the classifier in %s moved into %s", legacy, self.path)

    def _connect(self) -> None:
        self._conn = sqlite3.connect(
            self.path, timeout=self._timeout_s, isolation_level=None, check_same_thread=False
        )
        self._pid = os.getpid()

    @property
    def _db(self) -> sqlite3.Connection:
        # A connection must not cross fork(): a forked scan worker opens its own.
        if self._pid != os.getpid():
            self._connect()
        return self._conn

    def close(self) -> None:
        if self._pid == os.getpid():
            self._conn.close()

    @contextmanager
    def write(self, wait_s: float | None = None) -> Iterator[None]:
        db = self._db
        try:
            if wait_s is not None:
                db.execute(f"PRAGMA busy_timeout = {int(wait_s * 1000)}")
            try:
                db.execute("BEGIN IMMEDIATE")
            finally:
                if wait_s is not None:
                    db.execute(f"PRAGMA busy_timeout = {int(self._timeout_s * 1000)}")
        except sqlite3.Error as exc:
            raise StoreError(
                f"classifier store {self.where}: cannot take the write lock: {exc}"
            ) from None
        try:
            yield
            db.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):  # a full disk, a broken file
                raise StoreError(f"classifier store {self.where}: write failed: {exc}") from None
            raise

    @contextmanager
    def read(self) -> Iterator[None]:
        try:
            self._db.execute("BEGIN")
            try:
                yield
            finally:
                self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"classifier store {self.where}: read failed: {exc}") from None

    def changed(self) -> bool:
        """Whether another connection committed since the last call (cheap: no I/O)."""
        try:
            version = int(self._db.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error as exc:
            raise StoreError(f"classifier store {self.where}: {exc}") from None
        changed, self._data_version = version != self._data_version, version
        return changed

    def meta(self) -> dict[str, int]:
        return {k: int(v) for k, v in self._db.execute("SELECT key, value FROM classifier_meta")}

    def set_meta(self, **values: int) -> None:
        self._db.executemany(
            "INSERT INTO classifier_meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            values.items(),
        )

    def snapshot(self) -> tuple[int, Vector] | None:
        row = self._db.execute("SELECT generation, vector FROM classifier_weights").fetchone()
        if row is None:
            return None
        vector: Vector = np.frombuffer(row[1], dtype="<f4").astype(np.float32)
        return int(row[0]), vector

    def save_snapshot(self, generation: int, weights: Vector) -> None:
        """Write the whole vector and drop the deltas it includes."""
        self._db.execute(
            "INSERT OR REPLACE INTO classifier_weights (id, generation, vector) VALUES (0, ?, ?)",
            (generation, weights.astype("<f4").tobytes()),
        )
        self._db.execute("DELETE FROM classifier_deltas WHERE generation <= ?", (generation,))
        self.set_meta(snapshot=generation, generation=generation)

    def deltas_after(self, generation: int) -> Iterator[tuple[int, list[Step]]]:
        for gen, blob, sizes, amounts in self._db.execute(
            "SELECT generation, slots, sizes, amounts FROM classifier_deltas"
            " WHERE generation > ? ORDER BY generation",
            (generation,),
        ):
            yield int(gen), decode_delta(blob, sizes, amounts)

    def append_delta(self, generation: int, steps: list[Step]) -> None:
        """Log one change: its steps, each as compact as an example."""
        self._db.execute(
            "INSERT INTO classifier_deltas (generation, slots, sizes, amounts) VALUES (?, ?, ?, ?)",
            (generation, *encode_delta(steps)),
        )
        self.set_meta(generation=generation)

    def find(self, digest: bytes) -> Learned | None:
        row = self._db.execute(
            "SELECT id, spam, coef, coef_content FROM classifier_messages WHERE digest = ?",
            (digest,),
        ).fetchone()
        return Learned(int(row[0]), bool(row[1]), (float(row[2]), float(row[3]))) if row else None

    def insert(self, digest: bytes, spam: bool, coef: Coef, now: float) -> int:
        cursor = self._db.execute(
            "INSERT INTO classifier_messages (digest, spam, coef, coef_content, learned_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (digest, int(spam), *coef, now),
        )
        return int(cursor.lastrowid or 0)

    def relabel(self, id_: int, spam: bool, coef: Coef, now: float) -> None:
        self._db.execute(
            "UPDATE classifier_messages SET spam = ?, coef = ?, coef_content = ?, learned_at = ?"
            " WHERE id = ?",
            (int(spam), *coef, now, id_),
        )

    def add_coef(self, amounts: list[tuple[Coef, int]]) -> None:
        self._db.executemany(
            "UPDATE classifier_messages SET coef = coef + ?, coef_content = coef_content + ?"
            " WHERE id = ?",
            ((full, content, id_) for (full, content), id_ in amounts),
        )

    def delete(self, id_: int) -> None:
        self._db.execute("DELETE FROM classifier_messages WHERE id = ?", (id_,))
        self._db.execute("DELETE FROM classifier_examples WHERE id = ?", (id_,))

    def example(self, id_: int) -> Keys | None:
        row = self._db.execute(
            "SELECT slots FROM classifier_examples WHERE id = ?", (id_,)
        ).fetchone()
        return decode_slots(row[0]) if row else None

    def example_ids(self) -> list[tuple[int, bool]]:
        rows = self._db.execute("SELECT id, spam FROM classifier_examples ORDER BY id")
        return [(int(i), bool(s)) for i, s in rows]

    def put_example(self, id_: int, spam: bool, slots: Keys) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO classifier_examples (id, spam, slots) VALUES (?, ?, ?)",
            (id_, int(spam), encode_slots(slots)),
        )

    def drop_examples(self, ids: list[int]) -> None:
        self._db.executemany("DELETE FROM classifier_examples WHERE id = ?", ((i,) for i in ids))

    def put_vectors(self, rows: list[tuple[bytes, bool, bytes]], now: float, keep: int) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO classifier_vectors (digest, spam, vector, at)"
            " VALUES (?, ?, ?, ?)",
            ((digest, int(spam), vector, now) for digest, spam, vector in rows),
        )
        (count,) = self._db.execute("SELECT count(*) FROM classifier_vectors").fetchone()
        if count > keep:
            self._db.execute(
                "DELETE FROM classifier_vectors WHERE digest IN"
                " (SELECT digest FROM classifier_vectors ORDER BY at, rowid LIMIT ?)",
                (count - keep,),
            )

    def vectors(self) -> list[tuple[bool, bytes]]:
        rows = self._db.execute("SELECT spam, vector FROM classifier_vectors")
        return [(bool(spam), bytes(vector)) for spam, vector in rows]

    def scores_table(self) -> bytes | None:
        row = self._db.execute("SELECT fitted FROM classifier_scores").fetchone()
        return bytes(row[0]) if row else None

    def save_scores_table(self, blob: bytes) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO classifier_scores (id, fitted) VALUES (0, ?)", (blob,)
        )
        version = self.meta().get("scores", 0) + 1
        self.set_meta(scores=version)

    def calibration(self) -> bytes | None:
        row = self._db.execute("SELECT histograms FROM classifier_calibration").fetchone()
        return bytes(row[0]) if row else None

    def save_calibration(self, blob: bytes, version: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO classifier_calibration (id, histograms) VALUES (0, ?)",
            (blob,),
        )
        self.set_meta(calibration=version)
