"""Shared state behind one narrow async protocol: sliding-window counters and values.

base.py    the Store protocol and the bucket arithmetic every backend shares
memory.py  MemoryStore: a dict, for tests and single-process use
sqlite.py  SqliteStore: the default, one WAL file that every worker process shares
"""

from __future__ import annotations

from pathlib import Path

from seawall.config import Config
from seawall.store.base import BUCKETS, Store
from seawall.store.memory import MemoryStore
from seawall.store.sqlite import FILENAME, SqliteStore

__all__ = ["BUCKETS", "FILENAME", "MemoryStore", "SqliteStore", "Store", "open_store"]


def open_store(config: Config) -> Store:
    """The configured store: SQLite at ``<state_dir>/state.sqlite``, creating the folder.

    Raises :class:`~seawall.errors.StoreError` when the file cannot be opened.
    """
    return SqliteStore.open(Path(config.state_dir) / FILENAME)
