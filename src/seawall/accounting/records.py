"""One accounting request as Seawall keeps it (``Record``), read from RADIUS attributes, and
``Session``, what a lookup answers.

RFC 2866 §5.1 Acct-Status-Type: Start (1), Stop (2), Interim-Update (3), Accounting-On (7),
Accounting-Off (8); the others (Failed, tunnel records) tell nothing about who held an
address and are skipped.  The event's time is Event-Timestamp (RFC 2869 §5.3: when it
happened on the NAS) when the request has one, else the time the request arrived
(FreeRADIUS's ``Timestamp``, or the listener's clock) less Acct-Delay-Time (RFC 2866 §5.2:
how long the NAS had been trying to send it).
"""

from __future__ import annotations

import calendar
import enum
import ipaddress
import time
from collections.abc import Mapping
from dataclasses import dataclass
from socket import AF_INET, AF_INET6, inet_ntop, inet_pton

from seawall.errors import SeawallError


class AccountingError(SeawallError):
    """An accounting record, file or request that cannot be read; the message says why."""


class Status(enum.Enum):
    START = "Start"
    STOP = "Stop"
    INTERIM = "Interim-Update"
    ON = "Accounting-On"
    OFF = "Accounting-Off"


# Acct-Status-Type as a number (what a detail file holds when its dictionary lacks a name).
_STATUS_CODES = {"1": Status.START, "2": Status.STOP, "3": Status.INTERIM, "7": Status.ON,
                 "8": Status.OFF}  # fmt: skip
_STATUS_NAMES = {s.value.lower(): s for s in Status} | {"alive": Status.INTERIM}
# Statuses that say nothing about who held an address (RFC 2866 §5.1, RFC 2867 §4.1).
SKIPPED_STATUSES = frozenset(
    {"failed", "15", "tunnel-start", "tunnel-stop", "tunnel-reject", "tunnel-link-start",
     "tunnel-link-stop", "tunnel-link-reject", "9", "10", "11", "12", "13", "14"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Session:
    """One accounting session: ``account`` held ``ip`` from ``start`` to ``stop``."""

    account: str  # User-Name
    ip: str  # Framed-IP-Address, or the Framed-IPv6-Prefix / Delegated-IPv6-Prefix
    start: float  # epoch seconds
    stop: float | None  # None while open
    nas: str  # NAS-IP-Address or NAS-Identifier
    session_id: str  # Acct-Session-Id


@dataclass(frozen=True, slots=True)
class Record:
    """What one accounting request tells: ``status`` at ``time`` (epoch seconds) from
    ``nas``; for a session's own records its Acct-Session-Id, User-Name, the addresses it
    holds and Acct-Session-Time (seconds up, when the NAS sent it)."""

    status: Status
    time: float
    nas: str
    session_id: str = ""
    account: str = ""
    ips: tuple[str, ...] = ()
    session_time: float | None = None


class Skipped(AccountingError):
    """A well-formed request that says nothing about who held an address (Failed, tunnel
    records): not stored, and not an error of the sender."""


def record_from_attributes(attrs: Mapping[str, str], *, received: float | None) -> Record:
    """The Record of one request's attributes, names as in the FreeRADIUS dictionary and
    values as rlm_detail writes them (quotes removed).  ``received`` is when it arrived
    (``Timestamp`` in a detail file; the listener's clock); it is read from ``attrs`` when
    None.  AccountingError says what is missing or wrong; Skipped for Failed and tunnel
    records."""
    raw_status = attrs.get("Acct-Status-Type")
    if raw_status is None:
        raise AccountingError("no Acct-Status-Type")
    status = _STATUS_NAMES.get(raw_status.lower()) or _STATUS_CODES.get(raw_status)
    if status is None:
        if raw_status.lower() in SKIPPED_STATUSES:
            raise Skipped(f"Acct-Status-Type {raw_status} is not about a session's address")
        raise AccountingError(f"unknown Acct-Status-Type {raw_status!r}")
    at = _event_time(attrs, received)
    nas = attrs.get("NAS-IP-Address") or attrs.get("NAS-IPv6-Address") or ""
    nas = nas or attrs.get("NAS-Identifier", "")
    if not nas:
        raise AccountingError("no NAS-IP-Address, NAS-IPv6-Address or NAS-Identifier")
    if status in (Status.ON, Status.OFF):
        return Record(status, at, nas)
    session_id = attrs.get("Acct-Session-Id", "")
    if not session_id:
        raise AccountingError(f"{status.value} without Acct-Session-Id")
    session_time = None
    if "Acct-Session-Time" in attrs:
        session_time = float(_integer(attrs, "Acct-Session-Time"))
    return Record(
        status,
        at,
        nas,
        session_id=session_id,
        account=attrs.get("User-Name", ""),
        ips=_addresses(attrs),
        session_time=session_time,
    )


def _event_time(attrs: Mapping[str, str], received: float | None) -> float:
    event = attrs.get("Event-Timestamp")
    if event:
        return parse_event_timestamp(event)
    if received is None:
        if "Timestamp" not in attrs:
            raise AccountingError("neither Event-Timestamp nor Timestamp: no time")
        received = float(_integer(attrs, "Timestamp"))
    delay = _integer(attrs, "Acct-Delay-Time") if "Acct-Delay-Time" in attrs else 0
    return received - delay


def _integer(attrs: Mapping[str, str], name: str) -> int:
    value = attrs[name]
    if not value.isdigit() or len(value) > 12:
        raise AccountingError(f"{name} = {value!r}: not a number of seconds")
    return int(value)


def parse_event_timestamp(value: str) -> float:
    """An Event-Timestamp as FreeRADIUS writes it ("Nov 27 2026 12:00:00 UTC", or with a
    zone name it knows such as "CET", read as UTC only when it says UTC/GMT), or as the
    plain number of seconds the wire carries."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    parts = value.split()
    if len(parts) == 5 and parts[4] in ("UTC", "GMT"):
        try:
            parsed = time.strptime(" ".join(parts[:4]), "%b %d %Y %H:%M:%S")
        except ValueError:
            pass
        else:
            return float(calendar.timegm(parsed))
    elif len(parts) == 5:
        # Another zone: the server's local time then, which the record cannot tell apart
        # from any other zone of that name; refuse rather than guess an hour wrong.
        raise AccountingError(
            f"Event-Timestamp {value!r}: only UTC times are read (run FreeRADIUS with TZ=UTC)"
        )
    raise AccountingError(f"Event-Timestamp {value!r}: not a time")


def _addresses(attrs: Mapping[str, str]) -> tuple[str, ...]:
    """The session's addresses: Framed-IP-Address, Framed-IPv6-Address (as a /128), and the
    prefixes of Framed-IPv6-Prefix and Delegated-IPv6-Prefix, normalised."""
    out: list[str] = []
    for name, family in (("Framed-IP-Address", AF_INET), ("Framed-IPv6-Address", AF_INET6)):
        value = attrs.get(name)
        if value:
            try:  # inet_pton/ntop: canonical text, and ten times ipaddress's speed
                out.append(inet_ntop(family, inet_pton(family, value)))
            except (OSError, ValueError):  # ValueError: a NUL inside
                raise AccountingError(f"{name} = {value!r}: not an address") from None
    for name in ("Framed-IPv6-Prefix", "Delegated-IPv6-Prefix"):
        value = attrs.get(name)
        if value:
            out.append(normalise_prefix(value, name))
    return tuple(dict.fromkeys(out))


# Prefix lengths an IPv6 address is looked up under: a /128, then every nibble boundary
# from /64 to /32 (delegated prefixes are nibble-aligned, RFC 6177 §3).
V6_LOOKUP_LENGTHS = (128, 64, 60, 56, 52, 48, 44, 40, 36, 32)


def normalise_prefix(value: str, name: str = "prefix") -> str:
    """An IPv6 prefix as stored: ``2001:db8:1::/64``; a /128 is the bare address."""
    try:
        network = ipaddress.IPv6Network(value, strict=False)
    except ValueError:
        raise AccountingError(f"{name} = {value!r}: not an IPv6 prefix") from None
    if network.prefixlen not in V6_LOOKUP_LENGTHS:
        raise AccountingError(
            f"{name} = {value!r}: a /{network.prefixlen} is not looked up (/128, or a"
            " nibble boundary from /64 to /32)"
        )
    if network.prefixlen == 128:
        return str(network.network_address)
    return str(network)


def lookup_keys(ip: str) -> tuple[str, ...]:
    """The stored addresses that may hold ``ip``, most specific first; ValueError for what
    is not an address."""
    address = ipaddress.ip_address(ip)
    if address.version == 4:
        return (str(address),)
    if address.ipv4_mapped is not None:
        return (str(address.ipv4_mapped),)
    return tuple(
        str(address) if n == 128 else str(ipaddress.IPv6Network((address, n), strict=False))
        for n in V6_LOOKUP_LENGTHS
    )
