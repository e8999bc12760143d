"""Fuzz target: the RFC 2866 listener's decoding of a datagram never raises.

``AccountingProtocol.decode`` must answer a request or drop it (None) for any datagram.  A
random datagram never carries a valid Request Authenticator, so for seven inputs in eight
the harness makes it an Accounting-Request with its length and authenticator right
(MD5 over the packet with a zero authenticator and the secret, RFC 2866 §3), so the
attributes get decoded and read; the eighth is taken as it comes.
"""

from __future__ import annotations

import hashlib

from seawall.accounting.listener import AccountingProtocol
from seawall.accounting.records import Record

SECRET = b"fuzzing-secret"
ADDR = ("192.0.2.1", 1813)


async def _store(records: object) -> None:
    return None


PROTOCOL = AccountingProtocol(SECRET, _store)


def signed(data: bytes) -> bytes:
    """``data`` (the identifier and the attributes) as a valid Accounting-Request."""
    body = data[1 : 4096 - 19]
    head = bytes([4, data[0] if data else 0]) + (20 + len(body)).to_bytes(2, "big")
    authenticator = hashlib.md5(head + bytes(16) + body + SECRET).digest()
    return head + authenticator + body


def check(data: bytes) -> None:
    if not data:
        return
    datagram = data[1:] if data[0] >= 224 else signed(data[1:])
    pending = PROTOCOL.decode(datagram, ADDR)
    if pending is not None:
        assert pending.record is None or isinstance(pending.record, Record)
        assert pending.reply[0] == 5  # Accounting-Response
        assert pending.reply[1] == datagram[1]  # to the request's identifier
