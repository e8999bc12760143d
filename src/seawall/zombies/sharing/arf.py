"""Abuse reports about external zombies to their networks: ARF (RFC 5965/6650) or X-ARF.

The contact of an address is the longest configured prefix holding it (``[sharing]
contacts``).  One report per incident: an address is reported to a contact once per
``incident_s`` (claimed in the shared store, so two workers or nodes never both send it),
and a contact gets at most ``reports_per_hour``; a report held back by that limit is sent
by a later sweep.

An ARF report (RFC 5965 §2) is ``multipart/report; report-type=feedback-report``: a
human-readable part, the ``message/feedback-report`` part (``Feedback-Type: abuse``,
``User-Agent``, ``Version: 1``, and as RFC 6650 §4 asks of unsolicited reports
``Source-IP``, ``Arrival-Date`` and ``Incidents``), then the original message when its raw
copy was kept, else the headers that identify it (``text/rfc822-headers``).

An X-ARF report (v0.2) is ``multipart/mixed`` with ``X-ARF: YES``: a human part, a
``report.txt`` part of ``Key: value`` lines (the YAML the format specifies), and the
evidence as its ``Attachment`` field names it.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.parser import BytesParser
from email.policy import compat32
from email.utils import formatdate, make_msgid

from seawall import __version__
from seawall.config import SharingSettings
from seawall.errors import ConfigError
from seawall.store import Store
from seawall.zombies.model import Evidence
from seawall.zombies.remedies.mail import MailError, send_message

log = logging.getLogger("seawall.zombies.arf")

USER_AGENT = f"Seawall/{__version__}"
XARF_SCHEMA = "http://www.xarf.org/schema/abuse_0.1.2.json"
MAX_SUBJECTS = 5
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9.-]{1,253}")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Contacts:
    """Prefix -> abuse contact; the longest prefix holding an address wins."""

    def __init__(self, table: Mapping[str, str]) -> None:
        entries: list[tuple[Network, str]] = []
        for prefix, contact in table.items():
            try:
                network = ipaddress.ip_network(prefix, strict=False)
            except ValueError:
                raise ConfigError(f"sharing.contacts: not a prefix: {prefix!r}") from None
            if not _ADDRESS.fullmatch(contact):
                raise ConfigError(f"sharing.contacts: {prefix}: not an address: {contact!r}")
            entries.append((network, contact))
        self._entries = sorted(entries, key=lambda e: e[0].prefixlen, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def of(self, ip: str) -> str | None:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return None
        for network, contact in self._entries:
            if address.version == network.version and address in network:
                return contact
        return None


def _date(at: float) -> str:
    return formatdate(at, usegmt=True)


def _raw_message(raw: bytes | None) -> Message | None:
    """The kept original as a message, or None (not kept, or not mail)."""
    if not raw:
        return None
    message = BytesParser(policy=compat32).parsebytes(raw)
    return message if message.keys() else None


def _headers_of(evidence: Evidence) -> str:
    """The identifying headers Seawall kept of a message whose body it did not keep."""
    lines = []
    if evidence.message_id:
        lines.append(f"Message-ID: {evidence.message_id}")
    if evidence.subject:  # header lines are ASCII: RFC 2047 for the rest
        subject = " ".join(evidence.subject.split())
        encoded = Header(subject, "utf-8").encode(linesep="\r\n")
        lines.append(f"Subject: {encoded}")
    if evidence.queue_id:
        lines.append(f"X-Seawall-Queue-ID: {evidence.queue_id}")
    return "\r\n".join(lines) + "\r\n"


def _human(ip: str, evidence: Sequence[Evidence], reporter: str) -> str:
    first = min(e.at for e in evidence)
    last = max(e.at for e in evidence)
    subjects = list(dict.fromkeys(e.subject for e in evidence if e.subject))[:MAX_SUBJECTS]
    malware = sorted({e.infection for e in evidence if e.infection})
    lines = [
        f"The host at {ip}, in your network, sent {len(evidence)} spam or malware "
        f"messages to {reporter.rpartition('@')[2]} from {_date(first)} to {_date(last)}.",
        "It is most likely a computer infected by a spam bot; please have it cleaned.",
    ]
    if subjects:
        lines += ["", "Sample subjects:", *(f"  {s}" for s in subjects)]
    if malware:
        lines += ["", f"Malware found: {', '.join(malware)}"]
    lines += ["", f"This report was generated by {USER_AGENT} and is sent once per incident."]
    return "\n".join(lines) + "\n"


def _common(message: Message, *, to: str, sender: str, ip: str, now: float) -> None:
    message["From"] = sender
    message["To"] = to
    message["Subject"] = f"Abuse report: spam from {ip}"
    message["Date"] = _date(now)
    message["Message-ID"] = make_msgid("arf", domain=sender.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"


def build_arf(
    ip: str,
    evidence: Sequence[Evidence],
    raw: bytes | None,
    *,
    to: str,
    sender: str,
    now: float,
) -> Message:
    """An RFC 5965 feedback report about ``ip`` (``evidence`` newest first, not empty)."""
    newest = evidence[0]
    report = MIMEMultipart("report", report_type="feedback-report")
    _common(report, to=to, sender=sender, ip=ip, now=now)
    report.attach(MIMEText(_human(ip, evidence, sender), "plain", "utf-8"))
    fields = [
        "Feedback-Type: abuse",
        f"User-Agent: {USER_AGENT}",
        "Version: 1",
        f"Arrival-Date: {_date(newest.at)}",
        f"Source-IP: {ip}",
        f"Incidents: {len(evidence)}",
    ]
    feedback = MIMEBase("message", "feedback-report")
    feedback.set_payload("\r\n".join(fields) + "\r\n")
    report.attach(feedback)
    original = _raw_message(raw)
    if original is not None:
        report.attach(MIMEMessage(original))
    else:
        headers = MIMEBase("text", "rfc822-headers")
        headers.set_payload(_headers_of(newest))
        report.attach(headers)
    return report


def _yaml(value: object) -> str:
    """A YAML scalar: numbers bare, text double-quoted with escapes."""
    if isinstance(value, int):
        return str(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{"".join(c if c >= " " else " " for c in text)}"'


def build_xarf(
    ip: str,
    evidence: Sequence[Evidence],
    raw: bytes | None,
    *,
    to: str,
    sender: str,
    now: float,
) -> Message:
    """An X-ARF v0.2 spam report about ``ip`` (``evidence`` newest first, not empty)."""
    newest = evidence[0]
    report = MIMEMultipart("mixed")
    _common(report, to=to, sender=sender, ip=ip, now=now)
    report["X-ARF"] = "YES"
    report.attach(MIMEText(_human(ip, evidence, sender), "plain", "utf-8"))
    original = _raw_message(raw)
    fields: dict[str, object] = {
        "Reported-From": sender,
        "Category": "abuse",
        "Report-Type": "spam",
        "Service": "smtp",
        "Version": "0.2",
        "User-Agent": USER_AGENT,
        "Date": _date(newest.at),
        "Source-Type": "ip-address",
        "Source": ip,
        "Port": 25,
        "Report-ID": str(report["Message-ID"]).strip("<>"),
        "Schema-URL": XARF_SCHEMA,
        "Attachment": "message/rfc822" if original is not None else "text/plain",
        "Occurrences": len(evidence),
    }
    yaml = "".join(f"{key}: {_yaml(value)}\n" for key, value in fields.items())
    part = MIMEText(yaml, "plain", "utf-8")
    part.set_param("name", "report.txt")
    report.attach(part)
    if original is not None:
        report.attach(MIMEMessage(original))
    else:
        report.attach(MIMEText(_headers_of(newest), "plain", "utf-8"))
    return report


class Reporter:
    """Sends the reports about external zombies, once per incident, rate-limited."""

    def __init__(self, settings: SharingSettings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.contacts = Contacts(settings.contacts)
        if self.contacts and not _ADDRESS.fullmatch(settings.report_from):
            raise ConfigError("sharing.report_from: the address reports come from is not set")

    async def report(
        self,
        ip: str,
        evidence: Sequence[Evidence],
        raw: bytes | None = None,
        *,
        now: float | None = None,
    ) -> str | None:
        """Report ``ip`` to its contact; what was done (None: no contact, no evidence)."""
        now = time.time() if now is None else now
        contact = self.contacts.of(ip)
        items = sorted((e for e in evidence if e.kind != "clean"), key=lambda e: -e.at)
        if contact is None or not items:
            return None
        incident = f"zombies:report:{contact}:{ip}"
        claim = secrets.token_hex(8).encode()
        if await self.store.claim(incident, claim, ttl_s=self.settings.incident_s) != claim:
            return None  # reported within this incident already
        rate = f"zombies:report-rate:{contact}"
        sent = await self.store.incr(rate, window_s=3600.0, now=now, amount=0)
        if sent >= self.settings.reports_per_hour:
            await self.store.delete(incident)  # a later sweep sends it
            return f"report on {ip} to {contact} held back: {sent} sent this hour"
        build = build_xarf if self.settings.report_format == "xarf" else build_arf
        message = build(ip, items, raw, to=contact, sender=self.settings.report_from, now=now)
        try:
            await send_message(self.settings.smtp, message)
        except MailError as exc:
            await self.store.delete(incident)
            log.warning("report on %s to %s not sent: %s", ip, contact, exc)
            return f"report on {ip} to {contact} failed: {exc}"
        await self.store.incr(rate, window_s=3600.0, now=now)
        log.info("report on %s sent to %s (%d incidents)", ip, contact, len(items))
        return f"{self.settings.report_format} report on {ip} sent to {contact}"
