"""What one list lookup came to: listed, not listed, or one of the ways it can fail."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(enum.Enum):
    LISTED = "listed"  # NOERROR with A records: the return codes say which sub-list
    NOT_LISTED = "not listed"  # NXDOMAIN, or NOERROR without an A record
    TIMEOUT = "timeout"  # no reply in the list's timeout_s (after one retry)
    SERVFAIL = "servfail"  # the resolver could not reach the list's servers
    ERROR = "error"  # REFUSED, a malformed reply, a socket error, a name we cannot ask

    @property
    def failed(self) -> bool:
        return self in (Status.TIMEOUT, Status.SERVFAIL, Status.ERROR)


@dataclass(frozen=True, slots=True)
class Answer:
    """The outcome of one query; ``ttl`` is the DNS's own (None when it gave none)."""

    status: Status
    addresses: tuple[str, ...] = ()  # the A records, when LISTED
    ttl: float | None = None
    detail: str = ""  # why it failed: "REFUSED", "malformed reply", the OS error

    @property
    def listed(self) -> bool:
        return self.status is Status.LISTED


NOT_LISTED = Answer(Status.NOT_LISTED)
