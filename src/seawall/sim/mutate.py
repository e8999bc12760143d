"""The per-copy changes bots make so no two copies hash alike, and the forgeries they add.

Every function draws from the caller's RNG only, so a copy is fixed by its seed.
"""

from __future__ import annotations

import hashlib
import html as htmllib
import random
import re
import string
import time

from seawall.sim import words
from seawall.sim.mime import format_date
from seawall.sim.templates import RCPT_MARK, URL_MARK, Template
from seawall.sim.world import Bot

_LOOKALIKE = {"o": "0", "i": "1", "l": "1", "e": "3", "a": "@", "s": "$"}
_LETTERS = bytes(string.ascii_lowercase.encode()[b % 26] for b in range(256))
_WORD = re.compile(r"[^\W\d_]+")
_HIDDEN = (
    '<div style="display:none">{}</div>',
    '<font color="#ffffff" size="1">{}</font>',
    '<span style="font-size:1px;color:#fefefe">{}</span>',
    "<!-- {} -->",
    '<p style="font-size:9px;color:#999999">{}</p>',
)
# Bulk tools: the X-Mailer they write (None: they write none) and their Message-ID shape.
TOOLS = {
    "outlook-express": "Microsoft Outlook Express 6.00.2900.2180",
    "the-bat": "The Bat! (v3.51.10) Professional",
    "php-mailer": "PHPMailer 5.2.1",
    "qmail-inject": None,
    "darkmailer": None,
}


def subject_pool(rng: random.Random, base: str, lang: str, size: int) -> tuple[str, ...]:
    """Up to ``size`` distinct variants of ``base``: synonyms, look-alikes, prefixes, suffixes."""
    prefixes = words.SUBJECT_PREFIXES["de" if lang == "de" else "en"]
    pool = [base]
    seen = {base}
    for _ in range(size * 50):
        if len(pool) >= size:
            break
        s = base
        if rng.random() < 0.5:
            s = _swap_synonym(rng, s)
        if rng.random() < 0.2:
            s = _lookalike(rng, s)
        if rng.random() < 0.08:
            s = s.upper()
        if rng.random() < 0.35:
            s = rng.choice(prefixes) + s
        if rng.random() < 0.5:
            s = s + _suffix(rng)
        if s not in seen:
            seen.add(s)
            pool.append(s)
    return tuple(pool)


def _swap_synonym(rng: random.Random, s: str) -> str:
    found = [m for m in _WORD.finditer(s) if m.group(0).lower() in words.SYNONYMS]
    if not found:
        return s
    m = rng.choice(found)
    return s[: m.start()] + rng.choice(words.SYNONYMS[m.group(0).lower()]) + s[m.end() :]


def _lookalike(rng: random.Random, s: str) -> str:
    found = [m for m in _WORD.finditer(s) if len(m.group(0)) >= 4]
    if not found:
        return s
    m = rng.choice(found)
    word = m.group(0)
    spots = [i for i, c in enumerate(word) if c.lower() in _LOOKALIKE]
    if not spots:
        return s
    i = rng.choice(spots)
    word = word[:i] + _LOOKALIKE[word[i].lower()] + word[i + 1 :]
    return s[: m.start()] + word + s[m.end() :]


def _suffix(rng: random.Random) -> str:
    n = rng.randint(100, 99999)
    forms = (f" {n}", f" #{n}", f" [{n:x}]", f" - ID {n}", f" ({n % 97})", " !!", "...", " !")
    return rng.choice(forms)


def gibberish(rng: random.Random) -> str:
    """4 to 11 random letters (from random bytes: a slight bias is of no matter here)."""
    return rng.randbytes(4 + rng.getrandbits(3)).translate(_LETTERS).decode("ascii")


def noise(rng: random.Random) -> str:
    """One hash-buster line: dictionary words, gibberish, or both."""
    n = rng.randint(4, 14)
    style = rng.random()
    if style < 0.5:
        return " ".join(rng.choices(words.WORDS, k=n))
    if style < 0.75:
        return " ".join(gibberish(rng) for _ in range(n))
    return " ".join(
        rng.choice(words.WORDS) if rng.random() < 0.6 else gibberish(rng) for _ in range(n)
    )


def order_number(rng: random.Random, style: int) -> str:
    if style == 0:
        return f"A{rng.randint(100000, 999999)}"
    if style == 1:
        return "".join(rng.choices(string.ascii_uppercase, k=3)) + f"-{rng.randint(10000, 99999)}"
    return str(rng.randint(10**7, 10**8 - 1))


def spam_url(rng: random.Random, sites: tuple[str, ...], throwaways: tuple[str, ...]) -> str:
    """A link with a per-copy token: mostly via a throwaway domain, sometimes the site."""
    token = f"{rng.getrandbits(64):016x}"[: rng.randint(8, 16)]
    if rng.random() < 0.65:
        host = rng.choice(throwaways)
        return rng.choice(
            (f"http://{host}/{token}", f"http://{host}/r/?id={token}", f"https://{host}/{token}/")
        )
    site = rng.choice(sites)
    page = rng.choice(words.WORDS)
    return rng.choice((f"https://www.{site}/{page}/{token}", f"http://{site}/{page}.php?u={token}"))


def personalise(
    template: Template,
    rng: random.Random,
    *,
    urls: list[str],
    rcpt: str,
    greeting: str | None,
    reference: str | None,
) -> tuple[str, str]:
    """The copy's text and HTML: greeting, reference, hash-busters, links and recipient."""
    paragraphs = template.text.split("\n\n")
    head = [line for line in (greeting, reference) if line]
    busters = rng.randint(1, 3)
    for _ in range(busters):
        paragraphs.insert(rng.randint(1, len(paragraphs)), noise(rng))
    if rng.random() < 0.4:
        head.insert(0, noise(rng))
    tail = "\n".join(noise(rng) for _ in range(rng.randint(1, 4)))
    text = "\n\n".join(["\n".join(head), *paragraphs, tail] if head else [*paragraphs, tail])

    inserts: list[tuple[int, str]] = []
    if head:
        inserts.append(
            (template.body_at, "".join(f"<p>{htmllib.escape(line)}</p>\n" for line in head))
        )
    spots = rng.sample(template.breaks, min(len(template.breaks), rng.randint(1, 3)))
    for spot in spots:
        inserts.append((spot, "\n" + rng.choice(_HIDDEN).format(noise(rng)) + "\n"))
    bottom = rng.choice(_HIDDEN).format(noise(rng))
    inserts.append((template.body_end, "\n" + bottom + "\n"))
    inserts.sort(key=lambda pair: pair[0])
    pieces, last = [], 0
    for at, piece in inserts:
        pieces += [template.html[last:at], piece]
        last = at
    pieces.append(template.html[last:])
    html = "".join(pieces)

    def link(m: re.Match[str]) -> str:
        return urls[int(m.group(1)) % len(urls)]

    text = URL_MARK.sub(link, text).replace(RCPT_MARK, rcpt)
    html = URL_MARK.sub(link, html).replace(RCPT_MARK, rcpt)
    return text, html


def forged_helo(rng: random.Random, bot: Bot, ip: str, rdns: str | None) -> str:
    """What the bot says in HELO: by its family's habit, rarely the truth."""
    style = bot.helo_style
    if style == "word":
        return rng.choice((gibberish(rng), rng.choice(words.WORDS)))
    if style == "literal":
        return f"[{ip}]"
    if style == "provider":
        return f"mail.{rng.choice(words.BIG_PROVIDERS)}"
    if style == "machine":
        return bot.machine
    return rdns or f"[{ip}]"


def forged_received(rng: random.Random, at: float, tz: str, bot: Bot) -> list[str]:
    """0 to 2 fake hops below ours, claiming the copy came from somewhere else first."""
    out = []
    t = at
    for _ in range(rng.choices((0, 1, 2), weights=(45, 40, 15))[0]):
        t -= rng.uniform(5, 600)
        date = format_date(t, tz)
        octets = (rng.randint(11, 223), rng.randrange(256), rng.randrange(256), rng.randint(1, 254))
        fake_ip = ".".join(map(str, octets))
        provider = rng.choice(words.BIG_PROVIDERS)
        style = rng.randrange(4)
        if style == 0:
            hop = f"from [{fake_ip}] by mail.{provider} with HTTP; {date}"
        elif style == 1:
            hop = (
                f"from {bot.machine} ([{fake_ip}])\n\tby smtp.{provider} with Microsoft "
                f"SMTPSVC(6.0.3790.1830); {date}"
            )
        elif style == 2:
            hop = (
                f"(qmail {rng.randint(1000, 65000)} invoked by uid {rng.randint(80, 1000)}); {date}"
            )
        else:
            hop = (
                f"from {gibberish(rng)}.{provider} (HELO {gibberish(rng)}) ({fake_ip})\n\tby "
                f"mx{1 + rng.randrange(9)}.{provider} with SMTP; {date}"
            )
        out.append(hop)
    return out


def message_id(rng: random.Random, tool: str, at: float, host: str) -> str:
    """A Message-ID (without brackets) in the shape ``tool`` writes."""
    if tool == "outlook-express":
        return (
            f"{rng.getrandbits(48):012x}${rng.getrandbits(32):08x}${rng.getrandbits(32):08x}@{host}"
        )
    if tool == "qmail-inject":
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(at))
        return f"{stamp}.{rng.randint(1000, 65000)}.qmail@{host}"
    if tool == "php-mailer":
        return f"{hashlib.md5(rng.getrandbits(64).to_bytes(8, 'big')).hexdigest()}@{host}"
    if tool == "the-bat":
        return f"{rng.randint(10**8, 10**9)}.{rng.randint(10**7, 10**8)}@{host}"
    return "".join(rng.choices(string.ascii_uppercase + string.digits, k=20)) + f"@{host}"


def boundary(rng: random.Random, tool: str) -> str:
    if tool == "outlook-express":
        a, b, c = rng.getrandbits(16), rng.getrandbits(32), rng.getrandbits(32)
        return f"----=_NextPart_000_{a:04X}_{b:08X}.{c:08X}"
    if tool == "php-mailer":
        return f"b1_{rng.getrandbits(128):032x}"
    return f"=_{rng.getrandbits(64):016x}"
