"""ARC (RFC 8617): a forwarder's record of the authentication it saw, checked with dkimpy.

A mailing list that tags the subject or appends a footer breaks the author's DKIM
signature, and its own envelope breaks SPF alignment: DMARC then fails as for a forgery.
ARC lets each forwarder record the results it saw (``ARC-Authentication-Results``), sign
the message as it passes it on (``ARC-Message-Signature``) and seal the chain so far
(``ARC-Seal``).  When the chain validates and the latest sealer is one we trust, the
results of the first set (what the first forwarder saw from the author) can stand in for
the live ones.

As for DKIM (``seawall.auth.dkim``), dkimpy resolves keys synchronously; so
:func:`key_names` names every seal's and message signature's key record for the caller's
asynchronous client, and :func:`verify` gives dkimpy a ``dnsfunc`` that answers only from
those answers.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from seawall.auth.dkim import header_fields
from seawall.auth.dkimcanon import TagListError, parse_tags
from seawall.dnslists.answer import Answer

__all__ = ["MAX_SETS", "ArcResult", "ArcStatus", "Recorded", "key_names", "verify"]

MAX_SETS = 8  # ARC sets checked per message; a longer chain is a fail (RFC 8617 allows 50)
_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?$")
_ARC = (b"arc-seal", b"arc-message-signature")

_quiet = logging.getLogger("seawall.arc.dkimpy")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


class ArcStatus(enum.Enum):
    """RFC 8617's chain validation results, and a key that could not be fetched."""

    PASS = "pass"
    FAIL = "fail"
    NONE = "none"
    TEMPERROR = "temperror"


@dataclass(frozen=True, slots=True)
class Recorded:
    """One result of an ARC-Authentication-Results: ``spf=pass smtp.mailfrom=example.com``."""

    method: str
    result: str
    properties: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ArcResult:
    status: ArcStatus
    sealer: str = ""  # d= of the latest ARC-Seal
    instances: int = 0
    detail: str = ""
    first: tuple[Recorded, ...] = ()  # the results recorded by the first set (i=1)

    def recorded(self, method: str) -> list[Recorded]:
        return [r for r in self.first if r.method == method]


def _arc_fields(raw: bytes) -> list[tuple[bytes, bytes]]:
    return [(n.lower(), v) for n, v in header_fields(raw, b"arc-")]


def _tags(value: bytes) -> dict[bytes, bytes]:
    try:
        return {k: re.sub(rb"\s+", b"", v) for k, v in parse_tags(value).items()}
    except TagListError:
        return {}


def key_names(raw: bytes) -> list[str]:
    """Where the keys of every ARC-Seal and ARC-Message-Signature are published."""
    names: list[str] = []
    for name, value in _arc_fields(raw):
        if name not in _ARC:
            continue
        tags = _tags(value)
        domain = tags.get(b"d", b"").decode("ascii", "replace").lower().rstrip(".")
        selector = tags.get(b"s", b"").decode("ascii", "replace").lower()
        key = f"{selector}._domainkey.{domain}"
        if _NAME.match(domain) and _NAME.match(selector) and key not in names:
            names.append(key)
    return names[: 2 * MAX_SETS]


def verify(raw: bytes, keys: Mapping[str, Answer | None], *, min_rsa_bits: int = 1024) -> ArcResult:
    """Validate the message's ARC chain with dkimpy, keys only from ``keys`` (the answers
    to :func:`key_names`' TXT questions; None: not back in time)."""
    fields = _arc_fields(raw)
    seals = [_tags(v) for n, v in fields if n == b"arc-seal"]
    if not fields:
        return ArcResult(ArcStatus.NONE)
    instances = [int(t[b"i"]) for t in seals if t.get(b"i", b"").isdigit()]
    if not instances:
        return ArcResult(ArcStatus.FAIL, detail="no ARC-Seal with an instance")
    latest = max(instances)
    sealer = next(t.get(b"d", b"") for t in seals if t.get(b"i") == str(latest).encode())
    found = ArcResult(ArcStatus.FAIL, sealer.decode("ascii", "replace").lower(), latest)
    if latest > MAX_SETS:
        return _with(found, detail=f"{latest} ARC sets")
    records: dict[str, str] = {}
    for name in key_names(raw):
        answer = keys.get(name)
        if answer is None or answer.status.failed:
            why = "no answer in time" if answer is None else f"key lookup {answer.status.value}"
            return _with(found, status=ArcStatus.TEMPERROR, detail=f"{name}: {why}")
        if answer.records:
            records[name] = answer.records[0]
    import dkim  # dkimpy (and the resolver it loads) only for mail that carries ARC

    try:
        arc = dkim.ARC(raw, logger=_quiet, minkey=min_rsa_bits)
        cv, data, comment = arc.verify(dnsfunc=_dnsfunc(records))
    except (dkim.DKIMException, ValueError, KeyError, IndexError, TypeError) as exc:
        return _with(found, detail=str(exc)[:200] or type(exc).__name__)
    if cv != dkim.CV_Pass:
        return _with(found, detail=str(comment)[:200])
    first = next((d["aar-value"] for d in data if d.get("instance") == 1), b"")
    return _with(found, status=ArcStatus.PASS, first=_parse_results(first))


def _with(result: ArcResult, **changes: object) -> ArcResult:
    values = {
        "status": result.status,
        "sealer": result.sealer,
        "instances": result.instances,
        "detail": result.detail,
        "first": result.first,
    }
    values.update(changes)
    return ArcResult(**values)  # type: ignore[arg-type]


def _dnsfunc(records: Mapping[str, str]) -> Callable[..., bytes | None]:
    def answer(asked: bytes | str, timeout: float = 5.0) -> bytes | None:
        text = asked.decode("ascii", "replace") if isinstance(asked, bytes) else asked
        record = records.get(text.lower().rstrip("."))
        return record.encode() if record is not None else None

    return answer


_COMMENT = re.compile(r"\([^()]*\)")


def _parse_results(value: bytes) -> tuple[Recorded, ...]:
    """``i=1; authserv-id; method=result prop=value ...; ...`` (comments dropped)."""
    text = value.decode("utf-8", "replace")
    for _ in range(3):
        text = _COMMENT.sub(" ", text)
    parts = [p.strip() for p in text.split(";")]
    out: list[Recorded] = []
    for part in parts[2:]:  # after i= and the authserv-id
        words = part.split()
        if not words or "=" not in words[0]:
            continue
        method, _, result = words[0].partition("=")
        props = {}
        for word in words[1:]:
            key, sep, val = word.partition("=")
            if sep:
                props[key.lower()] = val.strip('"').lower().rstrip(".")
        out.append(Recorded(method.lower(), result.lower(), props))
    return tuple(out)
