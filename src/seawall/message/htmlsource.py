"""The HTML a message carries, decoded, for checks that read markup rather than text.

The parser renders HTML to text, and its walk keeps the decoded source of the first HTML
parts (``Message.html``) for a detector that looks at forms, input fields or inline styles.
When it could not (a part too large to keep whole, a walk cut short, other limits) the
HTML parts are read again: the same MIME walk (``message/mime.py``) under the same limits,
but each ``text/html`` leaf is only decoded, not rendered, and nothing else is built.  A
helper, not a detector.
"""

from __future__ import annotations

from seawall.message.charset import decode_text
from seawall.message.defects import Defects
from seawall.message.headers import read_fields
from seawall.message.mime import HTML_SOURCE_CHARS, HTML_SOURCES, Entity, Walk, describe
from seawall.message.model import Message
from seawall.message.parse import DEFAULT_LIMITS, ParseLimits

MAX_PARTS = HTML_SOURCES  # HTML parts read: a phish needs one, a message of 500 gets four
MAX_CHARS = HTML_SOURCE_CHARS  # of each part: beyond Gmail's 102 KB clip nobody sees it


class _HtmlWalk(Walk):
    """A walk that keeps each HTML leaf's decoded source and builds nothing else."""

    __slots__ = ("html",)

    def __init__(self, limits: ParseLimits) -> None:
        super().__init__(limits, Defects())
        self.html: list[str] = []

    def leaf(self, buf: bytes, start: int, end: int, entity: Entity) -> None:
        if entity.content_type != "text/html" or len(self.html) >= MAX_PARTS:
            return
        data = self.decode(buf, start, min(end, start + 4 * MAX_CHARS), entity.encoding)
        self.html.append(decode_text(data, entity.params.get("charset")).text[:MAX_CHARS])

    def enclosed(self, buf: bytes, start: int, end: int, entity: Entity, depth: int) -> None:
        return  # a forwarded message's markup is not this sender's trick


def html_sources(msg: Message, limits: ParseLimits = DEFAULT_LIMITS) -> list[str]:
    """The decoded source of the message's first ``MAX_PARTS`` HTML parts (attachments too).

    >>> from seawall.message import parse_message
    >>> html_sources(parse_message(b"Content-Type: text/html\\n\\n<p>Hi</p>"))
    ['<p>Hi</p>']
    """
    if not msg.has_html and not any(a.declared_type == "text/html" for a in msg.attachments):
        return []
    if msg.html is not None and msg.parsed_with == limits:
        return list(msg.html)  # kept by the parse's own walk (message/mime.py)
    return _read_again(msg, limits)


def _read_again(msg: Message, limits: ParseLimits) -> list[str]:
    """:func:`html_sources` by a walk of its own."""
    raw = msg.raw
    end = min(len(raw), limits.max_message_bytes)
    start = 0
    if raw.startswith(b"From "):
        newline = raw.find(b"\n", 0, end)
        start = end if newline < 0 else newline + 1
    defects = Defects()
    fields, body = read_fields(raw, start, end, limits.max_header_bytes, defects)
    walk = _HtmlWalk(limits)
    walk.entity(raw, body, end, describe(fields, "text/plain", defects), 0)
    return walk.html
