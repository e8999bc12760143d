"""The learning content classifier: features + model + store behind one small API."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
import numpy as np

from seawall.classifier import pair
from seawall.classifier.calibration import Calibration, RejectMargin
from seawall.classifier.features import MODELS, VERSION, Keys, digest, features, split
from seawall.classifier.memory import Memory
from seawall.classifier.model import Model, sigmoid
from seawall.classifier.scores import Table, apply, fit
from seawall.classifier.store import FILENAME, Coef, SqliteWeights, Step, WeightStore
from seawall.config import ClassifierSettings, Config, state_url
from seawall.errors import ConfigError, StoreError
from seawall.message.model import Message
from seawall.policy.scores import Scores
from seawall.quietlog import QuietLog

_quiet = QuietLog(logging.getLogger("seawall.classifier"))
_COMPACT_AFTER = 200  # deltas before the whole vector is rewritten (8 MiB at 20 bits)


def check_settings(settings: ClassifierSettings) -> None:
    """Raise ConfigError for settings that cannot work."""
    problems = []
    if not 12 <= settings.hash_bits <= 26:
        problems.append("hash_bits must be 12..26")
    if not settings.learning_rate > 0:
        problems.append("learning_rate must be > 0")
    if settings.replay < 0 or settings.memory_messages < 0 or settings.min_learns < 0:
        problems.append("replay, memory_messages and min_learns must be >= 0")
    if not settings.margin_scale > 0 or settings.reload_interval_s < 0:
        problems.append("margin_scale must be > 0 and reload_interval_s >= 0")
    if problems:
        raise ConfigError("detectors.classifier: " + "; ".join(problems))


class Classifier:
    """Online logistic regression over hashed byte 4-grams, persisted in SQLite.

    One instance per process.  Scanning reads an in-memory weight vector and
    picks up what other processes learned every ``reload_interval_s``; learning
    writes through at once.  Thread-safe.

    >>> clf = Classifier.open(Path("var"), ClassifierSettings())     # doctest: +SKIP
    >>> clf.learn(msg, spam=True), clf.learn(msg, spam=True)         # doctest: +SKIP
    (True, False)
    >>> clf.score(msg) > 0.5                                         # doctest: +SKIP
    True
    """

    def __init__(self, store: WeightStore, settings: ClassifierSettings) -> None:
        self.settings = settings
        self.store = store
        self.model = Model.zeros(settings.hash_bits, settings.learning_rate, MODELS)
        self._generation = 0
        self._snapshot = 0  # generation of the saved vector
        self._counts = (0, 0)
        self._lock = threading.RLock()
        self._checked_at = float("-inf")
        self.memory = Memory(store, settings.memory_messages)
        self._closed = False
        self._table: Table | None = None  # the learned symbol scores (scores.py)
        self._table_version = 0
        self._applied: tuple[tuple[int, int], Scores] | None = None
        self._calibration = Calibration()  # unseen margins (calibration.py)
        self._calibration_version = 0
        self._calibrated = False  # a margin was added since the last save
        self._reject: RejectMargin | None = None
        with self._lock, store.read():
            self._check_meta(store.meta())
            self._sync()

    @classmethod
    def open(cls, state_dir: Path, settings: ClassifierSettings) -> Classifier:
        """Open (or create) the embedded classifier in ``state_dir/state.sqlite``."""
        check_settings(settings)
        return cls(SqliteWeights(Path(state_dir) / FILENAME), settings)

    @classmethod
    def from_config(cls, config: Config) -> Classifier:
        """The classifier where ``config`` keeps its state: Redis, or the state dir."""
        url = state_url(config)
        if url is None:
            return cls.open(Path(config.state_dir), config.detectors.classifier)
        from seawall.classifier.redis_weights import RedisWeights

        check_settings(config.detectors.classifier)
        return cls(RedisWeights(url), config.detectors.classifier)

    def close(self) -> None:
        """Close the database; safe to call twice."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self.store.close()

    @property
    def counts(self) -> tuple[int, int]:
        """(spam learned, ham learned), as of the last reload."""
        self._maybe_reload()
        return self._counts

    @property
    def bits(self) -> int:
        return self.settings.hash_bits

    @property
    def ready(self) -> bool:
        """Both classes have at least ``min_learns`` messages: the score means something."""
        spam, ham = self.counts
        return min(spam, ham) >= self.settings.min_learns

    def margin(self, msg: Message) -> float:
        """Log-odds that ``msg`` is spam: positive for spam, 0.0 knows nothing (the
        larger of the full and the content model's, pair.py)."""
        return self.margins(msg)[0]

    def margins(self, msg: Message) -> tuple[float, float | None]:
        """The margin (:meth:`margin`) and the content model's own (None without content)."""
        self._maybe_reload()
        full, content = pair.margins(self.model, features(msg, bits=self.bits), bits=self.bits)
        return pair.combine(full, content), content

    @property
    def calibration(self) -> Calibration:
        """The histograms of unseen margins, as of the last reload."""
        self._maybe_reload()
        return self._calibration

    @property
    def reject_margin(self) -> RejectMargin | None:
        """Where the classifier alone is sure enough to reject (calibration.py), as of the
        last reload; None until enough unseen ham was scored."""
        self._maybe_reload()
        return self._reject

    def score(self, msg: Message) -> float:
        """Probability that ``msg`` is spam."""
        return sigmoid(self.margin(msg))

    def learn(self, msg: Message, spam: bool, *, wait_s: float | None = None) -> bool:
        """Learn ``msg`` with its label; False when it was already learned with that label.

        A message learned before with the other label is unlearned first, so
        correcting a mistake is one call.  ``wait_s`` bounds the wait for another
        learn or another process's write lock (None: the store's own timeout); past it,
        StoreError, with nothing learned.
        """
        return self.learn_many(((msg, spam),), log=True, wait_s=wait_s) == 1

    def learn_many(
        self,
        pairs: Iterable[tuple[Message, bool]],
        *,
        log: bool = False,
        wait_s: float | None = None,
    ) -> int:
        """Learn many messages in one transaction; returns how many changed anything.

        Faster than :meth:`learn` in a loop: other processes reload the whole
        vector once at the end instead of replaying one change per message.
        """
        changed = 0
        with self._locked(wait_s), self._writing(wait_s):
            gen = self._generation
            journal: list[Step] | None = [] if log else None
            for msg, spam in pairs:
                changed += self._learn_one(msg, spam, journal)
            if changed:
                self._finish(gen + 1, journal)
        return changed

    def unlearn(self, msg: Message, *, wait_s: float | None = None) -> bool:
        """Forget ``msg`` exactly; False if it was never learned (``wait_s`` as for learn)."""
        with self._locked(wait_s), self._writing(wait_s):
            found = self.store.find(digest(msg))
            if found is None:
                return False
            keys = self.store.example(found.id)
            if keys is None:
                keys = features(msg, bits=self.bits)
            steps = self._take_back(keys, found.coef)
            self.store.delete(found.id)
            self.memory.forget(found.id)
            spam, ham = self._counts
            self._counts = (spam - found.spam, ham - (not found.spam))
            self._finish(self._generation + 1, steps)
        return True

    @property
    def table(self) -> Table | None:
        """The learned symbol scores as last fitted (None before the first fit)."""
        self._maybe_reload()
        return self._table

    def scores_over(self, base: Scores) -> Scores:
        """``base`` with the learned symbol scores applied (scores.apply): what the policy
        scores a verdict with.  Never waits: the table is the one loaded last."""
        self._maybe_reload()
        key = (id(base), self._table_version)
        applied = self._applied
        if applied is None or applied[0] != key:
            applied = self._applied = (key, apply(base, self._table, self.settings.scores))
        return applied[1]

    def record(
        self, rows: Iterable[tuple[bytes, bool, dict[str, float]]], *, wait_s: float | None = None
    ) -> int:
        """Keep the symbol vectors of learned messages, ``(digest, spam, vector)``, for the
        fit; a digest recorded before is replaced.  Returns how many were written."""
        encoded = [(key, spam, msgspec.json.encode(vector)) for key, spam, vector in rows]
        if not encoded:
            return 0
        with self._locked(wait_s), self._writing(wait_s):
            self.store.put_vectors(encoded, time.time(), self.settings.scores.max_messages)
        return len(encoded)

    def refit(self, base: Scores, *, wait_s: float | None = None) -> Table:
        """Fit the symbol scores to every recorded vector and save the table; every
        process applies it within ``reload_interval_s``."""
        with self._locked(wait_s):
            with self.store.read():
                blobs = self.store.vectors()
            rows = [
                (spam, msgspec.json.decode(blob, type=dict[str, float])) for spam, blob in blobs
            ]
        table = fit(rows, base, self.settings.scores)
        with self._locked(wait_s), self._writing(wait_s):
            self.store.save_scores_table(table.encode())
            self._finish(self._generation + 1, [])  # a generation: Redis readers see it
            self._load_table()
        return table

    def _load_table(self) -> None:
        version = self.store.meta().get("scores", 0)
        if version == self._table_version:
            return
        blob = self.store.scores_table()
        try:
            self._table = Table.decode(blob) if blob else None
        except msgspec.DecodeError as exc:
            _quiet.warning("table", "classifier: unreadable learned scores, ignored: %s", exc)
            self._table = None
        self._table_version = version

    def _load_calibration(self, version: int) -> None:
        blob = self.store.calibration() if version else None
        try:
            self._calibration = Calibration.decode(blob) if blob else Calibration()
        except ValueError as exc:
            _quiet.warning(
                "calibration", "classifier: unreadable calibration, starting afresh: %s", exc
            )
            self._calibration = Calibration()
        self._calibration_version = version
        self._calibrated = False
        self._derive_reject()

    def _derive_reject(self) -> None:
        self._reject = self._calibration.reject_margin(
            fpr=self.settings.reject_fpr,
            min_ham=self.settings.calibration_min_ham,
            min_spam=self.settings.calibration_min_spam,
        )

    @contextmanager
    def _locked(self, wait_s: float | None) -> Iterator[None]:
        """This process's lock, for at most ``wait_s``: a learn waiting behind another one
        that waits on the database gives up rather than queue for good."""
        if not self._lock.acquire(timeout=-1 if wait_s is None else wait_s):
            raise StoreError(f"{self.store.where}: another learn holds the classifier")
        try:
            yield
        finally:
            self._lock.release()

    @contextmanager
    def _writing(self, wait_s: float | None = None) -> Iterator[None]:
        """A write transaction on up-to-date weights; a failure reloads them from the file."""
        try:
            with self.store.write(wait_s):
                self._sync()
                yield
        except BaseException:
            self._generation = -1  # the weights may hold a step the file does not
            self._calibration_version = -1  # ... and the calibration a margin
            self._calibrated = False
            self.memory.invalidate()
            raise

    def _learn_one(self, msg: Message, spam: bool, journal: list[Step] | None) -> int:
        key = digest(msg)
        keys = features(msg, bits=self.bits)
        now = time.time()
        found = self.store.find(key)
        if found is not None and found.spam == spam:
            return 0
        steps: list[Step] = []
        spam_n, ham_n = self._counts
        if found is not None:  # relabel: take the old lesson back first
            old = self.store.example(found.id)
            old = keys if old is None else old
            steps.extend(self._take_back(old, found.coef))
            self.memory.forget(found.id)
            spam_n, ham_n = spam_n - found.spam, ham_n - (not found.spam)
        if min(spam_n, ham_n) >= self.settings.min_learns:  # its margin before it is learned
            self._calibration.add(pair.margin(self.model, keys, bits=self.bits), spam=spam)
            self._calibrated = True
        amount, done = pair.step(self.model, keys, bits=self.bits, spam=spam)
        steps.extend(done)
        if found is None:
            row = self.store.insert(key, spam, amount, now)
        else:
            row = found.id
            self.store.relabel(row, spam, amount, now)
        steps.extend(self._replay(spam, random.Random(key)))
        self.memory.remember(row, spam, keys)
        self._counts = (spam_n + spam, ham_n + (not spam))
        if journal is not None:
            journal.extend(steps)
        return 1

    def _replay(self, spam: bool, rng: random.Random) -> list[Step]:
        """Re-learn ``settings.replay`` remembered messages (see :class:`Memory`).

        Without this, online learning is at the mercy of the order: after a
        bulk ``learn`` of all spam then all ham, the last ham pushes every
        common feature towards ham.  Each replayed message's coefficient grows
        by its step, so unlearning it later stays exact.
        """
        steps: list[Step] = []
        bumps: list[tuple[Coef, int]] = []
        for row, label, keys in self.memory.draws(spam, self.settings.replay, rng):
            amount, done = pair.step(self.model, keys, bits=self.bits, spam=label)
            steps.extend(done)
            bumps.append((amount, row))
        self.store.add_coef(bumps)
        return steps

    def _take_back(self, keys: Keys, coef: Coef) -> list[Step]:
        """Subtract a message's whole lesson from both models; the steps to log."""
        return pair.add(self.model, keys, (-coef[0], -coef[1]), bits=self.bits)

    def _add(self, keys: Keys, amount: float) -> None:
        """Replay one logged step (the keys of one model's part)."""
        self.model.add(*split(keys, bits=self.bits), amount)

    def _finish(self, gen: int, journal: list[Step] | None) -> None:
        """Record generation ``gen``: as a delta, or (bulk, or too many deltas) a snapshot."""
        spam, ham = self._counts
        self.store.set_meta(spam=spam, ham=ham, bits=self.settings.hash_bits, features=VERSION)
        if self._calibrated:
            self._calibration_version += 1
            self.store.save_calibration(self._calibration.encode(), self._calibration_version)
            self._calibrated = False
            self._derive_reject()
        if journal is not None:
            self.store.append_delta(gen, journal)
        if journal is None or gen - self._snapshot >= _COMPACT_AFTER:
            self.store.save_snapshot(gen, self.model.weights)
            self._snapshot = gen
        self._generation = gen
        self.store.changed()  # our own commit is not news

    def _maybe_reload(self) -> None:
        """Catch up with other processes' learns, if it is time and nobody is writing.

        Scans call this on the event loop: it never waits.  While a learn holds the lock
        (it may be waiting for the database's write lock) or the store fails, the scan
        goes on with the weights loaded last.
        """
        now = time.monotonic()
        if now - self._checked_at < self.settings.reload_interval_s and self._generation >= 0:
            return
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._checked_at = now
            if self.store.changed() or self._generation < 0:
                with self.store.read():
                    self._sync()
        except StoreError as exc:
            _quiet.warning("reload", "classifier: keeping the weights loaded last: %s", exc)
        finally:
            self._lock.release()

    def _sync(self) -> None:
        """Catch up with what other processes learned (inside a read or write transaction)."""
        meta = self.store.meta()
        self._counts = (meta.get("spam", 0), meta.get("ham", 0))
        if meta.get("scores", 0) != self._table_version:
            self._load_table()
        if meta.get("calibration", 0) != self._calibration_version:
            self._load_calibration(meta.get("calibration", 0))
        self._snapshot = meta.get("snapshot", 0)
        latest = meta.get("generation", 0)
        if latest == self._generation:
            return
        self.memory.invalidate()  # another writer may have added or evicted examples
        if self._generation < meta.get("snapshot", 0) or latest < self._generation:
            saved = self.store.snapshot()
            if saved is None:  # only deltas so far (or the tables were emptied)
                saved = (0, np.zeros_like(self.model.weights))
            elif saved[1].size != self.model.weights.size:
                raise StoreError(
                    f"{self.store.where}: the saved weights have {saved[1].size} entries, "
                    f"not {self.model.weights.size}; delete the classifier_* tables and "
                    "learn again"
                )
            self._generation, self.model.weights = saved
        for gen, steps in self.store.deltas_after(self._generation):
            for keys, amount in steps:
                self._add(keys, amount)
            self._generation = gen

    def _check_meta(self, meta: dict[str, int]) -> None:
        bits, version = meta.get("bits"), meta.get("features")
        if bits is None:
            return
        if bits != self.settings.hash_bits:
            raise ConfigError(
                f"detectors.classifier.hash_bits is {self.settings.hash_bits} but "
                f"{self.store.where} was learned with {bits}: set it back or relearn"
            )
        if version != VERSION:
            raise StoreError(
                f"{self.store.where}: classifier features v{version}, this version reads "
                f"v{VERSION}; delete the classifier_* tables and learn again"
            )
