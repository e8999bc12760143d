"""Who really sent a message: sender authentication over the asynchronous DNS client.

Modules:
    spf     SPF (RFC 7208): ``check_host`` for the MAIL FROM and HELO identities, evaluated
            over :class:`seawall.dnslists.RecordResolver` (TXT, A, AAAA, MX, PTR), with the
            RFC's lookup, void-lookup and MX/PTR name limits, macros and explanations.
    dkim    DKIM (RFC 6376): each signature verified from keys the caller fetched, over
            dkimcanon (the signed bytes, canonicalised) and dkimkeys (keys, RSA, ed25519).
    arc     ARC (RFC 8617): the forwarders' chain of seals, checked with dkimpy.
    dmarc   DMARC (RFC 7489): policy records, alignment, pct; pure over fetched answers.
    hits    the symbols of the checks, and the hits their results give.
    standing  the reputation of the domains a message authenticated as.

Nothing here blocks the event loop: every DNS question goes through the shared client, its
TTL cache and its coalesced queries, under the caller's time budget.
"""

from __future__ import annotations

from seawall.auth.spf import (
    Result,
    SpfChecker,
    SpfResult,
    SpfSyntaxError,
    check_host,
    expand,
    parse_record,
)

__all__ = [
    "Result",
    "SpfChecker",
    "SpfResult",
    "SpfSyntaxError",
    "check_host",
    "expand",
    "parse_record",
]
