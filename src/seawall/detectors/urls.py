"""Links that hide where they go: IP hosts, shorteners, lying link text, link farms, and pages
on free hosts."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import ClassVar
from urllib.parse import unquote

from seawall.config import UrlsSettings
from seawall.detectors.base import Context, Hit, Parts
from seawall.message.hosts import registrable_domain, same_site
from seawall.message.model import Message

# Registrable domains whose only job is to redirect.  Facts, not a judgement: legitimate
# senders use them too, which is why URL_SHORTENER scores low.
SHORTENERS = frozenset(
    {
        "0rz.tw", "1url.com", "2.gp", "adf.ly", "amzn.to", "bc.vc", "bit.do", "bit.ly",
        "bitly.com", "buff.ly", "clck.ru", "cli.gs", "cutt.ly", "db.tt", "dlvr.it", "fb.me",
        "goo.gl", "gg.gg", "git.io", "is.gd", "j.mp", "lnkd.in", "mcaf.ee", "ow.ly",
        "qr.ae", "qrco.de", "rb.gy", "rebrand.ly", "s.id", "shorturl.at", "shorte.st",
        "snip.ly", "soo.gd", "t.co", "t.ly", "tiny.cc", "tinyurl.com", "tr.im", "trib.al",
        "u.to", "urlz.fr", "v.gd", "x.co", "y2u.be", "yourls.org", "zpr.io",
    }
)  # fmt: skip

# Where anyone can put a page up in minutes under the platform's name, and where phishing
# kits are put: object stores serving HTML, static-site and serverless hosts, free web
# hosts, IPFS gateways, a translation proxy that serves any site under Google's name.  A
# link is to one when its host is the name or under it.  Left out on purpose: blogs
# (blogspot.com, wordpress.com: honest mail quotes them), general CDNs (cloudfront.net,
# amazonaws.com: newsletters' images and downloads), Google Docs, Forms and Sites (surveys
# and shared documents), and code hosts (github.io).
FREE_HOSTS = frozenset(
    {
        "storage.googleapis.com", "firebasestorage.googleapis.com", "appspot.com", "web.app",
        "firebaseapp.com", "pages.dev", "workers.dev", "r2.dev", "netlify.app", "vercel.app",
        "glitch.me", "000webhostapp.com", "weebly.com", "weeblysite.com", "wixsite.com",
        "square.site", "godaddysites.com", "webflow.io", "web.core.windows.net",
        "blob.core.windows.net", "ipfs.io", "dweb.link", "cloudflare-ipfs.com",
        "translate.goog", "ngrok.io", "ngrok-free.app", "replit.app", "repl.co", "surge.sh",
        "mystrikingly.com", "yolasite.com", "jimdosite.com", "carrd.co", "typedream.app",
        "glideapp.io", "backblazeb2.com",
    }
)  # fmt: skip
_VISITED = frozenset({"href", "action", "text", "bare", "obfuscated"})  # not images (src)

# Click-tracking hosts of mail service providers: their hrefs never name the domain the
# link text shows, so the link-text check would flag every honest newsletter.
REDIRECTORS = frozenset(
    {
        "awstrack.me", "ct.sendgrid.net", "sendgrid.net", "list-manage.com", "mcsv.net",
        "mailchi.mp", "rs6.net", "hubspotlinks.com", "hs-sites.com", "mandrillapp.com",
        "mailgun.org", "exacttarget.com", "createsend1.com", "cmail19.com", "cmail20.com",
        "klclick.com", "klclick1.com", "sendibt3.com", "sendinblue.com", "mjt.lu",
        "safelinks.protection.outlook.com", "urldefense.com", "urldefense.proofpoint.com",
        "mimecastprotect.com", "doubleclick.net", "linksynergy.com", "emltrk.com",
        "constantcontact.com", "aweber.com", "icptrack.com", "mkt.com", "sailthru.com",
    }
)  # fmt: skip

# A host name written in link text: "www.paypal.com", "https://paypal.com/login".  Bounded
# by the anchor text length, so stdlib re is safe here.
_TEXT_HOST = re.compile(
    r"(?:https?://)?((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24})(?![a-z0-9-])",
    re.IGNORECASE,
)
_MAX_LINK_TEXT = 300  # longer anchor texts are sentences, not addresses
_MAX_TEXT_CHECKS = 50  # anchors compared per message: a phish needs one, a flood gets 50
_FROM_DOMAIN = re.compile(r"@([\w-]+(?:\.[\w-]+)+)>?\s*$")
_WEB = frozenset({"http", "https"})
# A web address inside a link's query or path: "?url=https%3A%2F%2Fevil.example" (an open
# redirector on a trusted site: the reader sees google.com, the browser lands elsewhere).
_INNER_URL = re.compile(r"(?:[=/]|%3d|%2f)(https?)(?::|%3a)(?://|%2f%2f)([^/?#&%\s]{1,253})", re.I)
# Letters of other scripts that look like Latin ones (Unicode confusables): a host of
# nothing but these reads as a Latin name ("аррle" in Cyrillic).
_LOOKALIKE = frozenset("аеорсухіјѕԁԛԝһӏјκνορτυχαεіοѕ")


@functools.lru_cache(maxsize=8192)
@functools.lru_cache(maxsize=4096)
def _text_host(text: str) -> str | None:
    """The host named by an anchor text that reads as an address, else None.

    Only text that *is* an address counts ("www.bank.com", "https://bank.com/x"): prose
    such as "read the FAQ.html" or "Click here" names nothing.
    """
    text = text.strip().strip("<>[]()\"'").rstrip("/.,;:!")
    if not text or len(text) > _MAX_LINK_TEXT or " " in text:
        return None
    found = _TEXT_HOST.match(text)
    if found is None:
        return None
    rest = text[found.end() :]
    if rest and rest[0] not in "/?#:":
        return None
    host = found.group(1).lower()
    if registrable_domain(host) is None:
        return None  # "file.exe": no public suffix, so not a host name
    return host


class UrlsDetector:
    """Links whose host or presentation is a common spam and phishing trait."""

    name: ClassVar[str] = "urls"
    io: ClassVar[bool] = False
    symbols: ClassVar[Mapping[str, str]] = {
        "URL_IP": "A link to a bare IP address instead of a host name",
        "URL_SHORTENER": "A link through a URL shortener, which hides the destination",
        "URL_TEXT_MISMATCH": "Link text shows one domain, the link goes to another",
        "URL_MANY": "More links than the configured many_urls",
        "URL_OBFUSCATED": "A link written to evade filters: hxxp://, example[.]com, [dot], "
        "a host in %-escapes",
        "URL_USERINFO": "A link with user@ before the host: 'https://bank.com@evil.example/'",
        "URL_PORT": "A web link on a non-standard port",
        "URL_HOMOGRAPH": "A link host that mixes scripts or spells a Latin name in look-alike "
        "letters (an IDN homograph such as 'pаypal.com' with a Cyrillic a)",
        "URL_REDIRECT": "A link through an open redirector: another site's address in its "
        "query or path",
        "URL_FREE_HOSTING": "A link to a page on a free web host, static-site platform, object "
        "store or IPFS gateway, where phishing pages are put up in minutes",
    }

    @classmethod
    def build(cls, parts: Parts) -> UrlsDetector:
        return cls(parts.config.detectors.urls)

    def __init__(self, settings: UrlsSettings) -> None:
        self.settings = settings
        self.shorteners = SHORTENERS | {d.lower().strip(".") for d in settings.shorteners}
        self.redirectors = REDIRECTORS | {d.lower().strip(".") for d in settings.redirectors}
        self.free_hosts = FREE_HOSTS | {d.lower().strip(".") for d in settings.free_hosts}

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]:
        urls = msg.urls
        if not urls:
            return ()
        found: dict[str, list[str]] = {}
        shorteners = self.shorteners
        checks = 0
        for url in urls:
            host = url.host
            if url.is_ip:
                found.setdefault("URL_IP", []).append(host)
            elif host in shorteners or url.domain in shorteners:
                found.setdefault("URL_SHORTENER", []).append(host)
            if url.source == "obfuscated":
                found.setdefault("URL_OBFUSCATED", []).append(url.url[:100])
            if url.source in _VISITED and not url.is_ip and _under(host, self.free_hosts):
                found.setdefault("URL_FREE_HOSTING", []).append(host)
            if not host.isascii() and _homograph(host):
                found.setdefault("URL_HOMOGRAPH", []).append(host[:100])
            if url.scheme not in _WEB:
                continue
            # Normalised URLs are "scheme://authority/path": the authority ends at the "/".
            netloc = url.url[len(url.scheme) + 3 :].partition("/")[0]
            userinfo, at, _ = netloc.rpartition("@")
            if at and "." in userinfo:  # "www.bank.com@evil.example", not "user:pw@"
                found.setdefault("URL_USERINFO", []).append(netloc[:100])
            elif self._odd_port(netloc):
                found.setdefault("URL_PORT", []).append(netloc[:100])
            target = self._redirect(url.url, len(url.scheme) + 3 + len(netloc), url.domain)
            # A mailing service's click counter on the site of the server that handed us
            # the mail is no open redirector (corpora: 11 of the 18 ham hits, 2 of 292 spam).
            if target is not None and not msg.on_source_site(host):
                found.setdefault("URL_REDIRECT", []).append(f"{host}->{target}")
            if url.link_text and checks < _MAX_TEXT_CHECKS:
                checks += 1
                shown = _text_host(url.link_text)
                if shown is not None and not self._honest(shown, host, msg):
                    found.setdefault("URL_TEXT_MISMATCH", []).append(f"{shown}->{host}")
        many = len(urls) > self.settings.many_urls  # the parser keeps each URL once
        if many:
            found["URL_MANY"] = [str(len(urls))]
        return tuple(
            Hit(
                symbol,
                weight=_ip_weight(opts, len(urls), many) if symbol == "URL_IP" else 1.0,
                options=_summarize(opts),
            )
            for symbol, opts in found.items()
        )

    def _honest(self, shown: str, host: str, msg: Message) -> bool:
        if same_site(shown, host):
            return True
        domain = registrable_domain(host)
        if host in self.redirectors or (domain is not None and domain in self.redirectors):
            return True
        # A sender counting clicks on its own domain ("clickthru.online.com" in a newsletter
        # from online.com) is not hiding where the link goes; nor is a mailing service
        # counting them on the domain of the server that handed us the mail (its name as
        # our side looked it up, not a header field: corpora, 2 of 3 ham mismatches and
        # none of 421 spam ones; a spammer who names its own server after its links'
        # domain loses this symbol, not the brand ones).
        sender = _FROM_DOMAIN.search(msg.headers.get("From", "")[-300:])
        if sender is not None and same_site(sender.group(1).lower(), host):
            return True
        return msg.on_source_site(host)

    def _redirect(self, url: str, path_at: int, domain: str) -> str | None:
        """The host of another site that ``url`` carries in its path or query, unless the
        link's own site is a mail provider's click tracker (they all do that)."""
        if "http" not in url[path_at:].lower():
            return None
        found = _INNER_URL.search(url, path_at, path_at + 2000)
        if found is None or domain in self.redirectors:
            return None
        inner = unquote(found.group(2)).lower().rpartition("@")[2].partition(":")[0]
        if not inner or same_site(inner, domain):
            return None
        return inner[:100]

    @staticmethod
    def _odd_port(netloc: str) -> bool:
        # The parser already drops :80 and :443; IPv6 literals contain colons of their own.
        port = netloc.rpartition("]")[2] if netloc.startswith("[") else netloc
        _, colon, digits = port.rpartition(":")
        return bool(colon) and digits.isdigit() and digits not in ("80", "443")


def _under(host: str, names: frozenset[str]) -> bool:
    """Whether ``host`` is one of ``names`` or a name under one of them."""
    if host in names:
        return True
    dot = host.find(".")
    while dot >= 0:
        if host[dot + 1 :] in names:
            return True
        dot = host.find(".", dot + 1)
    return False


def _homograph(host: str) -> bool:
    """A label that mixes scripts (Latin with Cyrillic or Greek), or that is written only
    in letters that pass for Latin ones.  Whole labels in one non-Latin script (".рф",
    "münchen", Chinese) are normal internationalised names."""
    for label in host.split("."):
        if label.isascii():
            continue
        scripts = {_script(c) for c in label if c.isalpha()}
        scripts.discard("COMMON")
        if len(scripts) > 1 and "LATIN" in scripts:
            return True
        if all(c in _LOOKALIKE or not c.isalpha() for c in label):
            return True
    return False


def _script(char: str) -> str:
    if char.isascii():
        return "LATIN"
    name = unicodedata.name(char, "")
    first = name.split(" ", 1)[0]
    return first if first in ("LATIN", "CYRILLIC", "GREEK", "ARMENIAN") else "OTHER"


def _summarize(options: list[str], limit: int = 5) -> tuple[str, ...]:
    """Up to ``limit`` distinct pieces of evidence, in order of appearance."""
    return tuple(dict.fromkeys(options))[:limit]


# A bare-IP link among many named ones (under a tenth of a message with more than
# many_urls links) is a link digest's or a mailing-list archive's stray, not a phishing
# link: a quarter of the points.  A copy of a bank's mail with every link real but the
# login's (a few dozen links at most) keeps them all.  On the shared corpora: 3 ham and 7
# of 9,578 spam have such a share.
_DIGEST_IP_WEIGHT = 0.25


def _ip_weight(ips: list[str], links: int, many: bool) -> float:
    return _DIGEST_IP_WEIGHT if many and 10 * len(ips) < links else 1.0
