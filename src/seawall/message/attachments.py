"""Attachments: the type their bytes really have, their hash, what a zip holds, and what
their file names claim (extensions, double extensions, right-to-left overrides)."""

from __future__ import annotations

import hashlib
import io
import zipfile
from typing import TYPE_CHECKING

from seawall.message.defects import ZIP_BROKEN, ZIP_ENCRYPTED, ZIP_TOO_MANY_MEMBERS
from seawall.message.model import Attachment

if TYPE_CHECKING:
    from collections.abc import Set

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
        data=data,
    )


def zip_directory(data: bytes) -> tuple[list[zipfile.ZipInfo], str | None]:
    """The central directory of a zip archive, or ``([], defect)`` when it cannot be read.

    Never raises; the directory's size is checked before zipfile reads it (its entry
    count can lie), so a huge directory costs nothing (``zip_too_many_members``).
    """
    end = data.rfind(_EOCD, max(0, len(data) - _EOCD_SEARCH))
    if end >= 0 and end + 16 <= len(data):
        # 0xFFFF and 0xFFFFFFFF, the ZIP64 markers, count as too many.
        entries = int.from_bytes(data[end + 10 : end + 12], "little")
        directory = int.from_bytes(data[end + 12 : end + 16], "little")
        if entries > _MAX_DIRECTORY or directory > _MAX_DIRECTORY * 200:
            return [], ZIP_TOO_MANY_MEMBERS
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.infolist(), None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError):
        return [], ZIP_BROKEN
    except (NotImplementedError, UnicodeDecodeError, KeyError, IndexError):
        return [], ZIP_BROKEN


def zip_members(data: bytes) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The first :data:`MAX_MEMBERS` member names of a zip archive, and its defects.

    Never raises: a broken archive gives ``zip_broken``, an encrypted member
    ``zip_encrypted``, a central directory too big to read ``zip_too_many_members``.
    """
    infos, defect = zip_directory(data)
    if defect is not None:
        return (), (defect,)
    names = tuple(info.filename for info in infos[:MAX_MEMBERS])
    encrypted = any(info.flag_bits & 0x1 for info in infos)
    return names, (ZIP_ENCRYPTED,) if encrypted else ()


# Sniffed types that run code when opened, or mount a disk image whose files do.
EXECUTABLE_TYPES = frozenset(
    {
        "application/x-dosexec",
        "application/x-executable",
        "application/x-ms-shortcut",
        "application/x-iso9660-image",
    }
)
ARCHIVE_TYPES = frozenset(
    {
        "application/zip",
        "application/gzip",
        "application/x-tar",
        "application/x-rar",
        "application/x-7z-compressed",
        "application/x-bzip2",
        "application/x-xz",
        "application/vnd.ms-cab-compressed",
    }
)
# Unicode bidi embeddings, overrides and isolates: U+202E turns "invoice<RLO>fdp.exe" into
# "invoiceexe.pdf" on screen.  No honest file name needs them.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# What may stand between the two extensions of "document.txt      .exe".
_PADDING = " _-.\t\u00a0\u200b\u3000" + "".join(map(chr, range(0x2000, 0x200B)))

# What an extension or a declared type claims the file is, and the sniffed types that
# contradict each claim: the dangerous ones (programs, archives, HTML) only, since a .jpg
# that is really a PNG harms nobody.
_EXTENSION_CLAIMS = {
    **dict.fromkeys(("jpg", "jpeg", "jpe", "png", "gif", "bmp", "tif", "tiff", "webp"), "image"),
    **dict.fromkeys(("mp3", "wav", "wma", "mp4", "avi", "mpg", "mpeg", "mov", "wmv"), "media"),
    **dict.fromkeys(("txt", "csv", "log"), "text"),
    "pdf": "pdf",
    **dict.fromkeys(
        ("doc", "docx", "docm", "xls", "xlsx", "xlsm", "ppt", "pptx", "pptm", "pps", "ppsx"),
        "office",
    ),
    **dict.fromkeys(("odt", "ods", "odp", "rtf"), "office"),
}
_DECLARED_CLAIMS = (
    ("image/", "image"),
    ("audio/", "media"),
    ("video/", "media"),
    ("application/pdf", "pdf"),
    ("text/plain", "text"),
    ("application/msword", "office"),
    ("application/vnd.ms-", "office"),
    ("application/vnd.openxmlformats-officedocument.", "office"),
    ("application/vnd.oasis.opendocument.", "office"),
)
_HIDDEN = EXECUTABLE_TYPES | ARCHIVE_TYPES
# Office files are zip (OOXML, ODF) or OLE containers; Word also saves .doc as RTF or HTML.
_CONTRADICTS = {
    "image": _HIDDEN | {"text/html"},
    "media": _HIDDEN | {"text/html"},
    "pdf": _HIDDEN | {"text/html"},
    "text": _HIDDEN,
    "office": _HIDDEN - {"application/zip"},
}


def visible_name(name: str) -> str:
    """``name`` as Windows stores it: bidi controls gone, trailing dots and spaces dropped,
    folders removed, lower-case.

    >>> visible_name("Docs/Invoice\u202efdp.EXE. ")
    'invoicefdp.exe'
    """
    name = name.replace("\\", "/").rpartition("/")[2]
    if not _BIDI.isdisjoint(name):
        name = "".join(c for c in name if c not in _BIDI)
    return name.rstrip(" .").lower()


def extension(name: str) -> str:
    """The last extension of a :func:`visible_name`, without its dot ("" for none)."""
    stem, dot, ext = name.rpartition(".")
    return ext if dot and stem else ""


def has_bidi(name: str) -> bool:
    """``name`` holds a bidi control character (U+202E and its kin)."""
    return not _BIDI.isdisjoint(name)


def is_double_extension(name: str, executables: Set[str], decoys: Set[str]) -> bool:
    """A decoy extension, padding, then an executable one: ``"data.xls.pif"``,
    ``"document.txt      .exe"``, ``"invoice.pdf_.scr"`` (``name`` from :func:`visible_name`).

    >>> is_double_extension("document.txt   .exe", {"exe"}, {"txt"})
    True
    """
    stem, dot, ext = name.rpartition(".")
    if not dot or ext not in executables:
        return False
    stem = stem.rstrip(_PADDING)
    inner, dot, decoy = stem.rpartition(".")
    return bool(dot and inner) and decoy in decoys


def claimed_kind(name: str, declared_type: str | None = None) -> str | None:
    """What the file claims to be ("image", "pdf", "office", "text", "media"): its
    extension says, or its declared type when the name has no extension; None for no claim.
    """
    ext = extension(name)
    if ext or not declared_type:
        return _EXTENSION_CLAIMS.get(ext)
    for prefix, kind in _DECLARED_CLAIMS:
        if declared_type.startswith(prefix):
            return kind
    return None


def contradicts(claim: str | None, sniffed_type: str | None) -> bool:
    """The bytes are a program, an archive or HTML hiding behind a harmless ``claim``."""
    return claim is not None and sniffed_type in _CONTRADICTS[claim]
