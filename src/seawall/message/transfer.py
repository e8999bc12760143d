"""Content-Transfer-Encoding: base64 and quoted-printable bodies back to bytes, leniently."""

from __future__ import annotations

import binascii
import re

from seawall.message import defects as d
from seawall.message.defects import Defects

_B64_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_TEXT = _B64_CHARS + b"= \t\r\n"
# "=" must start "=XX" or a soft line break (trailing blanks before the break are common).
_BAD_QP = re.compile(rb"=(?![0-9A-Fa-f]{2})(?![ \t]*+(?:\r?\n|\Z))")
_IDENTITY = frozenset({"", "7bit", "8bit", "binary", "7-bit", "8-bit"})


def decode_transfer(data: bytes, cte: str, defects: Defects) -> bytes:
    """Undo the transfer encoding ``cte`` (already lower-case); unknown ones pass through."""
    if cte in _IDENTITY:
        return data
    if cte == "base64":
        return decode_base64(data, defects)
    if cte == "quoted-printable":
        if b"=" in data and _BAD_QP.search(data) is not None:
            defects.add(d.BAD_QP)
        return binascii.a2b_qp(data)
    defects.add(d.UNKNOWN_ENCODING)
    return data


def decode_base64(data: bytes, defects: Defects | None) -> bytes:
    """Base64 that skips junk characters and repairs padding; flags both as ``bad_base64``."""
    if defects is not None and data.translate(None, _B64_TEXT):
        defects.add(d.BAD_BASE64)
    try:
        return binascii.a2b_base64(data)
    except binascii.Error:
        pass
    if defects is not None:
        defects.add(d.BAD_BASE64)
    # Keep the alphabet only, drop any padding, then pad to a whole quantum.
    clean = data.translate(None, data.translate(None, _B64_CHARS))
    extra = len(clean) % 4
    if extra == 1:
        clean = clean[:-1]
    elif extra:
        clean += b"=" * (4 - extra)
    try:
        return binascii.a2b_base64(clean)
    except binascii.Error:  # pragma: no cover - clean input always decodes
        return b""
