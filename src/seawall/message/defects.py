"""The stable names of everything wrong with a message, recorded instead of raised.

The engine turns each name into the symbol ``DEFECT_<NAME>`` (``"bad_base64"`` becomes
``DEFECT_BAD_BASE64``), so these strings are part of the public interface: add, never rename.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

EMPTY = "empty"
NO_HEADERS = "no_headers"
BINARY_GARBAGE = "binary_garbage"
TOO_LARGE = "too_large"
TRUNCATED = "truncated"
MISSING_BOUNDARY = "missing_boundary"
BAD_BOUNDARY = "bad_boundary"
NESTING_TOO_DEEP = "nesting_too_deep"
TOO_MANY_PARTS = "too_many_parts"
PART_TOO_LARGE = "part_too_large"
HEADER_TOO_LONG = "header_too_long"
TOO_MANY_HEADERS = "too_many_headers"
MISSING_HEADER_SEPARATOR = "missing_header_separator"
TOO_MANY_RECEIVED = "too_many_received"
BAD_BASE64 = "bad_base64"
BAD_QP = "bad_qp"
UNKNOWN_ENCODING = "unknown_encoding"
UNKNOWN_CHARSET = "unknown_charset"
HTML_TOO_LARGE = "html_too_large"
HTML_TOO_DEEP = "html_too_deep"
NOT_MAIL = "not_mail"  # see sniff.py: no header field of mail (an archive, a program, ...)

# Defects of one attachment, in Attachment.defects (not on the Message).
ZIP_BROKEN = "zip_broken"
ZIP_ENCRYPTED = "zip_encrypted"
ZIP_TOO_MANY_MEMBERS = "zip_too_many_members"

DESCRIPTIONS: Mapping[str, str] = MappingProxyType(
    {
        EMPTY: "The message has no bytes at all",
        NO_HEADERS: "No header field could be read",
        BINARY_GARBAGE: "The header section holds NUL or many control bytes",
        TOO_LARGE: "Bigger than limits.max_message_bytes; only the start was parsed",
        TRUNCATED: "A multipart body ends without its closing boundary",
        MISSING_BOUNDARY: "A multipart Content-Type without a boundary parameter",
        BAD_BOUNDARY: "A multipart boundary that is unusable or never appears in the body",
        NESTING_TOO_DEEP: "Multipart nesting deeper than limits.max_depth",
        TOO_MANY_PARTS: "More MIME parts than limits.max_parts; the rest were skipped",
        PART_TOO_LARGE: "A part bigger than limits.max_part_bytes; only its start was decoded",
        HEADER_TOO_LONG: "A header field longer than limits.max_header_bytes was cut",
        TOO_MANY_HEADERS: "More header fields than the parser keeps; the rest were skipped",
        MISSING_HEADER_SEPARATOR: "A line that is not a header field ends the header section",
        TOO_MANY_RECEIVED: "More Received fields than are parsed into hops",
        BAD_BASE64: "Base64 with invalid characters or bad padding",
        BAD_QP: "Quoted-printable with an '=' not followed by two hex digits",
        UNKNOWN_ENCODING: "A Content-Transfer-Encoding that is not 7bit/8bit/binary/base64/QP",
        UNKNOWN_CHARSET: "A charset name Python cannot decode; a fallback was used",
        HTML_TOO_LARGE: "HTML longer than 5 x limits.max_text_chars; only its start was read",
        HTML_TOO_DEEP: "HTML nested too deep to build a tree quickly; read without one",
        NOT_MAIL: "Not a mail message: no header field of mail (an archive, a program, text)",
    }
)

ATTACHMENT_DESCRIPTIONS: Mapping[str, str] = MappingProxyType(
    {
        ZIP_BROKEN: "Looks like a zip archive but its directory cannot be read",
        ZIP_ENCRYPTED: "A zip archive with password-protected members (hides malware from scans)",
        ZIP_TOO_MANY_MEMBERS: "A zip directory too large to read; members are not listed",
    }
)


class Defects:
    """An insertion-ordered set of defect names, filled while parsing one message."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[str, None] = {}

    def add(self, name: str) -> None:
        self._seen[name] = None

    def __contains__(self, name: object) -> bool:
        return name in self._seen

    def as_tuple(self) -> tuple[str, ...]:
        return tuple(self._seen)
