"""HTML to the text a reader sees, and the links in it, with Lexbor (selectolax).

``<script>`` and ``<style>`` are dropped, the ``<head>`` (title included) is skipped,
block elements separate words, and all white space becomes single spaces.  Lexbor builds
the tree in C (~20x faster than ``html.parser``); the Python around it is kept to a few
C-speed passes, since HTML is most of what modern mail is.
"""

from __future__ import annotations

import html as entities
import re
from typing import NamedTuple

from selectolax.lexbor import LexborHTMLParser

# A space before block-level tags, so "<p>end.</p><p>Start</p>" does not read as the host
# "end.Start", while inline tags (F<span>a</span>cebook) stay joined.  Written as "<" and
# a lookahead so that re.sub takes its fast path (a literal replacement, no template).
_BLOCK_TAGS = (
    r"<(?=/?(?:[pP]|[bB][rR]|[hH][rR]|[dD][iI][vV]|[tT][rRdDhH]|[lL][iI]|[hH][1-6]"
    r"|[tT][aA][bB][lL][eE]|[bB][lL][oO][cC][kK][qQ][uU][oO][tT][eE]|[uUoO][lL]|[dD][dDtT]"
    r"|[cC][eE][nN][tT][eE][rR]|[fF][oO][rR][mM]|[pP][rR][eE])\b)"
)
_BLOCK = re.compile(_BLOCK_TAGS)
_BLOCK_BYTES = re.compile(_BLOCK_TAGS.encode())
_REFRESH_URL = re.compile(r"url\s*=\s*['\"]?([^'\"\s>]+)", re.IGNORECASE)
_MAX_LINKS = 5000  # link elements read per document; later ones are skipped

# HTML tree building walks the stack of open elements for many tags, so its time grows
# with tags x depth: 10,000 nested <span> and 10,000 stray end tags take Lexbor ~0.5 s.
# Documents that could cost more than _TREE_WORK steps get their depth estimated first,
# and deep ones are rendered by the linear fallback below instead.
_TREE_WORK = 10_000_000  # ~50 ms of Lexbor at worst
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]{0,15})")
_VOID = frozenset(
    {
        "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "img",
        "input", "keygen", "link", "meta", "param", "source", "track", "wbr",
    }
)  # fmt: skip
# HTML §13.2.4.2: end tags do not cross these ("scope"), and an end tag of an ordinary
# element is ignored when one of the "special" elements is open above it.
_SCOPE = frozenset(
    {"applet", "caption", "html", "table", "td", "th", "marquee", "object", "template"}
)
_SPECIAL = _SCOPE | frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "center", "dd", "details",
        "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1",
        "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "li", "listing", "main", "menu",
        "nav", "ol", "p", "pre", "section", "select", "summary", "tbody", "textarea",
        "tfoot", "thead", "tr", "ul", "xmp",
    }
)  # fmt: skip
# A new one of these ends the open one, as browsers do with unclosed <p> and <td>.
_SELF_CLOSING = frozenset({"p", "li", "dd", "dt", "option", "tr", "td", "th"})
_SEARCH = 8  # levels searched for the element an end tag closes
_MAX_MODELLED_TAGS = 50_000
_STRIP_TAG = re.compile(r"<[^<>]*+>?")
_ATTR_URL = re.compile(
    r"\b(href|src|action)\s*=\s*(?:\"([^\"<>]*+)|'([^'<>]*+)|([^\s\"'<>]++))", re.IGNORECASE
)
_ATTR_SOURCE = {"href": "href", "src": "src", "action": "action"}

# (tag, attribute, Url.source)
_LINK_TAGS = (
    ("a", "href", "href"),
    ("area", "href", "href"),
    ("img", "src", "src"),
    ("iframe", "src", "src"),
    ("form", "action", "action"),
)


class Link(NamedTuple):
    url: str
    source: str  # "href", "src" or "action"
    text: str | None  # the visible text of an <a>


class Rendered(NamedTuple):
    text: str
    links: list[Link]
    too_deep: bool = False  # rendered by the linear fallback (defect "html_too_deep")


def render_html(html: str | bytes) -> Rendered:
    """The readable text of ``html`` (text, or UTF-8 bytes) and its links, in order per tag.

    >>> render_html('<p>Hi <b>B</b>ob.</p><p><a href="http://x.test/">Click</a></p>').text
    'Hi Bob. Click'
    """
    if isinstance(html, bytes):
        if html.count(b"<") ** 2 > _TREE_WORK and too_deep(html.decode()):
            return render_flat(html.decode())
        tree = LexborHTMLParser(_BLOCK_BYTES.sub(b" <", html))
    else:
        if html.count("<") ** 2 > _TREE_WORK and too_deep(html):
            return render_flat(html)
        tree = LexborHTMLParser(_BLOCK.sub(" <", html))
    links: list[Link] = []
    for tag, attribute, source in _LINK_TAGS:
        for node in tree.tags(tag):
            if len(links) >= _MAX_LINKS:
                break
            value = node.attrs.get(attribute)
            if value:
                shown = " ".join(node.text().split()) if tag == "a" else None
                links.append(Link(value, source, shown))
    for node in tree.tags("meta"):
        # <meta http-equiv="refresh" content="0; url=..."> redirects HTML attachments.
        if (node.attrs.get("http-equiv") or "").lower() == "refresh":
            found = _REFRESH_URL.search(node.attrs.get("content") or "")
            if found:
                links.append(Link(found.group(1), "href", None))
    tree.strip_tags(["script", "style"])
    body = tree.body or tree.root
    text = body.text(separator="") if body is not None else ""
    return Rendered(" ".join(text.split()), links)


def too_deep(html: str) -> bool:
    """Whether building the tree of ``html`` could cost more than ``_TREE_WORK`` steps.

    A linear model of the HTML tree builder's stack: void elements are not pushed, an end
    tag pops to its element when that is near the top and not shielded by a scope or a
    special element, and a new <p>, <li>, <td> ... ends the open one, as browsers do.
    """
    tags = _TAG.findall(html)
    # Each tag costs the builder at least the minimum below: no need to model the stack.
    # Modelling costs about 1.5 us a tag in Python, so past _MAX_MODELLED_TAGS the linear
    # fallback renders the document (real mail stays far below: a 200 KB newsletter has
    # about 10,000 tags).
    if len(tags) * 9 > _TREE_WORK or len(tags) > _MAX_MODELLED_TAGS:
        return True
    limit = _TREE_WORK // len(tags) - 8 if tags else 0  # the depth that tips it over
    stack: list[str] = []
    deepest = 0
    for closing, name in tags:
        name = name.lower()
        if closing or name in _SELF_CLOSING:
            special = name in _SPECIAL
            for index in range(len(stack) - 1, max(-1, len(stack) - 1 - _SEARCH), -1):
                open_name = stack[index]
                if open_name == name:
                    del stack[index:]
                    break
                if open_name in _SCOPE or (not special and open_name in _SPECIAL):
                    break
            if closing:
                continue
        if name not in _VOID:
            stack.append(name)
            if len(stack) > deepest:
                deepest = len(stack)
                if deepest > limit:
                    return True
    return len(tags) * (deepest + 8) > _TREE_WORK


def render_flat(html: str) -> Rendered:
    """Text and links of ``html`` without building a tree: tags stripped, URLs by regex.

    The fallback for documents too deep for a tree builder; linear in the input.
    """
    links = [
        Link(m.group(2) or m.group(3) or m.group(4) or "", _ATTR_SOURCE[m.group(1).lower()], None)
        for m in _ATTR_URL.finditer(html)
    ]
    text = entities.unescape(_STRIP_TAG.sub(" ", html))
    return Rendered(" ".join(text.split()), links[:_MAX_LINKS], too_deep=True)
