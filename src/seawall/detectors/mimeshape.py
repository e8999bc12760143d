"""MIME structure that mail programs do not write and ratware does.

A mail reader or list manager builds its MIME with a library that gets the structure
right: an alternative offers two or more versions of the text, a mixed body holds the
text and something to attach, a body with 8-bit bytes is declared 8bit (or encoded) and
names its charset, and a text of plain ASCII needs no base64.  Spam tools of every era
write the headers by hand and get these wrong.  Measured on every message of the shared
corpora (22,175 ham; 10,186 spam and phishing), parsed by Seawall:

============================  ====  ==================================================
symbol                        ham   spam: SA 2002, CSDMC 2010, Nazario, Phishing Pot
============================  ====  ==================================================
MIME_ALT_SINGLE               0     8, 2, 146, 558
MIME_BASE64_TEXT_ASCII        1     65, 27, 1, 169
MIME_BAD_CTE_7BIT_UTF8        0     0, 2, 0, 747
MIME_MISSING_CHARSET_UTF8     0     1, 1, 0, 116
MIME_MIXED_SINGLE             4     76, 27, 9, 173 (the ham: one sender's newsletter)
MIME_BAD_CTE_7BIT             12    46, 34, 15, 15
============================  ====  ==================================================

Declared 7bit, 8-bit text is on 12 ham (all Latin-1, Windows-1252 or US-ASCII as
declared) and 859 spam, 749 of them UTF-8; no ham says 7bit of UTF-8.  Without a
charset, 8-bit text is on 77 ham (all of it Western single-byte text, 58 of them old
mail without MIME-Version) and 283 spam, 118 of them UTF-8.  So the facts are told by
what the text decodes as.  Only 126 ham of the corpora carry UTF-8 text unencoded (8-bit),
so the UTF-8 forms are evidence, not proof.  Western 8-bit text without a charset is not
a symbol at all: learned from the SpamAssassin split's train half it weighed 1 point and
sent two of its hard-ham newsletters to greylist (docs/benchmarks.md).

The symbols on no ham (or one) carry a small score (group ``mime``, capped at 2); the others
ship at 0, and the learned second stage weighs them from the site's own mail
(``docs/learning.md``).

The detector reads what the parse keeps of each text part (its declared transfer
encoding and charset, and whether its bytes are all ASCII) and the top-level
Content-Type; it reads no body again.  A forwarded message (``message/rfc822``) is the
forwarded sender's structure, so its parts are not judged: a message that carries one
gets only the top-level structure checks, which its attachment already rules out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from seawall.detectors.base import Context, Hit, Parts
from seawall.message.model import Message

_ENCLOSED = frozenset({"message/rfc822", "message/global"})
# The parse's defects that mean a multipart body was read as one text part.
_UNSPLIT = frozenset({"bad_boundary", "missing_boundary"})


class MimeShapeDetector:
    """Multipart bodies with one part, 8-bit text declared 7bit, base64 for ASCII text."""

    name: ClassVar[str] = "mimeshape"
    io: ClassVar[bool] = False
    symbols: ClassVar[Mapping[str, str]] = {
        "MIME_ALT_SINGLE": "multipart/alternative holding a single text part",
        "MIME_MIXED_SINGLE": "multipart/mixed holding a single text part and no attachment",
        "MIME_BASE64_TEXT_ASCII": "A text part of plain ASCII sent in base64",
        "MIME_BAD_CTE_7BIT_UTF8": "A text part declared 7bit carrying 8-bit UTF-8",
        "MIME_BAD_CTE_7BIT": "A text part declared 7bit carrying 8-bit bytes (not UTF-8)",
        "MIME_MISSING_CHARSET_UTF8": "A text part with 8-bit UTF-8 and no charset",
    }

    @classmethod
    def build(cls, parts: Parts) -> MimeShapeDetector:
        return cls()

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]:
        return shape(msg)


def top_type(msg: Message) -> str:
    """The top-level Content-Type, lower-case ``type/subtype`` ("" when absent)."""
    value = msg.headers.get("Content-Type")
    if value is None:
        return ""
    return value.partition(";")[0].strip().lower()


def shape(msg: Message) -> list[Hit]:
    """The MIME structure symbols of ``msg`` (none for a well-formed message)."""
    if not msg.parts:
        return []
    hits: list[Hit] = []
    if len(msg.parts) == 1 and not msg.attachments:
        kind = top_type(msg)
        if kind in ("multipart/alternative", "multipart/mixed") and not _UNSPLIT.intersection(
            msg.defects
        ):
            symbol = "MIME_ALT_SINGLE" if kind == "multipart/alternative" else "MIME_MIXED_SINGLE"
            hits.append(Hit(symbol, options=(msg.parts[0].content_type,)))
    if any(a.declared_type in _ENCLOSED for a in msg.attachments):
        return hits
    base64_ascii = False
    bad_7bit: str | None = None  # the symbol, by what the text decodes as
    missing_charset = False
    for part in msg.parts:
        encoding = part.encoding
        if part.eight_bit:
            utf8 = part.charset == "utf-8"
            if encoding == "7bit" and bad_7bit != "MIME_BAD_CTE_7BIT_UTF8":
                bad_7bit = "MIME_BAD_CTE_7BIT_UTF8" if utf8 else "MIME_BAD_CTE_7BIT"
            if utf8 and part.declared_charset is None:
                missing_charset = True
        elif encoding == "base64":
            base64_ascii = True
    if base64_ascii:
        hits.append(Hit("MIME_BASE64_TEXT_ASCII"))
    if bad_7bit is not None:
        hits.append(Hit(bad_7bit))
    if missing_charset:
        hits.append(Hit("MIME_MISSING_CHARSET_UTF8"))
    return hits
