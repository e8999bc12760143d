"""Fuzz target: the FreeRADIUS detail file parser turns any bytes into Records and Problems.

It never raises (a bad line is a Problem of its record), and a file read in pieces, as the
tailer reads a growing file, gives what the whole file gives.  The first byte picks the
piece size (1 to 64 bytes).
"""

from __future__ import annotations

from tests.fuzz.harness import chunks

from seawall.accounting.detail import DetailParser, Problem
from seawall.accounting.records import Record


def _read(pieces: list[bytes]) -> list[Record | Problem]:
    parser = DetailParser("detail")
    out: list[Record | Problem] = []
    for piece in pieces:
        out += parser.feed(piece)
    return out + parser.end()


def check(data: bytes) -> None:
    if not data:
        return
    control, text = data[0], data[1:]
    whole = _read([text])
    assert whole == _read(chunks(text, control % 64 + 1)), "read in pieces, the file differs"
    for item in whole:
        if isinstance(item, Record):
            assert item.nas
            assert all(isinstance(ip, str) for ip in item.ips)
        else:
            assert item.line >= 1
