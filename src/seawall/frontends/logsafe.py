"""Client values made safe for a log line: control characters escaped, length bounded.

A milter macro, an HTTP header or a policy attribute is whatever the client sent.  Logged
as is, a newline in a queue id starts a line that looks like Seawall's own (a forged
"action=no_action" for a message that was rejected), and escape sequences can rewrite a
terminal.  Every value from a client goes through :func:`printable` before a log line.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls, and the Unicode line and paragraph separators.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
MAX_CHARS = 256


def printable(value: object, *, limit: int = MAX_CHARS) -> str:
    r"""``value`` as text for a log line: "-" for None or empty, control characters as
    ``\xNN`` (``\uNNNN``), and at most ``limit`` characters ("..." marks a cut).

    >>> printable("4Kx1\nseawall: queue_id=forged")
    '4Kx1\\x0aseawall: queue_id=forged'
    >>> printable(None)
    '-'
    """
    if value is None or value == "":
        return "-"
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    return _UNSAFE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
