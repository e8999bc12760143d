"""Phishing evidence that does not depend on having seen the campaign: a brand named by a
sender who is not the brand, account alerts in any common language, forms that ask for
passwords or cards, hidden text and image-only mail; and the lures of ``phishing_lures``:
words in look-alike letters, Bitcoin addresses, advance-fee offers.

The brands (names and their own domains) and the alert words are data,
``policy/phishing.toml``; a site adds its own with ``[detectors.phishing] brands_file``.
"""

from __future__ import annotations

import email.utils
import functools
import itertools
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from selectolax.lexbor import LexborHTMLParser

from seawall.config import PhishingSettings
from seawall.detectors.base import Context, Hit, Parts
from seawall.detectors.phishing_lures import (
    Phrases,
    bitcoin_address,
    discussion_list,
    large_sum,
    mixed_script_words,
    words_of,
)
from seawall.errors import ConfigError
from seawall.message.hosts import domain_of
from seawall.message.htmlsource import html_sources
from seawall.message.invisible import broken_words, without_invisible
from seawall.message.model import Message, Url
from seawall.message.parse import ParseLimits

_MAX_FIELD = 998  # RFC 5322 §2.1.1: display names and subjects are cut to one line
_BODY_CHARS = 3000  # of the body text searched for brands and alert words
_FOLLOWED = frozenset({"href", "text", "bare", "action", "obfuscated"})  # links a reader uses
# Input fields that ask for a secret: by type, or by a name, id or placeholder that says so.
_INPUT = re.compile(r"<input\b[^>]{0,1000}+>?", re.IGNORECASE)
_SECRET_TYPE = re.compile(r"\btype\s*=\s*[\"']?password", re.IGNORECASE)
_SECRET_NAME = re.compile(
    r"\b(?:name|id|placeholder|autocomplete)\s*=\s*[\"']?[^\"'>]{0,60}?"
    r"(?:pass(?:word|wd|wort)?|pwd|senha|contrase|mot.de.passe|cc-?num|card.?num|cardnumber"
    r"|cvv|cvc|csc|cc-exp|expir|ssn|social.?sec|pin\b|tan\b|kennwort)",
    re.IGNORECASE,
)
_FORM = re.compile(r"<form\b", re.IGNORECASE)
_MAX_INPUTS = 200
# Inline styles that hide an element's text from the reader.
_HIDING = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?:\.0*)?(?:px|pt|em|%)?\s*(?:;|\"|'|$)"
    r"|opacity\s*:\s*0(?:\.0*)?\s*(?:;|\"|'|$)|(?:max-)?height\s*:\s*0(?:px)?\s*;[^\"']*overflow\s*:\s*hidden",
    re.IGNORECASE,
)
_HIDING_LOWER = re.compile(_HIDING.pattern)  # the same, on lower-case text
_HIDING_WORDS = ("display", "visibility", "font-size", "opacity", "height")
_MAX_STYLED = 2000  # styled elements looked at per part
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
# Where a name's words run together in camel case ("TrustedViagra") or are joined by a
# dot or an underscore ("Pay.Pal.", "Mercado.Pago").
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])[._](?=[A-Za-z])")


@dataclass(frozen=True, slots=True)
class Brand:
    key: str
    names: tuple[str, ...]
    domains: frozenset[str]

    def owns(self, domain: str | None) -> bool:
        """``domain`` (registrable) is the brand's own or a subdomain of one."""
        if not domain:
            return False
        return domain in self.domains or any(domain.endswith("." + d) for d in self.domains)


@dataclass(frozen=True, slots=True)
class Lexicon:
    """The brands and the alert words, each compiled into one pattern."""

    brands: Mapping[str, Brand]  # by lower-case name, spaces single
    brand_names: Phrases
    action: Phrases
    objects: Phrases
    fraud: Phrases  # the words of advance-fee offers
    prize: Phrases  # the words of prize and giveaway lures
    freemail: frozenset[str]  # registrable domains of free mailboxes


def build_lexicon(document: Mapping[str, Any], where: str) -> Lexicon:
    """The lexicon of a parsed ``phishing.toml``; ConfigError naming what is wrong."""
    brands: dict[str, Brand] = {}
    for key, body in dict(document.get("brands", {})).items():
        names, domains = body.get("names"), body.get("domains")
        if not isinstance(names, list) or not names or not isinstance(domains, list):
            raise ConfigError(f"{where}: brands.{key} needs a list of names and of domains")
        brand = Brand(key, tuple(str(n) for n in names), frozenset(str(d).lower() for d in domains))
        for name in brand.names:
            brands[" ".join(name.lower().split())] = brand
    actions: list[str] = []
    objects: list[str] = []
    for language, body in dict(document.get("lexicon", {})).items():
        if not isinstance(body.get("action"), list) or not isinstance(body.get("object"), list):
            raise ConfigError(f"{where}: lexicon.{language} needs action and object lists")
        actions += body["action"]
        objects += body["object"]
    lures: dict[str, list[str]] = {"fraud": [], "prize": []}
    for section, found in lures.items():
        for language, body in dict(document.get(section, {})).items():
            if not isinstance(body.get("lure"), list):
                raise ConfigError(f"{where}: {section}.{language} needs a lure list")
            found += body["lure"]
    freemail = dict(document.get("freemail", {})).get("domains", [])
    if not (brands and actions and objects and all(lures.values())) or not isinstance(
        freemail, list
    ):
        raise ConfigError(f"{where}: no brands, alert words, fraud lures or freemail domains")
    return Lexicon(
        brands,
        Phrases(list(brands), where),
        Phrases(actions, where),
        Phrases(objects, where),
        Phrases(lures["fraud"], where),
        Phrases(lures["prize"], where),
        frozenset(str(d).lower() for d in freemail),
    )


@functools.cache
def load_lexicon(site_file: str = "") -> Lexicon:
    """The shipped ``phishing.toml`` with ``site_file`` (brands and words) merged over it."""
    text = resources.files("seawall.policy").joinpath("phishing.toml").read_text("utf-8")
    document: dict[str, Any] = tomllib.loads(text)
    where = "phishing.toml (packaged)"
    if site_file:
        try:
            over = tomllib.loads(Path(site_file).read_text("utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"detectors.phishing.brands_file {site_file}: {exc}") from None
        for section in ("brands", "lexicon", "fraud", "prize", "freemail"):
            document[section] = {**document.get(section, {}), **over.get(section, {})}
        where = site_file
    return build_lexicon(document, where)


# The common shapes of a From field, read as ``email.utils.parseaddr`` reads them: a bare
# address, or an unquoted (or simply quoted) name and an address in angle brackets.
_ADDR = r"([^\s<>\"(),;:\\@\[\]]+@[^\s<>\"(),;:\\@\[\]]+)"
_PLAIN_FROM = re.compile(
    rf"\s*(?:{_ADDR}|(?:\"([^\"\\]*)\"|([\w\s.'-]*?))\s*<{_ADDR}>)\s*", re.ASCII
)


def _parse_from(value: str) -> tuple[str, str]:
    plain = _PLAIN_FROM.fullmatch(value)
    if plain is None:
        return email.utils.parseaddr(value)
    bare, quoted, words, address = plain.groups()
    if bare is not None:
        return "", bare
    return (quoted if quoted is not None else " ".join(words.split())), address


# A name with a comma before the address ("Amazon Gutschein, <x@y.example>"), which
# parseaddr reads as two addresses, the first without a domain.
_ANGLE_TAIL = re.compile(r"(.*?)<([^<>\s]+@[^<>\s]+)>\s*")
_NAME_JUNK = " \t\"',_.()"


def _from(msg: Message) -> tuple[str, str | None]:
    """The From display name and the domain of its address (as ``Url.domain``)."""
    value = msg.headers.get("From", "")[:_MAX_FIELD]
    name, address = _parse_from(value)
    if "@" not in address and (tail := _ANGLE_TAIL.fullmatch(value)) is not None:
        name, address = tail.group(1).strip(_NAME_JUNK), tail.group(2)
    host = address.rpartition("@")[2].lower().rstrip(".>") if "@" in address else ""
    return name, domain_of(host) if host else None


class PhishingDetector:
    """Brand impersonation, credential harvesting and HTML tricks."""

    name: ClassVar[str] = "phishing"
    io: ClassVar[bool] = False
    symbols: ClassVar[Mapping[str, str]] = {
        "PHISH_BRAND_SENDER": "The sender's name or the subject names a brand, but the From "
        "domain and a link are not the brand's",
        "PHISH_BRAND_BODY": "The text names a brand and asks to act on an account, but the "
        "sender and a link are not the brand's",
        "PHISH_ACCOUNT_ALERT": "Account alert language (verify, suspended, unlock... in any "
        "common language) beside a link or a form",
        "PHISH_FORM_FOREIGN": "An HTML form that posts to an IP address or another site "
        "than the sender's",
        "PHISH_SECRET_FIELD": "An HTML form asks for a password, card number, CVV or PIN",
        "PHISH_HIDDEN_TEXT": "Text hidden from the reader by inline styles (display:none, "
        "font-size:0...) or written in its background's colour, beyond a preview line",
        "PHISH_IMAGE_ONLY": "HTML with an image and a link but almost no text",
        "PHISH_MIXED_SCRIPT": "Words spelt with look-alike letters of another script "
        "(a Cyrillic a in 'wallet') or Latin small capitals, to read as one thing and "
        "match as another",
        "PHISH_BITCOIN_ADDRESS": "A Bitcoin address (its checksum holds) in the subject or "
        "text: extortion and fake investments ask to pay to one",
        "PHISH_PRIZE": "Three words of a prize, gift-card, survey or giveaway lure (in any "
        "common language) beside a link to another site than the sender's",
        "PHISH_ADVANCE_FEE": "A large sum of money with the words of an inheritance, a "
        "donation or a prize, from a free mailbox or asking for replies elsewhere",
        "PHISH_INVISIBLE_CHARS": "Invisible characters inside the words of the sender's name "
        "or the subject ('Led\u200bger'), put there to slip past word filters",
    }

    @classmethod
    def build(cls, parts: Parts) -> PhishingDetector:
        settings = parts.config.detectors.phishing
        return cls(
            settings, load_lexicon(settings.brands_file), ParseLimits.from_config(parts.config)
        )

    def __init__(self, settings: PhishingSettings, lexicon: Lexicon, limits: ParseLimits) -> None:
        self.settings = settings
        self.lexicon = lexicon
        self.limits = limits

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]:
        hits: list[Hit] = []
        display, sender = _from(msg)
        subject = msg.subject[:_MAX_FIELD]
        broken = broken_words(display) + broken_words(subject)
        if broken:  # then read as the reader reads them
            hits.append(Hit("PHISH_INVISIBLE_CHARS", options=tuple(dict.fromkeys(broken))[:3]))
            display, subject = without_invisible(display), without_invisible(subject)
        links = [u for u in msg.urls if u.source in _FOLLOWED]
        text = msg.text[:_BODY_CHARS]
        subject = " ".join(subject.split())
        searched = subject + " \n " + text
        lowered = searched.lower()  # one lower-case copy for every word search
        words: frozenset[str] = frozenset()
        alert: tuple[str, ...] = ()
        if links:  # alert words without a link or a form lure nobody anywhere
            words = words_of(searched, lowered)
            alert = self._alert(searched, words, lowered)
            if alert:
                hits.append(Hit("PHISH_ACCOUNT_ALERT", options=alert))
            prize = self._prize(searched, words, sender, links, lowered)
            if prize:
                hits.append(Hit("PHISH_PRIZE", options=prize))
        listed = discussion_list(msg)
        if not listed:  # lists discuss brands all day
            hits.extend(self._brands(display, subject, text, words, sender, links, alert))
        mixed = mixed_script_words(f"{display[:_MAX_FIELD]} \n {searched}")
        if mixed:
            hits.append(Hit("PHISH_MIXED_SCRIPT", options=tuple(mixed)))
        if "bitcoin" in lowered or "btc" in lowered:  # who asks for bitcoin says so
            wallet = bitcoin_address(searched)
            if wallet is not None:
                hits.append(Hit("PHISH_BITCOIN_ADDRESS", options=(wallet,)))
        hits.extend(self._advance_fee(msg, searched, words, sender, listed, lowered))
        # A search box posting to a partner site is common in newsletters: a form counts
        # when it posts to an address, or beside account alert words to another site than
        # the sender's or its mailing service's (the server that handed us the mail:
        # corpora, 2 of 3 ham hits, none of 90 spam ones).
        forms = [u for u in msg.urls if u.source == "action"]
        away = [
            u.host
            for u in forms
            if u.is_ip or (alert and u.domain != sender and not msg.on_source_site(u.host))
        ]
        if away:
            hits.append(Hit("PHISH_FORM_FOREIGN", options=tuple(dict.fromkeys(away))[:3]))
        images = any(u.source == "src" for u in msg.urls)
        if images and links and msg.has_html and not self._has_letters(msg.text, 30):
            hits.append(Hit("PHISH_IMAGE_ONLY"))
        for html in html_sources(msg, self.limits):
            hits.extend(self._markup(html))
        camouflaged = self._camouflaged(msg)
        if camouflaged:
            hits.append(Hit("PHISH_HIDDEN_TEXT", options=(camouflaged,)))
        return _unique(hits)

    def _camouflaged(self, msg: Message) -> str:
        """The letters an HTML part writes in its background's colour, when they are more
        than a preview line or come after the text has begun (a hash-buster's filler)."""
        for part in msg.parts:
            total = part.camouflaged
            if total and (
                total >= self.settings.min_hidden_letters
                or total - part.camouflaged_lead >= self.settings.min_camouflaged_letters
            ):
                return f"{total} letters in the background's colour"
        return ""

    def _alert(self, text: str, words: frozenset[str], lowered: str) -> tuple[str, ...]:
        """The first action and object words, when the text has both."""
        action = self.lexicon.action.search(text, words, lowered)
        if action is None:
            return ()
        thing = self.lexicon.objects.search(text, words, lowered)
        if thing is None:
            return ()
        return (" ".join(action.group().lower().split()), " ".join(thing.group().lower().split()))

    def _brands(
        self,
        display: str,
        subject: str,
        text: str,
        words: frozenset[str],
        sender: str | None,
        links: list[Url],
        alert: tuple[str, ...],
    ) -> list[Hit]:
        """A brand named where the reader looks, by a sender and a link that are not the
        brand's; or a From that claims the brand's domain over alert words with a link away
        from the brand (the 2004 style: a forged service@bank.example, real links to the
        bank's pages, and one to the phisher's)."""
        lexicon = self.lexicon
        name = display[:_MAX_FIELD]
        if _CAMEL.search(name) is not None:
            # "TrustedViagra", "BiggestViagraStore", "Pay.Pal.": a name run together, read
            # as its words too (after the name as written, for "eBay" and "PayPal").
            name = f"{name} \n {_CAMEL.sub(' ', name)}"
        for where, value, seen, symbol, weight in (
            ("name", name, words_of(name), "PHISH_BRAND_SENDER", 1.0),
            ("subject", subject if alert else "", words, "PHISH_BRAND_SENDER", 0.5),
            ("body", text if alert else "", words, "PHISH_BRAND_BODY", 1.0),
        ):
            for found in lexicon.brand_names.finditer(value, seen):
                brand = lexicon.brands[" ".join(found.group().lower().split())]
                away = [u.host for u in links if u.is_ip or not brand.owns(u.domain)]
                if links and not away:
                    continue  # every link goes to the brand: a notice about it, forwarded
                if brand.owns(sender):
                    if not alert or not away:
                        continue  # the brand writing about itself
                    where += ", forged From"  # alert words and a link away from the brand
                elif not links and where != "name":
                    continue  # a brand named in passing, with nowhere to go
                # Without links, the brand's name on another sender's mail (replies, phone
                # numbers and attachments are the lure) counts for less.
                evidence = (
                    f"{brand.key} in {where}",
                    f"from {sender or '-'}",
                    away[0][:100] if away else "no link",
                )
                return [Hit(symbol, weight=weight if links else 0.5, options=evidence)]
        return []

    def _prize(
        self,
        searched: str,
        words: frozenset[str],
        sender: str | None,
        links: list[Url],
        lowered: str,
    ) -> tuple[str, ...]:
        """Three different words of a prize or giveaway lure and a link to another site
        than the sender's."""
        if not any(u.is_ip or u.domain != sender for u in links):
            return ()
        found: dict[str, None] = {}
        for match in self.lexicon.prize.finditer(searched, words, lowered):
            found.setdefault(" ".join(match.group().lower().split()))
            if len(found) >= 3:
                return tuple(found)
        return ()

    def _advance_fee(
        self,
        msg: Message,
        searched: str,
        words: frozenset[str],
        sender: str | None,
        listed: bool,
        lowered: str,
    ) -> list[Hit]:
        """A large sum and two words of an inheritance, a donation or a prize, from a free
        mailbox or with replies asked elsewhere than the From domain (not a list's own
        Reply-To).  The headers first: they are cheap and rule out most mail."""
        if sender in self.lexicon.freemail:
            how = f"from {sender}"
        else:
            _, reply = _parse_from(msg.headers.get("Reply-To", "")[:_MAX_FIELD])
            reply_host = reply.rpartition("@")[2].lower().rstrip(".>") if "@" in reply else ""
            replies = domain_of(reply_host) if reply_host else None
            if replies is None or replies == sender or listed:
                return []
            how = f"replies to {replies}"
        lures = {
            " ".join(m.group().lower().split())
            for m in self.lexicon.fraud.finditer(
                searched, words or words_of(searched, lowered), lowered
            )
        }
        if len(lures) < 2:
            return []
        amount = large_sum(searched)
        if amount is None:
            return []
        return [Hit("PHISH_ADVANCE_FEE", options=(amount[:40], *sorted(lures)[:2], how))]

    def _markup(self, html: str) -> list[Hit]:
        hits: list[Hit] = []
        if _FORM.search(html) is not None:
            for count, found in enumerate(_INPUT.finditer(html)):
                tag = found.group()
                if count >= _MAX_INPUTS:
                    break
                if _SECRET_TYPE.search(tag) or _SECRET_NAME.search(tag):
                    hits.append(Hit("PHISH_SECRET_FIELD", options=(tag[:80],)))
                    break
        if _hides(html):
            hidden = _hidden_letters(html)
            if hidden >= self.settings.min_hidden_letters:
                hits.append(Hit("PHISH_HIDDEN_TEXT", options=(f"{hidden} letters",)))
        return hits

    @staticmethod
    def _has_letters(text: str, enough: int) -> bool:
        """The first 2000 characters of ``text`` hold ``enough`` letters (counted only
        until there are)."""
        found = _LETTER.finditer(text[:2000])
        return sum(1 for _ in itertools.islice(found, enough)) >= enough


def _hides(html: str) -> bool:
    """``_HIDING.search(html)``, tried only where one of its property names is."""
    lowered = html.lower()
    for word in _HIDING_WORDS:
        at = lowered.find(word)
        while at >= 0:
            if _HIDING_LOWER.match(lowered, at) is not None:
                return True
            at = lowered.find(word, at + 1)
    return False


def _hidden_letters(html: str) -> int:
    """Letters inside elements whose inline style hides them (outermost elements only)."""
    tree = LexborHTMLParser(html)
    counted: set[int] = set()
    total = 0
    for index, node in enumerate(tree.css("[style]")):
        if index >= _MAX_STYLED:
            break
        if not _hides(node.attrs.get("style") or ""):  # _HIDING.search, found sooner
            continue
        parent, inside = node.parent, False
        for _ in range(30 if counted else 0):  # inside one already counted?
            if parent is None:
                break
            if parent.mem_id in counted:
                inside = True
                break
            parent = parent.parent
        counted.add(node.mem_id)
        if not inside:
            total += len(_LETTER.findall(node.text(deep=True)[:20_000]))
    return total


def _unique(hits: list[Hit]) -> list[Hit]:
    """One hit per symbol: the first, which has the strongest evidence."""
    seen: dict[str, Hit] = {}
    for hit in hits:
        seen.setdefault(hit.symbol, hit)
    return list(seen.values())
