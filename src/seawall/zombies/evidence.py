"""Evidence from Seawall's own verdicts and the policy service's rate hits, pure.

Mail from the ISP's own networks ([isp] networks) counts, never from an exempt one (the
ISP's relays and ``[zombies] exempt``: business mail servers, partners); from outside, only
botnet, worm and malware mail counts, against an *external* zombie (for sharing, never a
case).  One message is one piece of evidence, of its strongest kind::

    malware   ClamAV named a virus (CLAMAV_VIRUS; ``infection`` is its name)
    worm      an executable or double-extension attachment, bare or in an archive, in mail
              judged spam
    botnet    a botnet-like campaign (CAMPAIGN_BOTNET, not marked ham)
    spam      a spam verdict; a greylisted or soft-rejected one weighs half
    direct_mx a dynamic address speaking straight to the MX, with clean content or only
              greylisted or soft-rejected (weak: the greylist is mostly what going straight
              to the MX from a pool earns)
    clean     the subscriber's own clean mail (weight 0: it tells a cleaned-up PC)

Its weight adds up its signs (a botnet campaign's spam weighs botnet plus spam), and a
spam, botnet, worm or malware message straight from a dynamic pool (unauthenticated) also
carries the ``direct_mx`` weight.  A rate hit is one piece of evidence per address
per policy window, of kind ``rate`` (weak).
"""

from __future__ import annotations

import email.errors
import email.header
import re

from seawall.addresses import IspNetworks, Networks
from seawall.config import Config, ZombiesSettings
from seawall.message import Envelope
from seawall.message.received import trusted_networks
from seawall.policy.model import Action, Verdict
from seawall.zombies.model import Evidence, Kind, evidence_id

# An executable attachment, or one inside an archive (a zipped Sober or Netsky copy).
_WORM = (
    *("ATTACH_EXECUTABLE", "ATTACH_DOUBLE_EXT", "ATTACH_RTLO"),
    *("ARCHIVE_EXECUTABLE", "ARCHIVE_DOUBLE_EXT", "ARCHIVE_RTLO"),
)
_DIRECT = ("RCVD_DIRECT_TO_MX", "RCVD_DIRECT_TO_MX_DYNAMIC", "RCVD_OWN_DYNAMIC")
_HALF = (Action.GREYLIST, Action.SOFT_REJECT)
_SUBJECT = re.compile(rb"^Subject:[ \t]*([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)", re.I | re.M)
_HEAD_BYTES = 16 * 1024
RATE_REASONS = frozenset({"ip_connections", "ip_recipients", "net_connections", "net_recipients"})


class Scope:
    """Which addresses are the ISP's own, dynamic, or exempt (parsed once per config)."""

    def __init__(self, config: Config) -> None:
        self.isp = IspNetworks.of(config.isp)
        self.exempt = Networks((*config.isp.relays, *config.zombies.exempt), where="zombies.exempt")
        trusted = config.trusted
        self.trusted = trusted_networks(tuple(trusted.networks), trusted.private_is_trusted)

    def own(self, ip: str) -> bool:
        return self.isp.own.contains(ip) and not self.exempt.contains(ip)

    def dynamic(self, ip: str) -> bool:
        return self.isp.dynamic.contains(ip)

    def exempted(self, ip: str) -> bool:
        return self.exempt.contains(ip)


def subject_of(raw: bytes) -> str:
    """The decoded Subject of a message from its first 16 KiB ("" when none)."""
    found = _SUBJECT.search(raw[:_HEAD_BYTES].split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0])
    if found is None:
        return ""
    text = re.sub(r"\r?\n[ \t]", " ", found.group(1).decode("utf-8", "replace"))
    try:
        return str(email.header.make_header(email.header.decode_header(text)))[:200]
    except (ValueError, LookupError, UnicodeError, email.errors.MessageError):
        return text[:200]  # e.g. CharsetError: a charset name that is not ASCII


def _kind(verdict: Verdict) -> Kind | None:
    symbols = verdict.symbols
    if "CLAMAV_VIRUS" in symbols:
        return "malware"
    spam = verdict.is_spam or verdict.action in _HALF
    if spam and any(s in symbols for s in _WORM):
        return "worm"
    if "CAMPAIGN_BOTNET" in symbols and "CAMPAIGN_HAM" not in symbols:
        return "botnet"
    if spam:
        return "spam"
    return None


def _weight(settings: ZombiesSettings, verdict: Verdict) -> float:
    """What one message adds: each of its signs (a greylisted or soft-rejected spam verdict
    counts half)."""
    symbols = verdict.symbols
    weight = 0.0
    if verdict.is_spam:
        weight += settings.weight("spam")
    elif verdict.action in _HALF:
        weight += settings.weight("spam") / 2
    if "CAMPAIGN_BOTNET" in symbols and "CAMPAIGN_HAM" not in symbols:
        weight += settings.weight("botnet")
    if "CLAMAV_VIRUS" in symbols:
        weight += settings.weight("malware")
    elif (verdict.is_spam or verdict.action in _HALF) and any(s in symbols for s in _WORM):
        weight += settings.weight("worm")
    return weight


def from_verdict(
    scope: Scope,
    settings: ZombiesSettings,
    envelope: Envelope,
    verdict: Verdict,
    raw: bytes,
    now: float,
) -> Evidence | None:
    """The evidence one verdict gives, or None (not from an own network, exempt, unscanned)."""
    ip = envelope.client_ip
    if not ip or verdict.skipped or scope.exempted(ip):
        return None
    if not scope.isp.own.contains(ip):
        return _external(scope, settings, ip, envelope, verdict, raw, now)
    direct = not envelope.user and scope.dynamic(ip) and any(s in verdict.symbols for s in _DIRECT)
    kind = _kind(verdict)
    if kind == "spam" and direct and not verdict.is_spam:
        # Only greylisted or soft-rejected: mostly what speaking straight to the MX from a
        # pool earns on its own, so one sign, not two; a customer's few messages sent
        # without the relay are no zombie.
        kind = None
    weight = 0.0
    if kind is not None:
        weight = _weight(settings, verdict)
        if direct:
            weight += settings.weight("direct_mx")
    elif direct:
        kind = "direct_mx"
        weight = settings.weight(kind)
    else:
        kind = "clean"
    virus = verdict.symbols.get("CLAMAV_VIRUS")
    ident = envelope.queue_id or verdict.message_id or subject_of(raw) + str(len(raw))
    return Evidence(
        id=evidence_id("verdict", ip, ident, verdict.message_id or "", int(now)),
        source="verdict",
        kind=kind,
        at=now,
        ip=ip,
        account=envelope.user or None,
        own=True,
        queue_id=envelope.queue_id or "",
        message_id=verdict.message_id or "",
        campaign=verdict.campaign or "",
        symbols=tuple(sorted(verdict.symbols)),
        subject=subject_of(raw) if kind != "clean" else "",
        infection=virus.options[0] if virus is not None and virus.options else "",
        weight=weight,
    )


def _external(
    scope: Scope,
    settings: ZombiesSettings,
    ip: str,
    envelope: Envelope,
    verdict: Verdict,
    raw: bytes,
    now: float,
) -> Evidence | None:
    """An outside address's botnet, worm or malware mail: an external zombie (for sharing)."""
    kind = _kind(verdict)
    if kind not in ("botnet", "worm", "malware") or scope.trusted.contains(ip):
        return None
    virus = verdict.symbols.get("CLAMAV_VIRUS")
    return Evidence(
        id=evidence_id("verdict", ip, envelope.queue_id or verdict.message_id or "", int(now)),
        source="verdict",
        kind=kind,
        at=now,
        ip=ip,
        own=False,
        queue_id=envelope.queue_id or "",
        message_id=verdict.message_id or "",
        campaign=verdict.campaign or "",
        symbols=tuple(sorted(verdict.symbols)),
        subject=subject_of(raw),
        infection=virus.options[0] if virus is not None and virus.options else "",
        weight=settings.weight(kind),
    )


def from_rate_hit(
    scope: Scope, settings: ZombiesSettings, ip: str, reason: str, window_s: float, now: float
) -> Evidence | None:
    """The evidence of a policy rate hit: one per address per window (None when not own)."""
    if reason not in RATE_REASONS or not ip or not scope.own(ip):
        return None
    window = int(now // window_s) if window_s > 0 else int(now)
    return Evidence(
        id=evidence_id("rate", ip, window),
        source="policy",
        kind="rate",
        at=now,
        ip=ip,
        own=True,
        symbols=(reason,),
        weight=settings.weight("rate"),
    )
