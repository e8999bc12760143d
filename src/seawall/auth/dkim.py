"""DKIM (RFC 6376): every signature of a message verified with dkimpy, keys from our DNS.

dkimpy fetches a signature's key through a synchronous ``dnsfunc``; called on a worker's
event loop that would stall every message in flight.  So verification is in two steps:

1. :func:`signatures` reads the message's ``DKIM-Signature`` fields (no DNS) and
   :func:`key_name` names each one's key record, ``selector._domainkey.domain``; the caller
   asks those TXT questions through the asynchronous client (the detector does it in its
   ``start()``, before the CPU detectors run);
2. :func:`verify` runs dkimpy over the message with a ``dnsfunc`` that answers only from
   those answers, and never touches the network.

Results per signature (:class:`DkimResult`): ``pass``; ``fail`` (the body hash or the
signature does not verify); ``temperror`` (the key's DNS question failed or is not back);
``permerror`` (a malformed signature, an unsupported algorithm, no key record, a bad or
revoked key, an expired signature).  rsa-sha256 and ed25519-sha256 are verified;
rsa-sha1 is a ``permerror`` (RFC 8301).  A signature with ``l=`` that covers less than the
whole (canonicalised) body passes with ``partial`` set: whatever follows was added by
someone else, and DMARC does not count such a pass (:attr:`DkimResult.counts`).
"""

from __future__ import annotations

import enum
import functools
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import dkim
from dkim.util import InvalidTagValueList, parse_tag_value

from seawall.dnslists.answer import Answer

__all__ = [
    "MAX_SIGNATURES",
    "DkimResult",
    "DkimStatus",
    "Signature",
    "key_name",
    "signatures",
    "verify",
]

MAX_SIGNATURES = 8  # verified per message; more are ignored (each costs a DNS question)
_ALGORITHMS = frozenset({"rsa-sha256", "ed25519-sha256"})
_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?$")

# dkimpy logs each failure at error level; what matters is in our results.
_quiet = logging.getLogger("seawall.dkim.dkimpy")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


class DkimStatus(enum.Enum):
    """RFC 8601 §2.7.1's dkim results (``none`` is a message without a signature)."""

    PASS = "pass"
    FAIL = "fail"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


@dataclass(frozen=True, slots=True)
class Signature:
    """One ``DKIM-Signature`` field as read before verification."""

    index: int  # among the message's DKIM-Signature fields, top first (dkimpy's idx)
    domain: str  # d=, lower case ("" when missing)
    selector: str  # s=
    algorithm: str  # a=
    length: int | None  # l=
    problem: str = ""  # why it cannot be verified at all: a permerror without DNS
    signed: frozenset[bytes] = frozenset()  # h=: the names of the fields it signs, lower case


@dataclass(frozen=True, slots=True)
class DkimResult:
    status: DkimStatus
    domain: str
    selector: str
    algorithm: str = ""
    detail: str = ""
    partial: bool = False  # l= covers less than the body: unsigned content follows

    @property
    def counts(self) -> bool:
        """A pass that DMARC may use: the whole body signed."""
        return self.status is DkimStatus.PASS and not self.partial


_BLANK_LINE = re.compile(rb"\n\r?\n")


def header_block(raw: bytes) -> bytes:
    """The message's header section, up to and with the blank line that ends it (the first
    empty line, CRLF or LF, as dkimpy's parser finds it)."""
    if raw.startswith((b"\n", b"\r\n")):
        return raw[: raw.index(b"\n") + 1]
    blank = _BLANK_LINE.search(raw)  # one pass that stops at the header section's end
    return raw if blank is None else raw[: blank.end()]


@functools.lru_cache(maxsize=32)
def _fields(head: bytes) -> tuple[tuple[bytes, bytes], ...]:
    """dkimpy's parse of a header section; remembered, since the signatures, their
    verification and ARC all read the same message's (MessageFormatError, or IndexError
    for a folded first line, when it is no header section)."""
    headers, _ = dkim.rfc822_parse(head)
    return tuple((name, value) for name, value in headers)


def _parsed(raw: bytes) -> tuple[list[list[bytes]], bytes]:
    """What ``dkim.rfc822_parse`` gives, the body made CRLF at C speed: its line-by-line
    regular expressions read only the header section."""
    head = header_block(raw)
    headers = [[name, value] for name, value in _fields(head)]
    body = raw[len(head) :].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return headers, body


def header_fields(raw: bytes, prefix: bytes) -> list[tuple[bytes, bytes]]:
    """The header fields whose lower-cased names start with ``prefix``, parsed as dkimpy
    parses them; only the header section is read, and none when the prefix is absent (most
    mail: no body split, no parse)."""
    head = header_block(raw)
    if prefix not in head.lower():
        return []
    try:
        headers = _fields(head)
    except (dkim.MessageFormatError, IndexError):  # IndexError: a first line folded
        return []
    return [(name, value) for name, value in headers if name.lower().startswith(prefix)]


def signatures(raw: bytes) -> list[Signature]:
    """The message's DKIM-Signature fields, top first, at most :data:`MAX_SIGNATURES`."""
    found = [
        value
        for name, value in header_fields(raw, b"dkim-signature")
        if name.lower() == b"dkim-signature"
    ]
    return [_signature(i, value) for i, value in enumerate(found[:MAX_SIGNATURES])]


def _signature(index: int, value: bytes) -> Signature:
    try:
        tags = parse_tag_value(value)
    except InvalidTagValueList as exc:
        return Signature(index, "", "", "", None, f"malformed signature: {exc}")

    def tag(name: bytes) -> str:
        return re.sub(r"\s+", "", tags.get(name, b"").decode("ascii", "replace"))

    domain, selector, algorithm = tag(b"d").lower().rstrip("."), tag(b"s").lower(), tag(b"a")
    length_text = tag(b"l")
    length = int(length_text) if length_text.isdigit() and len(length_text) <= 76 else None
    problem = ""
    missing = [t.decode() for t in (b"v", b"a", b"b", b"bh", b"d", b"h", b"s") if t not in tags]
    if missing:
        problem = "missing " + ", ".join(f"{t}=" for t in missing)
    elif algorithm.lower() not in _ALGORITHMS:
        problem = f"unsupported algorithm {algorithm}"
    elif not _NAME.match(domain) or not _NAME.match(selector):
        problem = "d= or s= is not a domain name"
    elif length_text and length is None:
        problem = f"bad l={length_text}"
    signed = frozenset(
        n.strip().lower() for n in re.sub(rb"\s+", b"", tags.get(b"h", b"")).split(b":") if n
    )
    return Signature(index, domain, selector, algorithm.lower(), length, problem, signed)


def key_name(signature: Signature) -> str:
    """Where the signature's key is published: ``selector._domainkey.domain``."""
    return f"{signature.selector}._domainkey.{signature.domain}"


def verify(
    raw: bytes,
    found: Sequence[Signature],
    keys: Mapping[str, Answer | None],
    *,
    min_rsa_bits: int = 1024,
) -> list[DkimResult]:
    """Verify each of ``found`` (from :func:`signatures`) with dkimpy, its key taken from
    ``keys`` (the answer to :func:`key_name`'s TXT question; None: not back in time).

    CPU only: the ``dnsfunc`` given to dkimpy answers from ``keys`` and nothing else.
    """
    results: list[DkimResult] = []
    verifier: dkim.DKIM | None = None
    body_lengths: dict[bytes, int] = {}
    for sig in found:
        if sig.problem:
            results.append(_result(sig, DkimStatus.PERMERROR, sig.problem))
            continue
        name = key_name(sig)
        answer = keys.get(name)
        if answer is None or answer.status.failed:
            why = "no answer in time" if answer is None else f"key lookup {answer.status.value}"
            results.append(_result(sig, DkimStatus.TEMPERROR, why))
            continue
        if not answer.records:
            results.append(_result(sig, DkimStatus.PERMERROR, f"no key at {name}"))
            continue
        record = answer.records[0]
        problem = _key_problem(name, record)
        if problem:
            results.append(_result(sig, DkimStatus.PERMERROR, problem))
            continue
        if verifier is None:
            try:
                headers, body = _parsed(raw)
            except (dkim.MessageFormatError, IndexError) as exc:
                why = str(exc)[:200] if str(exc) else "the header section cannot be parsed"
                results.append(_result(sig, DkimStatus.PERMERROR, why))
                continue
            verifier = dkim.DKIM(b"", logger=_quiet, minkey=min_rsa_bits)
            # What a signature covers is its h= fields (the bottom-most of each name) and
            # itself: dkimpy canonicalises every field it holds, so it holds only those.
            wanted = frozenset({b"dkim-signature"}).union(*(s.signed for s in found))
            verifier.headers = [h for h in headers if h[0].lower() in wanted]
            verifier.body = body
        results.append(_verify_one(verifier, sig, _dnsfunc(name, record), body_lengths))
    return results


@functools.lru_cache(maxsize=4096)
def _key_problem(name: str, record: str) -> str:
    """Why a published key record cannot verify anything; "" for a usable key.  Cached:
    a busy sender's key is parsed once, not for every message."""
    try:
        dkim.evaluate_pk(name.encode(), record.encode("utf-8", "replace"))
    except (dkim.DKIMException, ValueError) as exc:
        return f"bad key: {exc}"
    if re.search(r"(?:^|;)\s*p\s*=\s*(?:;|$)", record):
        return "key revoked (empty p=)"
    return ""


def _dnsfunc(name: str, record: str) -> Callable[..., bytes | None]:
    wanted = name.lower()

    def answer(asked: bytes | str, timeout: float = 5.0) -> bytes | None:
        text = asked.decode("ascii", "replace") if isinstance(asked, bytes) else asked
        return record.encode() if text.lower().rstrip(".") == wanted else None

    return answer


def _verify_one(
    verifier: dkim.DKIM,
    sig: Signature,
    dnsfunc: Callable[..., bytes | None],
    body_lengths: dict[bytes, int],
) -> DkimResult:
    try:
        ok = verifier.verify(idx=sig.index, dnsfunc=dnsfunc)
    except dkim.ValidationError as exc:
        text = str(exc)
        if "body hash mismatch" in text:
            return _result(sig, DkimStatus.FAIL, "body hash mismatch")
        return _result(sig, DkimStatus.PERMERROR, text[:200])
    except (dkim.DKIMException, ValueError, KeyError, IndexError, TypeError) as exc:
        return _result(sig, DkimStatus.PERMERROR, str(exc)[:200] or type(exc).__name__)
    if not ok:
        return _result(sig, DkimStatus.FAIL, "signature does not verify")
    partial = False
    if sig.length is not None:
        canon = verifier.signature_fields.get(b"c", b"simple/simple")
        if canon not in body_lengths:
            policy = dkim.CanonicalizationPolicy.from_c_value(canon)
            body_lengths[canon] = len(policy.canonicalize_body(verifier.body))
        partial = body_lengths[canon] > sig.length
    detail = f"l={sig.length} of {body_lengths[canon]} body bytes" if partial else ""
    return _result(sig, DkimStatus.PASS, detail, partial=partial)


def _result(
    sig: Signature, status: DkimStatus, detail: str = "", *, partial: bool = False
) -> DkimResult:
    return DkimResult(status, sig.domain, sig.selector, sig.algorithm, detail, partial)
