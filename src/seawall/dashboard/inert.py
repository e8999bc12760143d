"""A message as inert text: what a page may show of mail that a spammer wrote.

Spam is written to be opened; the desk must be able to read it without running any of it.
A message is parsed (``seawall.message``) and reduced to plain strings: the headers an
abuse desk reads, the text of its parts (HTML already converted to text by the parser),
its links and attachments.  Links are shown as text, never as ``href``; the templates
escape every string (Jinja2 autoescape), so ``<script>``, event-handler attributes and
``javascript:`` links arrive in the browser as characters.  Control characters other than
line breaks and tabs are replaced, so a terminal escape or a bidi override cannot disguise
what is shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from seawall.message import Envelope, ParseLimits, parse_message

SHOWN_HEADERS = (
    "From",
    "To",
    "Cc",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "Return-Path",
    "X-Mailer",
    "User-Agent",
)
MAX_TEXT_CHARS = 20_000
MAX_LINKS = 100
# C0 and C1 controls but tab and newline, and the Unicode bidi overrides and isolates.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean(text: str, limit: int = 2000) -> str:
    """``text`` with control and bidi characters replaced, cut at ``limit`` characters."""
    cut = text[:limit]
    return _UNSAFE.sub("\ufffd", cut) + ("…" if len(text) > limit else "")


@dataclass(frozen=True, slots=True)
class Link:
    url: str
    domain: str
    source: str  # "text", "href", ...: where in the message it was found
    link_text: str


@dataclass(frozen=True, slots=True)
class Shown:
    """A message reduced to the strings a page shows."""

    headers: tuple[tuple[str, str], ...]
    subject: str
    text: str
    text_cut: bool
    links: tuple[Link, ...]
    attachments: tuple[tuple[str, str, int], ...]  # (name, type, bytes)
    defects: tuple[str, ...]
    size: int
    received: tuple[str, ...]


def show_message(raw: bytes, limits: ParseLimits) -> Shown:
    """The inert view of ``raw``; never raises for what the message holds."""
    msg = parse_message(raw, Envelope(), limits)
    wanted = {name.lower() for name in SHOWN_HEADERS}
    headers = tuple(
        (clean(name, 100), clean(value))
        for name, value in msg.headers.items_in_order()
        if name.lower() in wanted
    )
    text = msg.text
    links = tuple(
        Link(
            url=clean(url.url, 500),
            domain=clean(url.domain, 255),
            source=url.source,
            link_text=clean(url.link_text or "", 200),
        )
        for url in msg.urls[:MAX_LINKS]
    )
    attachments = tuple(
        (
            clean(a.filename or "(no name)", 255),
            clean(a.sniffed_type or a.declared_type, 100),
            a.size,
        )
        for a in msg.attachments
    )
    return Shown(
        headers=headers,
        subject=clean(msg.subject, 500),
        text=clean(text, MAX_TEXT_CHARS),
        text_cut=len(text) > MAX_TEXT_CHARS,
        links=links,
        attachments=attachments,
        defects=msg.defects,
        size=msg.size,
        received=tuple(clean(v, 500) for v in msg.headers.get_all("Received")[:10]),
    )
