"""One spam copy: a campaign's template, mutated, wrapped and forged the way its bot does it."""

from __future__ import annotations

import random

from seawall.message.model import Envelope
from seawall.sim import mime, words
from seawall.sim.campaign import Campaign
from seawall.sim.model import SimMessage, Truth
from seawall.sim.mutate import (
    TOOLS,
    boundary,
    forged_helo,
    forged_received,
    message_id,
    order_number,
    personalise,
    spam_url,
)
from seawall.sim.recipients import pick_recipients
from seawall.sim.world import Bot, World

_LAYOUTS = ("html", "text", "alternative")
_LAYOUT_WEIGHTS = (35, 25, 40)
_RCPT_COUNTS = (1, 2, 3, 4, 5)
_RCPT_WEIGHTS = (50, 20, 15, 10, 5)


def _charset(rng: random.Random, lang: str) -> str:
    if lang == "de":
        return rng.choice(("utf-8", "iso-8859-1", "iso-8859-15"))
    return rng.choice(("utf-8", "utf-8", "windows-1252", "us-ascii"))


def _sender(rng: random.Random, campaign: Campaign) -> tuple[str, str]:
    first, last = rng.choice(words.FIRST_NAMES), rng.choice(words.LAST_NAMES)
    local = rng.choice((f"{first}.{last}", f"{rng.choice(words.WORDS)}{rng.randint(1, 999)}"))
    local = local.encode("ascii", "ignore").decode().lower() or "info"
    return f"{first} {last}", f"{local}@{rng.choice(campaign.sender_domains)}"


def render_spam(
    world: World, campaign: Campaign, bot: Bot, ip: str, rdns: str | None, at: float, seed: int
) -> SimMessage:
    """The copy ``bot`` (at ``ip`` now) sends at ``at``; everything else comes from ``seed``."""
    rng = random.Random(seed)
    template = campaign.template
    lang = "de" if template.lang == "de" else "en"
    rcpts = pick_recipients(world, rng, rng.choices(_RCPT_COUNTS, _RCPT_WEIGHTS)[0])
    first = rcpts[0]
    helo = forged_helo(rng, bot, ip, rdns)
    qid = mime.queue_id(rng)
    tool = rng.choice(campaign.tools)

    price = f"{rng.randint(9, 499)}.{rng.choice((95, 99, 0, 50)):02d}"
    greeting = None
    if rng.random() < 0.8:
        greeting = rng.choice(words.GREETINGS[lang]).format(first=first.first, last=first.last)
    reference = None
    if rng.random() < 0.7:
        order = order_number(rng, campaign.order_style)
        reference = rng.choice(words.REFERENCES[lang]).format(order=order, price=price)
    urls = [spam_url(rng, campaign.sites, campaign.throwaways) for _ in range(template.urls)]
    text, html = personalise(
        template, rng, urls=urls, rcpt=first.address, greeting=greeting, reference=reference
    )

    charset = _charset(rng, template.lang)
    layout = rng.choices(_LAYOUTS, _LAYOUT_WEIGHTS)[0]
    text_part = mime.leaf("text/plain", text, charset, rng.choice(mime.ENCODINGS))
    html_part = mime.leaf("text/html", html, charset, rng.choice(mime.ENCODINGS))
    if layout == "text":
        entity = text_part
    elif layout == "html":
        entity = html_part
    else:
        entity = mime.multipart("alternative", boundary(rng, tool), [text_part, html_part])

    name, sender = _sender(rng, campaign)
    mail_from = sender if rng.random() < 0.6 else _sender(rng, campaign)[1]
    host = bot.machine if tool == "outlook-express" else sender.partition("@")[2]
    mid = message_id(rng, tool, at, host)
    subject = rng.choice(campaign.subjects)
    to = mime.address(f"{first.first} {first.last}" if rng.random() < 0.5 else None, first.address)
    fields = [
        ("Received", mime.mx_received(helo, rdns, ip, qid, tuple(r.address for r in rcpts), at)),
        *(("Received", hop) for hop in forged_received(rng, at + bot.skew_s, bot.timezone, bot)),
        ("From", mime.address(name, sender)),
        ("To", to if len(rcpts) == 1 or rng.random() < 0.5 else "undisclosed-recipients:;"),
        ("Subject", mime.header_text(subject, charset)),
        ("Date", mime.format_date(at + bot.skew_s, bot.timezone)),
        ("Message-ID", f"<{mid}>"),
    ]
    mailer = TOOLS[tool]
    if mailer:
        fields.append(("X-Mailer", mailer))
    if tool == "outlook-express":
        fields += [
            ("X-Priority", "3"),
            ("X-MimeOLE", "Produced By Microsoft MimeOLE V6.00.2900.2180"),
        ]
    envelope = Envelope(
        client_ip=ip,
        helo=helo,
        mail_from=mail_from,
        rcpts=tuple(r.address for r in rcpts),
        queue_id=qid,
        hostname=rdns,
    )
    truth = Truth(mid, "spam", campaign.name, ip, bot.account, True, at)
    return SimMessage(at, envelope, mime.message(fields, entity), truth)
