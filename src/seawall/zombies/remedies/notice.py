"""The customer notice: an e-mail built from the customer's own evidence.

The text and HTML come from Jinja2 templates (``zombies/templates/notice.txt`` and
``notice.html``, HTML autoescaped): what was seen (counts, time span, sample subjects,
campaigns, malware), how to clean the PC, the garden link and the support contact.  One
notice per account per ``[remediation] notice_interval_s``, claimed in the shared store
before it is sent (so two workers never both send it) and released if sending fails; a
note on a case never sends one (only a move to notified or walled does).
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import jinja2

from seawall.config import RemediationSettings
from seawall.store import Store
from seawall.zombies.model import Case, CaseStore
from seawall.zombies.remedies.links import GardenLinks
from seawall.zombies.remedies.mail import MailError, send_message
from seawall.zombies.remedies.summary import CLEANING_STEPS, Summary, summarize

log = logging.getLogger("seawall.zombies.notice")

SUBJECT = "Your computer appears to be infected: please read"
SUBJECT_WALLED = "Your connection is in our walled garden: please read"
EVIDENCE_READ = 1000  # the newest evidence a notice summarizes
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9.-]{1,253}")


def templates() -> jinja2.Environment:
    """The package's templates, HTML autoescaped, undefined names an error."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("seawall.zombies", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def notice_address(settings: RemediationSettings, account: str | None) -> str | None:
    """The customer's address from ``[remediation] notice_to``: ``{account}`` is the RADIUS
    account (``user@realm`` accounts are often the address itself), ``{user}`` and
    ``{realm}`` its parts; None when there is none."""
    if not account or not settings.notice_to:
        return None
    user, _, realm = account.partition("@")
    address = (
        settings.notice_to.replace("{account}", account)
        .replace("{user}", user)
        .replace("{realm}", realm)
    )
    return address if _ADDRESS.fullmatch(address) else None


def build_notice(
    env: jinja2.Environment,
    settings: RemediationSettings,
    case: Case,
    summary: Summary,
    *,
    to: str,
    link: str,
    now: float,
) -> EmailMessage:
    """The notice for ``case`` as a multipart/alternative message."""
    walled = case.state == "walled"
    subject = SUBJECT_WALLED if walled else SUBJECT
    context = {
        "account": case.subject,
        "walled": walled,
        "summary": summary,
        "steps": CLEANING_STEPS,
        "link": link,
        "support": settings.support_contact,
        "subject": subject,
    }
    message = EmailMessage()
    message["From"] = settings.notice_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(now, usegmt=True)
    domain = settings.notice_from.rpartition("@")[2] or None
    message["Message-ID"] = make_msgid("notice", domain=domain)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to it
    message["X-Seawall-Case"] = case.id
    message.set_content(env.get_template("notice.txt").render(context))
    message.add_alternative(env.get_template("notice.html").render(context), subtype="html")
    return message


class Notices:
    """Sends the notice of a case, once per account per interval."""

    def __init__(
        self,
        settings: RemediationSettings,
        store: Store,
        cases: CaseStore,
        links: GardenLinks | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.cases = cases
        self.links = links
        self.env = templates()

    async def send(self, case: Case, *, now: float | None = None) -> str:
        """Send (or, in dry-run, describe) the notice; what was done, for the case's log."""
        now = time.time() if now is None else now
        to = notice_address(self.settings, case.account)
        if to is None:
            return "no notice: no customer address (notice_to, or a case without an account)"
        if self.settings.mode != "enforce":
            return f"dry-run: would send the notice to {to}"
        if not self.settings.notice_from:
            return "no notice: [remediation] notice_from is not set"
        key = f"zombies:notice:{case.account}"
        claim = secrets.token_hex(8).encode()
        held = await self.store.claim(key, claim, ttl_s=self.settings.notice_interval_s)
        if held != claim:
            return f"notice not sent: one went to {to} within the last notice_interval_s"
        summary = summarize(await self.cases.evidence(case.id, limit=EVIDENCE_READ))
        link = self.links.url(case.id) if self.links and self.links.base_url else ""
        message = build_notice(self.env, self.settings, case, summary, to=to, link=link, now=now)
        try:
            await send_message(self.settings.smtp, message)
        except MailError as exc:
            await self.store.delete(key)  # not sent: the next move may try again
            log.warning("notice for case %s not sent: %s", case.id, exc)
            return f"notice to {to} failed: {exc}"
        log.info("notice for case %s sent to %s", case.id, to)
        return f"notice sent to {to} ({message['Message-ID']})"
