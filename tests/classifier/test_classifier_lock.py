"""Learning never holds up a scan: the write lock has a deadline, and reloads never wait."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from seawall.classifier import Classifier
from seawall.config import ClassifierSettings
from seawall.errors import StoreError
from seawall.message import Envelope, parse_message

HAM = parse_message(b"Subject: agenda\r\nMessage-ID: <1@x>\r\n\r\nmonday at ten\r\n", Envelope())
SPAM = parse_message(b"Subject: pills\r\nMessage-ID: <2@x>\r\n\r\nbuy cheap pills\r\n", Envelope())


def test_a_learn_gives_up_on_a_locked_database_and_scans_keep_their_weights(
    tmp_path: Path,
) -> None:
    clf = Classifier.open(tmp_path, ClassifierSettings(reload_interval_s=0.0))
    assert clf.learn(HAM, False)
    before = clf.margin(SPAM)
    holder = sqlite3.connect(tmp_path / "state.sqlite", timeout=0, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writes (or hangs while writing)
    try:
        with pytest.raises(StoreError, match="write lock"):
            clf.learn(SPAM, True, wait_s=0.2)
        failed: list[BaseException] = []

        def learn() -> None:
            try:
                clf.learn(SPAM, True, wait_s=3.0)
            except StoreError as exc:
                failed.append(exc)

        waiting = threading.Thread(target=learn)
        waiting.start()
        time.sleep(0.3)  # it holds the classifier's lock, waiting for the database's
        # A scan (on the event loop in serve) does not wait for it: the weights loaded last.
        assert clf.margin(SPAM) == before
        # A second learn gives up on the classifier's lock within its own wait.
        with pytest.raises(StoreError, match="another learn"):
            clf.learn(SPAM, True, wait_s=0.2)
        waiting.join(10)
        assert failed
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert clf.learn(SPAM, True, wait_s=1.0)
    assert clf.counts == (1, 1)
    clf.close()
