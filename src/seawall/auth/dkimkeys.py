"""DKIM public keys (RFC 6376 §3.6.1), parsed once, and the signature checks over them.

A key record is read by dkimpy's ``evaluate_pk`` (the same reading of ``v=``, ``k=``,
``p=`` and ``s=`` as everywhere else dkimpy is used), once per (key name, record text):
a busy sender's key is parsed for its first message, not for each.  The checks run in C:

- rsa-sha256 (RFC 8017 RSASSA-PKCS1-v1_5 over SHA-256): OpenSSL through ``cryptography``;
  a signature that is not exactly the modulus' length, or not below the modulus, and a
  key OpenSSL will not load, are checked by Python's own modular exponentiation against
  the same encoding, with the result dkimpy gives them (so verdicts never depend on
  which route a signature took);
- ed25519-sha256 (RFC 8463): libsodium through PyNaCl, over the SHA-256 of the data.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import dkim
import nacl.exceptions
import nacl.signing
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

__all__ = ["DigestTooLarge", "Key", "load", "verify_ed25519", "verify_rsa"]

# DER of DigestInfo{sha256, NULL} before the 32 digest bytes (RFC 8017 §9.2, note 1).
_SHA256_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
_MIN_MODULUS_BYTES = len(_SHA256_INFO) + 32 + 11
_PKCS1 = padding.PKCS1v15()
_PREHASHED = Prehashed(hashes.SHA256())


class DigestTooLarge(ValueError):
    """The RSA modulus is too short to hold a SHA-256 DigestInfo."""


@dataclass(frozen=True, slots=True)
class Key:
    """A usable key record: its type, size and what checks signatures with it."""

    kind: str  # "rsa", "ed25519", or "" for a service type other than email (s=)
    bits: int
    tlsrpt: bool = False  # s=tlsrpt: for RFC 8460 reports only
    modulus: int = 0
    exponent: int = 0
    rsa: rsa.RSAPublicKey | None = None  # None: OpenSSL refused it (checked in Python)
    ed25519: nacl.signing.VerifyKey | None = None


@functools.lru_cache(maxsize=4096)
def load(name: str, record: str) -> Key | str:
    """The key published at ``name`` as ``record``, or why it verifies nothing."""
    try:
        pk, bits, kind, tlsrpt = dkim.evaluate_pk(name.encode(), record.encode("utf-8", "replace"))
    except (dkim.DKIMException, ValueError) as exc:
        return f"bad key: {exc}"
    if re.search(r"(?:^|;)\s*p\s*=\s*(?:;|$)", record):
        return "key revoked (empty p=)"
    if kind == b"ed25519":
        return Key("ed25519", int(bits), bool(tlsrpt), ed25519=pk)
    if kind == b"rsa":
        return _rsa_key(pk, int(bits), bool(tlsrpt))
    return Key("", 0, bool(tlsrpt))  # an unknown service type: nothing to check with


def _rsa_key(pk: dict[str, Any], bits: int, tlsrpt: bool) -> Key:
    modulus, exponent = int(pk["modulus"]), int(pk["publicExponent"])
    try:
        loaded: rsa.RSAPublicKey | None = rsa.RSAPublicNumbers(exponent, modulus).public_key()
    except (ValueError, TypeError, OverflowError):
        loaded = None
    return Key("rsa", bits, tlsrpt, modulus, exponent, rsa=loaded)


def verify_rsa(key: Key, digest: bytes, signature: bytes) -> bool:
    """Does ``signature`` sign the SHA-256 ``digest`` under ``key`` (RSASSA-PKCS1-v1_5)?"""
    size = max(1, (key.modulus.bit_length() + 7) // 8)
    if size < _MIN_MODULUS_BYTES:
        raise DigestTooLarge(f"digest too large for a {key.bits}-bit modulus")
    fits = len(signature) == size and int.from_bytes(signature, "big") < key.modulus
    if key.rsa is not None and fits:
        try:
            key.rsa.verify(signature, digest, _PKCS1, _PREHASHED)
        except InvalidSignature:
            return False
        return True
    # Outside what OpenSSL takes: the representative reduced modulo n, as dkimpy does.
    expected = b"\x00\x01" + b"\xff" * (size - _MIN_MODULUS_BYTES + 8) + b"\x00"
    expected += _SHA256_INFO + digest
    value = pow(int.from_bytes(signature, "big"), key.exponent, key.modulus)
    return value.to_bytes(size, "big") == expected


def verify_ed25519(key: Key, digest: bytes, signature: bytes) -> bool:
    """Does ``signature`` sign ``digest`` (the SHA-256 of the signed data) under ``key``?"""
    assert key.ed25519 is not None
    try:
        key.ed25519.verify(digest, signature)
    except nacl.exceptions.BadSignatureError:
        return False
    return True
