"""Archives opened within bounds: zip (nested), gzip and tar, for the names and types inside.

One :class:`ArchiveWalk` serves one message: its archives share one member count and one
byte budget, so a message costs a bounded time whatever it carries.  What an archive
declares is checked before anything is inflated (size ratio, total size, members whose data
overlap), and again while inflating, since declared sizes can lie: no member is inflated
past its declared size or the budget, nor far at a bomb's ratio.  Only the first bytes of
a member are inflated to tell its type, unless it is an archive to open.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass
from typing import Protocol

from seawall.message.attachments import ARCHIVE_TYPES, sniff, zip_directory
from seawall.message.defects import ZIP_TOO_MANY_MEMBERS

SNIFF_BYTES = 0x8001 + 5  # enough for sniff() to see an ISO 9660 volume descriptor
_CHUNK = 64 * 1024  # compressed bytes handed to zlib at once
_PIECE = 1024 * 1024  # inflated bytes asked of zlib at once
_OPENED = frozenset({"application/zip", "application/gzip", "application/x-tar"})
_MAX_EVIDENCE = 20  # pieces of evidence kept per finding
_LOCAL_HEADER = 30  # fixed part of a zip local file header

# What an archive walk finds; each finding keeps the paths it was found at.
ENCRYPTED = "encrypted"  # password-protected members
BOMB = "bomb"  # sizes or ratios of a decompression bomb, or sizes that lie
TOO_DEEP = "too_deep"  # an archive nested max_depth deep, not opened
TOO_MANY = "too_many"  # more members than max_members
UNREADABLE = "unreadable"  # an archive type (or compression method) that is not opened
BROKEN = "broken"  # an archive or member that cannot be read
LIMIT = "limit"  # the byte budget ran out; later members were not inflated


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """The bounds of one message's archive walk (config ``[detectors.attachments]``)."""

    max_depth: int = 3  # the attachment is depth 0; an archive this deep is not opened
    max_members: int = 1000  # members examined, over every archive of the message
    max_unpacked_bytes: int = 32 * 1024 * 1024  # bytes inflated, over the whole message
    max_ratio: float = 200.0  # inflated / compressed above this is a bomb ...
    min_bomb_bytes: int = 1024 * 1024  # ... for members at least this big
    max_declared_bytes: int = 1024**3  # one archive declaring more in total is a bomb


@dataclass(frozen=True, slots=True)
class Member:
    """A file inside an archive."""

    path: str  # the archives it is in, then its own name: "a.zip/b.zip/data.txt.pif"
    name: str  # its name in its archive, folders included
    depth: int  # 1 for a member of the attachment itself
    sniffed_type: str | None  # from its first bytes; None when unknown or not read
    encrypted: bool = False


class _Source(Protocol):
    """A member's bytes, read in order: stored or inflated."""

    produced: int  # bytes read so far
    eof: bool  # the member's data ended
    failed: bool  # the data is corrupt

    @property
    def consumed(self) -> int: ...

    def read(self, n: int, keep: bool) -> bytes: ...


class _Stored:
    def __init__(self, view: memoryview) -> None:
        self.view = view
        self.produced = 0
        self.eof = not view
        self.failed = False

    @property
    def consumed(self) -> int:
        return self.produced

    def read(self, n: int, keep: bool) -> bytes:
        piece = self.view[self.produced : self.produced + max(n, 0)]
        self.produced += len(piece)
        self.eof = self.produced >= len(self.view)
        return bytes(piece) if keep else b""


class _Inflated:
    """Raw deflate, inflated in bounded pieces: zlib never returns more than asked."""

    def __init__(self, view: memoryview) -> None:
        self.view = view
        self.pos = 0
        self.produced = 0
        self.eof = False
        self.failed = False
        self.zlib = zlib.decompressobj(-zlib.MAX_WBITS)

    @property
    def consumed(self) -> int:
        z = self.zlib
        return self.pos - len(z.unconsumed_tail) - len(z.unused_data)

    def read(self, n: int, keep: bool) -> bytes:
        parts: list[bytes] = []
        got = 0
        z = self.zlib
        while got < n and not self.eof:
            chunk: bytes | memoryview = z.unconsumed_tail
            if not chunk:
                if self.pos >= len(self.view):
                    break  # the input ended before the deflate stream did
                chunk = self.view[self.pos : self.pos + _CHUNK]
                self.pos += len(chunk)
            try:
                piece = z.decompress(chunk, min(n - got, _PIECE))
            except zlib.error:
                self.failed = True
                break
            got += len(piece)
            if keep:
                parts.append(piece)
            self.eof = z.eof
        self.produced += got
        return b"".join(parts)


class ArchiveWalk:
    """The archives of one message, opened within :class:`ArchiveLimits`.

    >>> walk = ArchiveWalk(ArchiveLimits())
    >>> walk.open(zip_bytes, "invoice.zip", "application/zip")     # doctest: +SKIP
    >>> [m.path for m in walk.members], walk.findings                # doctest: +SKIP
    (['invoice.zip/invoice.pdf.exe'], {})
    """

    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits = limits
        self.members: list[Member] = []
        self.findings: dict[str, list[str]] = {}
        self.budget = limits.max_unpacked_bytes
        self.count = 0

    def open(self, data: bytes, path: str, kind: str | None) -> None:
        """Walk ``data``, an attachment sniffed as ``kind``; anything but an archive is left."""
        if self._opens(path, kind, 0):
            self._walk(data, path, kind, 0)

    def note(self, finding: str, evidence: str) -> None:
        """Record ``finding`` at ``evidence`` (a path); too_many is recorded once."""
        found = self.findings.setdefault(finding, [])
        if finding == TOO_MANY and found:
            return
        if len(found) < _MAX_EVIDENCE and evidence not in found:
            found.append(evidence)

    def _opens(self, path: str, kind: str | None, depth: int) -> bool:
        if kind not in ARCHIVE_TYPES:
            return False
        if kind not in _OPENED:
            self.note(UNREADABLE, f"{path} ({kind})")
            return False
        if depth >= self.limits.max_depth:
            self.note(TOO_DEEP, path)
            return False
        return True

    def _walk(self, data: bytes, path: str, kind: str | None, depth: int) -> None:
        if self.count >= self.limits.max_members:  # not even its directory is read
            self.note(TOO_MANY, path)
            return
        if kind == "application/zip":
            self._zip(data, path, depth)
        elif kind == "application/gzip":
            self._gzip(data, path, depth)
        else:
            self._tar(data, path, depth)

    def _take(self, path: str) -> bool:
        """Count one member of ``path``; False (noted once) past max_members."""
        if self.count >= self.limits.max_members:
            self.note(TOO_MANY, path)
            return False
        self.count += 1
        return True

    def _add(self, member: Member, child: bytes | None) -> None:
        self.members.append(member)
        if child is not None:
            self._walk(child, member.path, member.sniffed_type, member.depth)

    def _zip(self, data: bytes, path: str, depth: int) -> None:
        infos, defect = zip_directory(data)
        if defect is not None:
            self.note(TOO_MANY if defect == ZIP_TOO_MANY_MEMBERS else BROKEN, path)
            return
        limits = self.limits
        declared = sum(info.file_size for info in infos)
        inflate = True
        if declared > limits.max_declared_bytes:
            self.note(BOMB, f"{path}: declares {declared} bytes")
        if _overlapping(infos):  # a non-recursive bomb: every member inflates the same data
            self.note(BOMB, f"{path}: members share their data")
            inflate = False
        view = memoryview(data)
        for info in infos:
            if not self._take(path):
                break
            member_path = f"{path}/{info.filename}"
            locked = bool(info.flag_bits & 0x1)
            if locked:
                self.note(ENCRYPTED, path)
            sniffed, child = None, None
            if inflate and not locked and not info.filename.endswith("/"):
                source = self._zip_source(view, info, member_path)
                if source is not None:
                    sniffed, child = self._member(
                        source, info.file_size, info.compress_size, member_path, depth
                    )
            self._add(Member(member_path, info.filename, depth + 1, sniffed, locked), child)

    def _zip_source(self, view: memoryview, info: zipfile.ZipInfo, path: str) -> _Source | None:
        offset = info.header_offset
        head = view[offset : offset + _LOCAL_HEADER]
        if len(head) < _LOCAL_HEADER or bytes(head[:4]) != b"PK\x03\x04":
            self.note(BROKEN, path)
            return None
        start = offset + _LOCAL_HEADER
        start += int.from_bytes(head[26:28], "little") + int.from_bytes(head[28:30], "little")
        method = info.compress_type
        if method == zipfile.ZIP_STORED:
            return _Stored(view[start : start + info.compress_size])
        if method == zipfile.ZIP_DEFLATED:
            return _Inflated(view[start:])  # the deflate stream ends itself
        self.note(UNREADABLE, f"{path} (compression method {method})")
        return None

    def _gzip(self, data: bytes, path: str, depth: int) -> None:
        header = _gzip_header(data)
        if header is None:
            self.note(BROKEN, path)
            return
        if not self._take(path):
            return
        start, name = header
        if not name:
            base = path.rpartition("/")[2]
            stem, dot, ext = base.rpartition(".")
            name = (stem + ".tar") if dot and ext.lower() == "tgz" else (stem if dot else base)
        member_path = f"{path}/{name}"
        # The trailer's size is the last member's, modulo 2**32: no size is declared for
        # the first member (bgzip writes one per 64 KiB), so only the ratio bounds it.
        source = _Inflated(memoryview(data)[start:])
        sniffed, child = self._member(source, None, len(data) - start, member_path, depth)
        self._add(Member(member_path, name, depth + 1, sniffed), child)

    def _tar(self, data: bytes, path: str, depth: int) -> None:
        import tarfile  # 7 ms to import, for the rare tar in mail: when one comes

        view = memoryview(data)
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
                while (info := tar.next()) is not None:
                    if not self._take(path):
                        break
                    member_path = f"{path}/{info.name}"
                    sniffed, child = None, None
                    if info.isfile():
                        source = _Stored(view[info.offset_data : info.offset_data + info.size])
                        sniffed, child = self._member(
                            source, info.size, info.size, member_path, depth
                        )
                    self._add(Member(member_path, info.name, depth + 1, sniffed), child)
        except (tarfile.TarError, ValueError, EOFError, OSError, UnicodeError):
            self.note(BROKEN, path)

    def _member(
        self, source: _Source, declared: int | None, compressed: int, path: str, depth: int
    ) -> tuple[str | None, bytes | None]:
        """The member's sniffed type, and its bytes when it is an archive to open.

        ``declared`` is the size the archive gives (None: none); zlib is never asked for
        more than that plus one byte, which tells a lie.
        """
        limits = self.limits
        if declared is None:
            most = self.budget
        elif declared >= limits.min_bomb_bytes and declared > limits.max_ratio * max(compressed, 1):
            self.note(BOMB, f"{path}: declares {declared} bytes from {compressed}")
            return None, None
        else:
            most = declared + 1
        head = self._read(source, min(SNIFF_BYTES, most), path, keep=True)
        sniffed = sniff(head)
        if self._bad(source, declared, path):
            return sniffed, None
        if self._opens(path, sniffed, depth + 1):
            rest = self._read(source, most - source.produced, path, keep=True)
            if self._bad(source, declared, path) or not source.eof:
                return sniffed, None
            return sniffed, head + rest
        if not source.eof and source.produced > limits.max_ratio * max(source.consumed, 1):
            # Inflating this fast: read on, without keeping, to tell a bomb from a run of
            # zeros at the start of an honest file (a disk image's system area).
            self._read(source, min(most, limits.min_bomb_bytes + 1) - source.produced, path)
            self._bad(source, declared, path)
        return sniffed, None

    def _read(self, source: _Source, n: int, path: str, keep: bool = False) -> bytes:
        """Up to ``n`` more bytes of ``source``, charged to the budget."""
        if n <= 0:
            return b""
        if n > self.budget:
            self.note(LIMIT, path)
            n = self.budget
        before = source.produced
        data = source.read(n, keep)
        self.budget -= source.produced - before
        return data

    def _bad(self, source: _Source, declared: int | None, path: str) -> bool:
        """Note a member that lies about its size, inflates like a bomb, or is corrupt."""
        limits = self.limits
        if declared is not None and source.produced > declared:
            self.note(BOMB, f"{path}: inflates past its declared {declared} bytes")
            return True
        if source.produced >= limits.min_bomb_bytes and source.produced > limits.max_ratio * max(
            source.consumed, 1
        ):
            self.note(BOMB, f"{path}: inflates over {limits.max_ratio:g} to 1")
            return True
        if source.failed or (source.eof and source.produced < (declared or 0)):
            self.note(BROKEN, path)
            return True
        return False


def _overlapping(infos: list[zipfile.ZipInfo]) -> bool:
    """Members whose data overlap the next member's header (David Fifield's zip bomb)."""
    spans = sorted((info.header_offset, info.compress_size) for info in infos)
    return any(
        start + _LOCAL_HEADER + size > next_start
        for (start, size), (next_start, _) in zip(spans, spans[1:], strict=False)
    )


def _gzip_header(data: bytes) -> tuple[int, str] | None:
    """Where a gzip member's deflate data starts, and its original file name (RFC 1952)."""
    if len(data) < 18 or data[2] != 8:  # 10-byte header, 8-byte trailer; method deflate
        return None
    flags, pos, name = data[3], 10, ""
    if flags & 0x04:  # FEXTRA
        pos += 2 + int.from_bytes(data[pos : pos + 2], "little")
    for flag in (0x08, 0x10):  # FNAME, FCOMMENT: zero-terminated
        if flags & flag:
            end = data.find(b"\x00", pos, pos + 1024)
            if end < 0:
                return None
            if flag == 0x08:
                name = data[pos:end].decode("latin-1")
            pos = end + 1
    if flags & 0x02:  # FHCRC
        pos += 2
    return (pos, name) if pos <= len(data) - 8 else None
