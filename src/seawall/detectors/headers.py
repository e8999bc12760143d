"""Forged and ratware headers: Date, Message-ID, From, To, X-Mailer, Precedence.

The first hop's HELO and rDNS are checked by detectors/received.py.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping, Sequence
from typing import ClassVar

from seawall.config import HeadersSettings
from seawall.detectors.base import Context, Hit, Parts
from seawall.detectors.hostnames import Providers
from seawall.message.dates import arrival_time, parse_date
from seawall.message.headers import is_list_mail
from seawall.message.hosts import registrable_domain, same_site
from seawall.message.model import Headers, Message

# Values are cut to one RFC 5322 line (§2.1.1) before matching: stdlib re is then safe on
# them, although a hostile 64 KB field would make some of these patterns quadratic.
_MAX_FIELD = 998
_MID = re.compile(r"<([^<>@\s]+)@([^<>@\s]+)>")
_MID_NO_AT = re.compile(r"<[^<>@\s]+>")
_TRAILING_COMMENT = re.compile(r"\s*\([^()]*\)\s*$")
_OUTLOOK_MID = re.compile(r"<[0-9a-f]{12}\$[0-9a-f]{8}\$[0-9a-f]{8}@", re.IGNORECASE)
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
# A Date's time of day and what follows it: RFC 5322 §3.3 requires a zone there.
_TIME = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?")
_TWELVE_HOUR = re.compile(r"[ap]\.?m\b", re.IGNORECASE)
_BROKEN_OFFSET = re.compile(r"(?:[+-]{2}\d{4}|\d{4})(?:\s|$)")
_BASE64_WORD = re.compile(r"=\?[^?\s]{1,40}\?b\?", re.IGNORECASE)  # RFC 2047 "B" encoding
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_COMMENT = re.compile(r"\((?:[^()\\]|\\.)*\)")
_ADDR_RUN = re.compile(r"[^\s<>()\[\],;:\"@]*")  # one side of a bare addr-spec's "@"
_DOMAIN_LIKE = re.compile(r"(?:[a-z0-9-]+\.)+[a-z]{2,24}", re.IGNORECASE)
# Host names in display names: only country codes and the classic gTLDs, as with hundreds
# of new gTLDs "R.Hughes" and "Nal.Sav" would read as host names.
_NAME_HOST = re.compile(
    r"(?:[a-z0-9-]+\.)*[a-z0-9-]{2,}\.(?:[a-z]{2}|com|net|org|info|biz|edu|gov|mil|int"
    r"|name|pro|mobi|online|site|shop)",
    re.IGNORECASE,
)
_TOKEN_EDGES = "\"'()<>[]{},;:!?*."
_TO_DOMAINS = re.compile(r"@([\w.-]+)")
_TO_LOCALS = re.compile(r"([\w.%+-]{4,64})@[\w.-]+")
_SALUTED = (",", ":", "!")  # "hibody, 75% off", "Atencao, wbks4! Seus pontos..."
_NAME_EDGE = ".@[]-_"  # a local part inside a longer name, an address or a list tag
_UNDISCLOSED = ("undisclosed", "unlisted-recipients", "recipient list not shown", "suppressed")
# "To: Recipients <own@address>": the recipients are all in Bcc, under a name that says so
# (corpora: 94 spam, all Phishing Pot's; no ham).
_RECIPIENTS_NAME = re.compile(r'\s*"?recipients?"?\s*<')
# Genuine Outlook X-Mailer spellings; bots often get the wording or the version wrong.
_OUTLOOK_GENUINE = re.compile(
    r"microsoft(?: outlook express [456]\.\d{2}\.\d{4}\.\d{3,4}"
    r"| outlook(?: imo| cws)?, build \d+\.\d+\.\d+(?: \(\d+(?:\.\d+)+\))?"
    r"| outlook 8\.5, build 4\.71\.\d+\.\d+"
    r"| office outlook, build 11\.0\.\d+| office outlook 12\.0| outlook 1[4-6]\.0"
    r"| outlook express macintosh edition - [\d.]+ \(\d+\)"
    r"|-outlook-express-macintosh-edition/[\d.]+|-macoutlook/[\d.]+)\s*$",
    re.IGNORECASE,
)
# Outlook versions whose Message-IDs always have the "<12hex$8hex$8hex@host>" form, or
# from Outlook 2007 on (:data:`_OUTLOOK_2007`) one of :data:`_OUTLOOK_2007_MID`'s.
_OUTLOOK_DOLLAR_MID = re.compile(
    r"microsoft (?:outlook express \d|office outlook|outlook 1[4-6]\.0)", re.IGNORECASE
)
_OUTLOOK_2007 = re.compile(r"microsoft (?:office outlook 12\.0|outlook 1[4-6]\.0)", re.IGNORECASE)
# What Outlook 2007 and later write when they send over SMTP: the old form with a "$"
# before the "@" ("<008801cad7e1$00327280$00975780$@example.com>"), or "<!&!" and a
# base64 store key.  In the shared corpora every Outlook 12.0-16.0 ham has one of these
# (5 of 6; the sixth Hotmail's own), and their spam mostly has neither (30 of 32).
_OUTLOOK_2007_MID = re.compile(
    r"<(?:[0-9a-f]{12}\$[0-9a-f]{8}\$[0-9a-f]{8}\$|!&![A-Za-z0-9+/=]+)@", re.IGNORECASE
)
# The Windows Outlooks up to 2003, whose MIME engine always writes "X-MimeOLE: Produced By
# Microsoft MimeOLE ...": Outlook Express 4-6 (not the Macintosh edition), Outlook 98
# ("8.5"), 2000 and XP ("Build 9.0/10.0", IMO and CWS), Office Outlook 2003 ("Build 11.0").
# Every genuine one of these in the shared corpora's ham carries the field (554 messages);
# ratware copies the X-Mailer line and not the field (330 of their spam).
_MIMEOLE_WRITERS = re.compile(
    r"microsoft (?:outlook express [456]\.|outlook(?: imo| cws)?, build"
    r"|outlook 8\.5, build|office outlook, build 11\.)",
    re.IGNORECASE,
)
# Outlook Express ended with Windows XP; in mail dated after 2012 it is a bot's disguise.
_OUTLOOK_EXPRESS_END = calendar.timegm((2012, 1, 1, 0, 0, 0))
# A Subject that ends in a run of white space and one last token ("Lowest rates!       qxbt"):
# ratware's per-copy tag, padded out of sight.  The run must sit inside one line of the
# field as sent: unfolding keeps the indent of a continuation line, so a long subject that
# a mail program folded ends the same way once unfolded (5 ham of the shared corpora).  The
# tag holds a letter or a digit ("pass today             !" is a sentence's end).
_PADDED_TAIL = re.compile(r"\S\s{6,}(\S{0,39}[^\W_]\S{0,39})\s*$")
_SUBJECT_FIELD = re.compile(rb"^subject:([^\n]*(?:\n[ \t][^\n]*)*)", re.IGNORECASE | re.MULTILINE)
_PADDED_LINE = re.compile(rb"\S[ \t]{6,}\S+[ \t]*$")
_MAX_HEAD = 64 << 10  # the header section's bytes read for it

# Lower-case X-Mailer / User-Agent substrings of desktop mass-mail programs.
MASS_MAILERS = (
    "advanced mass sender", "atomic mail sender", "sendblaster", "send-safe", "darkmailer",
    "dark mailer", "group mail", "groupmail", "gammadyne", "mailloop", "worldmerge",
    "supermailer", "mass mailer", "massmailer", "bulk mailer", "bulkmailer", "mach5 mailer",
    "stealth mailer", "floodgate", "mailbomber", "mail bomber", "aristotle",
    # Seen only on spam in the shared corpora (92 messages, no ham): bulk-mail programs of
    # the 2000s and a phishing kit's sender.
    "quicksender", "envex developments", "zuckmail", "ocxmail", "easy dm", "smart_send",
)  # fmt: skip


class HeadersDetector:
    """Header fields and first-hop names that bots and ratware get wrong."""

    name: ClassVar[str] = "headers"
    io: ClassVar[bool] = False
    symbols: ClassVar[Mapping[str, str]] = {
        "HDR_DATE_MISSING": "No Date header",
        "HDR_DATE_INVALID": "The Date header cannot be parsed",
        "HDR_DATE_FUTURE": "The Date is ahead of the arrival by more than date_future_s",
        "HDR_DATE_PAST": "The Date is behind the arrival by more than date_past_s",
        "HDR_DATE_NO_ZONE": "The Date has no time zone, a broken one, or a 12-hour clock",
        "HDR_MID_MISSING": "No Message-ID header",
        "HDR_MID_MALFORMED": "The Message-ID is not <local@domain>",
        "HDR_MID_NO_DOMAIN": "The Message-ID has no @domain part",
        "HDR_MID_RHS_NOT_FQDN": "The Message-ID domain is a single label (localhost, PC name)",
        "HDR_MID_RHS_IP": "The Message-ID domain is an IP address",
        "HDR_MID_RHS_MATCH_TO": "The Message-ID domain is the recipient's, not the sender's",
        "HDR_MID_FORGED_OUTLOOK": "Outlook-style Message-ID, and no Microsoft mailer wrote it",
        "HDR_FROM_MISSING": "No From header",
        "HDR_FROM_MULTIPLE": "More than one From header or address",
        "HDR_FROM_NO_ADDR": "The From header has no usable address",
        "HDR_FROM_NAME_ADDR": "The From display name holds an address of another domain",
        "HDR_FROM_NAME_DOMAIN": "The From display name names another domain",
        "HDR_FROM_8BIT": "The From header has raw 8-bit text, not MIME-encoded words",
        "HDR_EXCESS_BASE64": "Subject or From in base64 words that decode to plain ASCII",
        "HDR_TO_MISSING": "No To header",
        "HDR_TO_UNDISCLOSED": "To: undisclosed recipients",
        "HDR_XMAILER_BULK": "X-Mailer or User-Agent of a mass-mail program",
        "HDR_XMAILER_PHP": "X-Mailer of a PHP script (compromised web sites)",
        "HDR_XMAILER_CDO": "X-Mailer of Windows' CDO library: a script, not a mail program",
        "HDR_XMAILER_FORGED_OUTLOOK": "Outlook X-Mailer that real Outlook never sends",
        "HDR_XMAILER_OUTDATED": "Outlook Express years after it was discontinued",
        "HDR_XMAILER_NO_MIMEOLE": "Windows Outlook X-Mailer without the X-MimeOLE it writes",
        "HDR_XMAILER_OUTLOOK_HTML_ONLY": "Outlook X-Mailer on HTML without the text part it adds",
        "HDR_MIME_NO_VERSION": "MIME content (multipart, HTML, base64 or QP) without MIME-Version",
        "HDR_SUBJ_PADDED": "Subject padded with spaces before a last token (a per-copy tag)",
        "HDR_SUBJ_GREETS_MAILBOX": "Subject greets the recipient by the mailbox's name",
        "HDR_PRECEDENCE_BULK": "Precedence: bulk or junk",
        "HDR_BULK_NO_UNSUB": "Bulk mail without List-Unsubscribe",
    }

    @classmethod
    def build(cls, parts: Parts) -> HeadersDetector:
        return cls(parts.config.detectors.headers, parts.providers)

    def __init__(self, settings: HeadersSettings, providers: Providers | None = None) -> None:
        self.settings = settings
        mailers = MASS_MAILERS + tuple(m.lower() for m in settings.bulk_mailers)
        self.mass_mailers = re.compile("|".join(re.escape(m) for m in mailers))
        self.providers = providers or Providers(settings.providers)

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]:
        hits: list[Hit] = []
        headers = msg.headers
        date = self._date(headers.get_all("Date"), arrival_time(msg, ctx.now), hits)
        froms = headers.get_all("From")
        from_domain = self._from(froms, hits)
        self._as_sent(headers, froms, hits)
        to = headers.get_all("To")
        if not to:
            hits.append(Hit("HDR_TO_MISSING"))
        else:
            head = to[0][:200].lower()  # MUAs write it first; a long To is a real list
            if any(words in head for words in _UNDISCLOSED) or _RECIPIENTS_NAME.match(head):
                hits.append(Hit("HDR_TO_UNDISCLOSED"))
        mids = headers.get_all("Message-ID")
        mid = mids[0][:_MAX_FIELD].strip() if mids else ""
        if mid.endswith(")"):  # "<id@host> (added by postmaster)"
            mid = _TRAILING_COMMENT.sub("", mid)
        self._message_id(mid, from_domain, msg, hits)
        self._mailer(msg, mid, date, hits)
        if not headers.get_all("MIME-Version") and _needs_mime_version(headers):
            hits.append(Hit("HDR_MIME_NO_VERSION"))
        tag = _padded_subject(msg)
        if tag is not None:
            hits.append(Hit("HDR_SUBJ_PADDED", options=(tag,)))
        greeted = _greets_mailbox(msg, to)
        if greeted is not None:
            hits.append(Hit("HDR_SUBJ_GREETS_MAILBOX", options=(greeted,)))
        return hits

    def _date(self, values: tuple[str, ...], now: float | None, hits: list[Hit]) -> float | None:
        """Date sanity against ``now``: when the message reached us (None: unknown, so the
        Date's age is not judged)."""
        if not values or not values[0].strip():
            hits.append(Hit("HDR_DATE_MISSING"))
            return None
        when = parse_date(values[0][:_MAX_FIELD])
        if when is None:
            hits.append(Hit("HDR_DATE_INVALID", options=(values[0][:60],)))
            return None
        if (problem := _zone_problem(values[0][:_MAX_FIELD])) is not None:
            hits.append(Hit("HDR_DATE_NO_ZONE", options=(problem,)))
        if now is not None and when - now > self.settings.date_future_s:
            hits.append(Hit("HDR_DATE_FUTURE", options=(f"{(when - now) / 3600:.0f}h",)))
        elif now is not None and now - when > self.settings.date_past_s:
            hits.append(Hit("HDR_DATE_PAST", options=(f"{(now - when) / 86400:.0f}d",)))
        return when

    def _from(self, values: tuple[str, ...], hits: list[Hit]) -> str | None:
        """Check From and return the address's domain (lower-case) when it has one."""
        if not values or not values[0].strip():
            hits.append(Hit("HDR_FROM_MISSING"))
            return None
        value = values[0][:_MAX_FIELD]
        # Blank out quoted strings and comments (same length), so commas and brackets
        # inside a display name do not split or end it.
        masked = value
        if '"' in value or "(" in value:
            masked = _COMMENT.sub(_blank, _QUOTED.sub(_blank, value))
        if len(values) > 1 or (
            masked.count("@") > 1 and sum("@" in piece for piece in masked.split(",")) > 1
        ):
            hits.append(Hit("HDR_FROM_MULTIPLE"))
        opening = masked.find("<")
        closing = masked.find(">", opening + 1)
        if opening >= 0 and closing > 0 and "<" not in masked[opening + 1 : closing]:
            address = masked[opening + 1 : closing].strip()
            name = value[:opening]
        elif (at_sign := masked.find("@")) >= 0:
            # Grow the bare addr-spec out from its "@" (anchored matches: linear time).
            start = at_sign - _ADDR_RUN.match(masked[:at_sign][::-1]).end()  # type: ignore[union-attr]
            end = _ADDR_RUN.match(masked, at_sign + 1).end()  # type: ignore[union-attr]
            address = value[start:end]
            name = value[:start] + value[end:]
        else:
            address, name = "", value
        local, at, domain = address.rpartition("@")
        domain = domain.lower().rstrip(".")
        if not at or not local or "." not in domain:
            hits.append(Hit("HDR_FROM_NO_ADDR", options=(value[:60],)))
            return None
        if "." in name:  # every address or host in a display name has a dot
            self._display_name(name, domain, hits)
        return domain

    def _display_name(self, name: str, domain: str, hits: list[Hit]) -> None:
        tokens = [t.strip(_TOKEN_EDGES) for t in name[:256].split() if "." in t]
        for token in tokens:
            other = token.rpartition("@")[2].lower()
            if "@" in token and _DOMAIN_LIKE.fullmatch(other) and not same_site(other, domain):
                hits.append(Hit("HDR_FROM_NAME_ADDR", options=(other, domain)))
                return
        for token in tokens:
            if "@" in token or not _NAME_HOST.fullmatch(token):
                continue
            other = token.lower()
            if registrable_domain(other) is not None and not same_site(other, domain):
                hits.append(Hit("HDR_FROM_NAME_DOMAIN", options=(other, domain)))
                return

    def _message_id(
        self, value: str, from_domain: str | None, msg: Message, hits: list[Hit]
    ) -> None:
        if not value:
            hits.append(Hit("HDR_MID_MISSING"))
            return
        found = _MID.fullmatch(value)
        if found is None:
            if _MID_NO_AT.fullmatch(value):
                hits.append(Hit("HDR_MID_NO_DOMAIN", options=(value[:80],)))
            else:
                hits.append(Hit("HDR_MID_MALFORMED", options=(value[:80],)))
            return
        rhs = found.group(2).lower().rstrip(".")
        if rhs.startswith("[") or (rhs[-1:].isdigit() and _IPV4.fullmatch(rhs)):
            hits.append(Hit("HDR_MID_RHS_IP", options=(rhs,)))
        elif "." not in rhs:
            hits.append(Hit("HDR_MID_RHS_NOT_FQDN", options=(rhs,)))
        elif (
            from_domain is not None
            and not rhs.endswith(from_domain)  # the sender's own domain: the usual case
            and self._recipient_domain(rhs, msg)
            # Bots build Message-IDs from the recipient's domain.  Big providers host
            # both sides of much honest mail, and colleagues share one domain.
            and self.providers.of(rhs) is None
            and not same_site(rhs, from_domain)
            and not is_list_mail(msg.headers)  # list servers write IDs of the list's domain
            # A receiving relay adds a Message-ID of its own name when the sender sent none
            # (RFC 5321 §6.4 allows it): that host is in the chain as a "by".
            and not any(hop.by and hop.by.lower() == rhs for hop in msg.received)
        ):
            hits.append(Hit("HDR_MID_RHS_MATCH_TO", options=(rhs,)))

    @staticmethod
    def _recipient_domain(rhs: str, msg: Message) -> bool:
        to = msg.headers.get_all("To")
        domains = _TO_DOMAINS.findall(to[0][:_MAX_FIELD]) if to else []
        domains.extend(r.rpartition("@")[2] for r in msg.envelope.rcpts)
        for domain in domains:
            domain = domain.lower().rstrip(".>")
            if "." in domain and (rhs == domain or rhs.endswith("." + domain)):
                return True
        return False

    def _mailer(self, msg: Message, mid: str, date: float | None, hits: list[Hit]) -> None:
        headers = msg.headers
        mailers = headers.get_all("X-Mailer") or headers.get_all("User-Agent")
        mailer = mailers[0][:200].strip() if mailers else ""
        low = mailer.lower()
        bulk = False
        if low:
            if self.mass_mailers.search(low):
                bulk = True
                hits.append(Hit("HDR_XMAILER_BULK", options=(mailer[:60],)))
            elif low.startswith(("php/", "phpmailer")):
                hits.append(Hit("HDR_XMAILER_PHP", options=(mailer[:60],)))
            elif low.startswith("microsoft cdo for windows"):
                hits.append(Hit("HDR_XMAILER_CDO", options=(mailer[:60],)))
            if "outlook" in low and low.startswith("microsoft"):
                mimeole = bool(headers.get_all("X-MimeOLE"))
                self._outlook(mailer, mid, date, mimeole, hits)
                # Every Outlook sends HTML as multipart/alternative with a text part, so its
                # X-Mailer on HTML alone is a copy (corpora: none of 22,175 ham, 313 spam).
                if msg.html_only:
                    hits.append(Hit("HDR_XMAILER_OUTLOOK_HTML_ONLY", options=(mailer[:60],)))
            elif (
                _OUTLOOK_MID.match(mid)
                and not low.startswith("microsoft")
                and not headers.get_all("X-MimeOLE")
            ):
                # Only Microsoft's mail programs write this Message-ID, and they say so in
                # X-Mailer and X-MimeOLE.  Under another program's name it is ratware's
                # (corpora: 128 spam; every one of the 303 ham with it names Microsoft).
                hits.append(Hit("HDR_MID_FORGED_OUTLOOK", options=(mailer[:60],)))
        elif _OUTLOOK_MID.match(mid):
            hits.append(Hit("HDR_MID_FORGED_OUTLOOK"))
        precedence = headers.get_all("Precedence")
        if precedence and precedence[0].strip().lower() in ("bulk", "junk"):
            bulk = True
            hits.append(Hit("HDR_PRECEDENCE_BULK"))
        if bulk and not is_list_mail(headers):
            hits.append(Hit("HDR_BULK_NO_UNSUB"))

    @staticmethod
    def _as_sent(headers: Headers, froms: tuple[str, ...], hits: list[Hit]) -> None:
        """From and Subject as they were sent, before RFC 2047 decoding."""
        sender, subject = _raw_from_subject(headers)
        if sender is not None and not sender.isascii():
            hits.append(Hit("HDR_FROM_8BIT"))
        excess = [
            name
            for name, raw, value in (
                ("subject", subject, headers.get("Subject", "")),
                ("from", sender, froms[0] if froms else ""),
            )
            if raw is not None and value.isascii() and _BASE64_WORD.search(raw[:_MAX_FIELD])
        ]
        if excess:
            hits.append(Hit("HDR_EXCESS_BASE64", options=tuple(excess)))

    def _outlook(
        self, mailer: str, mid: str, date: float | None, mimeole: bool, hits: list[Hit]
    ) -> None:
        genuine = _OUTLOOK_GENUINE.match(mailer) is not None
        if not genuine:
            hits.append(Hit("HDR_XMAILER_FORGED_OUTLOOK", options=(mailer[:60],)))
        elif not mimeole and _MIMEOLE_WRITERS.match(mailer):
            hits.append(Hit("HDR_XMAILER_NO_MIMEOLE", options=(mailer[:60],)))
        if genuine and (
            _OUTLOOK_DOLLAR_MID.match(mailer)
            and mid
            and not _OUTLOOK_MID.match(mid)
            and not (_OUTLOOK_2007.match(mailer) and _OUTLOOK_2007_MID.match(mid))
            # Webmail providers (Hotmail's "<OE17...@hotmail.com>") write their own IDs.
            and self.providers.of(mid.rpartition("@")[2].rstrip(">").lower()) is None
        ):
            hits.append(Hit("HDR_XMAILER_FORGED_OUTLOOK", options=(mailer[:60], "message-id")))
        if (
            date is not None
            and mailer.lower().startswith("microsoft outlook express")
            and date > _OUTLOOK_EXPRESS_END
        ):
            hits.append(Hit("HDR_XMAILER_OUTDATED", options=(mailer[:60],)))


def _zone_problem(value: str) -> str | None:
    """What is wrong with the zone of a Date that parses, if anything: mail programs write
    "10:52:37 +0200" (or an obsolete zone name); scripts and ratware leave it out ("Fri, 23
    Aug 2002 19:27:52", asctime's "Sat Sep 21 08:18:08 2002"), use a 12-hour clock ("3:36:25
    AM") or garble the offset ("+-0500", "0530")."""
    end = value.rstrip()
    if (
        end[-6:-5] == " "
        and end[-5:-4] in ("+", "-")
        and end[-4:].isdigit()
        and end[-7:-6].isdigit()
    ):
        return None  # "... 10:52:37 +0200", as nearly all mail has it
    time = _TIME.search(value)
    if time is None:
        return None
    rest = value[time.end() :].strip()
    if not rest or (len(rest) == 4 and rest.isdigit()):  # asctime ends with the year
        return "no zone"
    if _TWELVE_HOUR.match(rest):
        return "12-hour clock"
    if _BROKEN_OFFSET.match(rest):
        return "broken offset"
    return None


def _raw_from_subject(headers: Headers) -> tuple[str | None, str | None]:
    """The first From and Subject as sent: 8-bit text stays as it came (RFC 5322 allows
    ASCII only), RFC 2047 words undecoded."""
    sender = subject = None
    for name, value in headers.raw_items():
        if len(name) == 4 and sender is None and name.lower() == "from":
            sender = value
        elif len(name) == 7 and subject is None and name.lower() == "subject":
            subject = value
        else:
            continue
        if sender is not None and subject is not None:
            break
    return sender, subject


def _needs_mime_version(headers: Headers) -> bool:
    """Whether the top-level fields declare MIME content that a MIME writer always marks
    with ``MIME-Version`` (RFC 2045 section 4): multipart, HTML, or an encoded body.  Mail
    without the field is ratware's (in the shared corpora: 2 of 22,175 ham, 118 spam).
    A bare ``text/plain`` is left alone: list software and old gateways add that alone."""
    types = headers.get_all("Content-Type")
    kind = types[0][:40].strip().lower() if types else ""
    if kind.startswith(("multipart/", "text/html")):
        return True
    encodings = headers.get_all("Content-Transfer-Encoding")
    return bool(encodings) and encodings[0].strip().lower() in ("base64", "quoted-printable")


def _padded_subject(msg: Message) -> str | None:
    """The last token of a Subject padded out to it within one line as sent (see
    ``_PADDED_TAIL``), else None.  The raw header section is read only for the rare subject
    whose unfolded value ends that way."""
    subject = msg.subject[:_MAX_FIELD]
    if "  " not in subject and "\t" not in subject:  # most subjects: 50 ns, not 900
        return None
    found = _PADDED_TAIL.search(subject)
    if found is None:
        return None
    head = msg.raw[:_MAX_HEAD].replace(b"\r\n", b"\n")
    end = head.find(b"\n\n")
    if end >= 0:
        head = head[: end + 1]
    field = _SUBJECT_FIELD.search(head)
    if field is None:
        return None
    last = field.group(1).rsplit(b"\n", 1)[-1]
    return found.group(1) if _PADDED_LINE.search(last) else None


def _greets_mailbox(msg: Message, to: tuple[str, ...]) -> str | None:
    """The recipient's mailbox name (the address's local part, at least 4 characters) when
    the Subject uses it as a salutation ("hibody, 75% off", "Friend, hibody!"): a merge of a
    list that holds only addresses.  People greet by names, list software tags subjects
    with its list's name, and this is neither (none of the shared corpora's 22,175 ham; 133
    spam).  List mail is left alone."""
    subject = msg.subject[:_MAX_FIELD].lower()
    locals_ = [rcpt.rpartition("@")[0] for rcpt in msg.envelope.rcpts[:3]]
    if to:
        locals_ += _TO_LOCALS.findall(to[0][:_MAX_FIELD])[:3]
    for local in dict.fromkeys(local.lower() for local in locals_ if len(local) >= 4):
        at = subject.find(local)
        if at >= 0 and is_list_mail(msg.headers):
            return None
        while at >= 0:
            end = at + len(local)
            if not _joined(subject[at - 1 : at]) and not _joined(subject[end : end + 1]):
                rest = subject[end:].lstrip()
                if rest[:1] in _SALUTED and not _joined(rest[1:2]):
                    return local
                if subject[:at].rstrip().endswith((",", "!")):
                    return local
            at = subject.find(local, at + 1)
    return None


def _joined(char: str) -> bool:
    """Whether ``char`` (one or none) makes a word go on: a letter, a digit, or a character
    of names, addresses and list tags."""
    return bool(char) and (char.isalnum() or char in _NAME_EDGE)


def _blank(found: re.Match[str]) -> str:
    return " " * len(found.group())
