"""What one lookup came to: listed (records found), not listed, or a way it can fail."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(enum.Enum):
    LISTED = "listed"  # NOERROR with records of the type asked (A: the list's return codes)
    NOT_LISTED = "not listed"  # NXDOMAIN, or NOERROR without a record of the type asked
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
    addresses: tuple[str, ...] = ()  # the records when LISTED: see ``records``
    ttl: float | None = None
    detail: str = ""  # why it failed: "REFUSED", "malformed reply", the OS error
    nxdomain: bool = False  # NOT_LISTED because the name does not exist (RCODE 3)

    @property
    def listed(self) -> bool:
        return self.status is Status.LISTED

    @property
    def records(self) -> tuple[str, ...]:
        """The answer's records as text: A and AAAA addresses, each TXT record's strings
        joined, MX exchanges by preference ("." for a null MX), PTR names."""
        return self.addresses


NOT_LISTED = Answer(Status.NOT_LISTED)
