"""Attachments: the type their bytes really have, their hash, and what a zip holds."""

from __future__ import annotations

import hashlib
import io
import zipfile

from seawall.message.defects import ZIP_BROKEN, ZIP_ENCRYPTED, ZIP_TOO_MANY_MEMBERS
from seawall.message.model import Attachment

# (offset, magic bytes, MIME type as `file --mime-type` names it).  Longer and more
# specific signatures first; the HTML and PDF checks below are looser.
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"PK\x03\x04", "application/zip"),
    (0, b"PK\x05\x06", "application/zip"),  # empty archive
    (0, b"PK\x07\x08", "application/zip"),  # spanned archive
    (0, b"%PDF-", "application/pdf"),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),  # .doc .xls .msi
    (0, b"\x7fELF", "application/x-executable"),
    (0, b"MZ", "application/x-dosexec"),  # .exe .dll .scr .com
    (0, b"Rar!\x1a\x07", "application/x-rar"),
    (0, b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (0, b"\x1f\x8b", "application/gzip"),
    (0, b"BZh", "application/x-bzip2"),
    (0, b"\xfd7zXZ\x00", "application/x-xz"),
    (0, b"MSCF", "application/vnd.ms-cab-compressed"),
    (0, b"L\x00\x00\x00\x01\x14\x02\x00", "application/x-ms-shortcut"),  # .lnk
    (
        0,
        b"\xe4\x52\x5c\x7b\x8c\xd8\xa7\x4d\xae\xb1\x53\x78\xd0\x29\x96\xd3",
        "application/onenote",
    ),
    (0x8001, b"CD001", "application/x-iso9660-image"),  # .iso/.img droppers
    (257, b"ustar", "application/x-tar"),
    (0, b"{\\rtf", "text/rtf"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
)
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<script", b"<meta", b"<iframe")
MAX_MEMBERS = 100  # zip member names kept
_MAX_DIRECTORY = 5000  # entries zipfile may read (200 bytes each); bigger is not read
_EOCD = b"PK\x05\x06"
_EOCD_SEARCH = 22 + 65535  # the end record plus the longest archive comment


def sniff(data: bytes) -> str | None:
    """The MIME type that ``data``'s magic bytes show, or None when unknown.

    >>> sniff(b"%PDF-1.7 ..."), sniff(b"MZ\\x90\\x00"), sniff(b"plain words")
    ('application/pdf', 'application/x-dosexec', None)
    """
    for offset, magic, mime in _MAGIC:
        if data.startswith(magic, offset):
            return mime
    if data.startswith(b"RIFF") and data.startswith(b"WEBP", 8):
        return "image/webp"
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(_HTML_STARTS):
        return "text/html"
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return "image/svg+xml"
    if data.find(b"%PDF-", 0, 1024) > 0:  # readers accept junk before the header
        return "application/pdf"
    return None


def build_attachment(data: bytes, filename: str | None, declared_type: str) -> Attachment:
    """An :class:`Attachment` for decoded ``data``; zip archives also list their members."""
    sniffed = sniff(data)
    members: tuple[str, ...] = ()
    defects: tuple[str, ...] = ()
    if sniffed == "application/zip":
        members, defects = zip_members(data)
    return Attachment(
        filename=filename,
        declared_type=declared_type,
        sniffed_type=sniffed,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        members=members,
        defects=defects,
    )


def zip_members(data: bytes) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The first :data:`MAX_MEMBERS` member names of a zip archive, and its defects.

    Never raises: a broken archive gives ``zip_broken``, an encrypted member
    ``zip_encrypted``, a central directory too big to read ``zip_too_many_members``.
    """
    end = data.rfind(_EOCD, max(0, len(data) - _EOCD_SEARCH))
    if end >= 0 and end + 16 <= len(data):
        # zipfile reads the whole central directory: bound its entries and its size (the
        # count can lie).  0xFFFF and 0xFFFFFFFF, the ZIP64 markers, count as too many.
        entries = int.from_bytes(data[end + 10 : end + 12], "little")
        directory = int.from_bytes(data[end + 12 : end + 16], "little")
        if entries > _MAX_DIRECTORY or directory > _MAX_DIRECTORY * 200:
            return (), (ZIP_TOO_MANY_MEMBERS,)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError):
        return (), (ZIP_BROKEN,)
    except (NotImplementedError, UnicodeDecodeError, KeyError, IndexError):
        return (), (ZIP_BROKEN,)
    names = tuple(info.filename for info in infos[:MAX_MEMBERS])
    encrypted = any(info.flag_bits & 0x1 for info in infos)
    return names, (ZIP_ENCRYPTED,) if encrypted else ()
