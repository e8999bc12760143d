"""The reference DKIM verifier for the tests: dkimpy itself, over its own parse of the message.

:func:`reference_verify` takes what ``seawall.auth.dkim.verify`` takes and gives results in
the same form, but each signature is checked by ``dkim.DKIM.verify`` (dkimpy's header
parser, canonicalisation, tag checks and RSA), its key served from the given answers by a
``dnsfunc``.  The checks before any verification (the signature's own problems, the key's
DNS answer, a key record that verifies nothing) are the product's, so that both paths
judge the same signatures.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence

import dkim

from seawall.auth.dkim import DkimResult, DkimStatus, Signature, key_name
from seawall.dnslists.answer import Answer

_quiet = logging.getLogger("tests.dkimpy_reference")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


def reference_verify(
    raw: bytes,
    found: Sequence[Signature],
    keys: Mapping[str, Answer | None],
    *,
    min_rsa_bits: int = 1024,
) -> list[DkimResult]:
    results: list[DkimResult] = []
    for sig in found:
        if sig.problem:
            results.append(_result(sig, DkimStatus.PERMERROR))
            continue
        name = key_name(sig)
        answer = keys.get(name)
        if answer is None or answer.status.failed:
            results.append(_result(sig, DkimStatus.TEMPERROR))
            continue
        if not answer.records:
            results.append(_result(sig, DkimStatus.PERMERROR))
            continue
        record = answer.records[0]
        if _key_problem(name, record):
            results.append(_result(sig, DkimStatus.PERMERROR))
            continue
        try:
            verifier = dkim.DKIM(raw, logger=_quiet, minkey=min_rsa_bits)
        except (dkim.MessageFormatError, IndexError):
            results.append(_result(sig, DkimStatus.PERMERROR))
            continue
        results.append(_verify_one(verifier, sig, _dnsfunc(name, record)))
    return results


def _key_problem(name: str, record: str) -> bool:
    try:
        dkim.evaluate_pk(name.encode(), record.encode("utf-8", "replace"))
    except (dkim.DKIMException, ValueError):
        return True
    return re.search(r"(?:^|;)\s*p\s*=\s*(?:;|$)", record) is not None


def _dnsfunc(name: str, record: str) -> Callable[..., bytes | None]:
    wanted = name.lower()

    def answer(asked: bytes | str, timeout: float = 5.0) -> bytes | None:
        text = asked.decode("ascii", "replace") if isinstance(asked, bytes) else asked
        return record.encode() if text.lower().rstrip(".") == wanted else None

    return answer


def _verify_one(
    verifier: dkim.DKIM, sig: Signature, dnsfunc: Callable[..., bytes | None]
) -> DkimResult:
    try:
        ok = verifier.verify(idx=sig.index, dnsfunc=dnsfunc)
    except dkim.ValidationError as exc:
        if "body hash mismatch" in str(exc):
            return _result(sig, DkimStatus.FAIL)
        return _result(sig, DkimStatus.PERMERROR)
    except (dkim.DKIMException, ValueError, KeyError, IndexError, TypeError):
        return _result(sig, DkimStatus.PERMERROR)
    if not ok:
        return _result(sig, DkimStatus.FAIL)
    partial = False
    if sig.length is not None:
        canon = verifier.signature_fields.get(b"c", b"simple/simple")
        policy = dkim.CanonicalizationPolicy.from_c_value(canon)
        partial = len(policy.canonicalize_body(verifier.body)) > sig.length
    return _result(sig, DkimStatus.PASS, partial=partial)


def _result(sig: Signature, status: DkimStatus, *, partial: bool = False) -> DkimResult:
    """Without the detail text: the two paths word their reasons differently."""
    return DkimResult(status, sig.domain, sig.selector, sig.algorithm, "", partial)
