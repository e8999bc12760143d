"""Learning labelled mail into both stages: the classifier and the learned symbol scores.

Before a message is learned, it is scanned as ``seawall serve`` would score it with the
content detectors (classifier, headers, received, URLs, attachments, language, phishing;
not the network lists, campaigns or reputation, whose answers belong to the moment of
delivery) and the shipped scores; its symbol vector is kept beside the classifier
(``classifier/scores.py``).  The classifier's own symbol is therefore what it said before
it had learned the message, as in a live stream, and the fit learns what that opinion is
worth.  At the end the symbol scores are fitted again to every vector kept.

Mail given as "all spam, then all ham" is learned interleaved (in the order of a hash of
each file's name) so that the classifier's opinion is recorded on both classes alike.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from seawall.classifier.features import digest
from seawall.classifier.scores import Table, symbol_vector
from seawall.config import Config
from seawall.engine import Engine, Scan, build_engine
from seawall.message import Envelope
from seawall.policy.scores import Scores, load_scores

if TYPE_CHECKING:
    from seawall.classifier import Classifier

# Detectors left out of the scan before learning: their answers depend on the moment and
# the network (DNS lists, SPF/DKIM keys, clamd) or on the stream itself (campaigns,
# reputation), which a bulk load of old mail would only pollute.
NOT_RECORDED = ("campaigns", "reputation", "dnsbl", "auth", "clamav")


def recording_config(config: Config) -> Config:
    """``config`` with only the content detectors on and the shipped scores in force."""
    detectors = config.detectors
    off = {
        name: msgspec.structs.replace(getattr(detectors, name), enabled=False)
        for name in NOT_RECORDED
    }
    classifier = msgspec.structs.replace(
        detectors.classifier,
        scores=msgspec.structs.replace(detectors.classifier.scores, enabled=False, pinned={}),
    )
    changed = msgspec.structs.replace(detectors, classifier=classifier, **off)
    return msgspec.structs.replace(config, detectors=changed)


def interleaved(paths: Sequence[str]) -> list[int]:
    """Indices of ``paths`` in the order of a SHA-1 of each file's name: spam and ham mixed,
    and the same order wherever the files lie (the whole path would make what is learned
    depend on the directory a corpus was unpacked in)."""
    return sorted(
        range(len(paths)), key=lambda i: hashlib.sha1(os.path.basename(paths[i]).encode()).digest()
    )


class Recorder:
    """Scans messages before they are learned and keeps their symbol vectors.

    >>> recorder = Recorder(config, classifier)         # doctest: +SKIP
    >>> scan = recorder.scan(raw)                       # doctest: +SKIP
    >>> recorder.keep(scan, spam=True)                  # doctest: +SKIP
    >>> recorder.finish()                               # doctest: +SKIP
    """

    def __init__(self, config: Config, classifier: Classifier) -> None:
        self.classifier = classifier
        self.scores: Scores = load_scores(Path(config.scores_file) if config.scores_file else None)
        quiet = logging.getLogger("seawall.classifier")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # "has learned too little": we are teaching it
        try:
            self.engine: Engine = build_engine(recording_config(config), classifier=classifier)
        finally:
            quiet.setLevel(level)
        self.rows: list[tuple[bytes, bool, dict[str, float]]] = []

    def scan(self, raw: bytes) -> Scan:
        return self.engine.scan_sync(Envelope(), raw)

    def keep(self, scan: Scan, *, spam: bool) -> None:
        vector = symbol_vector(scan.verdict.symbols, self.engine.scores)
        self.rows.append((digest(scan.message), spam, vector))

    def finish(self) -> Table | None:
        """Record the vectors kept and fit the symbol scores again (None: nothing new)."""
        if not self.rows:
            return None
        self.classifier.record(self.rows)
        self.rows = []
        return self.classifier.refit(self.scores)

    def close(self) -> None:
        """Close the engine; it closes the classifier too (closing it twice is safe)."""
        self.engine.close()
