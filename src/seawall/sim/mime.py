"""Message bytes by hand: header fields, MIME entities in three transfer encodings, our Received.

Built directly rather than through :mod:`email.message`, which is ten times slower and
would normalise away the quirks bots leave in their mail.  Lines end in LF; a sender that
speaks SMTP turns them into CRLF.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.utils
import random
from dataclasses import dataclass
from email.header import Header

from seawall.sim.world import MX_HOST

ENCODINGS = ("base64", "quoted-printable", "8bit")
_FOLD_AT = 76


@dataclass(frozen=True, slots=True)
class Entity:
    """A MIME entity: its Content-* fields and its encoded body."""

    fields: tuple[tuple[str, str], ...]
    body: bytes


def format_date(at: float, tz: str = "+0000") -> str:
    """RFC 5322 date of ``at`` in the zone ``tz`` ("+0100")."""
    sign = -1 if tz[0] == "-" else 1
    offset = dt.timedelta(hours=int(tz[1:3]), minutes=int(tz[3:5])) * sign
    moment = dt.datetime.fromtimestamp(int(at), dt.timezone(offset))
    return email.utils.format_datetime(moment)


def fold(value: str) -> str:
    """Fold an ASCII value at spaces so lines stay near 78 characters (RFC 5322 §2.2.3)."""
    if len(value) <= _FOLD_AT:
        return value
    out, line = [], ""
    for word in value.split(" "):
        if line and len(line) + 1 + len(word) > _FOLD_AT:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    out.append(line)
    return "\n ".join(out)


def header_text(value: str, charset: str = "utf-8") -> str:
    """``value`` as a header field body: ASCII folded, anything else as RFC 2047 words."""
    if value.isascii():
        return fold(value)
    codec = charset if _encodable(value, charset) else "utf-8"
    return Header(value, codec, maxlinelen=_FOLD_AT).encode(linesep="\n")


def address(name: str | None, addr: str) -> str:
    if not name:
        return addr
    return email.utils.formataddr((name, addr), charset="utf-8")


def _encodable(text: str, charset: str) -> bool:
    try:
        text.encode(charset)
    except UnicodeEncodeError:
        return False
    return True


def _base64(data: bytes) -> bytes:
    """Base64 in 76-character lines (RFC 2045 §6.8), in one C call instead of one per line."""
    encoded = base64.b64encode(data)
    return b"\n".join([encoded[i : i + 76] for i in range(0, len(encoded), 76)]) + b"\n"


def leaf(content_type: str, text: str, charset: str, encoding: str) -> Entity:
    """A text part; ``charset`` falls back to UTF-8 when the text does not fit it."""
    try:
        data = text.encode(charset)
    except UnicodeEncodeError:
        charset, data = "utf-8", text.encode()
    if not data.endswith(b"\n"):
        data += b"\n"
    if encoding == "base64":
        body = _base64(data)
    elif encoding == "quoted-printable":
        body = binascii.b2a_qp(data, istext=True)
    else:
        body = data
    fields = (
        ("Content-Type", f'{content_type}; charset="{charset}"'),
        ("Content-Transfer-Encoding", encoding),
    )
    return Entity(fields, body)


def attachment(content_type: str, filename: str, data: bytes) -> Entity:
    fields = (
        ("Content-Type", f'{content_type}; name="{filename}"'),
        ("Content-Transfer-Encoding", "base64"),
        ("Content-Disposition", f'attachment; filename="{filename}"'),
    )
    return Entity(fields, _base64(data))


def multipart(subtype: str, boundary: str, parts: list[Entity], preamble: str = "") -> Entity:
    chunks = [preamble.encode() + b"\n"] if preamble else []
    for part in parts:
        chunks.append(f"--{boundary}\n".encode())
        chunks.append(render_fields(part.fields) + b"\n" + part.body)
    chunks.append(f"--{boundary}--\n".encode())
    content_type = f'multipart/{subtype};\n boundary="{boundary}"'
    return Entity((("Content-Type", content_type),), b"".join(chunks))


def render_fields(fields: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> bytes:
    return "".join(f"{name}: {value}\n" for name, value in fields).encode("utf-8")


def message(fields: list[tuple[str, str]], entity: Entity) -> bytes:
    """The whole message: header fields, MIME-Version, the entity's fields, blank line, body."""
    return render_fields([*fields, ("MIME-Version", "1.0"), *entity.fields]) + b"\n" + entity.body


def queue_id(rng: random.Random) -> str:
    """A Postfix-style short queue id (10 to 12 upper-case hex digits)."""
    return f"{rng.getrandbits(44):011X}"[: rng.randint(10, 11)]


def mx_received(
    helo: str, rdns: str | None, ip: str, qid: str, rcpts: tuple[str, ...], at: float
) -> str:
    """The Received field our MX (Postfix) adds for a client."""
    for_clause = f"\n\tfor <{rcpts[0]}>" if len(rcpts) == 1 else ""
    return (
        f"from {helo} ({rdns or 'unknown'} [{ip}])\n\tby {MX_HOST} (Postfix) with ESMTP id "
        f"{qid}{for_clause}; {format_date(at)}"
    )
