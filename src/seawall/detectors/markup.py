"""How a message is laid out: HTML without a text part, and the HTML of a flyer.

Bulk mail of every era is written as a flyer: HTML only, large and coloured fonts, a
painted background, centred blocks.  Mail people write, and most newsletters of the shared
ham, is text or text beside its HTML.  The traits carry across eras where words do not: on
the shared corpora (1,000 messages of each source) HTML without a text part is on 45% of
SpamAssassin's 2002 spam, 63% of CSDMC's 2010 spam, 82% of Nazario's and 70% of Phishing
Pot's phishing, and on 2.8% of SpamAssassin ham, 0.3% of CSDMC ham and no Enron ham.

None of them is proof: every symbol ships at 0, an *oddity* whose weight the learned
second stage fits from the site's own mail, and only once the site's learned ham carries
it (``classifier/scores.py``, ``MIN_HAM_EVENTS``), so a site whose users receive HTML
newsletters learns what such a layout is worth there.

The HTML is read as decoded source (``message/htmlsource.py``, kept by the parse), with
one pass of a tag pattern over at most ``MAX_SCAN`` characters of each part.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import ClassVar

from seawall.detectors.base import Context, Hit, Parts
from seawall.message.htmlsource import html_sources
from seawall.message.model import Message
from seawall.message.parse import DEFAULT_LIMITS, ParseLimits

MAX_SCAN = 60_000  # characters of each HTML part searched for layout tags
MIN_COLOURED_FONTS = 3  # font tags that set a colour before the text counts as coloured
# The tags whose attributes make a layout: <font>, <center>, and the elements that take a
# bgcolor (body, table, tr, td, th).  Attributes are read up to 300 characters (a tag
# longer than that is not a layout tag; the bound keeps the pattern linear).
_TAG = re.compile(r"<(font|center|body|table|t[dhr])\b([^<>]{0,300})", re.IGNORECASE | re.ASCII)
_SIZE = re.compile(r"\bsize\s*=\s*[\"']?\s*([+-]?)(\d)", re.IGNORECASE | re.ASCII)
_COLOR = re.compile(r"\bcolou?r\s*=", re.IGNORECASE | re.ASCII)
_BGCOLOR = re.compile(r"\bbgcolor\s*=", re.IGNORECASE | re.ASCII)
LARGE_FONT = 5  # HTML font sizes run 1-7, 3 the default; "+2" is 5


class MarkupDetector:
    """The layout of bulk mail: HTML without a text part, large and coloured fonts."""

    name: ClassVar[str] = "markup"
    io: ClassVar[bool] = False
    symbols: ClassVar[Mapping[str, str]] = {
        "MIME_HTML_ONLY": "HTML without a plain-text alternative",
        "HTML_FONT_LARGE": "HTML sets a large font (size 5 or more, or +2)",
        "HTML_FONT_COLORS": "HTML colours its text in three or more font tags",
        "HTML_BGCOLOR": "HTML paints a background colour (bgcolor)",
        "HTML_CENTER": "HTML centres its blocks with <center>",
    }

    @classmethod
    def build(cls, parts: Parts) -> MarkupDetector:
        return cls(ParseLimits.from_config(parts.config))

    def __init__(self, limits: ParseLimits | None = None) -> None:
        self.limits = limits or DEFAULT_LIMITS

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]:
        return layout(msg, self.limits)


def layout(msg: Message, limits: ParseLimits = DEFAULT_LIMITS) -> list[Hit]:
    """The layout symbols of ``msg`` (a plain-text message has none)."""
    if not msg.has_html:
        return []
    hits: list[Hit] = []
    if msg.html_only:
        hits.append(Hit("MIME_HTML_ONLY"))
    large: str | None = None
    coloured = 0
    bgcolor = center = False
    for source in html_sources(msg, limits):
        for found in _TAG.finditer(source, 0, MAX_SCAN):
            tag = found.group(1).lower()
            attributes = found.group(2)
            if tag == "font":
                if large is None and (size := _SIZE.search(attributes)) is not None:
                    sign, digit = size.groups()
                    value = {"": 0, "+": 3, "-": -9}[sign] + int(digit)  # +n: 3 + n
                    if value >= LARGE_FONT:
                        large = f"size={sign}{digit}"
                if _COLOR.search(attributes):
                    coloured += 1
            elif tag == "center":
                center = True
            elif not bgcolor and _BGCOLOR.search(attributes):
                bgcolor = True
    if large is not None:
        hits.append(Hit("HTML_FONT_LARGE", options=(large,)))
    if coloured >= MIN_COLOURED_FONTS:
        hits.append(Hit("HTML_FONT_COLORS", options=(f"{coloured} font colours",)))
    if bgcolor:
        hits.append(Hit("HTML_BGCOLOR"))
    if center:
        hits.append(Hit("HTML_CENTER"))
    return hits
