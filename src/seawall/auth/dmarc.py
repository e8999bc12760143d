"""DMARC (RFC 7489): does the From domain's owner vouch for this message, and what if not?

Pure: the caller asks ``_dmarc.<From domain>`` and, when that has no record, the
organisational domain's (:func:`policy_names`), through the asynchronous client, and gives
the answers with the SPF and DKIM results to :func:`evaluate`.

- §6.6.3: the From domain's record, else the organisational domain's (its ``sp=`` applies
  then, ``p=`` when it has none); TXT records that do not start with ``v=DMARC1`` are
  ignored, several DMARC records are no policy.
- §6.3: ``p`` (required: without it a record is invalid), ``sp``, ``pct``, ``adkim`` and
  ``aspf`` (``r`` or ``s``); unknown tags are ignored.
- §3.1: identifier alignment, relaxed (same organisational domain, from the Public Suffix
  List the project ships) or strict (the same name), for SPF's MAIL FROM domain (an SPF
  ``pass`` only) and each DKIM ``d=`` (a ``pass`` that signed the whole body only).
- §6.6.4: ``pct`` below 100 applies the policy to that share of failing messages (chosen
  by a hash of what the caller gives, so the same message always gets the same answer);
  the others get the next policy down (quarantine for reject, none for quarantine).
"""

from __future__ import annotations

import enum
import functools
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from seawall.dnslists.answer import Answer
from seawall.message.hosts import domain_of, registrable_domain

__all__ = ["DmarcRecord", "DmarcResult", "Disposition", "evaluate", "parse_record"]


class Disposition(enum.Enum):
    PASS = "pass"  # aligned SPF or DKIM
    REJECT = "reject"  # failed under p=reject
    QUARANTINE = "quarantine"
    NONE = "none"  # failed under p=none (or a pct sample's step down to it)
    NO_POLICY = "no policy"  # no From domain, no record, an invalid or ambiguous one
    TEMPERROR = "temperror"  # the record's DNS question failed


@dataclass(frozen=True, slots=True)
class DmarcRecord:
    policy: str  # p=
    subdomain_policy: str | None = None  # sp=
    pct: int = 100
    adkim: str = "r"
    aspf: str = "r"


@dataclass(frozen=True, slots=True)
class DmarcResult:
    disposition: Disposition
    domain: str  # the From domain ("" without one)
    policy_domain: str = ""  # where the record was found
    policy: str = ""  # the policy that applied before pct: reject, quarantine, none
    aligned: tuple[str, ...] = ()  # "spf:domain", "dkim:domain" that aligned
    detail: str = ""


_POLICIES = frozenset({"none", "quarantine", "reject"})
_STEP_DOWN = {"reject": "quarantine", "quarantine": "none", "none": "none"}


@functools.lru_cache(maxsize=4096)
def parse_record(text: str) -> DmarcRecord | None:
    """A DMARC record, or None when ``text`` is not a valid one (§6.3, §6.6.3)."""
    tags: dict[str, str] = {}
    for i, part in enumerate(text.split(";")):
        name, eq, value = part.partition("=")
        name, value = name.strip().lower(), value.strip()
        if i == 0:
            if name != "v" or value != "DMARC1":
                return None
            continue
        if eq and name and name not in tags:
            tags[name] = value
    policy = tags.get("p", "").lower()
    if policy not in _POLICIES:
        return None
    sub = tags.get("sp", "").lower()
    pct_text = tags.get("pct", "100")
    pct = int(pct_text) if pct_text.isdigit() else 100
    adkim, aspf = tags.get("adkim", "r").lower(), tags.get("aspf", "r").lower()
    return DmarcRecord(
        policy,
        sub if sub in _POLICIES else None,
        min(pct, 100),
        adkim if adkim in ("r", "s") else "r",
        aspf if aspf in ("r", "s") else "r",
    )


@functools.lru_cache(maxsize=8192)
def organisational(domain: str) -> str:
    """The organisational domain (§3.2) by the Public Suffix List; the name itself when the
    list cannot tell."""
    return registrable_domain(domain) or domain_of(domain)


def policy_names(from_domain: str) -> tuple[str, ...]:
    """The names to ask for TXT: the From domain's ``_dmarc`` and, when the organisational
    domain differs, its ``_dmarc`` too (asked at once; used only when the first has none)."""
    org = organisational(from_domain)
    names = [f"_dmarc.{from_domain}"]
    if org != from_domain:
        names.append(f"_dmarc.{org}")
    return tuple(names)


def aligned(identifier: str, from_domain: str, mode: str) -> bool:
    identifier, from_domain = identifier.lower().rstrip("."), from_domain.lower().rstrip(".")
    if not identifier or not from_domain:
        return False
    if mode == "s":
        return identifier == from_domain
    return organisational(identifier) == organisational(from_domain)


def _record(answer: Answer | None) -> tuple[DmarcRecord | None, str]:
    """The record in ``answer``; with "temperror" when it failed, "ambiguous" for several."""
    if answer is None or answer.status.failed:
        return None, "temperror"
    found = [r for r in (parse_record(text) for text in answer.records) if r is not None]
    if len(found) > 1:
        return None, "ambiguous"
    return (found[0], "") if found else (None, "")


def evaluate(
    from_domain: str,
    answers: Sequence[Answer | None],
    *,
    spf_pass_domain: str | None,
    dkim_pass_domains: Iterable[str],
    sample_key: bytes | Callable[[], bytes] = b"",
) -> DmarcResult:
    """The DMARC result for a message whose From domain is ``from_domain``.

    ``answers`` are those of :func:`policy_names`'s questions, in order (None: not back in
    time); ``spf_pass_domain`` the MAIL FROM domain when SPF passed; ``dkim_pass_domains``
    the ``d=`` of each signature that passed over the whole body; ``sample_key`` what the
    ``pct`` sample hashes, or what makes it (called only for a failure under ``pct`` < 100).
    """
    domain = from_domain.lower().rstrip(".")
    if not domain or "." not in domain:
        return DmarcResult(Disposition.NO_POLICY, domain, detail="no From domain")
    record, problem = _record(answers[0] if answers else None)
    policy_domain = domain
    subdomain = False
    if record is None and not problem and len(answers) > 1:
        record, problem = _record(answers[1])
        policy_domain, subdomain = organisational(domain), True
    if problem == "temperror":
        return DmarcResult(Disposition.TEMPERROR, domain, policy_domain, detail="DNS failed")
    if record is None:
        detail = "several DMARC records" if problem else "no DMARC record"
        return DmarcResult(Disposition.NO_POLICY, domain, policy_domain, detail=detail)
    policy = (record.subdomain_policy or record.policy) if subdomain else record.policy
    passed: list[str] = []
    if spf_pass_domain and aligned(spf_pass_domain, domain, record.aspf):
        passed.append(f"spf:{spf_pass_domain.lower()}")
    passed += [
        f"dkim:{d}" for d in dict.fromkeys(dkim_pass_domains) if aligned(d, domain, record.adkim)
    ]
    if passed:
        return DmarcResult(Disposition.PASS, domain, policy_domain, policy, tuple(passed))
    applied = policy
    if record.pct < 100 and policy != "none":
        key = sample_key() if callable(sample_key) else sample_key
        draw = int.from_bytes(hashlib.blake2b(key, digest_size=2).digest(), "big") % 100
        if draw >= record.pct:
            applied = _STEP_DOWN[policy]
    detail = f"pct={record.pct}: {applied}" if applied != policy else ""
    return DmarcResult(Disposition(applied), domain, policy_domain, policy, (), detail)
