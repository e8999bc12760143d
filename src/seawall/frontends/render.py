"""One Verdict, rendered for each wire (as Rspamd's protocol.c does for its clients).

Every front end answers from the same Verdict: the milter and spamd add the
same ``X-Spam-*`` headers, reject with the same reason and report the same
symbols as /checkv2.  ``rewrite_message`` puts those headers into the message itself, for
the front ends that hand the whole message back (spamd's PROCESS and HEADERS).
"""

from __future__ import annotations

import functools
import re
import socket
import textwrap
from collections.abc import Iterable, Sequence
from typing import Any

from seawall.policy.model import Action, Verdict

SPAM_FLAG = "X-Spam-Flag"
SPAM_SCORE = "X-Spam-Score"
SPAM_STATUS = "X-Spam-Status"
SKIPPED = "X-Seawall-Skipped"
HEADER_NAMES = (SPAM_FLAG, SPAM_SCORE, SPAM_STATUS, SKIPPED)
AUTH_RESULTS = "Authentication-Results"

# The auth detector's symbols as RFC 8601 results: (method, result keyword, property).
_AUTH_RESULTS = {
    "SPF_PASS": ("spf", "pass", "smtp.mailfrom"),
    "SPF_FAIL": ("spf", "fail", "smtp.mailfrom"),
    "SPF_SOFTFAIL": ("spf", "softfail", "smtp.mailfrom"),
    "SPF_NEUTRAL": ("spf", "neutral", "smtp.mailfrom"),
    "SPF_NONE": ("spf", "none", "smtp.mailfrom"),
    "SPF_TEMPFAIL": ("spf", "temperror", "smtp.mailfrom"),
    "SPF_PERMFAIL": ("spf", "permerror", "smtp.mailfrom"),
    "SPF_HELO_FAIL": ("spf", "fail", "smtp.helo"),
    "DKIM_PASS": ("dkim", "pass", "header.d"),
    "DKIM_PARTIAL_BODY": ("dkim", "policy", "header.d"),  # verifies, but l= is not accepted
    "DKIM_FAIL": ("dkim", "fail", "header.d"),
    "DKIM_TEMPFAIL": ("dkim", "temperror", "header.d"),
    "DKIM_PERMFAIL": ("dkim", "permerror", "header.d"),
    "DKIM_NONE": ("dkim", "none", ""),
    "DMARC_PASS": ("dmarc", "pass", "header.from"),
    "DMARC_POLICY_REJECT": ("dmarc", "fail", "header.from"),
    "DMARC_POLICY_QUARANTINE": ("dmarc", "fail", "header.from"),
    "DMARC_POLICY_NONE": ("dmarc", "fail", "header.from"),
    "DMARC_NA": ("dmarc", "none", "header.from"),
    "DMARC_TEMPFAIL": ("dmarc", "temperror", "header.from"),
    "ARC_PASS": ("arc", "pass", ""),
    "ARC_FAIL": ("arc", "fail", ""),
    "ARC_NONE": ("arc", "none", ""),
}
_METHODS = ("spf", "dkim", "dmarc", "arc")
_DOMAIN = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$")


def _symbol_list(verdict: Verdict) -> str:
    ranked = sorted(verdict.symbols.values(), key=lambda s: (-abs(s.score), s.name))
    return ", ".join(f"{s.name}({s.score:g})" for s in ranked)


def reason(verdict: Verdict) -> str:
    """A short human reason for a reject, naming the strongest symbols."""
    if verdict.skipped:
        return f"Message not scanned ({verdict.skipped}), try again later"
    if verdict.forced_by:
        return f"Message refused ({verdict.forced_by})"
    ranked = sorted(
        (s for s in verdict.symbols.values() if s.score > 0), key=lambda s: (-s.score, s.name)
    )
    top = ", ".join(s.name for s in ranked[:3])
    what = "held for review" if verdict.action is Action.QUARANTINE else "rejected"
    return f"Spam message {what}; score {verdict.score:.1f}/{verdict.required:.1f}" + (
        f" ({top})" if top else ""
    )


def smtp_reply(verdict: Verdict) -> tuple[int, str, str] | None:
    """The SMTP reply (code, enhanced status, text) for an action that refuses the message."""
    if verdict.action is Action.REJECT:
        return 550, "5.7.1", reason(verdict)
    if verdict.action in (Action.SOFT_REJECT, Action.GREYLIST):
        text = "Try again later" if verdict.action is Action.GREYLIST else reason(verdict)
        if verdict.action is Action.SOFT_REJECT and not verdict.skipped:
            text = f"Message deferred ({verdict.forced_by or 'soft reject'})"
        return 451, "4.7.1", text
    return None


def spam_headers(verdict: Verdict) -> list[tuple[str, str]]:
    """The headers added to a passed message (SpamAssassin's names, which filters know)."""
    flag = "YES" if verdict.is_spam else "NO"
    status = (
        f"{'Yes' if verdict.is_spam else 'No'}, score={verdict.score:.1f} "
        f"required={verdict.required:.1f} action={verdict.action.value} "
        f"tests=[{_symbol_list(verdict)}]"
    )
    headers = [(SPAM_FLAG, flag), (SPAM_SCORE, f"{verdict.score:.2f}"), (SPAM_STATUS, status)]
    if verdict.skipped:
        headers.append((SKIPPED, verdict.skipped))
    return headers


@functools.cache
def host_name() -> str:
    """This host's name, the default authserv-id (looked up once: it may ask DNS)."""
    return socket.getfqdn()


def authentication_results(verdict: Verdict, authserv_id: str = "") -> str | None:
    """The Authentication-Results value (RFC 8601) of the auth detector's symbols, or None
    when there are none (the detector is off, or the sender authenticated).

    ``authserv_id`` "" is :func:`host_name`.  SPF's property is the MAIL FROM (or HELO)
    domain, DKIM's ``header.d`` and ``header.s`` of each signature, DMARC's the From domain:
    the first option of each symbol, as the detector gives them.
    """
    found: list[tuple[int, str]] = []
    for symbol in verdict.symbols.values():
        known = _AUTH_RESULTS.get(symbol.name)
        if known is None:
            continue
        method, result, prop = known
        order = _METHODS.index(method) * 2 + (prop == "smtp.helo")
        if method == "dkim" and prop:
            # One result per signature: options are "domain:s=selector".
            for option in symbol.options or ("",):
                domain, _, selector = option.partition(":s=")
                text = f"dkim={result}"
                if _DOMAIN.match(domain):
                    text += f" header.d={domain}"
                    if _DOMAIN.match(selector):
                        text += f" header.s={selector}"
                found.append((order, text))
            continue
        text = f"{method}={result}"
        value = symbol.options[0] if symbol.options else ""
        if prop and _DOMAIN.match(value) and "." in value:
            text += f" {prop}={value}"
        found.append((order, text))
    if not found:
        return None
    found.sort(key=lambda item: item[0])  # stable: the detector's order within a method
    return "; ".join([authserv_id or host_name(), *(text for _, text in found)])


def report(verdict: Verdict) -> str:
    """A plain-text report of every symbol with its score (spamd REPORT, rspamc)."""
    lines = [
        f"Seawall: score {verdict.score:.2f}, required {verdict.required:.2f}, "
        f"action {verdict.action.value}",
        "",
        " pts rule name              description",
        "---- ---------------------- --------------------------------------------------",
    ]
    for s in sorted(verdict.symbols.values(), key=lambda s: (-abs(s.score), s.name)):
        text = s.description or ""
        if s.options:
            text = f"{text} [{', '.join(s.options)}]".strip()
        lines.append(f"{s.score:4.1f} {s.name:<22} {text}")
    if verdict.skipped:
        lines.append(f"     (not scanned: {verdict.skipped})")
    return "\n".join(lines) + "\n"


def rspamd_json(verdict: Verdict, *, authserv_id: str = "") -> dict[str, Any]:
    """The /checkv2 response body (Rspamd's protocol, plus ``language`` and ``campaign``).

    The milter block's ``add_headers`` has the :func:`authentication_results` header too.
    """
    symbols = {
        s.name: {
            "name": s.name,
            "score": s.score,
            "metric_score": s.score,
            "options": list(s.options),
            "description": s.description,
        }
        for s in verdict.symbols.values()
    }
    add_headers: dict[str, Any] = {
        name: {"value": value, "order": 0} for name, value in spam_headers(verdict)
    }
    auth = authentication_results(verdict, authserv_id)
    if auth is not None:
        add_headers[AUTH_RESULTS] = {"value": auth, "order": 0}
    body: dict[str, Any] = {
        "is_skipped": verdict.skipped is not None,
        "score": verdict.score,
        "required_score": verdict.required,
        "action": verdict.action.value,
        "symbols": symbols,
        "messages": {},
        "time_real": verdict.elapsed_ms / 1000.0,
        "milter": {
            "add_headers": add_headers,
            "remove_headers": {name: 0 for name in HEADER_NAMES},
        },
        "language": verdict.language,
        "campaign": verdict.campaign,
    }
    reply = smtp_reply(verdict)
    if reply is not None:
        body["messages"]["smtp_message"] = reply[2]
    if verdict.message_id is not None:
        body["message-id"] = verdict.message_id.strip().strip("<>")  # as Rspamd gives it
    if verdict.skipped:
        body["skipped"] = verdict.skipped
    return body


_FIELD_NAME = re.compile(rb"([^\s:]+)[ \t]*:")


def rewrite_message(
    raw: bytes,
    add: Sequence[tuple[str, str]],
    *,
    remove: Iterable[str] = (),
    headers_only: bool = False,
) -> bytes:
    """``raw`` without the header fields named in ``remove`` and with ``add`` on top.

    Added fields use the message's own line ending and are folded at 78 columns
    (RFC 5322 §2.1.1).  An mbox "From " line stays first.  ``headers_only`` (the
    HEADERS command) stops after the blank line that ends the header block;
    spamc --headers puts the original body back itself.
    """
    first = raw.find(b"\n")
    eol = b"\r\n" if first > 0 and raw[first - 1 : first] == b"\r" else b"\n"
    ends = [i for i in (raw.find(b"\n\n"), raw.find(b"\n\r\n")) if i >= 0]
    cut = 0 if raw.startswith((b"\n", b"\r\n")) else min(ends) + 1 if ends else len(raw)
    lines, rest = re.findall(rb"[^\n]*\n|[^\n]+", raw[:cut]), raw[cut:]
    top = [lines.pop(0)] if lines and lines[0].startswith(b"From ") else []
    names = {n.lower().encode() for n in remove}
    kept: list[bytes] = []
    dropping = False
    for line in lines:
        if not line[:1].isspace():  # a new field; otherwise a continuation of the last one
            match = _FIELD_NAME.match(line)
            dropping = match is not None and match.group(1).lower() in names
        if not dropping:
            kept.append(line)
    fields = [_fold(f"{name}: {value}", eol) for name, value in add]
    head = b"".join(top + fields + kept)
    if not headers_only:
        return head + rest
    if not head.endswith(b"\n"):
        head += eol  # a message of headers only, without a final newline
    return head + (rest[: rest.find(b"\n") + 1] or eol)


def _fold(field: str, eol: bytes) -> bytes:
    lines = textwrap.wrap(
        field, 78, subsequent_indent="\t", break_long_words=False, break_on_hyphens=False
    )
    return eol.join(line.encode() for line in lines) + eol
