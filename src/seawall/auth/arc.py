"""ARC (RFC 8617): a forwarder's record of the authentication it saw, and its check.

A mailing list that tags the subject or appends a footer breaks the author's DKIM
signature, and its own envelope breaks SPF alignment: DMARC then fails as for a forgery.
ARC lets each forwarder record the results it saw (``ARC-Authentication-Results``), sign
the message as it passes it on (``ARC-Message-Signature``) and seal the chain so far
(``ARC-Seal``).  When the chain validates and the latest sealer is one we trust, the
results of the first set (what the first forwarder saw from the author) can stand in for
the live ones.

As for DKIM (``seawall.auth.dkim``), :func:`key_names` names every seal's and message
signature's key record for the caller's asynchronous client, and :func:`verify` checks
the chain from those answers only.  The check is ours, on DKIM's machinery (the fields
read once, the body canonicalised and hashed once per form, RSA in OpenSSL): dkimpy took
4 to 11 ms for a chain of one to three sets of corpus mail, most modern mail that carries
ARC has two, and a fifth of the 2019-2025 mail in the shared corpora carries it.  It
follows dkimpy's reading of RFC 8617 §5.2 step by step (tests/auth/test_arc_reference.py
holds the two to the same results): the ARC fields are read relaxed and ordered by
instance; each instance, newest first, must have exactly one ARC-Authentication-Results,
ARC-Message-Signature and ARC-Seal; the newest message signature must verify, and every
seal, over the ARC fields of its instance and those before it; the first seal says
``cv=none`` and the others ``cv=pass``, and a seal that says ``cv=fail`` ends the chain.
"""

from __future__ import annotations

import base64
import enum
import functools
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from seawall.auth import dkimkeys
from seawall.auth.dkim import Message, as_message, split_signed_names
from seawall.auth.dkimcanon import (
    HeaderFormatError,
    TagListError,
    bare,
    canonical_field,
    canonical_forms,
    parse_tags,
    tag_problem,
)
from seawall.dnslists.answer import Answer

__all__ = ["MAX_SETS", "ArcResult", "ArcStatus", "Recorded", "key_names", "verify"]

MAX_SETS = 8  # ARC sets checked per message; a longer chain is a fail (RFC 8617 allows 50)
_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?$")
_ARC = (b"arc-seal", b"arc-message-signature")
_SET = (b"arc-seal", b"arc-message-signature", b"arc-authentication-results")
# An ARC field's instance, as dkimpy finds it in the field's relaxed value.
_INSTANCE = re.compile(rb"[\s;]?i\s*=\s*(\d+)", re.MULTILINE | re.IGNORECASE)
_AMS_TAGS = (b"i", b"a", b"b", b"bh", b"d", b"h", b"s")
_AS_TAGS = (b"i", b"a", b"b", b"cv", b"d", b"s")


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


def _arc_fields(message: Message) -> list[tuple[bytes, bytes]]:
    return [(n.lower(), v) for n, v in message.named(b"arc-")]


@functools.lru_cache(maxsize=256)
def _tags(value: bytes) -> Mapping[bytes, bytes]:
    """A seal's or signature's tags, white space removed (read again by key_names and
    verify for the same message: remembered)."""
    try:
        return {k: bare(v) for k, v in parse_tags(value).items()}
    except TagListError:
        return {}


def key_names(message: bytes | Message) -> list[str]:
    """Where the keys of every ARC-Seal and ARC-Message-Signature are published."""
    return _names_of(as_message(message))


def _names_of(message: Message) -> list[str]:
    names: list[str] = []
    for name, value in _arc_fields(message):
        if name not in _ARC:
            continue
        tags = _tags(value)  # remembered by the value: verify() reads them again
        domain = tags.get(b"d", b"").decode("ascii", "replace").lower().rstrip(".")
        selector = tags.get(b"s", b"").decode("ascii", "replace").lower()
        key = f"{selector}._domainkey.{domain}"
        if _NAME.match(domain) and _NAME.match(selector) and key not in names:
            names.append(key)
    return names[: 2 * MAX_SETS]


def verify(
    raw: bytes | Message, keys: Mapping[str, Answer | None], *, min_rsa_bits: int = 1024
) -> ArcResult:
    """Validate the message's ARC chain, keys only from ``keys`` (the answers to
    :func:`key_names`' TXT questions; None: not back in time)."""
    message = as_message(raw)
    fields = _arc_fields(message)
    seals = [_tags(v) for n, v in fields if n == b"arc-seal"]
    if not fields:
        return ArcResult(ArcStatus.NONE)
    instances = [int(t[b"i"]) for t in seals if _instance_number(t.get(b"i", b""))]
    if not instances:
        return ArcResult(ArcStatus.FAIL, detail="no ARC-Seal with an instance")
    latest = max(instances)
    sealer = next(t.get(b"d", b"") for t in seals if t.get(b"i") == str(latest).encode())
    found = ArcResult(ArcStatus.FAIL, sealer.decode("ascii", "replace").lower(), latest)
    if latest > MAX_SETS:
        return _with(found, detail=f"{latest} ARC sets")
    records: dict[str, str] = {}
    for name in _names_of(message):
        answer = keys.get(name)
        if answer is None or answer.status.failed:
            why = "no answer in time" if answer is None else f"key lookup {answer.status.value}"
            return _with(found, status=ArcStatus.TEMPERROR, detail=f"{name}: {why}")
        if answer.records:
            records[name] = answer.records[0]
    try:
        passed, first, comment = _Chain(message, records, min_rsa_bits).verify()
    except (_ChainError, HeaderFormatError, ValueError, KeyError, IndexError) as exc:
        return _with(found, detail=str(exc)[:200] or type(exc).__name__)
    if not passed:
        return _with(found, detail=comment[:200])
    return _with(found, status=ArcStatus.PASS, first=_parse_results(first))


def _instance_number(text: bytes) -> bool:
    """Whether an i= can be an instance: digits, few enough for int() (a hostile seal's
    thousands of digits are no instance, not a ValueError)."""
    return text.isdigit() and len(text) <= 9


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


class _ChainError(ValueError):
    """The chain cannot be validated at all (a missing or repeated part of a set, a seal
    with h=, tags that are no tag list): a fail."""


@dataclass(frozen=True, slots=True)
class _Checked:
    instance: int
    aar: bytes  # the ARC-Authentication-Results value, relaxed
    ams_valid: bool
    as_valid: bool
    cv: bytes


class _Chain:
    """One message's ARC sets, checked as dkimpy checks them."""

    def __init__(self, message: Message, records: Mapping[str, str], min_rsa_bits: int) -> None:
        self.message = message
        self.records = records
        self.min_rsa_bits = min_rsa_bits
        self.now = time.time()
        found: list[tuple[int, tuple[bytes, bytes]]] = []
        for name, value in self.message.fields:
            if name[:4].lower() != b"arc-" or name.lower() not in _SET:
                continue  # most fields: read relaxed only the ARC ones
            lowered, _, text = canonical_field(name, value, True).partition(b":")
            instance = _INSTANCE.search(text)
            if instance is None:
                continue
            try:
                found.append((int(instance.group(1)), (lowered, text)))
            except ValueError:  # more digits than int() takes
                continue
        found.sort(key=lambda f: (f[0], f[1][0], f[1][1].lower()), reverse=True)
        self.sets = found

    def verify(self) -> tuple[bool, bytes, str]:
        """(passed, the first set's ARC-Authentication-Results, why not: dkimpy's words,
        which the verdicts' options have shown)."""
        if not self.sets:
            return False, b"", "Message is not ARC signed"
        latest = self.sets[0][0]
        checked = [self._instance(i) for i in range(latest, 0, -1)]
        if not checked[0].ams_valid:
            return False, b"", "Most recent ARC-Message-Signature did not validate"
        for one in checked:
            seal = f"ARC-Seal[{one.instance}]"
            if one.cv == b"fail":
                return False, b"", f"{seal} reported failure, the chain is terminated"
            if not one.as_valid:
                return False, b"", f"{seal} did not validate"
            if (one.instance == 1) != (one.cv == b"none"):
                status = one.cv.decode("ascii", "replace")
                return False, b"", f"{seal} reported invalid status {status}"
        return True, checked[-1].aar, ""

    def _instance(self, instance: int) -> _Checked:
        upto = [field for i, field in self.sets if i <= instance]
        parts: dict[bytes, bytes] = {}
        for i, (name, value) in self.sets:
            if i == instance:
                if name in parts:
                    raise _ChainError(f"two {name.decode()} fields for instance {instance}")
                parts[name] = value
        if len(parts) != len(_SET):
            raise _ChainError(f"incomplete ARC set for instance {instance}")
        ams = self._tags(parts[b"arc-message-signature"], _AMS_TAGS)
        include = split_signed_names(ams[b"h"])
        if b"arc-seal" in include:
            raise _ChainError("the ARC-Message-Signature must not sign ARC-Seal")
        marker = b" i=" + ams[b"i"] + b";"
        raw_ams = next(
            (
                (name, value)
                for name, value in self.message.fields
                if name.lower() == b"arc-message-signature" and marker in value.lower()
            ),
            None,
        )
        if raw_ams is None:
            raise _ChainError(f"no ARC-Message-Signature with i={ams[b'i']!r}")
        # Only the newest message signature must verify (§5.2 step 4): an older one is
        # read as far as what could end the whole check, not hashed and checked.
        ams_valid = self._valid(ams, include, raw_ams, check=instance == self.sets[0][0])
        seal = self._tags(parts[b"arc-seal"], _AS_TAGS)
        if b"h" in seal:
            raise _ChainError("h= is not allowed in ARC-Seal")
        names = [name for name, _ in reversed(upto)][:-1]  # oldest first, not this seal
        as_valid = self._valid(seal, names, (b"ARC-Seal", b" " + parts[b"arc-seal"]))
        return _Checked(
            instance, parts[b"arc-authentication-results"], ams_valid, as_valid, seal[b"cv"]
        )

    def _tags(self, value: bytes, required: tuple[bytes, ...]) -> dict[bytes, bytes]:
        try:
            tags = parse_tags(value)
        except TagListError as exc:
            raise _ChainError(str(exc)) from None
        missing = [t.decode() for t in required if t not in tags]
        if missing:
            raise _ChainError(f"missing {missing[0]}=")
        problem = tag_problem(tags, self.now, arc=True)
        if problem:
            raise _ChainError(problem)
        return tags

    def _valid(
        self,
        tags: Mapping[bytes, bytes],
        include: list[bytes],
        field: tuple[bytes, bytes],
        *,
        check: bool = True,
    ) -> bool:
        """Does the signature ``tags`` (in ``field``) verify over the fields ``include``
        names (and the body, with bh=)?  False for any reason, as dkimpy's verify_sig.
        ``check`` False: a result no one reads; stop before the header hash and RSA."""
        selector = tags[b"s"].decode("ascii", "replace").lower()
        domain = tags[b"d"].decode("ascii", "replace").lower().rstrip(".")
        name = f"{selector}._domainkey.{domain}"
        record = self.records.get(name)
        if record is None:
            return False
        key = dkimkeys.load(name, record)
        if isinstance(key, str) or key.tlsrpt or not key.kind:
            return False
        forms = canonical_forms(tags.get(b"c", b"relaxed/relaxed"))
        if forms is None:
            return False
        relaxed_head, relaxed_body = forms
        if b"bh" in tags:
            length = int(tags[b"l"]) if b"l" in tags else None
            digest, _ = self.message.body_hash(relaxed_body, length)
            if digest != base64.b64decode(bare(tags[b"bh"])):
                return False
        if not check:
            base64.b64decode(bare(tags[b"b"]))  # binascii.Error: the chain fails, as dkimpy's
            return False
        signed = self.message.header_hash(include, field, relaxed_head)
        signature = base64.b64decode(bare(tags[b"b"]))  # binascii.Error: the chain fails
        if key.kind == "ed25519":
            return dkimkeys.verify_ed25519(key, signed, signature)
        try:
            ok = dkimkeys.verify_rsa(key, signed, signature)
        except dkimkeys.DigestTooLarge:
            return False
        return ok and key.bits >= self.min_rsa_bits


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
