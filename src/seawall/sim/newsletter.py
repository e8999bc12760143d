"""Legitimate bulk mail: a newsletter an ESP sends to many subscribers, one copy each.

Copies differ only in the recipient's name and the unsubscribe token, come from the
ESP's few fixed, properly named servers, and carry List-Unsubscribe (RFC 2369, RFC 8058).
"""

from __future__ import annotations

import email
import email.policy
import html as htmllib
import random
import re
from dataclasses import dataclass
from email.message import EmailMessage

from seawall import corpus
from seawall.message.model import Envelope
from seawall.sim import authn, mime
from seawall.sim.model import SimMessage, Truth
from seawall.sim.world import Host, World

_BRANDS = (
    ("Riverside Digest", "riverside-uni.example.org"),
    ("Northwind Weekly", "northwind.example.com"),
    ("Book Club News", "bookclub.example.com"),
    ("Stadtwerke Aktuell", "stadtwerke.example.org"),
)
_ESP = "esp.example.com"
_LIST_TAG = re.compile(r"^(?:\s*(?:re|fwd?|aw):\s*|\s*\[[^\]]*\]\s*)+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Newsletter:
    """One mailing: the issue's content, who gets it, and when and how fast the ESP sends."""

    name: str  # "newsletter-1"
    brand: str
    domain: str
    issue: int
    title: str
    articles: tuple[tuple[str, str], ...]  # (heading, paragraph)
    start: float
    per_hour: float
    recipients: tuple[int, ...]  # indexes into World.accounts


def _articles(rng: random.Random, n: int) -> tuple[tuple[str, str], ...]:
    """Headings and first paragraphs of list posts from the SpamAssassin ham."""
    items = [i for i in corpus.items(corpus.SPAMASSASSIN) if i.get("subset") == "easy_ham"]
    out: list[tuple[str, str]] = []
    while len(out) < n and items:
        item = items.pop(rng.randrange(len(items)))
        msg = email.message_from_bytes(item.path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        part = msg.get_body(preferencelist=("plain",))
        if part is None:
            continue
        try:
            text = part.get_content()
        except (LookupError, ValueError):
            continue
        paragraphs = [
            " ".join(p.split())
            for p in re.split(r"\n\s*\n", text)
            if p.strip() and not p.lstrip().startswith((">", "--", "_")) and "wrote:" not in p
        ]
        heading = _LIST_TAG.sub("", " ".join(str(msg.get("subject", "")).split())).strip()
        if paragraphs and heading and heading.isascii() and len(paragraphs[0]) >= 80:
            out.append((heading, paragraphs[0][:600]))
    return tuple(out)


def brands(n: int) -> tuple[str, ...]:
    """The sender domains of ``n`` newsletters (:func:`build_newsletters` names them so)."""
    return tuple(dict.fromkeys(_BRANDS[i % len(_BRANDS)][1] for i in range(n)))


def build_newsletters(
    rng: random.Random, world: World, n: int, start: float, hours: float
) -> tuple[Newsletter, ...]:
    out = []
    for i in range(n):
        brand, domain = _BRANDS[i % len(_BRANDS)]
        articles = _articles(rng, 3)
        size = min(len(world.accounts), rng.randint(300, 600))
        out.append(
            Newsletter(
                name=f"newsletter-{i + 1}",
                brand=brand,
                domain=domain,
                issue=rng.randint(12, 240),
                title=articles[0][0] if articles else "This week",
                articles=articles,
                start=start + rng.uniform(0.05, 0.6) * hours * 3600,
                per_hour=rng.uniform(1500, 3000),  # the ESP throttles itself per receiving MX
                recipients=tuple(rng.sample(range(len(world.accounts)), size)),
            )
        )
    return tuple(out)


def _bodies(letter: Newsletter, name: str, unsubscribe: str) -> tuple[str, str]:
    text = [f"{letter.brand} #{letter.issue}", "", f"Hello {name},", ""]
    html = [f"<html><body><h1>{htmllib.escape(letter.brand)} #{letter.issue}</h1>"]
    html.append(f"<p>Hello {htmllib.escape(name)},</p>")
    for n, (heading, paragraph) in enumerate(letter.articles, 1):
        link = f"https://www.{letter.domain}/issue/{letter.issue}/{n}"
        text += [heading, paragraph, f"Read more: {link}", ""]
        html.append(
            f"<h2>{htmllib.escape(heading)}</h2><p>{htmllib.escape(paragraph)}</p>"
            f'<p><a href="{link}">Read more</a></p>'
        )
    text += ["--", f"You get this because you subscribed to {letter.brand}.", unsubscribe]
    html.append(
        f"<hr><p>You get this because you subscribed to {htmllib.escape(letter.brand)}. "
        f'<a href="{unsubscribe}">Unsubscribe</a></p></body></html>'
    )
    return "\n".join(text), "\n".join(html)


def render_newsletter(
    world: World,
    letter: Newsletter,
    server: Host,
    recipient: int,
    at: float,
    seed: int,
    *,
    signed: bool = False,
) -> SimMessage:
    """The copy for one subscriber, sent by ``server``, one of the ESP's MTAs; ``signed``:
    with the ESP's DKIM signature for the brand's domain (sim/authn.py)."""
    rng = random.Random(seed)
    account = world.accounts[recipient]
    token = f"{rng.getrandbits(96):024x}"
    unsubscribe = f"https://{_ESP}/u/{token}"
    text, html = _bodies(letter, account.display.partition(" ")[0], unsubscribe)
    entity = mime.multipart(
        "alternative",
        f"=_nl_{letter.name}_{token[:12]}",
        [
            mime.leaf("text/plain", text, "utf-8", "quoted-printable"),
            mime.leaf("text/html", html, "utf-8", "quoted-printable"),
        ],
    )
    helo = server.rdns or f"[{server.ip}]"
    qid = mime.queue_id(rng)
    mid = f"{token}.{letter.issue}@{_ESP}"
    fields = [
        ("Received", mime.mx_received(helo, server.rdns, server.ip, qid, (account.name,), at)),
        ("From", mime.address(letter.brand, f"news@{letter.domain}")),
        ("To", mime.address(account.display, account.name)),
        ("Subject", mime.header_text(f"{letter.brand} #{letter.issue}: {letter.title}")),
        ("Date", mime.format_date(at - 2, "+0000")),
        ("Message-ID", f"<{mid}>"),
        ("List-Id", f"{letter.brand} <{letter.name}.{letter.domain}>"),
        ("List-Unsubscribe", f"<{unsubscribe}>,\n <mailto:unsubscribe-{token}@{_ESP}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ("Precedence", "bulk"),
        ("Feedback-ID", f"{letter.issue}:{letter.name}:{letter.domain}:esp"),
    ]
    envelope = Envelope(
        client_ip=server.ip,
        helo=helo,
        mail_from=f"bounce-{token}@{_ESP}",  # VERP: the bounce names the recipient's token
        rcpts=(account.name,),
        queue_id=qid,
        hostname=server.rdns,
    )
    truth = Truth(mid, "newsletter", letter.name, server.ip, None, False, at)
    raw = mime.message(fields, entity)
    if signed:
        raw = authn.sign(raw, letter.domain)
    return SimMessage(at, envelope, raw, truth)
