"""Measure accuracy: ROC AUC, spam recall at a fixed ham false-positive rate, and speed.

Two protocols, as in the TREC spam track: *offline* (a deterministic split by
SHA-1 of the basename; learn the train part one message at a time, then score
the test part) and *online* (messages in time order, each scored, then learned).
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seawall.batch import Record, scan_units
from seawall.config import Config
from seawall.corpus import in_train_split
from seawall.engine import StageTimes, build_engine
from seawall.message import Envelope, ParseLimits, parse_message
from seawall.message import defects as d
from seawall.message.sniff import EMPTY, kind_of
from seawall.policy.model import Action
from seawall.sources import Unit

log = logging.getLogger("seawall.learn")


@dataclass(frozen=True, slots=True)
class Labelled:
    unit: Unit
    spam: bool

    @property
    def key(self) -> str:
        """The split key: the basename, with ``#N`` for the Nth message of an mbox."""
        return Path(self.unit.path).name


@dataclass(frozen=True, slots=True)
class Metrics:
    spam: int
    ham: int
    roc_auc: float
    one_minus_roca_pct: float
    recall_at_fpr_01: float  # spam recall with at most 0.1% of ham above the threshold
    recall_at_fpr_1: float
    recall_at_action: float  # spam whose action is a spam action (add header and worse)
    fpr_at_action: float
    msgs_per_s: float

    def as_dict(self) -> dict[str, float | int]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class Outcome:
    metrics: Metrics
    records: list[tuple[Record, bool]]
    learned: tuple[int, int] = (0, 0)
    learn_s: float = 0.0
    times: StageTimes = field(default_factory=StageTimes)


def roc_auc(spam: Sequence[float], ham: Sequence[float]) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties count one half)."""
    if not spam or not ham:
        return float("nan")
    scores = np.concatenate([np.asarray(spam, float), np.asarray(ham, float)])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    n_spam = len(spam)
    u = ranks[:n_spam].sum() - n_spam * (n_spam + 1) / 2.0
    return float(u / (n_spam * len(ham)))


def recall_at_fpr(spam: Sequence[float], ham: Sequence[float], fpr: float) -> float:
    """Share of spam scored above the threshold that lets at most ``fpr`` of ham through.

    The threshold is the (k+1)-th highest ham score with k = floor(fpr x #ham);
    spam must score strictly above it.
    """
    if not spam or not ham:
        return float("nan")
    allowed = int(np.floor(fpr * len(ham)))
    ham_desc = np.sort(np.asarray(ham, float))[::-1]
    threshold = ham_desc[min(allowed, len(ham_desc) - 1)]
    return float((np.asarray(spam, float) > threshold).mean())


def metrics_of(pairs: Sequence[tuple[Record, bool]], seconds: float) -> Metrics:
    spam = [r.score for r, is_spam in pairs if is_spam]
    ham = [r.score for r, is_spam in pairs if not is_spam]
    auc = roc_auc(spam, ham)
    spam_caught = sum(1 for r, s in pairs if s and Action(r.action).is_spam)
    ham_flagged = sum(1 for r, s in pairs if not s and Action(r.action).is_spam)
    return Metrics(
        spam=len(spam),
        ham=len(ham),
        roc_auc=round(auc, 6),
        one_minus_roca_pct=round((1 - auc) * 100, 4),
        recall_at_fpr_01=round(recall_at_fpr(spam, ham, 0.001), 4),
        recall_at_fpr_1=round(recall_at_fpr(spam, ham, 0.01), 4),
        recall_at_action=round(spam_caught / len(spam), 4) if spam else float("nan"),
        fpr_at_action=round(ham_flagged / len(ham), 5) if ham else float("nan"),
        msgs_per_s=round(len(pairs) / seconds, 1) if seconds > 0 else float("nan"),
    )


def split(
    items: Sequence[Labelled], fraction: float, seed: int
) -> tuple[list[Labelled], list[Labelled]]:
    """The train and test parts, each in a seeded pseudo-random order, as a live stream
    would come, not in the order the folders were named (all spam, then all ham): what
    learns from verdicts while the test part is scanned (campaigns, reputation) sees the
    two kinds mixed."""
    train: list[Labelled] = []
    test: list[Labelled] = []
    for item in items:
        (train if in_train_split(item.key, fraction, seed) else test).append(item)
    train.sort(key=lambda i: hashlib.sha1(f"order:{seed}:{i.key}".encode()).digest())
    test.sort(key=lambda i: hashlib.sha1(f"test:{seed}:{i.key}".encode()).digest())
    return train, test


Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class Learned:
    changed: int  # messages that changed the classifier (new, or moved to the other label)
    spam_total: int  # what the classifier knows afterwards
    ham_total: int
    # What was not learned because it is not mail: "empty", or what it is ("xz archive",
    # "ELF binary", "text without mail headers", ...), with how many of each.
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def describe_skipped(self) -> str:
        """``"3: 2 not mail (xz archive, ELF binary), 1 empty"``; "" when none was skipped."""
        if not self.skipped:
            return ""
        empty = self.skipped.get(EMPTY, 0)
        kinds = {kind: n for kind, n in self.skipped.items() if kind != EMPTY}
        parts = []
        if kinds:
            named = ", ".join(k if n == 1 else f"{n} x {k}" for k, n in kinds.items())
            parts.append(f"{sum(kinds.values())} not mail ({named})")
        if empty:
            parts.append(f"{empty} empty")
        return f"{self.skipped_total}: " + ", ".join(parts)


def learn_all(
    items: Sequence[Labelled], config: Config, progress: Progress | None = None
) -> Learned:
    """Learn ``items`` one message at a time, in their order, into the classifier under
    config.state_dir.

    What is not mail (empty files, archives, programs, text without a mail header: the
    parser's ``empty`` and ``not_mail`` defects) is skipped and counted in
    ``Learned.skipped``, so that a stray archive never teaches the classifier its bytes.
    """
    from seawall.classifier import Classifier
    from seawall.learning import Recorder, interleaved

    classifier = Classifier.from_config(config)
    limits = ParseLimits.from_config(config)
    changed = 0
    skipped: Counter[str] = Counter()
    # The learned symbol scores: each message scanned before it is learned (learning.py).
    recorder = Recorder(config, classifier) if config.detectors.classifier.scores.enabled else None
    try:
        order = interleaved([i.unit.path for i in items]) if recorder else range(len(items))
        first: dict[str, int] = {}  # where each kind of non-mail first was, for the summary
        for index in order:
            item = items[index]
            raw = item.unit.read()
            scan = recorder.scan(raw) if recorder else None
            msg = scan.message if scan else parse_message(raw, Envelope(), limits)
            if d.EMPTY in msg.defects or d.NOT_MAIL in msg.defects:
                kind = kind_of(raw)
                skipped[kind] += 1
                first[kind] = min(first.get(kind, index), index)
                log.info("skipped %s: %s, not mail", item.unit.path, kind)
            elif classifier.learn(msg, item.spam):
                changed += 1
                if recorder and scan:
                    recorder.keep(scan, spam=item.spam)
            if progress:
                progress(1)
        spam_total, ham_total = classifier.counts
        if recorder:
            recorder.finish()
    finally:
        if recorder:
            recorder.close()
        classifier.close()
    kinds = sorted(skipped, key=lambda kind: (-skipped[kind], first[kind]))
    return Learned(changed, spam_total, ham_total, {kind: skipped[kind] for kind in kinds})


@contextmanager
def state_or_temporary(state: str | None, prefix: str) -> Iterator[str]:
    """``state`` if given, else a throw-away state dir removed afterwards."""
    if state:
        yield state
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield tmp


def run_offline(
    train: Sequence[Labelled],
    test: Sequence[Labelled],
    config: Config,
    *,
    workers: int,
    progress: Progress | None = None,
) -> Outcome:
    t0 = time.perf_counter()
    learn_all(train, config, progress)
    learn_s = time.perf_counter() - t0
    times = StageTimes()
    t1 = time.perf_counter()
    pairs: list[tuple[Record, bool]] = []
    labels = {item.unit.path: item.spam for item in test}
    # feed: what learns from verdicts (campaigns, reputation) is measured as serve runs it,
    # shared by the workers through the state (eval's own, unless --state names one).
    units = [i.unit for i in test]
    for record in scan_units(units, config, workers=workers, times=times, feed=True):
        pairs.append((record, labels[record.path]))
        if progress:
            progress(1)
    seconds = time.perf_counter() - t1
    spam_n = sum(1 for i in train if i.spam)
    return Outcome(
        metrics_of(pairs, seconds),
        pairs,
        learned=(spam_n, len(train) - spam_n),
        learn_s=learn_s,
        times=times,
    )


_RECEIVED_DATE = re.compile(rb"^Received:(?:.|\n[ \t])*?;\s*((?:.|\n[ \t])+?)$", re.M | re.I)
_DATE = re.compile(rb"^Date:[ \t]*(.+)$", re.M | re.I)


def received_time(raw: bytes) -> float | None:
    """When the message arrived: the top Received header's date, else the Date header."""
    head = raw[: raw.find(b"\n\n") if b"\n\n" in raw[:65536] else 65536]
    for pattern in (_RECEIVED_DATE, _DATE):
        found = pattern.search(head)
        if found:
            text = found.group(1).decode("latin-1").replace("\n", " ")
            try:
                parsed = email.utils.parsedate_to_datetime(text.strip())
            except (TypeError, ValueError, IndexError):
                continue
            if parsed is not None:
                try:
                    return parsed.timestamp()
                except (OverflowError, OSError, ValueError):
                    continue
    return None


def chronological(items: Sequence[Labelled], seed: int) -> list[Labelled]:
    """Order by arrival time; undated messages keep a seeded pseudo-random place."""
    keyed: list[tuple[float, str, Labelled]] = []
    for item in items:
        try:
            when = received_time(item.unit.read()[:65536])
        except OSError:
            when = None
        tie = hashlib.sha1(f"{seed}:{item.unit.path}".encode()).hexdigest()
        keyed.append((when if when is not None else float("inf"), tie, item))
    keyed.sort(key=lambda k: (k[0], k[1]))
    return [k[2] for k in keyed]


def run_online(
    items: Sequence[Labelled], config: Config, *, seed: int, progress: Progress | None = None
) -> Outcome:
    """TREC-style: in time order, score each message, then learn it with its label."""
    from seawall.batch import to_record
    from seawall.classifier import Classifier

    ordered = chronological(items, seed)
    classifier = Classifier.from_config(config)
    engine = build_engine(config, classifier=classifier)
    pairs: list[tuple[Record, bool]] = []
    t0 = time.perf_counter()
    try:
        for item in ordered:
            raw = item.unit.read()
            scan = engine.scan_sync(Envelope(), raw)
            pairs.append((to_record(item.unit.path, scan.verdict, len(raw)), item.spam))
            classifier.learn(scan.message, item.spam)
            if progress:
                progress(1)
    finally:
        engine.close()
        classifier.close()
    seconds = time.perf_counter() - t0
    spam_n = sum(1 for i in items if i.spam)
    return Outcome(
        metrics_of(pairs, seconds), pairs, learned=(spam_n, len(items) - spam_n), times=engine.times
    )
