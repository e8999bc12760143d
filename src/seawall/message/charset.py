"""Bytes to text with the declared charset, falling back to UTF-8 and then Windows-1252.

Mail lies about its charset: German spam declares ``utf-8`` and sends Latin-1 umlauts,
or declares ``iso-8859-1`` and sends UTF-8.  The order, for every text part and
encoded word, is:

1. the declared charset, strictly, unless it is one of the Western single-byte
   charsets (US-ASCII, ISO-8859-1/15, Windows-1252), which decode any byte string
   and so prove nothing;
2. UTF-8, strictly (mis-declared UTF-8 is the common case, and random Latin-1 text is
   almost never valid UTF-8);
3. UTF-8 with the few invalid bytes read as Windows-1252, when valid multi-byte UTF-8
   outweighs the invalid bytes (one stray Latin-1 byte in a UTF-8 mail);
4. the declared ISO-8859-1 or -15 when no byte falls in 0x80-0x9F, else Windows-1252
   (the WHATWG reading of ISO-8859-1), with its five undefined bytes read as Latin-1.
   This never fails and never produces U+FFFD.

>>> decode_text("Grüße".encode("latin-1"), "utf-8")
Decoded(text='Grüße', charset='windows-1252', unknown=False, utf8=False)
"""

from __future__ import annotations

import codecs
import functools
import re
from typing import NamedTuple

# Charset labels mail uses that Python does not know, or knows by a narrower codec
# than the one senders really use (WHATWG Encoding Standard, "legacy" labels).
_ALIASES = {
    "csiso2022jp": "iso2022_jp",
    "x-sjis": "cp932",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "ms_kanji": "cp932",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "gb_2312-80": "gb18030",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "big5": "big5hkscs",
    "iso-8859-8-i": "iso8859-8",
    "iso-8859-6-i": "iso8859-6",
    "windows-874": "cp874",
    "x-mac-roman": "mac-roman",
    "x-mac-cyrillic": "mac-cyrillic",
    "ansi_x3.110-1983": "latin-1",
    "x-user-defined": "windows-1252",
}

# Codecs that are not charsets, or that turn hostile input into something other than
# text (escape sequences, punycode): treated as unknown.
_NOT_CHARSETS = frozenset(
    {"idna", "punycode", "raw-unicode-escape", "unicode-escape", "undefined", "mbcs", "oem"}
)

# Codecs where ASCII bytes do not mean ASCII characters, so the ASCII fast path is wrong.
_NOT_ASCII_COMPATIBLE = ("utf-16", "utf-32", "utf-7", "iso2022", "hz", "cp037", "cp500")

_WESTERN = frozenset({"ascii", "iso8859-1", "iso8859-15", "cp1252"})

_LABELS = {"ascii": "us-ascii", "cp1252": "windows-1252", "utf-8": "utf-8"}

# Windows-1252 with its undefined bytes (0x81 0x8D 0x8F 0x90 0x9D) mapped like Latin-1.
_CP1252_TABLE = "".join(bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in range(256))
_C1_CONTROLS = re.compile("[\x80-\x9f]")
_ESCAPED = re.compile("[\udc80-\udcff]")
_MIXED_MAX_BAD = 1000  # invalid bytes repaired one by one; beyond this, decode as 1252


class Codec(NamedTuple):
    python: str  # name for bytes.decode
    label: str  # name reported as TextPart.charset
    western: bool  # a single-byte Western charset: any bytes decode, so verify first
    ascii_compatible: bool


class Decoded(NamedTuple):
    text: str
    charset: str  # the charset actually used
    unknown: bool  # a charset was declared but could not be used
    utf8: bool = False  # the input bytes are valid UTF-8 as they are (saves re-encoding)


@functools.lru_cache(maxsize=512)
def resolve(declared: str) -> Codec | None:
    """The codec for a declared charset name, or None when it is unknown or not a charset."""
    name = declared.strip().strip("\"'").strip().lower()
    if not name or len(name) > 40:
        return None
    name = _ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except LookupError:
        if name.startswith("x-"):
            return resolve(name[2:])
        if name.startswith("cp-"):
            return resolve("cp" + name[3:])
        return None
    except (ValueError, TypeError):  # names with NUL and the like
        return None
    python = info.name
    if not getattr(info, "_is_text_encoding", True) or python in _NOT_CHARSETS:
        return None
    label = _LABELS.get(python)
    if label is None:
        label = python.replace("iso8859-", "iso-8859-") if python.startswith("iso8859-") else python
    return Codec(
        python=python,
        label=label,
        western=python in _WESTERN,
        ascii_compatible=not python.startswith(_NOT_ASCII_COMPATIBLE),
    )


def decode_text(data: bytes, declared: str | None) -> Decoded:
    """Decode ``data`` that claims to be in ``declared``; never raises, never yields U+FFFD."""
    codec = resolve(declared) if declared else None
    unknown = bool(declared) and codec is None
    if data.isascii() and (codec is None or codec.ascii_compatible):
        label = codec.label if codec else "us-ascii"
        return Decoded(data.decode("ascii"), label, unknown, utf8=True)
    if codec is not None and not codec.western:
        try:
            text = data.decode(codec.python)
        except (UnicodeError, LookupError):  # some codecs raise plain UnicodeError
            pass
        else:
            utf8 = codec.python == "utf-8"
            return Decoded(text.removeprefix("\ufeff"), codec.label, unknown, utf8)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return Decoded(text.removeprefix("\ufeff"), "utf-8", unknown, utf8=True)
    escaped = data.decode("utf-8", "surrogateescape")
    bad = len(data) - len(escaped.encode("utf-8", "ignore"))
    # len(data) - len(escaped) counts continuation bytes of valid multi-byte characters.
    if bad <= _MIXED_MAX_BAD and len(data) - len(escaped) >= bad:
        text = _ESCAPED.sub(_repair, escaped)
        return Decoded(text.removeprefix("\ufeff"), "utf-8", unknown)
    if codec is not None and codec.python in ("iso8859-1", "iso8859-15"):
        text = data.decode(codec.python)
        if _C1_CONTROLS.search(text) is None:  # else it is really Windows-1252
            return Decoded(text, codec.label, unknown)
    return Decoded(decode_cp1252(data), "windows-1252", unknown)


def decode_cp1252(data: bytes) -> str:
    """Windows-1252 that never fails: undefined bytes map to the Latin-1 character."""
    return codecs.charmap_decode(data, "strict", _CP1252_TABLE)[0]


def _repair(match: re.Match[str]) -> str:
    return _CP1252_TABLE[ord(match.group()) - 0xDC00]
