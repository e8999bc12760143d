"""Spam templates: one real spam message's subject and body, with its links marked for rotation.

A bot's template is a message someone really sent; the bot fills in links, names and
noise per copy.  Links are replaced by markers (``\\x00U3\\x00``), the recipient's address
by ``\\x00R\\x00``; :mod:`seawall.sim.mutate` fills them.
"""

from __future__ import annotations

import email
import email.policy
import html as htmllib
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

from selectolax.lexbor import LexborHTMLParser

from seawall import corpus

URL_MARK = re.compile(r"\x00U(\d+)\x00")
RCPT_MARK = "\x00R\x00"
_URL = re.compile(r"""(?:https?:)?//[A-Za-z0-9][^\s"'<>()\[\]{}\\]*|\bwww\.[^\s"'<>()\[\]{}\\]+""")
_TRAILING = ".,;:!?'\""
# Recipient addresses the corpora were anonymised with; a copy names its real recipient.
_PLACEHOLDER_RCPT = re.compile(r"\bphishing@pot\b|\b(?:zzzz|yyyy|jm)@[A-Za-z0-9.-]+\b")
_BREAK = re.compile(r"</p>|<br\s*/?>|</td>|</div>|</tr>|</table>", re.IGNORECASE)
_BODY_OPEN = re.compile(r"<body[^>]*>", re.IGNORECASE)
_MAX_HTML = 40_000  # characters; the corpora hold a few 200 KB newsletters-turned-phish
_MAX_TEXT = 20_000
_MIN_TEXT = 80
_MAX_TOKEN = 600  # an unbreakable run (inline image data) longer than this cannot be wrapped
_MARK_WEIGHT = 100  # a link marker becomes a URL of about this many characters
_EXTRACT_ERRORS = (LookupError, ValueError, TypeError, AttributeError, AssertionError)


@dataclass(frozen=True, slots=True)
class Template:
    """A campaign's message: subject, text and HTML bodies with their link markers."""

    source: str  # corpus/relative path
    lang: str  # "en", "de", or what the corpus said ("unk", "mixed")
    subject: str
    text: str  # paragraphs separated by blank lines; lines wrapped
    html: str  # a whole document; lines wrapped
    breaks: tuple[int, ...]  # offsets in ``html`` after a paragraph-like closing tag
    body_at: int  # offset in ``html`` just inside <body>, 0 when there is none
    body_end: int  # offset in ``html`` of </body>, its length when there is none
    urls: int  # distinct link markers


def _wrap(text: str, width: int) -> str | None:
    """Lines of at most ``width`` weighted characters (RFC 5322 §2.1.1 wants ≤ 998 bytes)."""
    out: list[str] = []
    for line in text.split("\n"):
        line = line.rstrip()
        if len(line) <= width and "\x00U" not in line:
            out.append(line)
            continue
        current: list[str] = []
        weight = 0
        for token in line.split(" "):
            if len(token) > _MAX_TOKEN:
                return None
            w = len(token) + 1 + token.count("\x00U") * _MARK_WEIGHT
            if current and weight + w > width:
                out.append(" ".join(current))
                current, weight = [], 0
            current.append(token)
            weight += w
        out.append(" ".join(current))
    return "\n".join(out)


def _html_of(text: str) -> str:
    paragraphs = (p for p in re.split(r"\n\s*\n", text) if p.strip())
    body = "\n".join(
        "<p>" + htmllib.escape(p, quote=False).replace("\n", "<br>\n") + "</p>" for p in paragraphs
    )
    return f"<html><head></head><body>\n{body}\n</body></html>"


def _text_of(html: str) -> str:
    tree = LexborHTMLParser(html)
    for node in tree.css("script, style, head"):
        node.decompose()
    root = tree.body or tree.root
    raw = root.text(separator="\n") if root is not None else ""
    lines = [" ".join(line.split()) for line in raw.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


class _Marker:
    """Numbers distinct links in order of appearance."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def __call__(self, match: re.Match[str]) -> str:
        url = match.group(0)
        tail = ""
        while url and url[-1] in _TRAILING:  # sentence punctuation after a bare link
            url, tail = url[:-1], url[-1] + tail
        i = self.index.setdefault(url, len(self.index))
        return f"\x00U{i}\x00{tail}"


def _part_text(msg: EmailMessage, kind: str) -> str | None:
    part = msg.get_body(preferencelist=(kind,))
    if part is None:
        return None
    content = part.get_content()
    return content if isinstance(content, str) and content.strip() else None


def extract(raw: bytes, source: str, lang: str) -> Template | None:
    """The template in ``raw``, or None when no usable text or HTML body can be read."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    try:
        subject = " ".join(str(msg.get("subject", "")).split())
        html = _part_text(msg, "html")
        text = _part_text(msg, "plain")
    except _EXTRACT_ERRORS:
        return None
    if not subject or (html is None and text is None):
        return None
    if html is not None and len(html) > _MAX_HTML or text is not None and len(text) > _MAX_TEXT:
        return None
    text = text if text is not None else _text_of(html or "")
    html = html if html is not None else _html_of(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    html = html.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    if len(text.strip()) < _MIN_TEXT:
        return None
    marker = _Marker()
    text = _PLACEHOLDER_RCPT.sub(RCPT_MARK, _URL.sub(marker, text))
    html = _PLACEHOLDER_RCPT.sub(RCPT_MARK, _URL.sub(marker, html))
    if not marker.index:  # a spam run always sells something: give it a link
        marker.index["call-to-action"] = 0
        text += "\n\n\x00U0\x00\n"
        end = html.lower().rfind("</body>")
        link = '\n<p><a href="\x00U0\x00">\x00U0\x00</a></p>\n'
        html = html[:end] + link + html[end:] if end >= 0 else html + link
    wrapped_text, wrapped_html = _wrap(text, 76), _wrap(html, 160)
    if wrapped_text is None or wrapped_html is None:
        return None
    body = _BODY_OPEN.search(wrapped_html)
    return Template(
        source=source,
        lang=lang,
        subject=subject,
        text=wrapped_text,
        html=wrapped_html,
        breaks=tuple(m.end() for m in _BREAK.finditer(wrapped_html)),
        body_at=body.end() if body else 0,
        body_end=end if (end := wrapped_html.lower().rfind("</body>")) >= 0 else len(wrapped_html),
        urls=len(marker.index),
    )


def _english_spam(item: corpus.Item) -> bool:
    return item.label == "spam"


def _german(item: corpus.Item) -> bool:
    return item.get("lang_heuristic") == "de"


def _not_german(item: corpus.Item) -> bool:
    return item.get("lang_heuristic") != "de"


# Where campaign i takes its template: SpamAssassin spam, German phish, other phish, ...
_SOURCES: tuple[tuple[str, Callable[[corpus.Item], bool]], ...] = (
    (corpus.SPAMASSASSIN, _english_spam),
    (corpus.PHISHING_POT, _german),
    (corpus.PHISHING_POT, _not_german),
)


def pick_templates(rng: random.Random, n: int) -> tuple[Template, ...]:
    """``n`` distinct templates, round-robin over the sources above (so one is German)."""
    out: list[Template] = []
    candidates: dict[int, list[corpus.Item]] = {}
    for i in range(n):
        which = i % len(_SOURCES)
        name, wanted = _SOURCES[which]
        if which not in candidates:
            pool = [item for item in corpus.items(name) if wanted(item)]
            rng.shuffle(pool)
            candidates[which] = pool
        pool = candidates[which]
        while pool:
            item = pool.pop()
            lang = item.get("lang_heuristic") or "en"
            source = f"{name}/{item.path.relative_to(item.path.parents[1]).as_posix()}"
            template = extract(item.path.read_bytes(), source, lang)
            if template is not None:
                out.append(template)
                break
    return tuple(out)
