"""Abuse reports from other networks: ARF (RFC 5965) and X-ARF, into Evidence.

**ARF**: ``multipart/report; report-type=feedback-report`` whose second part is
``message/feedback-report`` (``Feedback-Type``, ``Source-IP``, ``Arrival-Date``,
``Reported-Domain``...) and whose third is the original message or its headers
(``message/rfc822``, ``text/rfc822-headers``: its Subject and Message-ID).

**X-ARF** (v0.1 and v0.2): a message with ``X-ARF: yes`` whose second part is a small YAML
document (``Report-Type``, ``Source``, ``Source-Type``, ``Date``, ``Reported-From``...).
Only its flat ``Key: value`` lines are read; nothing here needs a YAML library.  X-ARF 0.3
puts a JSON document there (``Report``: ``SourceIp``, ``ReportType``, ``Date``), read too.

The address a report names is own or external by ``[isp] networks``; an exempt one (the
ISP's relays) is skipped.  The evidence id is made of the address, the original message
(its Message-ID, else its time) and the report type, so the same incident reported twice
counts once; ``raw_ref`` is the digest of the report's bytes, kept with it.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import ipaddress
import json
from dataclasses import dataclass
from email.message import Message

from seawall.message.dates import parse_date
from seawall.zombies.evidence import Scope, subject_of
from seawall.zombies.feeds import parse_time
from seawall.zombies.model import Evidence, Kind, evidence_id

MAX_REPORT_BYTES = 4 * 1024 * 1024
_MALWARE_TYPES = frozenset({"virus", "malware", "worm", "trojan", "infected"})
_IGNORED_TYPES = frozenset({"not-spam", "opt-out", "unsubscribe"})


@dataclass(frozen=True, slots=True)
class Parsed:
    """One report read: its evidence, or why it gave none."""

    evidence: Evidence | None
    raw: bytes
    problem: str = ""


def raw_ref(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:32]


def parse_report(raw: bytes, scope: Scope, weights: dict[str, float], *, now: float) -> Parsed:
    """Read one report message (never raises: a problem is a ``Parsed`` without evidence).

    ``weights`` maps evidence kinds to weights (``ZombiesSettings.weight``).
    """
    if len(raw) > MAX_REPORT_BYTES:
        return Parsed(None, b"", f"larger than {MAX_REPORT_BYTES} bytes")
    try:
        return _parse(raw, scope, weights, now)
    except Exception as exc:  # the email package on hostile input
        return Parsed(None, raw, f"unreadable: {type(exc).__name__}: {exc}")


def _parse(raw: bytes, scope: Scope, weights: dict[str, float], now: float) -> Parsed:
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    fields, original, fmt = _read(msg)
    if fmt is None:
        return Parsed(None, raw, "neither ARF nor X-ARF")
    ip = _address(fields.get("source-ip") or fields.get("source") or "")
    if ip is None:
        return Parsed(None, raw, f"{fmt}: no source address")
    if scope.exempted(ip):
        return Parsed(None, raw, f"{fmt}: {ip} is exempt (a relay or listed server)")
    kind_word = (fields.get("feedback-type") or fields.get("report-type") or "abuse").lower()
    if kind_word in _IGNORED_TYPES:
        return Parsed(None, raw, f"{fmt}: feedback type {kind_word}")
    kind: Kind = "malware" if kind_word in _MALWARE_TYPES else "report"
    when = (
        parse_date(fields.get("arrival-date", "") or fields.get("received-date", ""))
        or parse_time(fields.get("date", ""))
        or parse_date(fields.get("date", ""))
        or parse_date(str(msg.get("Date", "")))
        or now
    )
    original_id = _clean(str(original.get("Message-ID", ""))) if original is not None else ""
    subject = subject_of(original.as_bytes()) if original is not None else ""
    reporter = _clean(
        fields.get("reported-from") or fields.get("user-agent") or str(msg.get("From", ""))
    )
    incident = original_id or str(int(when))
    evidence = Evidence(
        id=evidence_id("report", ip, incident, kind_word),
        source="arf" if fmt == "ARF" else "xarf",
        kind=kind,
        at=when,
        ip=ip,
        own=scope.own(ip),
        message_id=original_id,
        symbols=(fmt, kind_word, reporter[:120]),
        subject=subject,
        infection=kind_word if kind == "malware" else "",
        weight=weights.get(kind, 0.0),
        raw_ref=raw_ref(raw),
    )
    return Parsed(evidence, raw)


def _read(msg: Message) -> tuple[dict[str, str], Message | None, str | None]:
    """(the report's fields, the original message, its source, "ARF"/"X-ARF"/None)."""
    if msg.get_content_type() == "multipart/report" and (
        str(msg.get_param("report-type", "")).lower() == "feedback-report"
    ):
        fields: dict[str, str] = {}
        original: Message | None = None
        for part in msg.walk():
            ctype = part.get_content_type()
            if ctype == "message/feedback-report":
                fields = _fields(_payload_text(part))
            elif ctype in ("message/rfc822", "text/rfc822-headers") and original is None:
                original = _original(part)
        return fields, original, "ARF" if fields else None
    if str(msg.get("X-ARF", "")).strip().lower() == "yes":
        parts = [p for p in msg.walk() if p.get_content_maintype() != "multipart"]
        fields = {}
        original = None
        for part in parts[1:]:
            if part.get_content_type() == "message/rfc822" and fields and original is None:
                original = _original(part)
                continue
            text = _payload_text(part)
            found = _json_fields(text) if text.lstrip().startswith("{") else _fields(text)
            if not fields and ("report-type" in found or "source" in found):
                fields = found
            elif fields and original is None:
                original = _original(part)
        return fields, original, "X-ARF" if fields else None
    return {}, None, None


def _payload_text(part: Message) -> str:
    if part.is_multipart():  # message/* parsed as a message: its first sub-message
        inner = part.get_payload()
        if isinstance(inner, list) and inner:
            first = inner[0]
            return first.as_string() if isinstance(first, Message) else str(first)
        return ""
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        try:
            return payload.decode(part.get_content_charset() or "utf-8", "replace")
        except (LookupError, ValueError):  # an unknown charset: the report is still read
            return payload.decode("utf-8", "replace")
    return str(part.get_payload())


def _original(part: Message) -> Message | None:
    inner = part.get_payload()
    if isinstance(inner, list) and inner and isinstance(inner[0], Message):
        return inner[0]
    text = _payload_text(part)
    if not text.strip():
        return None
    parsed: Message = email.message_from_string(text, policy=email.policy.compat32)
    return parsed


def _fields(text: str) -> dict[str, str]:
    """``Key: value`` lines (a feedback report, or X-ARF's flat YAML), first value wins."""
    out: dict[str, str] = {}
    for line in text.splitlines()[:200]:
        if not line or line[0] in " \t#-" or ":" not in line:
            continue
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key and key not in out:
            out[key] = _clean(value)
    return out


def _json_fields(text: str) -> dict[str, str]:
    """X-ARF 0.3's JSON report (``{"Report": {"SourceIp": ..., "ReportType": ...}}``) in the
    names of the YAML one."""
    try:
        doc = json.loads(text[:MAX_REPORT_BYTES])
    except ValueError:
        return {}
    if not isinstance(doc, dict):
        return {}
    inner, info = doc.get("Report"), doc.get("ReporterInfo")
    report: dict[str, object] = inner if isinstance(inner, dict) else doc
    reporter: dict[str, object] = info if isinstance(info, dict) else {}
    names = {
        "source": ("SourceIp", "Source", "Ip"),
        "report-type": ("ReportType", "Category"),
        "date": ("Date", "ReportDate"),
        "reported-from": ("ReporterFrom", "ReporterOrg"),
    }
    out: dict[str, str] = {}
    for key, candidates in names.items():
        for name in candidates:
            value = report.get(name, reporter.get(name))
            if isinstance(value, str | int | float) and str(value).strip():
                out[key] = _clean(str(value))
                break
    return out


def _clean(value: str) -> str:
    return value.strip().strip("'\"").strip().strip("<>").strip()


def _address(text: str) -> str | None:
    text = text.strip().strip("[]")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None
