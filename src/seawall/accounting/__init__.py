"""Who held an address when: RADIUS accounting sessions, kept in the state.

The public interface (stable; other parts of Seawall call it)::

    Session(account, ip, start, stop, nas, session_id)
        one dial-in: ``account`` (User-Name) held ``ip`` (Framed-IP-Address, or the
        Framed-IPv6-Prefix / Delegated-IPv6-Prefix it was given) from ``start`` to ``stop``
        (epoch seconds; ``stop`` is None while the session is open) on the NAS ``nas``
        (NAS-IP-Address, else NAS-Identifier) as Acct-Session-Id ``session_id``.

    sessions = open_sessions(config)           # on config.state (Redis) or config.state_dir
    await sessions.who(ip, at)                 # Session | None, exact to the second
    await sessions.history(ip, since, until)   # list[Session] overlapping [since, until]
    await sessions.sessions_of(account, since, until)
    await sessions.add(records)                # store Records (import, tailer, listener)
    await sessions.close()

``who(ip, at)`` answers the session on ``ip`` with the latest start at or before ``at``,
provided it had not stopped by then: a session holds its address over ``[start, stop)``, so
when an address passes from one account to the next within a second, ``at`` = that second
is the new holder's.  An open session is ended by the next session on its address (its Stop
was lost).  An IPv6 address is looked up by the delegated prefix that holds it (/64 or
shorter).

Records: ``Record`` (records.py) is one accounting request, from a FreeRADIUS ``detail``
file (detail.py, tail.py) or the RFC 2866 listener (listener.py).  Start, Interim-Update
and Stop each tell what they know, and ``merge`` combines them in any order: a session
known only from an Interim-Update starts at ``event time - Acct-Session-Time``, a Start
sets the exact start, a Stop the exact stop, whenever they arrive.  Accounting-On and
Accounting-Off close every open session of their NAS at their time.  Storing the same
record twice changes nothing, so an import can be run again.

Backends (one contract, tests/accounting/test_contract.py): ``SqliteSessions`` in
``<state_dir>/state.sqlite`` (sqlite.py), ``RedisSessions`` on the state's Redis, Sentinel
or Cluster (redis.py).  Lookups are logarithmic (an index by start per address); sessions
that ended, or were last heard of, more than ``[accounting] retention_s`` before the newest
record of their address are dropped as records arrive, which bounds the memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from seawall.accounting.records import AccountingError, Record, Session, Status
from seawall.config import Config, state_url

__all__ = [
    "AccountingError",
    "Record",
    "Session",
    "Sessions",
    "Status",
    "open_sessions",
]


class Sessions(Protocol):
    """Accounting sessions in the state; see the module docstring."""

    async def who(self, ip: str, at: float) -> Session | None:
        """The session that held ``ip`` at ``at`` (epoch seconds), or None."""
        ...

    async def history(self, ip: str, since: float, until: float) -> list[Session]:
        """The sessions that held ``ip`` at some time in ``[since, until]``, by start."""
        ...

    async def sessions_of(self, account: str, since: float, until: float) -> list[Session]:
        """The sessions of ``account`` that were up at some time in ``[since, until]``."""
        ...

    async def add(self, records: Sequence[Record]) -> int:
        """Store ``records`` (in the order given); how many changed a session."""
        ...

    async def close(self) -> None: ...


def open_sessions(config: Config, *, timeout_s: float | None = None) -> Sessions:
    """The sessions on the configured state: Redis when ``state`` is a Redis URL, else
    SQLite in ``<state_dir>/state.sqlite``.  Connects on first use; ``timeout_s`` bounds
    each Redis reply (default: the store's).  Raises ConfigError or StoreError."""
    retention_s = config.accounting.retention_s
    url = state_url(config)
    if url is not None:
        from seawall.accounting.redis import RedisSessions

        return RedisSessions.from_url(url, retention_s=retention_s, timeout_s=timeout_s)
    from seawall.accounting.sqlite import SqliteSessions

    return SqliteSessions.open(Path(config.state_dir) / "state.sqlite", retention_s=retention_s)
