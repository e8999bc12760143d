"""SpamAssassin's SPAMC/SPAMD protocol (1.0 to 1.5) as values: a request parser and reply encoders.

Sans-I/O: :class:`RequestParser` is fed the bytes a client sends and returns a
:class:`Request` once it is complete; the ``encode_*`` functions return the
bytes of a reply.  The wire format follows spamd/PROTOCOL and what spamd and
libspamc (SpamAssassin 4.0) really send and parse, quirks noted where they are.
"""

from __future__ import annotations

import enum
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from seawall.errors import SpamdViolation

# libspamc's SPAMC_MAX_MESSAGE_LEN: spamc never sends more, whatever its -s option says.
SPAMC_MAX_MESSAGE_BYTES = 256 * 1024 * 1024
MAX_LINE_BYTES = 8192  # spamc builds its request head in an 8 KiB buffer
MAX_HEADERS = 255  # spamd's limit against a header flood


class Command(enum.StrEnum):
    """The request verbs (spamd/PROTOCOL, "Commands")."""

    CHECK = "CHECK"
    SYMBOLS = "SYMBOLS"
    REPORT = "REPORT"
    REPORT_IFSPAM = "REPORT_IFSPAM"
    PROCESS = "PROCESS"
    HEADERS = "HEADERS"
    TELL = "TELL"
    PING = "PING"
    SKIP = "SKIP"


class ExitCode(enum.IntEnum):
    """sysexits.h codes for the status line of an error reply (those Seawall sends)."""

    EX_UNAVAILABLE = 69  # spamd: TELL is not enabled
    EX_SOFTWARE = 70
    EX_TEMPFAIL = 75
    EX_PROTOCOL = 76  # spamd: any malformed request
    EX_TIMEOUT = 79  # spamd's own code for a client too slow to send its request
    EX_NOPERM = 77  # a TELL from a client or user that may not learn


@dataclass(frozen=True, slots=True)
class Request:
    """One complete SPAMC request.

    ``body`` is the message, inflated if it came with ``Compress: zlib``.  For
    every command but PROCESS it keeps only the first ``scan_bytes`` given to
    the parser; ``length`` is the size the client sent.
    """

    command: Command
    version: tuple[int, int]
    body: bytes = b""
    length: int = 0
    user: str | None = None  # the mailbox owner spamc runs for, not an authenticated sender
    message_class: str | None = None  # TELL: "spam" or "ham"
    sets: frozenset[str] = frozenset()  # TELL "Set:": "local" and/or "remote"
    removes: frozenset[str] = frozenset()  # TELL "Remove:"
    compressed: bool = False

    @property
    def truncated(self) -> bool:
        return len(self.body) < self.length


_REQUEST_LINE = re.compile(r"(\S+)\s+SPAMC/([0-9]{1,9})\.([0-9]{1,9})\s*")


class RequestParser:
    """Bytes in, one :class:`Request` out; raises SpamdViolation on a malformed request.

    >>> parser = RequestParser()
    >>> parser.feed(b"PING SPAMC/1.5\\r\\n")
    >>> parser.feed(b"\\r\\n").command
    <Command.PING: 'PING'>

    Without ``Content-length`` (SPAMC/1.0 and other old clients) the body runs
    to the end of the stream: call :meth:`feed_eof` when the client half-closes.
    """

    def __init__(
        self,
        *,
        scan_bytes: int = SPAMC_MAX_MESSAGE_BYTES,
        max_body_bytes: int = SPAMC_MAX_MESSAGE_BYTES,
    ) -> None:
        self.scan_bytes = scan_bytes
        self.max_body_bytes = max_body_bytes
        self._buffer = bytearray()
        self._state = "request line"
        self._command = Command.PING
        self._version = (1, 0)
        self._fields: dict[str, str] = {}
        self._headers = 0
        self._length: int | None = None
        self._body = bytearray()
        self._received = 0
        self._done: Request | None = None
        self.idle = True  # nothing received yet: a closed connection is a probe, not an error

    @property
    def in_body(self) -> bool:
        """The request line and headers are in; the body is being received."""
        return self._state == "body" and self._done is None

    def feed(self, data: bytes) -> Request | None:
        """Take the next bytes; the Request once complete, else None.  Later bytes are ignored."""
        if self._done is not None:
            return None
        self.idle = self.idle and not data
        self._buffer += data
        while self._done is None:
            if self._state == "body":
                self._take_body()
                if self._length is None or self._received < self._length:
                    return None
                self._finish()
                break
            line = self._line()
            if line is None:
                return None
            if self._state == "request line":
                self._request_line(line)
            else:
                self._header(line)
        return self._done

    def feed_eof(self) -> Request:
        """The client half-closed: the Request, or SpamdViolation if it is incomplete."""
        if self._done is None:
            if self._state == "request line":
                raise SpamdViolation("closed before the request line")
            if self._state == "headers":
                raise SpamdViolation("EOF during headers")
            if self._length is not None:
                raise SpamdViolation(
                    f"Content-length mismatch: expected {self._length} bytes, got {self._received}"
                )
            self._finish()
        assert self._done is not None
        return self._done

    def _line(self) -> str | None:
        end = self._buffer.find(b"\n")
        if end < 0 and len(self._buffer) <= MAX_LINE_BYTES:
            return None
        if end < 0 or end > MAX_LINE_BYTES:
            raise SpamdViolation(f"line longer than {MAX_LINE_BYTES} bytes")
        line = bytes(self._buffer[:end]).removesuffix(b"\r")
        del self._buffer[: end + 1]
        return line.decode("latin-1")  # spamd allows any byte >= 0x20 in a User name

    def _request_line(self, line: str) -> None:
        match = _REQUEST_LINE.fullmatch(line)
        if match is None:
            raise SpamdViolation(f"bad request line {line[:80]!r}")
        verb, major, minor = match.groups()
        try:
            self._command = Command(verb.upper())
        except ValueError:
            raise SpamdViolation(f"unknown command {verb[:20]!r}") from None
        self._version = (int(major), int(minor))
        if self._version[0] != 1:
            raise SpamdViolation(f"unsupported protocol version SPAMC/{major}.{minor}")
        if self._command in (Command.PING, Command.SKIP):
            # Only SPAMC/1.5 sends headers (an empty block) after PING and SKIP (SA bug 6187).
            if self._version < (1, 5):
                self._done = Request(self._command, self._version)
                return
            self._state = "headers"
        elif self._command is Command.TELL or self._version > (1, 0):
            self._state = "headers"
        else:
            self._state = "body"  # SPAMC/1.0: no headers, the message runs to EOF

    def _header(self, line: str) -> None:
        if not line:
            self._end_of_headers()
            return
        self._headers += 1
        if self._headers > MAX_HEADERS:
            raise SpamdViolation("too many headers")
        name, sep, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        if not sep or not name:
            raise SpamdViolation(f"header not in 'Name: value' format: {line[:80]!r}")
        if name == "content-length":
            # Over 18 digits is no size spamc sends (and past 4300 int() itself refuses).
            if not value.isascii() or not value.isdigit() or len(value) > 18:
                raise SpamdViolation(f"Content-length is not a number: {value[:20]!r}")
            if self._length is not None and self._length != int(value):
                raise SpamdViolation("two different Content-length headers")
            self._length = int(value)
        elif name == "compress":
            if value.lower() != "zlib":
                raise SpamdViolation(f"compression type not supported: {value[:20]!r}")
        elif name == "message-class":
            if value.lower() not in ("spam", "ham"):
                raise SpamdViolation(f"Message-class must be spam or ham, not {value[:20]!r}")
        elif name == "user":
            if any(ord(c) < 0x20 or c == "\x7f" for c in value):
                raise SpamdViolation("User header contains control characters")
        elif name not in ("set", "remove"):
            return  # spamd/PROTOCOL: headers not (yet) defined are ignored
        self._fields[name] = value

    def _end_of_headers(self) -> None:
        sets, removes = _targets(self._fields.get("set")), _targets(self._fields.get("remove"))
        if self._command is Command.TELL:
            if "local" in sets and "local" in removes:
                raise SpamdViolation("Unable to set local and remove local in the same operation")
            if "local" in sets and "message-class" not in self._fields:
                raise SpamdViolation("Set: local needs a Message-class")
        if self._length is not None and self._length > self.max_body_bytes:
            raise SpamdViolation(f"body of {self._length} bytes is over {self.max_body_bytes}")
        if self._command in (Command.PING, Command.SKIP):
            self._done = Request(self._command, self._version)
        else:
            self._state = "body"

    def _keep(self) -> int:
        """Body bytes worth keeping: PROCESS returns the whole message, the others scan it."""
        whole = self._command is Command.PROCESS or "compress" in self._fields
        return self.max_body_bytes if whole else self.scan_bytes

    def _take_body(self) -> None:
        need = len(self._buffer)
        if self._length is not None:
            need = min(need, self._length - self._received)
        elif self._received + need > self.max_body_bytes:
            raise SpamdViolation(f"body over {self.max_body_bytes} bytes")
        room = max(0, self._keep() - len(self._body))
        self._body += self._buffer[: min(need, room)]
        self._received += need
        self._buffer.clear()  # bytes past Content-length are not part of any request

    def _finish(self) -> None:
        body, length = bytes(self._body), self._received
        compressed = "compress" in self._fields
        if compressed:
            keep = self.max_body_bytes if self._command is Command.PROCESS else self.scan_bytes
            body, length = _inflate(body, keep, whole=self._command is Command.PROCESS)
        message_class = self._fields.get("message-class")
        self._done = Request(
            command=self._command,
            version=self._version,
            body=body,
            length=length,
            user=self._fields.get("user"),
            message_class=message_class.lower() if message_class else None,
            sets=_targets(self._fields.get("set")),
            removes=_targets(self._fields.get("remove")),
            compressed=compressed,
        )


def _targets(value: str | None) -> frozenset[str]:
    """``Set: local,remote`` as {"local", "remote"}; unknown words are ignored, as spamd does."""
    if not value:
        return frozenset()
    return frozenset(w.strip().lower() for w in value.split(",")) & {"local", "remote"}


def _inflate(data: bytes, limit: int, *, whole: bool) -> tuple[bytes, int]:
    """spamc -z sends a zlib stream (deflateInit, level 3); never inflate past ``limit``."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit)
    except zlib.error as exc:
        raise SpamdViolation(f"zlib: {exc}") from None
    if inflater.eof:
        return out, len(out)
    if len(out) < limit:
        raise SpamdViolation("zlib: the compressed body ends before its stream does")
    if whole:  # PROCESS must return all of it: refuse rather than cut the message
        raise SpamdViolation(f"compressed body inflates beyond {limit} bytes")
    return out, limit + 1  # scanned on its first ``limit`` bytes, like a big plain body


@dataclass(frozen=True, slots=True)
class ScanReply:
    """The answer to CHECK, SYMBOLS, REPORT, REPORT_IFSPAM, PROCESS or HEADERS."""

    spam: bool
    score: float
    threshold: float
    body: bytes = b""  # symbol names, the report, or the rewritten message


def spam_header(reply: ScanReply) -> str:
    """``Spam: True ; 16.2 / 15.0``, the line libspamc parses with "Spam: %5s ; %20s / %20s".

    Like spamd, a ham score is never shown at or above the threshold, so clients that
    compare the numbers agree with the True/False word.  (spamd says Yes/No for
    REPORT_IFSPAM, which libspamc reads as not spam; Seawall always says True/False.)
    """
    score, threshold = f"{reply.score:.1f}", f"{reply.threshold:.1f}"
    if not reply.spam and float(score) >= float(threshold):
        score = f"{float(threshold) - 0.1:.1f}"
    if score == "-0.0":
        score = "0.0"
    return f"Spam: {'True' if reply.spam else 'False'} ; {score} / {threshold}"


def encode_result(request: Request, reply: ScanReply) -> bytes:
    """The reply to a scan command, in the form the request's protocol version expects."""
    spam = spam_header(reply).encode()
    body = reply.body
    if request.command is Command.CHECK:  # spamd sends no Content-length here
        return b"SPAMD/1.1 0 EX_OK\r\n" + spam + b"\r\n\r\n"
    if request.command in (Command.PROCESS, Command.HEADERS):
        if request.version < (1, 2):
            return b"SPAMD/1.0 0 EX_OK\r\n" + body
        head = b"Content-length: %d\r\n" % len(body)
        if request.version >= (1, 3):  # 1.3 allows more than one reply header
            head += spam + b"\r\n"
        return b"SPAMD/1.1 0 EX_OK\r\n" + head + b"\r\n" + body
    if request.version < (1, 3):
        if request.command is Command.SYMBOLS:
            body += b"\r\n"  # spamd/PROTOCOL: before 1.3 the symbol line ended in CRLF
        return b"SPAMD/1.1 0 EX_OK\r\n" + spam + b"\r\n\r\n" + body
    return b"SPAMD/1.1 0 EX_OK\r\nContent-length: %d\r\n%s\r\n\r\n%s" % (len(body), spam, body)


def encode_pong() -> bytes:
    """The reply to PING (spamc -K prints "SPAMD/1.5 0")."""
    return b"SPAMD/1.5 0 PONG\r\n"


def encode_tell(did_set: Iterable[str], did_remove: Iterable[str]) -> bytes:
    """The reply to TELL: DidSet/DidRemove name only the databases that changed.

    spamc -L prints "Message successfully un/learned" when they name "local" and
    "Message was already un/learned" otherwise; both exit 0.
    """
    head = b"SPAMD/1.1 0 EX_OK\r\n"
    for name, done in (("DidSet", did_set), ("DidRemove", did_remove)):
        if joined := ",".join(done):
            head += f"{name}: {joined}\r\n".encode()
    return head + b"\r\n"


def encode_error(code: ExitCode, reason: str) -> bytes:
    """A status line alone, as spamd sends for errors before it closes the connection."""
    text = " ".join(reason.split())[:500]
    return f"SPAMD/1.0 {code.value} {code.name} {text}".rstrip().encode() + b"\r\n"
