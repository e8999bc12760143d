"""Attachment features: what the copies of a worm share when their text is a line or two.

A mass-mailing worm sends one program under many names: each copy says one of a few
short lines, carries one of a few file names and zips the program afresh (the archive's
timestamps change its hash), so the copies share neither text nor bytes.  What they do
share is the payload's kind and size: an executable, often behind a double extension
(``document.txt.pif``), in an archive whose size moves only by the length of the name.

Each attachment adds its SHA-256 (an exact copy of a file) and, when it carries a
program (by its magic bytes, its name, or the names inside the archive), its container
type and size on ``GRIDS`` shifted logarithmic grids, ``WEIGHT`` features per grid: a
payload then outweighs a line of text, and two sizes within a third of a bucket (about
1.4%) share at least two of the three grid features.  Other attachments (photos,
documents, signatures) add only their hash: unrelated mail often carries files of
similar size, and must not cluster on that.

>>> from seawall.message.model import Attachment
>>> worm = Attachment("data.zip", "application/octet-stream", "application/zip", 5052,
...                   "ab" * 32, members=("data.xls.pif",))
>>> photo = Attachment("me.jpg", "image/jpeg", "image/jpeg", 5052, "cd" * 32)
>>> len(payload_features((worm,))), len(payload_features((photo,)))
(25, 1)
>>> a = set(payload_features((worm,)))
>>> renamed = Attachment("your_document.zip", "application/x-zip-compressed",
...                      "application/zip", 5070, "ef" * 32, members=("your_document.txt.pif",))
>>> len(a & set(payload_features((renamed,)))) >= 2 * WEIGHT
True
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Final

from seawall.message.model import Attachment

# Hashes per grid feature: eight make one payload weigh as much as a sentence of text.
WEIGHT: Final = 8
GRIDS: Final = 3
# Size buckets per doubling: 16 make a bucket 4.4% wide; the copies of one program differ
# by a few bytes of name (0.4% at 5 KB), different programs mostly by far more.
BUCKETS_PER_DOUBLING: Final = 16
MAX_ATTACHMENTS: Final = 8
# Types whose magic bytes show a program.
PROGRAM_TYPES: Final = frozenset(
    {
        "application/x-dosexec",
        "application/x-executable",
        "application/x-ms-shortcut",
        "application/x-msdownload",
    }
)
# Extensions Windows runs (or hands to a script host) on a double click.
PROGRAM_EXTENSIONS: Final = frozenset(
    {
        "bat",
        "cmd",
        "com",
        "cpl",
        "exe",
        "hta",
        "jar",
        "js",
        "jse",
        "lnk",
        "msi",
        "pif",
        "ps1",
        "reg",
        "scr",
        "vbe",
        "vbs",
        "wsf",
        "wsh",
    }
)
_MASK64 = (1 << 64) - 1


def _extension(name: str | None) -> str:
    if not name or "." not in name:
        return ""
    return name.rsplit(".", 1)[1].strip().lower()


def carries_program(att: Attachment) -> bool:
    """Whether the attachment is, or its archive holds, something Windows would run."""
    if att.sniffed_type in PROGRAM_TYPES or _extension(att.filename) in PROGRAM_EXTENSIONS:
        return True
    return any(_extension(member) in PROGRAM_EXTENSIONS for member in att.members)


def _hashes(label: str, count: int) -> list[int]:
    """``count`` 64-bit features from one label (BLAKE2b: stable across processes)."""
    out = []
    for i in range(count):
        digest = hashlib.blake2b(f"{label}#{i}".encode(), digest_size=8, person=b"sw-payload")
        out.append(int.from_bytes(digest.digest(), "little") & _MASK64)
    return out


def payload_features(attachments: Sequence[Attachment]) -> list[int]:
    """The features the message's attachments add to its fingerprint (see the module)."""
    out: list[int] = []
    for att in attachments[:MAX_ATTACHMENTS]:
        out.extend(_hashes(f"sha256:{att.sha256}", 1))
        if att.size <= 0 or not carries_program(att):
            continue
        kind = att.sniffed_type or "unknown"  # bots pick the declared type at random
        position = math.log2(att.size) * BUCKETS_PER_DOUBLING
        for grid in range(GRIDS):
            bucket = math.floor(position + grid / GRIDS)
            out.extend(_hashes(f"program:{kind}:{grid}:{bucket}", WEIGHT))
    return out
