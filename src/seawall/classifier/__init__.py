"""A learning content classifier for any language: online logistic regression on byte 4-grams.

Public API (used by the CLI, the engine and the detector)::

    clf = Classifier.from_config(config)   # <state_dir>/state.sqlite (WAL), or Redis
    clf.score(msg) -> float                      # probability of spam, 0..1
    clf.margin(msg) -> float                     # log-odds of spam (what the detector uses)
    clf.learn(msg, spam=True) -> bool            # False when already learned with that label
    clf.learn_many([(msg, spam), ...]) -> int    # bulk: one transaction, one vector write
    clf.unlearn(msg) -> bool                     # exact; False when never learned
    clf.counts -> (spam_learned, ham_learned)
    clf.ready -> bool                            # min_learns of each class reached
    clf.close()

How it works (see each module's docstring):

- ``features.py``: the header block, subject, decoded body text and URL hosts,
  each cut to a byte budget, become binary features: every 4-byte window of the
  UTF-8 text hashed into ``2**hash_bits`` slots, each region scaled to its own
  unit length.  No tokeniser, stemmer or stop list, so German, Russian or
  Chinese work as well as English.
- ``model.py``: online logistic regression (Goodman and Yih; the TREC spam-track
  winners used the same features).  Each message's total step is kept, so
  unlearning subtracts exactly what learning added.
- ``classifier.py``: learning a message is one gradient step on it plus
  ``replay`` steps on remembered messages (``memory.py``: the first from the
  other class), so the order of learning does not skew the model.  A message is
  identified by a SHA-256 of its Message-ID and body: learning it twice counts
  once, and learning it with the other label moves it.
- ``store.py``: SQLite tables ``classifier_*``.  Scanning processes load the
  weight vector once and then replay the small per-message deltas that other
  processes write, checking every ``reload_interval_s``.
"""

from __future__ import annotations

from seawall.classifier.classifier import Classifier, check_settings

__all__ = ["Classifier", "check_settings"]
