"""FreeRADIUS ``detail`` files (rlm_detail) read into Records, as a sans-I/O parser.

A detail file is a sequence of records separated by blank lines.  Each record starts with a
line of its own, the time the request arrived as ``ctime`` writes it ("Fri Nov 27 12:00:00
2026"), followed by one ``Attribute = value`` line per attribute, indented by a tab.  String
values are double-quoted with C-style escapes (``\\"``, ``\\\\``, ``\\n``, ``\\ooo``); numbers,
addresses, prefixes and named values are bare.  FreeRADIUS adds ``Timestamp = <epoch
seconds>`` (when the request arrived) and, where its policy computes one,
``Acct-Unique-Session-Id``.

``DetailParser`` takes bytes as they come (a whole file, or what a tailer read) and returns
the complete records and the problems met: a line that is neither a header nor an
attribute, a record without what a session needs.  A problem costs that record only; the
next blank line starts afresh.  Lines over 64 KiB are cut and reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from seawall.accounting.records import AccountingError, Record, Skipped, record_from_attributes

MAX_LINE = 64 * 1024
_ATTRIBUTE = re.compile(r"[ \t]+([A-Za-z0-9][A-Za-z0-9._:-]*)[ \t]*=[ \t]*(.*?)[ \t\r]*")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "'": "'"}


@dataclass(frozen=True, slots=True)
class Problem:
    """A record that could not be read: where, and why."""

    where: str  # the file's name
    line: int  # the line the record (or the bad line) starts on, from 1
    reason: str

    def __str__(self) -> str:
        return f"{self.where}:{self.line}: {self.reason}"


class DetailParser:
    """Feed bytes, get Records and Problems; see the module docstring.

    >>> p = DetailParser("detail")
    >>> text = b'Fri Nov 27 12:00:00 2026\\n\\tAcct-Status-Type = Accounting-On\\n'
    >>> p.feed(text + b'\\tNAS-IP-Address = 192.0.2.1\\n\\tTimestamp = 1764244800\\n\\n')
    [Record(status=<Status.ON: 'Accounting-On'>, time=1764244800.0, nas='192.0.2.1', \
session_id='', account='', ips=(), session_time=None)]
    """

    def __init__(self, where: str) -> None:
        self.where = where
        self.skipped = 0  # well-formed records that say nothing about addresses
        self._buffer = b""
        self._line = 0  # lines consumed so far
        self._start = 0  # the line the current record starts on
        self._attrs: dict[str, str] = {}
        self._header = False
        self._bad: str | None = None  # why the current record is being skipped
        self._overlong = False  # within a line too long to keep

    def feed(self, data: bytes) -> list[Record | Problem]:
        """The records and problems completed by ``data`` (a record is complete at the
        blank line after it)."""
        out: list[Record | Problem] = []
        if self._overlong:  # the rest of a line already reported as too long
            end = data.find(b"\n")
            if end < 0:
                return out
            data, self._overlong = data[end + 1 :], False
        lines = (self._buffer + data).split(b"\n")
        self._buffer = lines.pop()  # the line not yet complete
        for raw in lines:
            self._line += 1
            if len(raw) > MAX_LINE:
                self._fail(f"a line longer than {MAX_LINE} bytes")
                continue
            self._take(raw.decode("utf-8", "replace"), out)
        if len(self._buffer) > MAX_LINE:
            self._line += 1
            self._buffer, self._overlong = b"", True
            self._fail(f"a line longer than {MAX_LINE} bytes")
        return out

    def end(self) -> list[Record | Problem]:
        """What is left at the end of the file: a last record without its blank line."""
        out: list[Record | Problem] = []
        if self._buffer:
            self._line += 1
            rest, self._buffer = self._buffer, b""
            self._take(rest.decode("utf-8", "replace"), out)
        self._finish(out)
        return out

    def _take(self, line: str, out: list[Record | Problem]) -> None:
        if not line.strip():
            self._finish(out)
            return
        if not line[0].isspace():
            if self._header or self._attrs:
                # A new header without the blank line: finish the last record first.
                self._finish(out)
            self._header = True
            self._start = self._line
            return
        if not self._header and not self._attrs and self._bad is None:
            self._start = self._line
            self._bad = "attributes before a record's date line"
        match = _ATTRIBUTE.fullmatch(line)
        if match is None:
            self._fail(f"not an 'Attribute = value' line: {line.strip()[:80]!r}")
            return
        name, value = match.groups()
        try:
            self._attrs[name] = _unquote(value)
        except AccountingError as exc:
            self._fail(f"{name}: {exc}")

    def _fail(self, reason: str) -> None:
        if self._bad is None:
            self._bad = f"line {self._line}: {reason}" if self._line != self._start else reason
            if not self._header and not self._attrs:
                self._start = self._line

    def _finish(self, out: list[Record | Problem]) -> None:
        attrs, bad, start = self._attrs, self._bad, self._start
        had = self._header or attrs or bad
        self._attrs, self._bad, self._header = {}, None, False
        if not had:
            return
        if bad is not None:
            out.append(Problem(self.where, start, bad))
            return
        try:
            out.append(record_from_attributes(attrs, received=None))
        except Skipped:
            self.skipped += 1
        except AccountingError as exc:
            out.append(Problem(self.where, start, str(exc)))


def _unquote(value: str) -> str:
    """A detail file's value: a quoted string with its escapes undone, or a bare word."""
    if not value.startswith('"'):
        return value
    if len(value) < 2 or not value.endswith('"') or value.endswith('\\"') and _odd_tail(value):
        raise AccountingError(f"unterminated string {value[:80]!r}")
    body = value[1:-1]
    if "\\" not in body:
        return body
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\" or i + 1 == len(body):
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1]
        octal = body[i + 1 : i + 4]
        if len(octal) == 3 and all(ch in "01234567" for ch in octal):
            out.append(chr(int(octal, 8)))
            i += 4
        else:
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
    return "".join(out)


def _odd_tail(value: str) -> bool:
    """Whether the final quote of ``value`` is escaped (an odd run of backslashes)."""
    run = len(value) - 1 - len(value[:-1].rstrip("\\"))
    return run % 2 == 1


def read_detail(chunks: Iterable[bytes], where: str) -> Iterator[Record | Problem]:
    """Every record and problem of a whole file given as chunks of bytes."""
    parser = DetailParser(where)
    for chunk in chunks:
        yield from parser.feed(chunk)
    yield from parser.end()
