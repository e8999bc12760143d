"""HTML to the text a reader sees, and the links in it, with Lexbor (selectolax).

``<script>`` and ``<style>`` are dropped, the ``<head>`` (title included) is skipped,
block elements separate words, and all white space becomes single spaces.  Lexbor builds
the tree in C (~20x faster than ``html.parser``); the Python around it is kept to a few
C-speed passes, since HTML is most of what modern mail is.
"""

from __future__ import annotations

import functools
import html as entities
import itertools
import re
import threading
from typing import AnyStr, NamedTuple

from selectolax.lexbor import LexborCSSSelector, LexborHTMLParser, LexborNode

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
    camouflaged: int = 0  # letters written in (nearly) their background's colour
    camouflaged_lead: int = 0  # of them, those before the text's first letters (a preview)


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
    unseen = _camouflaged(tree) if _light_text(html) else []
    tree.strip_tags(["script", "style"])
    body = tree.body or tree.root
    text = " ".join((body.text(separator="") if body is not None else "").split())
    if not unseen:
        return Rendered(text, links)
    lead = 0
    for letters, start in unseen:  # in the page's order: a preview comes first
        if not _is_lead(text, start):
            break
        lead += letters
    return Rendered(text, links, camouflaged=sum(n for n, _ in unseen), camouflaged_lead=lead)


# Text in the colour of its background: the hash-buster's white on white, which a reader
# never sees and a filter reads.  Only light text is looked for (channels at 0xE0 and up,
# on a background as light): a page is white unless it says otherwise, and a light
# background is where such text hides.  The source is searched first, cheaply, for a light
# text colour (a ``color`` attribute or property, not ``bgcolor`` or ``background-color``).
_LIGHT_COLOR = r"(?:#?(?:[EFef][0-9A-Fa-f]){3}\b|#?[EFef]{3}\b|[Ww][Hh][Ii][Tt][Ee]\b)"
# Each starts with a literal, which the regular expression engine scans for at C speed.
_LIGHT_AT = tuple(
    re.compile(word + r"""\s*(?:=\s*["']?\s*|:\s*)""" + _LIGHT_COLOR) for word in ("olor", "OLOR")
)
_LIGHT_AT_BYTES = tuple(re.compile(pattern.pattern.encode()) for pattern in _LIGHT_AT)
_COLOR_NODES = 'font[color], [style*="olor" i]'  # "i": in any case
_STYLE_COLOR = re.compile(r"(?:^|[;\s\"'])color\s*:\s*([#\w]+)", re.IGNORECASE)
_STYLE_BACKGROUND = re.compile(r"background(?:-color)?\s*:\s*([^;]*)", re.IGNORECASE)
_HEX_COLOR = re.compile(r"#?([0-9a-f]{6}|[0-9a-f]{3})")
_NAMED_LIGHT = {"white": "ffffff", "snow": "fffafa", "ivory": "fffff0", "whitesmoke": "f5f5f5"}
_LIGHT = 0xE0
_UNKNOWN = (-1, -1, -1)  # a background image, or a colour not understood: maybe dark
_WHITE = (255, 255, 255)
_MAX_COLOURED = 500  # coloured elements looked at per document
_MAX_VISITS = 20_000  # nodes read for the letters of light elements, per document
_CACHED = 256  # characters: longer colour and style values are read, not remembered
_ANCESTORS = 60  # levels searched for an element's background
_LEAD_LETTERS = 20  # camouflaged text before this many letters of the text is a preview
_LETTER = re.compile(r"[^\W\d_]")
_selectors = threading.local()  # Lexbor's selector engine: one per thread, not per tree


def _light_text(html: str | bytes) -> bool:
    """Whether ``html`` sets a light text colour anywhere (before the tree is searched)."""
    if isinstance(html, bytes):
        return _sets_light(html, _LIGHT_AT_BYTES, b"cC", b"-")
    return _sets_light(html, _LIGHT_AT, "cC", "-")


def _sets_light(
    html: AnyStr, patterns: tuple[re.Pattern[AnyStr], ...], c: AnyStr, dash: AnyStr
) -> bool:
    for pattern in patterns:
        found = pattern.search(html, 2)
        while found is not None:
            # "color", not "bgcolor" nor "background-color": the letters before its "olor".
            at = found.start()
            prior = html[at - 2 : at - 1]
            if html[at - 1 : at] in c and not prior.isalnum() and prior != dash:
                return True
            found = pattern.search(html, found.end())
    return False


def _colour(value: str | None) -> tuple[int, int, int] | None:
    if not value:
        return None
    return _colour_cached(value) if len(value) <= _CACHED else _read_colour(value)


def _read_colour(value: str) -> tuple[int, int, int] | None:
    value = value.strip().strip("\"'").lower()
    value = _NAMED_LIGHT.get(value, value)
    found = _HEX_COLOR.fullmatch(value)
    if found is None:
        return None
    digits = found.group(1)
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


_colour_cached = functools.lru_cache(maxsize=1024)(_read_colour)


def _text_colour(node: LexborNode) -> tuple[int, int, int] | None:
    """The colour ``node`` sets for its text; None when it sets none, _UNKNOWN when it
    sets one that is not understood."""
    attrs = node.attributes
    if node.tag == "font":
        value = attrs.get("color")
        if value:
            return _colour(value) or _UNKNOWN
    style = attrs.get("style")
    if not style:
        return None
    return _style_colour_cached(style) if len(style) <= _CACHED else _style_colour(style)


def _style_colour(style: str) -> tuple[int, int, int] | None:
    found = _STYLE_COLOR.search(style)
    return None if found is None else _colour(found.group(1)) or _UNKNOWN


def _style_background(style: str) -> tuple[int, int, int] | None:
    found = _STYLE_BACKGROUND.search(style)
    if found is None:
        return None
    value = found.group(1).strip()
    if not value or "url(" in value.lower():
        return _UNKNOWN
    return _colour(value.split()[0]) or _UNKNOWN


# Newsletters repeat a few styles on every element; a page's own long ones are not kept.
_style_colour_cached = functools.lru_cache(maxsize=2048)(_style_colour)
_style_background_cached = functools.lru_cache(maxsize=2048)(_style_background)


class _Page:
    """One document's backgrounds, found once for the coloured elements that share them."""

    __slots__ = ("_sheets", "grounds", "tree", "visits")

    def __init__(self, tree: LexborHTMLParser) -> None:
        self.tree = tree
        self.grounds: dict[int, tuple[int, int, int]] = {}
        self._sheets: bool | None = None
        self.visits = 0  # nodes read for their letters

    def sheets(self) -> bool:
        """Whether a style sheet of the page paints backgrounds (by class or id)."""
        if self._sheets is None:
            self._sheets = any("background" in (s.text() or "") for s in self.tree.tags("style"))
        return self._sheets

    def background(self, node: LexborNode) -> tuple[int, int, int] | None:
        """The background ``node`` sets, _UNKNOWN when it may be dark, None for none."""
        attrs = node.attributes
        if attrs.get("background"):
            return _UNKNOWN
        style = attrs.get("style")
        if style:
            if len(style) <= _CACHED:
                own = _style_background_cached(style)
            else:
                own = _style_background(style)
            if own is not None:
                return own
        value = attrs.get("bgcolor")
        if value:
            return _colour(value) or _UNKNOWN
        if (attrs.get("class") or attrs.get("id")) and self.sheets():
            return _UNKNOWN  # a style sheet may paint it
        return None

    def ground(self, node: LexborNode) -> tuple[int, int, int]:
        """The background ``node`` is on: white when nothing sets one."""
        passed: list[int] = []
        ground = _WHITE
        parent: LexborNode | None = node
        for _ in range(_ANCESTORS):
            if parent is None or not parent.is_element_node:
                break
            key = parent.mem_id
            if key in self.grounds:
                ground = self.grounds[key]
                break
            passed.append(key)
            own = self.background(parent)
            if own is not None:
                ground = own
                break
            parent = parent.parent
        for key in passed:
            self.grounds[key] = ground
        return ground


def _camouflaged(tree: LexborHTMLParser) -> list[tuple[int, str]]:
    """(letters, where its text starts) for each element whose own text is light on a light
    background; text inside it that sets its own colour is that element's."""
    selector = getattr(_selectors, "engine", None)
    if selector is None:
        # One engine a thread: building it costs more than a search (150 us a tree).
        selector = _selectors.engine = LexborCSSSelector()  # type: ignore[no-untyped-call]
    root = tree.root
    if root is None:
        return []
    page = _Page(tree)
    found: list[tuple[int, str]] = []
    for node in itertools.islice(selector.find(_COLOR_NODES, root), _MAX_COLOURED):
        colour = _text_colour(node)
        if colour is None or min(colour) < _LIGHT or min(page.ground(node)) < _LIGHT:
            continue
        letters, start = _own_letters(node, page)
        if letters:
            found.append((letters, start))
    return found


def _own_letters(node: LexborNode, page: _Page) -> tuple[int, str]:
    """Letters of the text under ``node`` that no element inside it colours otherwise, and
    the start of that text.  An element that sets its own colour is not entered: each node
    of a page is read for at most one coloured element, and at most _MAX_VISITS in all."""
    letters, start = 0, ""
    pending: list[LexborNode | None] = [node.child]
    while pending and page.visits < _MAX_VISITS:
        current = pending.pop()
        if current is None:
            continue
        page.visits += 1
        pending.append(current.next)
        if current.is_text_node:
            content = current.text_content or ""
            count = len(_LETTER.findall(content))
            if count:
                letters += count
                start = start or " ".join(content.split())[:40]
        elif current.is_element_node and _text_colour(current) is None:
            pending.append(current.child)  # read before the siblings pushed above
    return letters, start


def _is_lead(text: str, start: str) -> bool:
    """Whether ``start`` comes before the first _LEAD_LETTERS letters of ``text``."""
    at = text.find(start) if start else -1
    if at < 0:
        return False
    before = _LETTER.finditer(text, 0, at)
    return sum(1 for _ in itertools.islice(before, _LEAD_LETTERS)) < _LEAD_LETTERS


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
