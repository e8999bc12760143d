"""The garbage collector's settings for the length of a batch scan (batch.core.scan_gc)."""

from __future__ import annotations

import gc

from seawall.batch.core import SCAN_GC_YOUNG, scan_gc


def test_scan_gc_freezes_raises_the_young_threshold_and_restores_both() -> None:
    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    with scan_gc():
        young, *older = gc.get_threshold()
        assert young == max(before[0], SCAN_GC_YOUNG)
        assert tuple(older) == before[1:]
        assert gc.get_freeze_count() > frozen
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen


def test_scan_gc_restores_after_an_error() -> None:
    before = gc.get_threshold()
    try:
        with scan_gc():
            raise RuntimeError("a scan failed")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before
