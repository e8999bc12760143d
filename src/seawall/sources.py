"""Where messages come from: files, directory trees, Maildirs and mboxes.

A :class:`Unit` names one message by a byte range of a file, so a worker
process can read it itself.  ``path`` is how the message is reported: the file
name, or ``file#N`` for the Nth message (from 1) of an mbox; ``file#N`` given as a path
names that message alone.  What cannot be read twice (a pipe: ``/dev/stdin``, a FIFO) is
read once while listing, and its units carry their bytes.
"""

from __future__ import annotations

import mmap
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

# Files a mail store keeps beside its messages (Dovecot, Courier, our corpora).
_NOT_MESSAGES = frozenset(
    {
        "dovecot-uidlist",
        "dovecot-keywords",
        "dovecot.index",
        "dovecot.index.log",
        "dovecot.index.cache",
        "dovecot.list.index",
        "dovecot.list.index.log",
        "maildirfolder",
        "subscriptions",
        "courierimapuiddb",
        "courierimapkeywords",
        "courierimapacl",
        "labels.csv",
    }
)


@dataclass(frozen=True, slots=True)
class Unit:
    """One message: ``file[start:end]`` (``end`` None: to the end of the file)."""

    path: str
    file: str
    start: int = 0
    end: int | None = None
    data: bytes | None = None  # the message itself, read from a stream while listing

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        fd = os.open(self.file, _OPEN_FLAGS)
        try:
            if self.start:
                os.lseek(fd, self.start, os.SEEK_SET)
            if self.end is None:
                return _read_from(fd, os.fstat(fd).st_size - self.start)
            return _read_from(fd, self.end - self.start, exact=True)
        except OSError as exc:
            raise _named(exc, self.file) from None
        finally:
            os.close(fd)

    def size(self) -> int:
        """The message's size in bytes without reading it (0 when the file is gone)."""
        if self.data is not None:
            return len(self.data)
        if self.end is not None:
            return self.end - self.start
        try:
            return max(os.path.getsize(self.file) - self.start, 0)
        except OSError:
            return 0


_READ_WHOLE = 1 << 20  # a file up to this size is read to see that it holds one message
_HEAD = 1024  # the longest first line read for an mbox's From_ line
_FIRST_READ = 8192  # the first read of a file: all of most single messages (9 in 10 of SA's)
# Plain os calls, not a Python file object: listing thousands of small files, the file
# object's buffer and wrappers cost more than the reads (34 -> 19 us a file listed).
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def _read_from(fd: int, size: int, *, exact: bool = False) -> bytes:
    """From where ``fd`` stands: ``size`` bytes (``exact``; fewer at the end of the file),
    or all to the end of the file, ``size`` being what its size said (it may have grown)."""
    chunks: list[bytes] = []
    want = size if exact else max(size, 0) + 1  # one more: a short read is the end
    while want > 0:
        chunk = os.read(fd, want)
        if not chunk:
            break
        chunks.append(chunk)
        if exact:
            want -= len(chunk)
        elif len(chunk) < want:
            break
        else:
            want = 1 << 16  # the file grew, or is no regular file: read on to its end
    return b"".join(chunks)


def _is_from_line(line: bytes) -> bool:
    # An mbox separator: "From " then a sender then a date; a body line that merely starts
    # with "From " in a one-message file does not occur at offset 0 of a real message.
    return line.startswith(b"From ") and len(line.split()) >= 3


def _mbox_units(path: str) -> list[Unit]:
    """Split an mbox at lines starting "From " (mboxo/mboxrd), dropping the From_ lines."""
    size = os.path.getsize(path)
    if size == 0:
        return [Unit(path, path)]
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        ranges = _mbox_ranges(mm, size)
    if len(ranges) == 1:
        return [Unit(path, path, ranges[0][0], None)]
    return [Unit(f"{path}#{n}", path, start, end) for n, (start, end) in enumerate(ranges, 1)]


def _mbox_ranges(buffer: bytes | mmap.mmap, size: int) -> list[tuple[int, int]]:
    """Each message's (start, end) in an mbox's bytes: after its From_ line, to the next."""
    starts: list[int] = [0]
    pos = buffer.find(b"\nFrom ", 0)
    while pos != -1:
        line_end = buffer.find(b"\n", pos + 1)
        line = buffer[pos + 1 : line_end if line_end != -1 else size]
        if _is_from_line(line):
            starts.append(pos + 1)
        pos = buffer.find(b"\nFrom ", pos + 1)
    ranges: list[tuple[int, int]] = []
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else size
        body = buffer.find(b"\n", start, end)
        ranges.append((end if body == -1 else body + 1, end))
    return ranges


def _stream_units(path: str, fd: int) -> list[Unit]:
    """The messages of a stream (a pipe, a FIFO, a terminal), read whole now: a worker
    could not read it again.  An mbox on it is split as a file's is."""
    chunks: list[bytes] = []
    try:
        while chunk := os.read(fd, 1 << 16):  # a short read is no end: only b"" is
            chunks.append(chunk)
    except OSError as exc:
        raise _named(exc, path) from None
    data = b"".join(chunks)
    end = data.find(b"\n", 0, _HEAD)
    if not _is_from_line(data[: end + 1] if end != -1 else data[:_HEAD]):
        return [Unit(path, path, data=data)]
    ranges = _mbox_ranges(data, len(data))
    if len(ranges) == 1:
        start, end = ranges[0]
        return [Unit(path, path, data=data[start:end])]
    return [
        Unit(f"{path}#{n}", path, data=data[start:end]) for n, (start, end) in enumerate(ranges, 1)
    ]


def units_of_file(path: str) -> list[Unit]:
    """The messages of one file: the file itself, unless it starts with an mbox's From_
    line.  Only the first block of a message file (Maildir, .eml) is read; a file that
    starts with a From_ line is read whole to find any other."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return _stream_units(path, fd)
        first = os.read(fd, _FIRST_READ)
        end = first.find(b"\n", 0, _HEAD)
        head = first[: end + 1] if end != -1 else first[:_HEAD]
        if not _is_from_line(head):
            return [Unit(path, path)]
        # One message after its From_ line (a file of a corpus): what _mbox_units finds,
        # without mapping the file.  Most such files were read whole by the first read.
        whole = len(first) < _FIRST_READ  # a short read of a regular file: its end
        size = len(first) if whole else os.fstat(fd).st_size
        if head.endswith(b"\n") and size <= _READ_WHOLE:
            if not whole:
                first += _read_from(fd, size - len(first))
            if first.find(b"\nFrom ", len(head) - 1) == -1:  # from the head's own newline
                return [Unit(path, path, len(head), None)]
    except OSError as exc:
        raise _named(exc, path) from None
    finally:
        os.close(fd)
    return _mbox_units(path)


def _named(exc: OSError, path: str) -> OSError:
    """``exc`` naming the file, as open() names it (the errors of os.read name none: a
    directory's "Is a directory", a device's "Input/output error")."""
    if exc.filename is None:
        exc.filename = path
    return exc


def _walk(root: str) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "tmp" and not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or name in _NOT_MESSAGES:
                continue
            yield os.path.join(dirpath, name)


def iter_units(paths: Iterable[str | Path]) -> Iterator[Unit]:
    """Every message under ``paths``, in a stable order; ``mbox#N`` (a path that is no file
    itself) is the Nth message of the mbox, as scan reports it.

    Raises FileNotFoundError for a path that does not exist, or a message number the file
    does not have.
    """
    for raw in paths:
        path = str(raw)
        if os.path.isdir(path):
            # A Maildir's tmp/ holds messages still being written: skipped by _walk.
            for file in _walk(path):
                yield from units_of_file(file)
        elif os.path.exists(path):
            yield from units_of_file(path)
        else:
            yield _numbered(path)


def _numbered(path: str) -> Unit:
    """The message ``file#N`` names; FileNotFoundError when there is none."""
    file, sep, number = path.rpartition("#")
    if not sep or not number.isdigit() or not os.path.isfile(file):
        raise FileNotFoundError(path)
    units = units_of_file(file)
    n = int(number)
    if not 1 <= n <= len(units):
        held = f"{len(units)} message{'s' if len(units) != 1 else ''}"
        raise FileNotFoundError(f"{path} ({file} holds {held})")
    return units[n - 1]
