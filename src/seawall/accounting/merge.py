"""How a session is built from its records, in whatever order they arrive (pure).

A session is known by its NAS, its Acct-Session-Id (RFC 2866 §5.5: unique on its NAS) and
one of its addresses.  Each record tells what it knows:

Start           the exact start
Interim-Update  the session is up: it started at ``time - Acct-Session-Time`` (or by
                ``time`` when the NAS sends no session time), unless a Start said exactly
Stop            the exact stop, and the start as an Interim-Update tells it
Accounting-On/Off  every open session of the NAS that started by then stopped then; a
                Stop that arrives later still sets the exact stop

A late Interim-Update never reopens a stopped session, and the same record merged twice
gives the same session, so imports can be repeated.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import msgspec

from seawall.accounting.records import Record, Session, Status


@dataclass(frozen=True, slots=True)
class Stored:
    """A session as the backends keep it: the public Session and what merging needs."""

    account: str
    ip: str
    nas: str
    session_id: str
    start: float
    start_exact: bool  # from a Start; else the earliest start the other records imply
    stop: float | None
    stop_exact: bool  # from a Stop; else from an Accounting-On/Off (or open)
    last: float  # the latest time a record was heard of it

    @property
    def end(self) -> float:
        """When it stopped, or was last heard of while open: what retention counts from."""
        return self.stop if self.stop is not None else self.last

    def session(self) -> Session:
        return Session(self.account, self.ip, self.start, self.stop, self.nas, self.session_id)

    def encode(self) -> bytes:
        """Compact, deterministic bytes (the Redis backend compares them)."""
        return _ENCODER.encode(
            (
                self.account,
                self.ip,
                self.nas,
                self.session_id,
                self.start,
                self.start_exact,
                self.stop,
                self.stop_exact,
                self.last,
            )
        )

    @classmethod
    def decode(cls, data: bytes) -> Stored:
        return cls(*_DECODER.decode(data))


_Row = tuple[str, str, str, str, float, bool, float | None, bool, float]
_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(_Row)


def merge(old: Stored | None, record: Record, ip: str) -> Stored:
    """``old`` (None: not known yet) with ``record``, for its address ``ip``.  Only a
    session's own records (Start, Interim-Update, Stop) are merged here."""
    at = record.time
    implied = at - record.session_time if record.session_time is not None else at
    status = record.status
    start, start_exact = (at, True) if status is Status.START else (implied, False)
    if old is None:
        stop = at if status is Status.STOP else None
        return Stored(
            account=record.account,
            ip=ip,
            nas=record.nas,
            session_id=record.session_id,
            start=min(start, stop) if stop is not None else start,
            start_exact=start_exact,
            stop=stop,
            stop_exact=stop is not None,
            last=at,
        )
    if old.start_exact and start_exact:
        start = min(old.start, start)  # a resent Start with another delay: the earlier
    elif old.start_exact:
        start, start_exact = old.start, True
    elif not start_exact:
        start = min(old.start, start)
    stop, stop_exact = old.stop, old.stop_exact
    if status is Status.STOP:
        if not stop_exact or stop is None:
            stop, stop_exact = at, True
        else:
            stop = min(stop, at)  # a resent Stop
    if stop is not None and start > stop:
        start = stop
    return replace(
        old,
        account=old.account or record.account,
        start=start,
        start_exact=start_exact,
        stop=stop,
        stop_exact=stop_exact,
        last=max(old.last, at),
    )


def close_at(old: Stored, at: float) -> Stored | None:
    """``old`` closed by its NAS's Accounting-On/Off at ``at``; None when that changes
    nothing (it was stopped already, or started after ``at``)."""
    if old.stop is not None or old.start > at:
        return None
    return replace(old, stop=at, stop_exact=False, last=max(old.last, at))


def effective(sessions: list[Stored]) -> list[Session]:
    """The sessions of one address by start, an open one ended by the next session on
    the address (its Stop was lost: the address was handed out again)."""
    ordered = sorted(sessions, key=lambda s: (s.start, s.nas, s.session_id))
    out: list[Session] = []
    for i, stored in enumerate(ordered):
        session = stored.session()
        if session.stop is None and i + 1 < len(ordered):
            session = replace(session, stop=ordered[i + 1].start)
        out.append(session)
    return out
