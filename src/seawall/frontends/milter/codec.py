"""Sans-I/O codec for the Sendmail/Postfix milter protocol, version 6 (libmilter's wire format).

Every packet is a 4-byte big-endian length (counting the command byte), one command byte and
the payload.  ``MilterCodec.feed`` turns bytes from the MTA into commands, however TCP split or
joined them; ``encode`` turns one response into the bytes for the MTA::

    >>> codec = MilterCodec()
    >>> codec.feed(b"\\x00\\x00\\x00\\x06H")
    []
    >>> codec.feed(b"mx.a\\x00\\x00\\x00\\x00\\x01T")
    [Helo(name='mx.a'), Data()]
    >>> encode(Continue())
    b'\\x00\\x00\\x00\\x01c'

Strings travel as UTF-8 decoded with ``surrogateescape``, so 8-bit header bytes survive the
round trip to ``str`` and back unchanged.
"""

from __future__ import annotations

import enum
import re
import struct
from dataclasses import dataclass
from typing import TypeAlias

from seawall.errors import MilterViolation

VERSION = 6
# libmilter reads 64 KiB packets at most (MILTER_MAX_DATA_SIZE, up to 1 MiB negotiated), and
# Postfix sends body chunks of 65535 bytes; 64 MiB only stops a runaway peer.
MAX_PACKET_BYTES = 64 * 1024 * 1024

_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")


class SMFIF(enum.IntFlag):
    """Modifications the filter may make at end of message (the negotiated "actions")."""

    ADDHDRS = 0x001
    CHGBODY = 0x002
    ADDRCPT = 0x004
    DELRCPT = 0x008
    CHGHDRS = 0x010
    QUARANTINE = 0x020
    CHGFROM = 0x040
    ADDRCPT_PAR = 0x080
    SETSYMLIST = 0x100


class SMFIP(enum.IntFlag):
    """Protocol flags: events the filter does not want, replies it will not send."""

    NOCONNECT = 0x000001
    NOHELO = 0x000002
    NOMAIL = 0x000004
    NORCPT = 0x000008
    NOBODY = 0x000010
    NOHDRS = 0x000020
    NOEOH = 0x000040
    NR_HDR = 0x000080
    NOUNKNOWN = 0x000100
    NODATA = 0x000200
    SKIP = 0x000400
    RCPT_REJ = 0x000800
    NR_CONN = 0x001000
    NR_HELO = 0x002000
    NR_MAIL = 0x004000
    NR_RCPT = 0x008000
    NR_DATA = 0x010000
    NR_UNKN = 0x020000
    NR_EOH = 0x040000
    NR_BODY = 0x080000
    HDR_LEADSPC = 0x100000


@dataclass(frozen=True, slots=True)
class OptionNegotiation:
    """'O' both ways: the MTA's offer, and the filter's reply (a subset of the offer)."""

    version: int
    actions: SMFIF
    protocol: SMFIP


@dataclass(frozen=True, slots=True)
class Macro:
    """'D': macro values (names as sent, e.g. ``{client_addr}``) for the command that follows."""

    for_command: str
    macros: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Connect:
    """'C': the SMTP client.  Family '4', '6', 'L' (unix socket) or 'U' (no port or address)."""

    hostname: str
    family: str
    port: int | None = None
    address: str | None = None


@dataclass(frozen=True, slots=True)
class Helo:
    name: str


@dataclass(frozen=True, slots=True)
class MailFrom:
    """'M': the sender as given ("<a@b>", "<>" for bounces) and its ESMTP parameters."""

    address: str
    esmtp_args: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RcptTo:
    address: str
    esmtp_args: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Data:
    pass


@dataclass(frozen=True, slots=True)
class Header:
    """'L': one header field; folded lines are joined by "\\n", the first space may be eaten."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class EndOfHeaders:
    pass


@dataclass(frozen=True, slots=True)
class Body:
    chunk: bytes


@dataclass(frozen=True, slots=True)
class EndOfMessage:
    """'E': libmilter allows a last body chunk here; Postfix sends it as a Body first."""

    chunk: bytes = b""


@dataclass(frozen=True, slots=True)
class Abort:
    pass


@dataclass(frozen=True, slots=True)
class Quit:
    pass


@dataclass(frozen=True, slots=True)
class QuitNewConnection:
    """'K': the session ends but the socket is reused for the next one, without renegotiation."""


@dataclass(frozen=True, slots=True)
class Unknown:
    """'U': an SMTP command the MTA did not recognise."""

    command: str


Command: TypeAlias = (
    OptionNegotiation
    | Macro
    | Connect
    | Helo
    | MailFrom
    | RcptTo
    | Data
    | Header
    | EndOfHeaders
    | Body
    | EndOfMessage
    | Abort
    | Quit
    | QuitNewConnection
    | Unknown
)


@dataclass(frozen=True, slots=True)
class Continue:
    pass


@dataclass(frozen=True, slots=True)
class Accept:
    pass


@dataclass(frozen=True, slots=True)
class Reject:
    pass


@dataclass(frozen=True, slots=True)
class TempFail:
    pass


@dataclass(frozen=True, slots=True)
class Discard:
    pass


@dataclass(frozen=True, slots=True)
class Progress:
    """'p': still working; resets the MTA's timer during a long scan."""


@dataclass(frozen=True, slots=True)
class Skip:
    """'s': send no more events of this kind (body chunks); needs SMFIP.SKIP from the MTA."""


@dataclass(frozen=True, slots=True)
class ReplyCode:
    """'y': reject or tempfail with our own SMTP reply, e.g. ``ReplyCode("550 5.7.1", "Spam")``."""

    code: str
    text: str


@dataclass(frozen=True, slots=True)
class AddHeader:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class InsertHeader:
    """'i': insert at ``index`` (0 is the top of the header)."""

    index: int
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class ChangeHeader:
    """'m': replace the ``index``-th (1-based) field of that name; an empty value deletes it."""

    index: int
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Quarantine:
    reason: str


Response: TypeAlias = (
    OptionNegotiation
    | Continue
    | Accept
    | Reject
    | TempFail
    | Discard
    | Progress
    | Skip
    | ReplyCode
    | AddHeader
    | InsertHeader
    | ChangeHeader
    | Quarantine
)

_BARE: dict[bytes, Command] = {
    b"T": Data(),
    b"N": EndOfHeaders(),
    b"A": Abort(),
    b"Q": Quit(),
    b"K": QuitNewConnection(),
}


class MilterCodec:
    """Reassembles packets from the MTA and decodes them; raises MilterViolation on bad input."""

    def __init__(self, *, max_packet_bytes: int = MAX_PACKET_BYTES) -> None:
        self._buffer = bytearray()
        self._max = max_packet_bytes

    @property
    def pending(self) -> bool:
        """A packet has begun and is not complete yet."""
        return bool(self._buffer)

    def feed(self, data: bytes) -> list[Command]:
        """Every command completed by ``data``; a partial packet waits for the next call."""
        buffer = self._buffer
        buffer += data
        size = len(buffer)
        commands: list[Command] = []
        pos = 0
        while size - pos >= 4:
            (length,) = _U32.unpack_from(buffer, pos)
            if length < 1:
                raise MilterViolation("packet without a command byte")
            if length > self._max:
                raise MilterViolation(f"packet of {length} bytes exceeds {self._max}")
            end = pos + 4 + length
            if size < end:
                break
            code = _CODES[buffer[pos + 4]]
            commands.append(decode_command(code, bytes(buffer[pos + 5 : end])))
            pos = end
        del buffer[:pos]
        return commands


_CODES = tuple(bytes((i,)) for i in range(256))  # a command byte as the bytes it is


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _strings(code: bytes, payload: bytes) -> list[str]:
    """NUL-terminated strings filling the whole payload."""
    if not payload:
        return []
    if not payload.endswith(b"\0"):
        raise MilterViolation(f"{code!r}: string without NUL terminator")
    return [_text(part) for part in payload[:-1].split(b"\0")]


def _exactly(code: bytes, payload: bytes, count: int) -> list[str]:
    values = _strings(code, payload)
    if len(values) != count:
        raise MilterViolation(f"{code!r}: expected {count} strings, got {len(values)}")
    return values


def decode_command(code: bytes, payload: bytes) -> Command:
    """One packet's command byte and payload as a Command."""
    if code == b"L":  # most of a message's packets: one per header field
        if payload.endswith(b"\0"):
            parts = payload[:-1].split(b"\0")
            if len(parts) == 2:
                return Header(_text(parts[0]), _text(parts[1]))
        name, value = _exactly(code, payload, 2)  # the error it is
        return Header(name, value)
    if code in _BARE:
        if payload:
            raise MilterViolation(f"{code!r}: unexpected {len(payload)} bytes of payload")
        return _BARE[code]
    if code == b"B":
        return Body(payload)
    if code == b"E":
        return EndOfMessage(payload)
    if code == b"O":
        # Sendmail may append more data after the three words; nothing in v6 defines it.
        if len(payload) < 12:
            raise MilterViolation("option negotiation shorter than 12 bytes")
        version, actions, protocol = struct.unpack_from(">III", payload)
        return OptionNegotiation(version, SMFIF(actions), SMFIP(protocol))
    if code == b"D":
        if not payload:
            raise MilterViolation("macro packet without a command byte")
        values = _strings(code, payload[1:])
        if len(values) % 2:
            raise MilterViolation("macro name without a value")
        pairs = tuple(zip(values[::2], values[1::2], strict=True))
        return Macro(_text(payload[:1]), pairs)
    if code == b"C":
        return _connect(payload)
    if code == b"H":
        return Helo(*_exactly(code, payload, 1))
    if code in (b"M", b"R"):
        args = _strings(code, payload)
        if not args:
            raise MilterViolation(f"{code!r}: no address")
        cls = MailFrom if code == b"M" else RcptTo
        return cls(args[0], tuple(args[1:]))
    if code == b"U":
        return Unknown(*_exactly(code, payload, 1))
    raise MilterViolation(f"unknown command {code!r}")


def _connect(payload: bytes) -> Connect:
    hostname, sep, rest = payload.partition(b"\0")
    if not sep or not rest:
        raise MilterViolation("connect: missing hostname terminator or family")
    family = _text(rest[:1])
    if family == "U":
        if len(rest) != 1:
            raise MilterViolation("connect: data after the unknown family")
        return Connect(_text(hostname), family)
    if family not in ("4", "6", "L") or len(rest) < 4:
        raise MilterViolation(f"connect: bad family {family!r} or missing port")
    (port,) = _U16.unpack_from(rest, 1)
    (address,) = _exactly(b"C", rest[3:], 1)
    return Connect(_text(hostname), family, port, address)


# Postfix refuses a reply that is not "4xx" or "5xx", or whose enhanced status class differs.
_REPLY_CODE = re.compile(r"([45])[0-9][0-9](?: \1\.[0-9]{1,3}\.[0-9]{1,3})?")


def _cstr(value: str) -> bytes:
    raw = value.encode("utf-8", "surrogateescape")
    if b"\0" in raw:
        raise ValueError(f"NUL byte in {value!r}")
    return raw + b"\0"


def _frame(code: bytes, payload: bytes = b"") -> bytes:
    return _U32.pack(len(payload) + 1) + code + payload


_SIMPLE: dict[type[Response], bytes] = {
    Continue: b"c",
    Accept: b"a",
    Reject: b"r",
    TempFail: b"t",
    Discard: b"d",
    Progress: b"p",
    Skip: b"s",
}


def reply_text(text: str) -> str:
    """Text safe for SMFIR_REPLYCODE: one line, and '%' doubled (libmilter's format string)."""
    return re.sub(r"[\r\n\0]+", " ", text).replace("%", "%%")


def encode(response: Response) -> bytes:
    """The packet for one response; ValueError for a value the MTA would refuse."""
    simple = _SIMPLE.get(type(response))
    if simple is not None:
        return _frame(simple)
    match response:
        case OptionNegotiation(version=version, actions=actions, protocol=protocol):
            return _frame(b"O", struct.pack(">III", version, actions, protocol))
        case ReplyCode(code=code, text=text):
            if not _REPLY_CODE.fullmatch(code):
                raise ValueError(f"bad SMTP reply code {code!r}")
            return _frame(b"y", _cstr(f"{code} {reply_text(text)}"))
        case AddHeader(name=name, value=value):
            return _frame(b"h", _cstr(name) + _cstr(value))
        case InsertHeader(index=index, name=name, value=value):
            return _frame(b"i", _U32.pack(index) + _cstr(name) + _cstr(value))
        case ChangeHeader(index=index, name=name, value=value):
            return _frame(b"m", _U32.pack(index) + _cstr(name) + _cstr(value))
        case Quarantine(reason=reason):
            return _frame(b"q", _cstr(reason))
    raise TypeError(f"not a milter response: {response!r}")
