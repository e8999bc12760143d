"""DNS queries on the wire, sans I/O: a query out, what its reply says back.

Only what a lookup needs from RFC 1035 §4.1: a recursive query for one name and type, and
from the reply its ID, RCODE, TC bit, the records of that type with their lowest TTL, and
the negative TTL of an SOA in the authority section (RFC 2308 §5).  Building and reading
these directly costs a few microseconds, where a general DNS message object costs over 100.

A queries (the block lists' hot path) go out exactly as before: no EDNS, 512-byte UDP
answers.  The other types (:class:`RdType`: TXT, AAAA, MX, PTR, for SPF, DKIM and DMARC)
carry an EDNS(0) OPT record offering 1232-byte UDP answers (RFC 6891; the size the DNS
flag day 2020 settled on), since TXT answers often outgrow 512 bytes; what still does not
fit comes back truncated and is asked again over TCP by the client.  Records come back as
text: addresses for A and AAAA, the joined character-strings of each TXT record (RFC 7208
§3.3, RFC 6376 §3.6.2.2), exchange names by preference for MX, names for PTR.

>>> query = encode_query(0x1234, "2.0.0.127.zen.example")
>>> query[:2].hex(), len(query)
('1234', 39)
"""

from __future__ import annotations

import enum
import socket
import struct
from dataclasses import dataclass

_HEADER = struct.Struct("!HHHHHH")  # id, flags, qdcount, ancount, nscount, arcount
_RR = struct.Struct("!HHIH")  # type, class, ttl, rdlength
_RD = 0x0100  # recursion desired
_QR = 0x8000
_TC = 0x0200
_TYPE_A = 1
_TYPE_SOA = 6
_CLASS_IN = 1
_QUESTION_TAIL = b"\x00\x00\x01\x00\x01"  # root label, QTYPE A, QCLASS IN
# EDNS(0) OPT in the additional section: root owner, type 41, UDP payload 1232, no flags.
_EDNS_UDP_SIZE = 1232
_OPT = b"\x00" + _RR.pack(41, _EDNS_UDP_SIZE, 0, 0)


class RdType(enum.IntEnum):
    """The record types the client asks and reads."""

    A = 1
    PTR = 12
    MX = 15
    TXT = 16
    AAAA = 28


class WireError(ValueError):
    """A datagram that is not a well-formed reply to our query."""


@dataclass(frozen=True, slots=True)
class Reply:
    """What a reply to an A query says."""

    qid: int
    rcode: int  # 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, 5 REFUSED ...
    truncated: bool  # TC: the answer did not fit; ask again over TCP
    # The records of the asked type in the answer section, as text: A and AAAA addresses,
    # each TXT record's character-strings joined, MX exchanges (lowest preference first;
    # "." for a null MX), PTR names.  Records of other types (a CNAME on the way) are skipped.
    addresses: tuple[str, ...]
    ttl: int | None  # lowest TTL of those records, or the SOA's negative TTL, if any


def encode_query(qid: int, name: str, rdtype: int = _TYPE_A) -> bytes:
    """A recursive query for the ``rdtype`` records of ``name``: ASCII labels of 1 to 63
    bytes; other types than A carry an EDNS(0) OPT record."""
    out = bytearray(_HEADER.pack(qid, _RD, 1, 0, 0, 0 if rdtype == _TYPE_A else 1))
    for label in name.split("."):
        raw = label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise ValueError(f"bad label in {name!r}")
        out.append(len(raw))
        out += raw
    if rdtype == _TYPE_A:
        out += _QUESTION_TAIL
    else:
        out += b"\x00" + struct.pack("!HH", rdtype, _CLASS_IN)
    if len(out) > 12 + 255 + 4:  # RFC 1035 §3.1: a name is at most 255 bytes on the wire
        raise ValueError(f"name too long: {name[:60]!r}...")
    if rdtype != _TYPE_A:
        out += _OPT
    return bytes(out)


def reply_id(data: bytes) -> int | None:
    """The ID of a datagram, to find its query before reading the rest."""
    return int.from_bytes(data[:2], "big") if len(data) >= 12 else None


def decode_reply(data: bytes, query: bytes) -> Reply:
    """Read the reply ``data`` to ``query``; WireError unless it answers that question.

    The question must come back as asked (ASCII case aside): a datagram that does not
    repeat it is someone else's answer, or forged.
    """
    if len(data) < 12:
        raise WireError("shorter than a DNS header")
    qid, flags, qdcount, ancount, nscount, _ = _HEADER.unpack_from(data)
    if not flags & _QR or (flags >> 11) & 0xF:
        raise WireError("not a reply to a standard query")
    question = query[12:-11] if query[11] else query[12:]  # without our OPT record
    end = 12 + len(question)
    if qdcount != 1 or data[12:end].lower() != question.lower():
        raise WireError("the reply does not repeat our question")
    want = (question[-4] << 8) | question[-3]  # QTYPE
    preferences: list[int] = []  # of MX records, in step with addresses
    addresses: list[str] = []
    ttl: int | None = None
    negative: int | None = None
    pos = end
    for index in range(ancount + nscount):
        pos = _skip_name(data, pos)
        if pos + 10 > len(data):
            raise WireError("record header cut short")
        rtype, rclass, rttl, rdlength = _RR.unpack_from(data, pos)
        pos += 10
        rdata_end = pos + rdlength
        if rdata_end > len(data):
            raise WireError("record data cut short")
        rttl &= 0x7FFFFFFF  # RFC 2181 §8: a TTL with the top bit set is zero
        if rclass == _CLASS_IN:
            if index < ancount and rtype == want:
                if want == _TYPE_A:
                    if rdlength == 4:
                        addresses.append(".".join(map(str, data[pos:rdata_end])))
                        ttl = rttl if ttl is None else min(ttl, rttl)
                elif (record := _rdata(want, data, pos, rdata_end, preferences)) is not None:
                    addresses.append(record)
                    ttl = rttl if ttl is None else min(ttl, rttl)
            elif index >= ancount and rtype == _TYPE_SOA and rdlength >= 22:
                minimum = int.from_bytes(data[rdata_end - 4 : rdata_end], "big")
                negative = min(rttl, minimum)  # RFC 2308 §5
        pos = rdata_end
    if preferences:  # MX: lowest preference first, the server's order among equals
        order = sorted(range(len(addresses)), key=preferences.__getitem__)
        addresses = [addresses[i] for i in order]
    return Reply(
        qid=qid,
        rcode=flags & 0xF,
        truncated=bool(flags & _TC),
        addresses=tuple(addresses),
        ttl=ttl if addresses else negative,
    )


def _rdata(rtype: int, data: bytes, pos: int, end: int, preferences: list[int]) -> str | None:
    """One record of a type other than A as text; None for one that cannot be read as such
    (a name with a dot or an unprintable byte inside a label, a malformed AAAA)."""
    if rtype == RdType.TXT:
        strings: list[bytes] = []
        while pos < end:
            size = data[pos]
            if pos + 1 + size > end:
                raise WireError("TXT string runs past its record")
            strings.append(data[pos + 1 : pos + 1 + size])
            pos += 1 + size
        # SPF, DKIM and DMARC records are ASCII; anything else shows as U+FFFD and fails
        # their syntax rather than raising here.
        return b"".join(strings).decode("utf-8", "replace")
    if rtype == RdType.AAAA:
        return socket.inet_ntop(socket.AF_INET6, data[pos:end]) if end - pos == 16 else None
    if rtype == RdType.MX:
        if end - pos < 3:
            raise WireError("MX record cut short")
        name = _read_name(data, pos + 2, end)
        if name is not None:
            preferences.append(int.from_bytes(data[pos : pos + 2], "big"))
        return name
    if rtype == RdType.PTR:
        return _read_name(data, pos, end)
    return None


def _read_name(data: bytes, pos: int, end: int) -> str | None:
    """The (possibly compressed) name at ``pos`` as text without the final dot ("." for the
    root); None when a label holds a dot or a byte outside printable ASCII, which no text
    form here could tell apart from another name."""
    labels: list[str] = []
    size = 0
    limit = end  # the name must stay inside its record until the first pointer
    readable = True
    for _ in range(128):
        if pos >= limit:
            raise WireError("name runs past the end")
        length = data[pos]
        if length == 0:
            if size > 255:
                raise WireError("name longer than 255 bytes")
            return (".".join(labels) or ".") if readable else None
        if length & 0xC0 == 0xC0:
            if pos + 2 > limit:
                raise WireError("pointer cut short")
            target = ((length & 0x3F) << 8) | data[pos + 1]
            if target >= pos:  # pointers go back, so a chain of them always ends
                raise WireError("forward compression pointer")
            pos, limit = target, len(data)
            continue
        if length & 0xC0:
            raise WireError("unknown label type")
        if pos + 1 + length > limit:
            raise WireError("label runs past the end")
        raw = data[pos + 1 : pos + 1 + length]
        if readable and all(0x21 <= byte <= 0x7E and byte != 0x2E for byte in raw):
            labels.append(raw.decode("ascii"))
        else:
            readable = False
        size += 1 + length
        pos += 1 + length
    raise WireError("too many labels")


def _skip_name(data: bytes, pos: int) -> int:
    """The offset after the (possibly compressed) name at ``pos``."""
    for _ in range(128):  # a name has at most 127 labels
        if pos >= len(data):
            raise WireError("name runs past the end")
        length = data[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:  # a compression pointer ends the name
            if pos + 2 > len(data):
                raise WireError("pointer cut short")
            return pos + 2
        if length & 0xC0:
            raise WireError("unknown label type")
        pos += 1 + length
    raise WireError("too many labels")
