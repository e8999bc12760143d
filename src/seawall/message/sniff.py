"""Is it a mail message at all?  What ``seawall learn`` refuses and ``seawall scan`` marks.

A mail message starts with a header section that holds at least one field a mail header
has (From, Subject, Received, Message-ID, an X- field, ...).  Empty input, binary files,
archives, programs and plain text or configuration files do not, however a lenient parse
reads them; :func:`not_mail` says which of these the bytes are.  The parser records the
same judgement as the ``not_mail`` defect (``empty`` for empty input), so the scan and
``learn`` never disagree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from seawall.message.attachments import sniff
from seawall.message.defects import Defects
from seawall.message.headers import read_fields

EMPTY = "empty"
BINARY = "binary data"
TEXT = "text without mail headers"

# Header fields of mail (RFC 5322, MIME, the MTA's trace and the mailing lists' fields).
_MAIL_FIELDS = frozenset(
    {
        "from", "sender", "reply-to", "to", "cc", "bcc", "subject", "date", "message-id",
        "in-reply-to", "references", "comments", "keywords", "received", "return-path",
        "mime-version", "delivered-to", "envelope-to", "x-original-to", "authentication-results",
        "received-spf", "dkim-signature", "domainkey-signature", "precedence", "importance",
        "priority", "organization", "user-agent", "errors-to", "thread-topic", "thread-index",
        "disposition-notification-to", "return-receipt-to", "feedback-id", "auto-submitted",
        "newsgroups", "path", "status", "x-status",
    }
)  # fmt: skip
_MAIL_PREFIXES = ("x-", "content-", "list-", "resent-", "arc-", "dkim-")
# A core field of mail at the start of a line near the top: a message whose client wrote
# lines of its own above the header ("Replied: ..." over an mbox "From " line) is mail too.
_CORE_LINE = re.compile(
    rb"^(?:from|received|return-path|delivered-to|message-id|subject|date|to|mime-version)"
    rb"[ \t]*:",
    re.M | re.I,
)
_MAX_FIELDS = 100  # fields looked at: a message has a mail field among its first few
_HEAD = 4096  # bytes looked at for binary content
_CONTROL = bytes(range(9)) + b"\x0b\x0c" + bytes(range(14, 32)) + b"\x7f"

# What the magic bytes of a non-message show, by attachments.sniff's MIME type.
_KINDS = {
    "application/zip": "zip archive",
    "application/gzip": "gzip archive",
    "application/x-xz": "xz archive",
    "application/x-bzip2": "bzip2 archive",
    "application/x-tar": "tar archive",
    "application/x-7z-compressed": "7z archive",
    "application/x-rar": "rar archive",
    "application/vnd.ms-cab-compressed": "cab archive",
    "application/x-iso9660-image": "disk image",
    "application/x-executable": "ELF binary",
    "application/x-dosexec": "Windows program",
    "application/x-ms-shortcut": "Windows shortcut",
    "application/x-ole-storage": "Office document",
    "application/onenote": "OneNote document",
    "application/pdf": "PDF document",
    "text/rtf": "RTF document",
    "text/html": "HTML document",
}
# Formats attachments.sniff does not name (they do not travel as attachments).
_MORE_MAGIC = (
    (b"\x28\xb5\x2f\xfd", "zstd archive"),
    (b"SQLite format 3\x00", "SQLite database"),
    (b"\xcf\xfa\xed\xfe", "Mach-O binary"),
    (b"\xca\xfe\xba\xbe", "Mach-O binary"),
    (b"\x00asm", "WebAssembly module"),
)


def is_mail_field(name: str) -> bool:
    """Whether ``name`` is a header field that mail has (case-insensitive).

    >>> is_mail_field("Subject"), is_mail_field("X-Mailer"), is_mail_field("version")
    (True, True, False)
    """
    lower = name.lower()
    return lower in _MAIL_FIELDS or lower.startswith(_MAIL_PREFIXES)


def is_mail(raw: bytes, start: int, fields: Sequence[tuple[str, str]]) -> bool:
    """Whether ``raw``, whose header section at ``start`` ``read_fields`` read as ``fields``,
    is a mail message: a field of mail among them, or a core one on a line near the top."""
    if any(is_mail_field(name) for name, _ in fields[:_MAX_FIELDS]):
        return True
    # Only in text: an archive that stores a message holds its header lines too.
    head = raw[start : start + _HEAD]
    if _binary(head) or sniff(head) is not None:
        return False
    return _CORE_LINE.search(head) is not None


def not_mail(raw: bytes) -> str | None:
    """Why ``raw`` is not a mail message, or None when it is one.

    The reason is :data:`EMPTY`, a kind that magic bytes show ("xz archive", "ELF binary",
    ...), :data:`BINARY` or :data:`TEXT`.  An mbox "From " line may come first.

    >>> not_mail(b"Subject: hi\\n\\nbody"), not_mail(b"  \\n"), not_mail(b"\\xfd7zXZ\\x00\\x00")
    (None, 'empty', 'xz archive')
    >>> not_mail(b"[detectors]\\nenabled = true\\n")
    'text without mail headers'
    """
    if not raw or raw.isspace():
        return EMPTY
    start = 0
    if raw.startswith(b"From "):  # an mbox "From " line, as parse_message skips it
        newline = raw.find(b"\n")
        start = len(raw) if newline < 0 else newline + 1
    end = min(len(raw), start + 65536)
    fields, _ = read_fields(raw, start, end, 65536, Defects())
    if is_mail(raw, start, fields):
        return None
    return kind_of(raw)


def kind_of(raw: bytes) -> str:
    """What bytes that are not mail are: a format's name, :data:`BINARY` or :data:`TEXT`.

    >>> kind_of(b"\\x7fELF\\x02\\x01"), kind_of(bytes(range(64))), kind_of(b"name: x")
    ('ELF binary', 'binary data', 'text without mail headers')
    """
    if not raw or raw.isspace():
        return EMPTY
    for magic, kind in _MORE_MAGIC:
        if raw.startswith(magic):
            return kind
    mime = sniff(raw)
    if mime is not None:
        if mime.startswith("image/"):
            return f"{mime.partition('/')[2].removesuffix('+xml').upper()} image"
        return _KINDS.get(mime, mime)
    return BINARY if _binary(raw[:_HEAD]) else TEXT


def _binary(head: bytes) -> bool:
    """NUL, or more than one control byte in twenty (as the parser's binary_garbage)."""
    return b"\x00" in head or len(head) - len(head.translate(None, _CONTROL)) > len(head) // 20
