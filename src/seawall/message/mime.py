"""The MIME walk: multipart bodies split, leaf parts decoded into text parts and attachments.

The walk works on offsets into one buffer (nothing is copied until a leaf part is
decoded) and finds delimiters with ``bytes.find``, so time stays linear in the input
times the nesting depth, which ``max_depth`` bounds.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple

from seawall.message import defects as d
from seawall.message.attachments import build_attachment
from seawall.message.charset import decode_text
from seawall.message.defects import Defects
from seawall.message.headers import decode_words, parse_params, read_fields
from seawall.message.html import Link, render_html
from seawall.message.invisible import without_invisible
from seawall.message.model import Attachment, TextPart
from seawall.message.transfer import decode_transfer

if TYPE_CHECKING:
    from seawall.message.parse import ParseLimits

_MAX_BOUNDARY = 200  # RFC 2046 §5.1.1 allows 70; longer ones are not boundaries
_DELIMITER_TAIL = re.compile(rb"[ \t\r]*+(?:\n|\Z)")  # after "--boundary": blanks, EOL
_PLAIN_TYPES = frozenset({"text/plain", "text/enriched", "text/richtext"})
_ENCLOSED_TYPES = frozenset({"message/rfc822", "message/global"})
_MIN_HTML_CHARS = 100_000  # HTML read even when max_text_chars is set very low
# The HTML sources kept for checks that read markup (message/htmlsource.py): the first few
# HTML parts outside forwarded messages, each cut to this many characters, from at most 4
# times as many bytes of its encoded body.
HTML_SOURCES = 4
HTML_SOURCE_CHARS = 200_000


class Entity(NamedTuple):
    """What a header section says about the body after it."""

    content_type: str  # lower-case "type/subtype"
    params: dict[str, str]
    encoding: str  # Content-Transfer-Encoding, lower-case
    filename: str | None


def describe(fields: list[tuple[str, str]], default_type: str, defects: Defects) -> Entity:
    """The :class:`Entity` of a header section; ``default_type`` when none is readable."""
    content_type = disposition = encoding = ""
    for name, value in fields:
        if name[0] in "Cc" and name[:8].lower() == "content-":
            key = name[8:].lower()
            if key == "type":
                content_type = content_type or value
            elif key == "transfer-encoding":
                encoding = encoding or value
            elif key == "disposition":
                disposition = disposition or value
    main, params = parse_params(content_type, defects)
    if "/" not in main or " " in main:  # RFC 2045 §5.2: unreadable means the default
        main = default_type
    filename = None
    if disposition:
        filename = parse_params(disposition, defects)[1].get("filename")
    filename = filename or params.get("name")
    if filename and "=?" in filename:  # RFC 2047 inside quotes: wrong, yet common
        filename = decode_words(filename, defects)
    return Entity(main, params, encoding.strip().lower(), filename or None)


class Walk:
    """One walk over a message body, collecting its parts.

    ``parts``, ``shown`` and ``links`` are parallel: each text part, whether it counts
    toward ``Message.text``, and the links of its HTML.  ``html`` is the decoded source of
    the first ``HTML_SOURCES`` HTML parts outside forwarded messages, as
    :func:`~seawall.message.htmlsource.html_sources` reads them, while ``html_complete``
    says it is (a part too large to keep whole, or a walk cut short, leaves it to
    ``html_sources`` to read the message again).
    """

    __slots__ = (
        "attachments",
        "count",
        "defects",
        "html",
        "html_complete",
        "limits",
        "links",
        "parts",
        "sealed",
        "shown",
        "stop",
    )

    def __init__(self, limits: ParseLimits, defects: Defects) -> None:
        self.limits = limits
        self.defects = defects
        self.parts: list[TextPart] = []
        self.shown: list[bool] = []
        self.links: list[list[Link]] = []
        self.attachments: list[Attachment] = []
        self.count = 0
        self.stop = False
        self.html: list[str] = []
        self.html_complete = True
        self.sealed = 0  # inside this many forwarded messages

    def entity(self, buf: bytes, start: int, end: int, entity: Entity, depth: int) -> None:
        """Walk the body at ``buf[start:end]`` that ``entity`` describes."""
        self.count += 1
        if self.count > self.limits.max_parts:
            self.defects.add(d.TOO_MANY_PARTS)
            self.stop = True
            return
        kind = entity.content_type
        if kind.startswith("multipart/"):
            self.multipart(buf, start, end, entity, depth)
        elif kind in _ENCLOSED_TYPES:
            self.enclosed(buf, start, end, entity, depth)
        else:
            self.leaf(buf, start, end, entity)

    def multipart(self, buf: bytes, start: int, end: int, entity: Entity, depth: int) -> None:
        if depth >= self.limits.max_depth:
            self.defects.add(d.NESTING_TOO_DEEP)
            return
        boundary = entity.params.get("boundary", "")
        if not boundary:
            self.defects.add(d.MISSING_BOUNDARY)
            self.leaf(buf, start, end, entity._replace(content_type="text/plain"))
            return
        delimiter = b"--" + boundary.encode("utf-8", "replace")
        budget = self.limits.max_parts - self.count + 1
        found = None
        if len(boundary) <= _MAX_BOUNDARY:
            found = split_multipart(buf, start, end, delimiter, budget)
        if found is None:  # scan the body anyway: it is what the recipient sees
            self.defects.add(d.BAD_BOUNDARY)
            self.leaf(buf, start, end, entity._replace(content_type="text/plain"))
            return
        bodies, closed = found
        if not closed and len(bodies) <= budget:
            self.defects.add(d.TRUNCATED)
        default = "message/rfc822" if entity.content_type == "multipart/digest" else "text/plain"
        first = len(self.parts)
        limit = self.limits.max_header_bytes
        for part_start, part_end in bodies:
            if self.stop:
                break
            fields, body = read_fields(buf, part_start, part_end, limit, self.defects)
            child = describe(fields, default, self.defects)
            self.entity(buf, body, part_end, child, depth + 1)
        if entity.content_type == "multipart/alternative":
            self.choose_alternative(first)

    def enclosed(self, buf: bytes, start: int, end: int, entity: Entity, depth: int) -> None:
        """A forwarded or bounced message: recorded as an attachment, and walked into."""
        data = self.decode(buf, start, end, entity.encoding)
        self.attachments.append(build_attachment(data, entity.filename, entity.content_type))
        if depth >= self.limits.max_depth:
            self.defects.add(d.NESTING_TOO_DEEP)
            return
        if entity.encoding in ("base64", "quoted-printable"):
            buf, start, end = data, 0, len(data)
        fields, body = read_fields(buf, start, end, self.limits.max_header_bytes, self.defects)
        self.sealed += 1
        self.entity(buf, body, end, describe(fields, "text/plain", self.defects), depth + 1)
        self.sealed -= 1

    def leaf(self, buf: bytes, start: int, end: int, entity: Entity) -> None:
        data = self.decode(buf, start, end, entity.encoding)
        kind = entity.content_type
        readable = kind == "text/html" or kind in _PLAIN_TYPES
        if readable:
            charset = entity.params.get("charset")
            source = self.text(data, kind, charset, entity.filename is None, entity.encoding)
            if kind == "text/html" and not self.sealed and len(self.html) < HTML_SOURCES:
                if end - start <= 4 * HTML_SOURCE_CHARS:
                    self.html.append(source[:HTML_SOURCE_CHARS])
                else:
                    self.html_complete = False
        if entity.filename is not None or not readable:
            self.attachments.append(build_attachment(data, entity.filename, kind))

    def decode(self, buf: bytes, start: int, end: int, encoding: str) -> bytes:
        """The decoded body, at most ``max_part_bytes`` of it (``part_too_large``)."""
        limit = self.limits.max_part_bytes
        if encoding == "base64":
            encoded_limit = (limit // 3 + 1) * 4 * 78 // 76 + 78  # 76-char lines and CRLFs
        elif encoding == "quoted-printable":
            encoded_limit = limit * 3
        else:
            encoded_limit = limit
        if end - start > encoded_limit:
            self.defects.add(d.PART_TOO_LARGE)
            cut = buf.rfind(b"\n", start, start + encoded_limit)  # keep base64 quanta whole
            end = cut if cut > start else start + encoded_limit
        data = decode_transfer(buf[start:end], encoding, self.defects)
        if len(data) > limit:
            self.defects.add(d.PART_TOO_LARGE)
            data = data[:limit]
        return data

    def text(
        self, data: bytes, kind: str, charset: str | None, inline: bool, encoding: str = ""
    ) -> str:
        """Add the text part of ``data``; returns its decoded source (HTML, for HTML)."""
        decoded = decode_text(data, charset)
        if decoded.unknown:
            self.defects.add(d.UNKNOWN_CHARSET)
        links: list[Link] = []
        text = decoded.text
        limit = self.limits.max_text_chars
        camouflaged = lead = 0
        if kind == "text/html":
            # Lexbor reads UTF-8: hand it the bytes when they already are, not a copy.
            rendered = render_html(self.html_source(data if decoded.utf8 else text))
            if rendered.too_deep:
                self.defects.add(d.HTML_TOO_DEEP)
            text, links = rendered.text[:limit], rendered.links
            camouflaged, lead = rendered.camouflaged, rendered.camouflaged_lead
        else:
            kind = "text/plain"
            text = text[:limit]
            if "\r" in text:
                text = text.replace("\r\n", "\n").replace("\r", "\n")
        text = without_invisible(text)  # what spammers put inside words against filters
        eight_bit = not data.isascii()
        self.parts.append(
            TextPart(
                kind,
                text,
                decoded.charset,
                charset,
                len(data),
                encoding,
                eight_bit,
                camouflaged=camouflaged,
                camouflaged_lead=lead,
            )
        )
        self.shown.append(inline)
        self.links.append(links)
        return decoded.text

    def html_source(self, html: str | bytes) -> str | bytes:
        """At most 5 x ``max_text_chars`` of HTML: the text is cut there anyway, and beyond
        a few hundred kilobytes (Gmail clips at 102 KB) HTML is an attack, not a letter."""
        cap = max(_MIN_HTML_CHARS, 5 * self.limits.max_text_chars)
        if len(html) <= cap:
            return html
        self.defects.add(d.HTML_TOO_LARGE)
        if isinstance(html, bytes):
            while cap > 0 and html[cap] & 0xC0 == 0x80:  # not inside a UTF-8 sequence
                cap -= 1
        return html[:cap]

    def choose_alternative(self, first: int) -> None:
        """Of the inline text parts from ``first`` on, keep one in ``Message.text``.

        The HTML one is what mail readers show; the plain one stands in when the HTML has
        no text (an image-only mail).  RFC 2046 §5.1.4 puts the preferred one last.
        """
        shown = [i for i in range(first, len(self.parts)) if self.shown[i]]
        if len(shown) < 2:
            return
        with_text = [i for i in shown if self.parts[i].text.strip()]
        html = [i for i in with_text if self.parts[i].content_type == "text/html"]
        keep = html[-1] if html else with_text[-1] if with_text else shown[-1]
        for i in shown:
            self.shown[i] = i == keep


def split_multipart(
    buf: bytes, start: int, end: int, delimiter: bytes, budget: int
) -> tuple[list[tuple[int, int]], bool] | None:
    """The ``(start, end)`` of each body part, and whether the close delimiter was seen.

    None when the delimiter never starts a line.  At most ``budget + 1`` parts are
    returned; the CRLF before a delimiter belongs to the delimiter (RFC 2046 §5.1.1).
    """
    bodies: list[tuple[int, int]] = []
    current = -1
    pos = start
    size = len(delimiter)
    while True:
        at = buf.find(delimiter, pos, end)
        if at < 0:
            break
        pos = at + size
        if at > start and buf[at - 1] != 0x0A:  # not at the start of a line
            continue
        closing = buf.startswith(b"--", pos, end)
        tail = _DELIMITER_TAIL.match(buf, pos + 2 if closing else pos, end)
        if tail is None:  # "--boundaryX": a longer, different boundary
            continue
        if current >= 0:
            stop = at - 1 if at > current else at
            if stop > current and buf[stop - 1] == 0x0D:
                stop -= 1
            bodies.append((current, max(current, stop)))
        if closing:
            return bodies, True
        current = pos = tail.end()
        if len(bodies) > budget:
            return bodies, False
    if current < 0:
        return None
    bodies.append((current, end))
    return bodies, False
