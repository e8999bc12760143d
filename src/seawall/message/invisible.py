"""Invisible characters inside words: what spammers put between letters to defeat word filters.

``"L\\U000e0139ed\\U000e0139ger"`` reads as "Ledger" and matches no brand list.  These
characters print nothing in Latin text: zero-width spaces and joiners, the soft hyphen,
direction marks, the word joiner and its kin, the byte-order mark, the combining grapheme
joiner, the Hangul and Khmer fillers, the Mongolian vowel separator, Unicode tag
characters (U+E0000-E007F, which in honest text only spell a flag's region after an
emoji) and the supplementary variation selectors (U+E0100-E01EF, which only select a
CJK ideograph's form).  The ordinary variation selectors (U+FE00-FE0F) choose an emoji's
presentation and are left alone, except that one between two Latin letters breaks a word
like the others.
"""

from __future__ import annotations

import re

__all__ = ["broken_words", "without_invisible"]

_CHARS = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u206a-\u206f\u3164\ufeff\uffa0\U000e0000-\U000e007f\U000e0100-\U000e01ef"
)
_INVISIBLE = re.compile(f"[{_CHARS}]+")
# A Latin letter, invisible characters (or variation selectors), a Latin letter.
_BREAK = re.compile(f"[A-Za-z][{_CHARS}\ufe00-\ufe0f]+[A-Za-z]")
_SELECTORS = re.compile(f"[{_CHARS}\ufe00-\ufe0f]+")
_PUNCTUATION = "\"'.,;:!?()[]<>"


def without_invisible(text: str) -> str:
    """``text`` without the invisible characters (none is ASCII: ASCII text is returned
    as it is, without a search)."""
    if text.isascii():
        return text
    return _INVISIBLE.sub("", text)


def broken_words(text: str, limit: int = 3) -> list[str]:
    """The words of ``text`` (at most ``limit``) with invisible characters between their
    Latin letters, as the reader sees them ("Ledger")."""
    if text.isascii():
        return []
    found: list[str] = []
    for token in text.split():
        if token.isascii() or _BREAK.search(token) is None:
            continue
        word = _SELECTORS.sub("", token).strip(_PUNCTUATION)
        if word and word not in found:
            found.append(word[:60])
            if len(found) >= limit:
                break
    return found
