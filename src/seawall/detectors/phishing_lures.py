"""Lures that need no link to a brand: words spelt in look-alike letters of other scripts,
Bitcoin addresses (checksums checked), and the advance-fee offer (a large sum of money with
the words of an inheritance, a donation or a prize, from a free mailbox or to a reply address
elsewhere).  Each check starts with a test that costs one scan of the text or less; the
phishing detector (``phishing.py``) calls them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence

from seawall.errors import ConfigError
from seawall.message.model import Message

# Letters of another script that look like Latin ones (Greek, Cyrillic) and Latin letters in
# blocks no language writes words in (small capitals, the mathematical alphabets): a word
# that mixes them with Latin letters, or is made of the latter, is written to look like
# one thing to the reader and another to a filter ("Μetamаsk" with a Greek M and a Cyrillic a).
_FOREIGN = "\u0370-\u03ff\u0400-\u04ff"
_FAKE_LATIN = "\u1d00-\u1d2b\ua730-\ua7ff\U0001d400-\U0001d7ff"
_SUSPECT = re.compile(f"[{_FOREIGN}{_FAKE_LATIN}]")
_FOREIGN_CHAR = re.compile(f"[{_FOREIGN}]")
_FAKE_CHAR = re.compile(f"[{_FAKE_LATIN}]")
_LATIN_CHAR = re.compile(r"[A-Za-z\u00c0-\u024f]")
_LETTER_RUN = re.compile(r"[^\W\d_]+")
_MAX_MIXED = 3  # words reported
# A Greek or Cyrillic capital inside a word is how UTF-8 read as windows-1251 looks
# ("cafГ©", "attachпїЅ"), not a look-alike: those replace small letters, or a first capital.
_MOJIBAKE = re.compile(r"(?<=[^\W\d_])[\u0391-\u03a9\u0400-\u042f]")


def mixed_script_words(text: str) -> list[str]:
    """Words of ``text`` that mix Latin letters with Greek or Cyrillic ones, or are written in
    Latin look-alike blocks (at most a few)."""
    if text.isascii() or _SUSPECT.search(text) is None:
        return []
    found: list[str] = []
    for match in _LETTER_RUN.finditer(text):
        word = match.group()
        if word.isascii() or _SUSPECT.search(word) is None:
            continue
        if _FAKE_CHAR.search(word) is not None:
            mixed = len(word) >= 3
        else:
            mixed = (
                _LATIN_CHAR.search(word) is not None
                and _FOREIGN_CHAR.search(word) is not None
                and _MOJIBAKE.search(word) is None
            )
        if mixed:
            found.append(word)
            if len(found) >= _MAX_MIXED:
                break
    return found


# Bitcoin addresses: legacy and script (Base58Check, 26-35 characters) and SegWit (bech32 and
# bech32m).  A candidate counts only when its checksum holds, so product codes and random
# tokens of the same shape do not.
_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_INDEX = {c: i for i, c in enumerate(_BASE58)}
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_INDEX = {c: i for i, c in enumerate(_BECH32)}
_BTC = re.compile(
    r"(?<![A-Za-z0-9])(?:[13][1-9A-HJ-NP-Za-km-z]{25,34}|bc1[02-9ac-hj-np-z]{11,71})(?![A-Za-z0-9])"
)
_BTC_HINT = re.compile(r"bc1|(?<![A-Za-z0-9])[13][1-9A-HJ-NP-Za-km-z]{25}")
_MAX_CANDIDATES = 20


def _base58check(text: str) -> bool:
    number = 0
    for char in text:
        number = number * 58 + _BASE58_INDEX[char]
    raw = number.to_bytes(25, "big") if number.bit_length() <= 200 else b""
    if len(raw) != 25 or raw[0] not in (0, 5):  # P2PKH or P2SH on the main chain
        return False
    digest = hashlib.sha256(hashlib.sha256(raw[:21]).digest()).digest()
    return digest[:4] == raw[21:]


def _bech32(text: str) -> bool:
    data = [_BECH32_INDEX[c] for c in text[3:]]
    check = 1
    generators = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    for value in [3, 3, 0, 2, 3] + data:  # the expanded "bc" prefix, then the data
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for i, generator in enumerate(generators):
            if (top >> i) & 1:
                check ^= generator
    return check in (1, 0x2BC830A3)  # bech32, bech32m


def bitcoin_address(text: str) -> str | None:
    """The first Bitcoin address in ``text`` whose checksum holds."""
    if _BTC_HINT.search(text) is None:
        return None
    for count, match in enumerate(_BTC.finditer(text)):
        if count >= _MAX_CANDIDATES:
            break
        candidate = match.group()
        valid = _bech32(candidate) if candidate.startswith("bc1") else _base58check(candidate)
        if valid:
            return candidate
    return None


# A large sum: a currency sign or code beside a number of six figures or more, or beside
# "million" in one of the common languages.
_CURRENCY = r"(?:US\s?\$|USD|\$|€|EUR|£|GBP|R\$|CHF)"
_MILLION = (
    r"(?:million|millions|mio\.?|mln|milh(?:ão|ões|oes|ao)|mill[oó]n(?:es)?|millionen"
    r"|milion[ei]?|miljoen)"
)
_NUMBER = (
    r"\d{1,3}(?:[.,' ]\d{3}){2,}(?:[.,]\d{1,2})?"  # a million or more
    r"|\d{3}[.,' ]\d{3}(?:[.,]\d{1,2})?|\d{6,}(?:[.,]\d{1,2})?"  # 100,000 or more
)
_LARGE_SUM = re.compile(
    rf"{_CURRENCY}\s?(?:{_NUMBER}|\d+(?:[.,]\d+)?\s?{_MILLION})"
    rf"|(?:{_NUMBER}|\d+(?:[.,]\d+)?\s?{_MILLION})\s?(?:{_CURRENCY}|dollars?|euros?|pounds?|d[oó]lares)"
    rf"|(?<!\w)\d+(?:[.,]\d+)?\s?{_MILLION}\s+(?:of\s+)?(?:us\s+)?(?:dollars?|euros?|pounds?|d[oó]lares)",
    re.IGNORECASE,
)
_SUM_HINT = re.compile(r"[$€£]|usd|eur|gbp|chf|mill|milh|milj|mio|mln", re.IGNORECASE)


def large_sum(text: str) -> str | None:
    """The first large sum of money named in ``text``."""
    if _SUM_HINT.search(text) is None:
        return None
    found = _LARGE_SUM.search(text)
    return None if found is None else " ".join(found.group().split())


_WORD = re.compile(r"\w+")


class Phrases:
    """Whole words or phrases (any white space between words), matched as one regex of
    alternatives, longest first, would match them, without trying every alternative at every
    position: a match starts with a word that begins a phrase, so the pattern is tried only
    where such a word is found.  Every phrase starts with a letter or digit (checked when
    built)."""

    __slots__ = ("_alternatives", "_compiled", "_ordered", "_pattern", "heads")

    def __init__(self, phrases: Sequence[str], where: str) -> None:
        ordered = sorted(
            {" ".join(p.lower().split()) for p in phrases if p.strip()}, key=len, reverse=True
        )
        self._ordered = ordered
        self._pattern: re.Pattern[str] | None = None
        alternatives: dict[str, list[str]] = {}
        for phrase in ordered:
            head = _WORD.match(phrase)
            if head is None:
                raise ConfigError(f"{where}: {phrase!r} must start with a letter or digit")
            alternatives.setdefault(head.group(), []).append(phrase)
        self.heads = frozenset(alternatives)
        self._alternatives = alternatives
        self._compiled: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {}

    @property
    def pattern(self) -> re.Pattern[str]:
        """All the phrases as one regex of alternatives, longest first (compiled when first
        needed: :meth:`finditer` uses it only for text whose lower case is longer)."""
        if self._pattern is None:
            body = _alternation(self._ordered)
            self._pattern = re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)
        return self._pattern

    def _patterns(self, head: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
        """For ``head``: where it is a whole word of a lower-case text (the look-behind
        after the head costs less than before it), and the pattern cut to the phrases that
        start with it (longest first, as in the whole)."""
        compiled = self._compiled.get(head)
        if compiled is None:
            finder = re.compile(rf"{re.escape(head)}(?<!\w[\s\S]{{{len(head)}}})(?!\w)")
            body = _alternation(self._alternatives[head])
            matcher = re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)
            compiled = self._compiled.setdefault(head, (finder, matcher))
        return compiled

    def finditer(
        self, text: str, words: frozenset[str], lowered: str | None = None
    ) -> Iterator[re.Match[str]]:
        """The pattern's matches in ``text`` (leftmost, not overlapping); ``words`` is
        :func:`words_of` ``text`` (or of more), ``lowered`` is ``text.lower()`` if the
        caller has it.

        A match starts where a head is a whole word (the pattern begins with ``(?<!\\w)``,
        and a phrase's first word is followed by a character that is no letter or digit),
        and only the phrases that start with that word can match there: so the head's
        phrases are tried only where the head is a word, not everywhere its letters are
        found, and not every phrase of the pattern is tried.
        """
        heads = self.heads & words
        if not heads:
            return
        if lowered is None:
            lowered = text.lower()
        if len(lowered) != len(text):  # a letter whose lower case is longer: every word
            yield from self._finditer_slow(text, heads)
            return
        starts: list[tuple[int, re.Pattern[str]]] = []
        for head in heads:
            finder, matcher = self._patterns(head)
            starts.extend((m.start(), matcher) for m in finder.finditer(lowered))
        if len(heads) > 1:
            starts.sort(key=_first)
        end = 0
        for start, matcher in starts:
            if start < end:
                continue
            found = matcher.match(text, start)
            if found is not None:
                end = found.end()
                yield found

    def _finditer_slow(self, text: str, heads: frozenset[str]) -> Iterator[re.Match[str]]:
        """:meth:`finditer` for a text whose lower case does not keep its positions."""
        starts = [w.start() for w in _WORD.finditer(text) if w.group().lower() in heads]
        end = 0
        for start in starts:
            if start < end:
                continue
            found = self.pattern.match(text, start)
            if found is not None:
                end = found.end()
                yield found

    def search(
        self, text: str, words: frozenset[str], lowered: str | None = None
    ) -> re.Match[str] | None:
        return next(self.finditer(text, words, lowered), None)


def _alternation(phrases: Sequence[str]) -> str:
    """``phrases`` as regex alternatives, any white space between their words."""
    return "|".join(r"\s+".join(re.escape(w) for w in p.split()) for p in phrases)


def _first(start: tuple[int, re.Pattern[str]]) -> int:
    return start[0]


# ASCII characters that are not ``\w`` (letters, digits, "_"), to spaces.
_ASCII_NON_WORD = str.maketrans(
    {chr(i): " " for i in range(128) if not (chr(i).isalnum() or chr(i) == "_")}
)


def words_of(text: str, lowered: str | None = None) -> frozenset[str]:
    """The lower-case words of ``text`` (``lowered``: ``text.lower()``, if the caller has
    it), for :meth:`Phrases.finditer`: the runs of word characters."""
    if lowered is None:
        lowered = text.lower()
    if lowered.isascii():  # the same runs, split apart without a regex (40% less time)
        return frozenset(lowered.translate(_ASCII_NON_WORD).split())
    return frozenset(_WORD.findall(lowered))


_LIST_HEADERS = (
    "list-post",
    "list-archive",
    "list-help",
    "list-subscribe",
    "mailing-list",
    "x-mailing-list",
    "x-list",
)


def discussion_list(msg: Message) -> bool:
    """A discussion list's mail (RFC 2369's List-Post, -Archive, -Help or -Subscribe, ezmlm,
    old majordomo; a List-Id without List-Unsubscribe, as early Mailman sent).  A bulk
    sender's List-Unsubscribe (with a List-Id, at some) does not make one: phishers send
    through the same services."""
    headers = msg.headers
    if any(name.startswith(_LIST_HEADERS) for name in headers):
        return True
    return "list-id" in headers and "list-unsubscribe" not in headers
