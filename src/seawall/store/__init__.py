"""Shared state behind one narrow async protocol: sliding-window counters and values.

base.py     the Store protocol and the bucket arithmetic every backend shares
memory.py   MemoryStore: a dict, for tests and single-process use
sqlite.py   SqliteStore: the default, one WAL file that every worker process shares
redis.py    RedisStore: one Redis or a Redis Cluster that every node shares
history.py  each address's recent verdicts, over any of them
"""

from __future__ import annotations

from pathlib import Path

from seawall.config import Config, state_url
from seawall.store.base import BUCKETS, Store
from seawall.store.memory import MemoryStore
from seawall.store.sqlite import FILENAME, SqliteStore

__all__ = ["BUCKETS", "FILENAME", "MemoryStore", "SqliteStore", "Store", "open_store"]


def open_store(config: Config) -> Store:
    """The configured store: Redis when ``state`` is a Redis URL, else SQLite at
    ``<state_dir>/state.sqlite`` (creating the folder).

    Raises :class:`~seawall.errors.StoreError` when the file cannot be opened, and
    :class:`~seawall.errors.ConfigError` for a Redis URL it cannot use.  A Redis store
    connects on first use.
    """
    url = state_url(config)
    if url is not None:
        from seawall.store.redis import RedisStore

        return RedisStore.from_url(url)
    return SqliteStore.open(Path(config.state_dir) / FILENAME)
