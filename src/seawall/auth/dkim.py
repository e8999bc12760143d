"""DKIM (RFC 6376): every signature of a message verified from keys fetched by our DNS.

Verification must not block a worker's event loop on DNS, so it is in two steps:

1. :func:`signatures` reads the message's ``DKIM-Signature`` fields (no DNS) and
   :func:`key_name` names each one's key record, ``selector._domainkey.domain``; the caller
   asks those TXT questions through the asynchronous client (the detector does it in its
   ``start()``, before the CPU detectors run);
2. :func:`verify` checks each signature against those answers only, never the network.

The check is ours, at C speed where it counts: the header fields and the body read once
per message (:mod:`seawall.auth.dkimcanon`), the body canonicalised and hashed once per
(canonicalisation, ``l=``) pair whatever the number of signatures, each key record
parsed once and cached, RSA through OpenSSL and ed25519 through libsodium
(:mod:`seawall.auth.dkimkeys`).  dkimpy is the reference: the tests run every signed
message of the shared corpora, the same re-signed and altered, random damage, key records
and tag values through both and require the same results (dkimpy itself is loaded only
by the tests and the simulator, which signs with it).

Results per signature (:class:`DkimResult`): ``pass``; ``fail`` (the body hash or the
signature does not verify); ``temperror`` (the key's DNS question failed or is not back);
``permerror`` (a malformed signature, an unsupported algorithm, no key record, a bad or
revoked key, an expired signature).  rsa-sha256 and ed25519-sha256 are verified;
rsa-sha1 is a ``permerror`` (RFC 8301).  A signature with ``l=`` that covers less than the
whole (canonicalised) body passes with ``partial`` set: whatever follows was added by
someone else, and DMARC does not count such a pass (:attr:`DkimResult.counts`).
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import hashlib
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from seawall.auth import dkimkeys
from seawall.auth.dkimcanon import (
    HeaderFormatError,
    TagListError,
    bare,
    canonical_body,
    canonical_field,
    canonical_forms,
    crlf_body,
    header_block,
    parse_fields,
    parse_tags,
    tag_problem,
    without_b,
)
from seawall.dnslists.answer import Answer

__all__ = [
    "MAX_SIGNATURES",
    "DkimResult",
    "DkimStatus",
    "Message",
    "Signature",
    "header_block",
    "as_message",
    "key_name",
    "message_of",
    "signatures",
    "split_signed_names",
    "verify",
]

MAX_SIGNATURES = 8  # verified per message; more are ignored (each costs a DNS question)
_ALGORITHMS = frozenset({"rsa-sha256", "ed25519-sha256"})
_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?$")
_TEXT_SPACE = re.compile(r"\s+")
_H_SEPARATOR = re.compile(rb"\s*:\s*")


class DkimStatus(enum.Enum):
    """RFC 8601 §2.7.1's dkim results (``none`` is a message without a signature)."""

    PASS = "pass"
    FAIL = "fail"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


@dataclass(frozen=True, slots=True)
class Signature:
    """One ``DKIM-Signature`` field as read before verification."""

    index: int  # among the message's DKIM-Signature fields, top first
    domain: str  # d=, lower case ("" when missing)
    selector: str  # s=
    algorithm: str  # a=
    length: int | None  # l=
    problem: str = ""  # why it cannot be verified at all: a permerror without DNS


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


def as_message(message: bytes | Message) -> Message:
    """``message`` as read for its signatures: itself, or :func:`message_of` its bytes."""
    return message if isinstance(message, Message) else message_of(message)


def signatures(message: bytes | Message) -> list[Signature]:
    """The message's DKIM-Signature fields, top first, at most :data:`MAX_SIGNATURES`."""
    read = as_message(message)
    if b"dkim-signature" not in read.lowered:
        return []  # most mail: no parse at all
    try:
        found = read.by_name.get(b"dkim-signature", ())
    except HeaderFormatError:
        return []
    return [_signature(i, value) for i, (_, value) in enumerate(found[:MAX_SIGNATURES])]


@functools.lru_cache(maxsize=64)
def _tags(value: bytes) -> Mapping[bytes, bytes]:
    """A signature's tags, read once for :func:`signatures` and again for :func:`verify`
    (TagListError when malformed)."""
    return parse_tags(value)


def _signature(index: int, value: bytes) -> Signature:
    try:
        tags = _tags(value)
    except TagListError as exc:
        return Signature(index, "", "", "", None, f"malformed signature: {exc}")

    def tag(name: bytes) -> str:
        text = tags.get(name, b"").decode("ascii", "replace")
        if " " not in text and text.isprintable():  # no white space to drop: most tags
            return text
        return _TEXT_SPACE.sub("", text)

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
    return Signature(index, domain, selector, algorithm.lower(), length, problem)


def key_name(signature: Signature) -> str:
    """Where the signature's key is published: ``selector._domainkey.domain``."""
    return f"{signature.selector}._domainkey.{signature.domain}"


def verify(
    raw: bytes | Message,
    found: Sequence[Signature],
    keys: Mapping[str, Answer | None],
    *,
    min_rsa_bits: int = 1024,
) -> list[DkimResult]:
    """Verify each of ``found`` (from :func:`signatures`), its key taken from ``keys``
    (the answer to :func:`key_name`'s TXT question; None: not back in time).  CPU only."""
    results: list[DkimResult] = []
    message: Message | None = None
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
        key = dkimkeys.load(name, answer.records[0])
        if isinstance(key, str):
            results.append(_result(sig, DkimStatus.PERMERROR, key))
            continue
        if message is None:
            message = as_message(raw)
        try:  # a header section that is none: HeaderFormatError, a permerror
            results.append(message.check(sig, key, min_rsa_bits))
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            results.append(_result(sig, DkimStatus.PERMERROR, str(exc)[:200] or type(exc).__name__))
    return results


_last: tuple[bytes, Message] | None = None  # the message read last, with its bodies hashed
_CACHED_MESSAGE = 1 << 20


def message_of(raw: bytes) -> Message:
    """``Message(raw)``, the same one for the same bytes object in a row: a message's DKIM
    signatures and its ARC chain hash its body once per canonicalisation between them."""
    global _last
    last = _last
    if last is not None and last[0] is raw:
        return last[1]
    message = Message(raw)
    if len(raw) <= _CACHED_MESSAGE:  # a hostile giant is not kept after its scan
        _last = (raw, message)
    return message


def _parsed(raw: bytes) -> tuple[list[list[bytes]], bytes]:
    """The message's fields as ``[name, value]`` pairs and its body made CRLF."""
    message = Message(raw)
    return [[name, value] for name, value in message.fields], message.body


def split_signed_names(h: bytes) -> list[bytes]:
    """The field names an ``h=`` tag lists, lower-cased, in order."""
    return [n.lower() for n in _H_SEPARATOR.split(h)]


class Message:
    """One message as its signatures see it, read once for all of them (DKIM's and ARC's
    checks): the header section and its lower-cased copy at once; its fields and their
    index by name when first asked for (HeaderFormatError when the section is none); the
    body made CRLF, then canonicalised and hashed once per form, when a check needs it.
    The detector reads each message once and hands the same object to :func:`signatures`,
    :func:`verify` and ARC's :func:`~seawall.auth.arc.key_names` and
    :func:`~seawall.auth.arc.verify`; callers with bytes get :func:`message_of`'s."""

    __slots__ = ("_bodies", "_body", "_by_name", "_fields", "_named", "head", "lowered", "raw")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.head = header_block(raw)
        self.lowered = self.head.lower()
        self._fields: tuple[tuple[bytes, bytes], ...] | None = None
        self._by_name: dict[bytes, list[tuple[bytes, bytes]]] | None = None
        self._body: bytes | None = None
        self._bodies: dict[tuple[bool, int | None], tuple[bytes, int]] = {}
        self._named: dict[bytes, list[tuple[bytes, bytes]]] = {}

    @property
    def fields(self) -> tuple[tuple[bytes, bytes], ...]:
        """The header fields, top first, as read: ``(name, value)``, the value's lines
        ending in CRLF (HeaderFormatError when the section is none)."""
        if self._fields is None:
            self._fields = tuple(parse_fields(self.head))
        return self._fields

    @property
    def by_name(self) -> Mapping[bytes, Sequence[tuple[bytes, bytes]]]:
        """The fields by lower-cased name, each name's top first."""
        if self._by_name is None:
            index: dict[bytes, list[tuple[bytes, bytes]]] = {}
            for field in self.fields:
                index.setdefault(field[0].lower(), []).append(field)
            self._by_name = index
        return self._by_name

    @property
    def signature_fields(self) -> Sequence[tuple[bytes, bytes]]:
        return self.by_name.get(b"dkim-signature", ())

    @property
    def body(self) -> bytes:
        """What follows the header section, every line ending made CRLF."""
        if self._body is None:
            self._body = crlf_body(self.raw, self.head)
        return self._body

    def named(self, prefix: bytes) -> list[tuple[bytes, bytes]]:
        """The fields whose lower-cased names start with ``prefix`` (none when the section
        is none, and no parse when the prefix is nowhere in it); ARC's key names and chain
        ask for the same prefix."""
        if prefix not in self.lowered:
            return []
        found = self._named.get(prefix)
        if found is None:
            try:
                fields = self.fields
            except HeaderFormatError:
                return []
            found = [(name, value) for name, value in fields if name.lower().startswith(prefix)]
            self._named[prefix] = found
        return found

    def body_hash(self, relaxed: bool, length: int | None) -> tuple[bytes, int]:
        """SHA-256 of the canonical body (its first ``length`` bytes), and its full size."""
        known = self._bodies.get((relaxed, length))
        if known is None:
            body = canonical_body(self.body, relaxed)
            hashed = body if length is None else body[:length]
            known = self._bodies[(relaxed, length)] = (hashlib.sha256(hashed).digest(), len(body))
        return known

    def signed_fields(self, names: list[bytes]) -> list[tuple[bytes, bytes]]:
        """The fields ``names`` selects: for each name, the next one up from the bottom."""
        taken: dict[bytes, int] = {}
        by_name = self.by_name
        out = []
        for name in names:
            fields = by_name.get(name, ())
            used = taken.get(name, 0)
            if used < len(fields):
                out.append(fields[-1 - used])
            taken[name] = used + 1
        return out

    def header_hash(self, names: list[bytes], field: tuple[bytes, bytes], relaxed: bool) -> bytes:
        """SHA-256 of what a signature in ``field`` signs of the header (§3.7): the fields
        ``names`` selects, canonicalised, then ``field`` itself with its ``b=`` emptied
        and no final CRLF.  Where From is signed, any second From is signed too, so that
        one cannot be added."""
        if b"from" in names:
            names = [*names, b"from"]
        data = b"".join(canonical_field(n, v, relaxed) for n, v in self.signed_fields(names))
        data += canonical_field(field[0], without_b(field[1]), relaxed).rstrip()
        return hashlib.sha256(data).digest()

    def check(self, sig: Signature, key: dkimkeys.Key, min_rsa_bits: int) -> DkimResult:
        field_name, value = self.signature_fields[sig.index]
        try:
            tags = _tags(value)
        except TagListError as exc:
            return _result(sig, DkimStatus.PERMERROR, f"malformed signature: {exc}")
        problem = tag_problem(tags, time.time())
        if problem:
            return _result(sig, DkimStatus.PERMERROR, problem[:200])
        if key.tlsrpt:
            return _result(sig, DkimStatus.PERMERROR, "key is for TLS reports only (s=tlsrpt)")
        forms = canonical_forms(tags.get(b"c", b"simple/simple"))
        if forms is None:
            return _result(sig, DkimStatus.PERMERROR, f"invalid c= value {tags[b'c']!r}"[:200])
        relaxed_head, relaxed_body = forms
        length = int(tags[b"l"]) if b"l" in tags else None
        digest, size = self.body_hash(relaxed_body, length)
        try:
            expected = base64.b64decode(bare(tags[b"bh"]))
        except binascii.Error as exc:
            return _result(sig, DkimStatus.PERMERROR, f"bad bh=: {exc}")
        if digest != expected:
            return _result(sig, DkimStatus.FAIL, "body hash mismatch")
        signed = self.header_hash(split_signed_names(tags[b"h"]), (field_name, value), relaxed_head)
        signature = base64.b64decode(bare(tags[b"b"]))
        if key.kind == "rsa":
            ok = dkimkeys.verify_rsa(key, signed, signature)
            if ok and key.bits < min_rsa_bits:
                return _result(sig, DkimStatus.PERMERROR, f"public key too small: {key.bits}")
        elif key.kind == "ed25519":
            ok = dkimkeys.verify_ed25519(key, signed, signature)
        else:
            return _result(sig, DkimStatus.PERMERROR, "the key is not for email (s=)")
        if not ok:
            return _result(sig, DkimStatus.FAIL, "signature does not verify")
        partial = length is not None and size > length
        detail = f"l={length} of {size} body bytes" if partial else ""
        return _result(sig, DkimStatus.PASS, detail, partial=partial)


def _result(
    sig: Signature, status: DkimStatus, detail: str = "", *, partial: bool = False
) -> DkimResult:
    return DkimResult(status, sig.domain, sig.selector, sig.algorithm, detail, partial)
