"""DKIM public keys (RFC 6376 §3.6.1), parsed once, and the signature checks over them.

A key record (``v=DKIM1; k=rsa; p=...``) is parsed once per (key name, record text): a
busy sender's key is read for its first message, not for each.  It is read as dkimpy
reads it (the tests hold the two to the same answers): ``v=`` if present must be
``DKIM1``; ``k=`` is ``rsa`` (the default) or ``ed25519``; ``p=`` is the base64 of a
DER SubjectPublicKeyInfo or a bare RSAPublicKey for RSA, of 32 bytes for ed25519; an
``s=`` other than ``*``, ``email`` or ``tlsrpt`` leaves a key that verifies nothing.  One
deliberate difference: an RSA key over :data:`MAX_RSA_BITS` or with an exponent over
:data:`MAX_EXPONENT_BITS` is refused (a permerror), since checking a signature with it
would cost seconds of CPU.

The checks run in C:

- rsa-sha256 (RFC 8017 RSASSA-PKCS1-v1_5 over SHA-256): OpenSSL through ``cryptography``;
  a signature that is not exactly the modulus' length, or not below the modulus, and a
  key OpenSSL will not load, are checked by Python's own modular exponentiation against
  the same encoding, as dkimpy checks them (so no verdict depends on the route taken);
- ed25519-sha256 (RFC 8463): libsodium through PyNaCl, over the SHA-256 of the data.
"""

from __future__ import annotations

import base64
import functools
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from seawall.auth.dkimcanon import TagListError, parse_tags

__all__ = [
    "MAX_EXPONENT_BITS",
    "MAX_RSA_BITS",
    "DigestTooLarge",
    "Key",
    "KeyRecordError",
    "load",
    "rsa_numbers",
    "verify_ed25519",
    "verify_rsa",
]

# DER of DigestInfo{sha256, NULL} before the 32 digest bytes (RFC 8017 §9.2, note 1).
_SHA256_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
_MIN_MODULUS_BYTES = len(_SHA256_INFO) + 32 + 11
_PKCS1 = padding.PKCS1v15()
_PREHASHED = Prehashed(hashes.SHA256())
_SERVICES = frozenset({b"*", b"email", b"tlsrpt"})
MAX_RSA_BITS = 8192  # larger keys are refused (a permerror), as are exponents over 64 bits
MAX_EXPONENT_BITS = 64


class DigestTooLarge(ValueError):
    """The RSA modulus is too short to hold a SHA-256 DigestInfo."""


class KeyRecordError(ValueError):
    """A key record that cannot be used."""


@dataclass(frozen=True, slots=True)
class Key:
    """A usable key record: its type, size and what checks signatures with it."""

    kind: str  # "rsa", "ed25519", or "" for a service type other than email (s=)
    bits: int
    tlsrpt: bool = False  # s=tlsrpt: for RFC 8460 reports only
    modulus: int = 0
    exponent: int = 0
    rsa: rsa.RSAPublicKey | None = None  # None: OpenSSL refused it (checked in Python)
    ed25519: Any = None  # a nacl.signing.VerifyKey


@functools.lru_cache(maxsize=4096)
def load(name: str, record: str) -> Key | str:
    """The key published at ``name`` as ``record``, or why it verifies nothing."""
    try:
        key = _parse(record.encode("utf-8", "replace"))
    except (ValueError, TypeError) as exc:  # binascii.Error, nacl's ValueError, ours
        return f"bad key: {exc}"[:200]
    if re.search(r"(?:^|;)\s*p\s*=\s*(?:;|$)", record):
        return "key revoked (empty p=)"
    return key


def _parse(text: bytes) -> Key:
    if not text:
        raise KeyRecordError("missing public key")
    try:
        tags = parse_tags(text)
    except TagListError as exc:
        raise KeyRecordError(str(exc)) from None
    if tags.get(b"v", b"DKIM1") != b"DKIM1":
        raise KeyRecordError("bad version")
    kind = tags.get(b"k", b"rsa")
    if b"p" not in tags:
        raise KeyRecordError("incomplete public key")
    if kind == b"ed25519":
        import nacl.encoding  # only where ed25519 keys are met
        import nacl.signing

        verifier = nacl.signing.VerifyKey(tags[b"p"], encoder=nacl.encoding.Base64Encoder)
        key = Key("ed25519", 256, ed25519=verifier)
    elif kind == b"rsa":
        modulus, exponent = rsa_numbers(base64.b64decode(tags[b"p"]))
        if modulus.bit_length() > MAX_RSA_BITS or exponent.bit_length() > MAX_EXPONENT_BITS:
            # Checking such a key costs seconds a signature: a hostile sender's, never a
            # real one (RFC 8301: 1024 to 4096 bits; exponents are 3 or 65537).
            raise KeyRecordError(
                f"RSA key too large to check ({modulus.bit_length()}-bit modulus, "
                f"{exponent.bit_length()}-bit exponent)"
            )
        key = _rsa_key(modulus, exponent)
    else:
        raise KeyRecordError(f"unknown algorithm in k= tag: {kind[:40]!r}")
    service = tags.get(b"s", b"*")
    if service not in _SERVICES:
        return Key("", 0)  # an unknown service type: nothing to check with
    if service == b"tlsrpt":
        return Key(key.kind, key.bits, True, key.modulus, key.exponent, key.rsa, key.ed25519)
    return key


def _rsa_key(modulus: int, exponent: int) -> Key:
    try:
        loaded: rsa.RSAPublicKey | None = rsa.RSAPublicNumbers(exponent, modulus).public_key()
    except (ValueError, TypeError, OverflowError):
        loaded = None
    return Key("rsa", len(bin(modulus)) - 2, False, modulus, exponent, rsa=loaded)


# DER tags (X.690) of the two RSA key structures.
_INTEGER, _BIT_STRING, _NULL, _OID, _SEQUENCE = 0x02, 0x03, 0x05, 0x06, 0x30


def rsa_numbers(der: bytes) -> tuple[int, int]:
    """(modulus, exponent) of a SubjectPublicKeyInfo (RFC 5280) holding an RSAPublicKey
    (RFC 8017 A.1.1), else of a bare RSAPublicKey; as leniently as dkimpy reads them
    (lengths trusted, anything after the structure ignored)."""
    try:
        outer = _read(der, (_SEQUENCE,))[0]
        algorithm, bits = _read(outer, (_SEQUENCE, _BIT_STRING))
        _read(algorithm, (_OID, _NULL))
        return _rsa_public_key(bits[1:])
    except KeyRecordError:
        return _rsa_public_key(der)


def _rsa_public_key(der: bytes) -> tuple[int, int]:
    modulus, exponent = _read(_read(der, (_SEQUENCE,))[0], (_INTEGER, _INTEGER))
    return int.from_bytes(modulus, "big"), int.from_bytes(exponent, "big")


def _read(data: bytes, tags: tuple[int, ...]) -> list[bytes]:
    """The contents of the elements ``tags`` at the start of ``data``, in order.  An
    INTEGER must be whole; other contents may be cut short by the end of ``data``."""
    out: list[bytes] = []
    at = 0
    for tag in tags:
        if at + 2 > len(data):
            raise KeyRecordError(f"key data truncated at byte {at}")
        if data[at] != tag:
            raise KeyRecordError(f"unexpected tag {data[at]:02x}, expecting {tag:02x}")
        length = data[at + 1]
        at += 2
        if length & 0x80:
            count = length & 0x7F
            if at + count > len(data):
                raise KeyRecordError(f"key data truncated at byte {len(data)}")
            length = int.from_bytes(data[at : at + count], "big")
            at += count
        if tag == _NULL and length:
            raise KeyRecordError("NULL with a length")
        if tag == _INTEGER and at + length > len(data):
            raise KeyRecordError(f"key data truncated at byte {len(data)}")
        out.append(data[at : at + length])
        at += length
    return out


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
    import nacl.exceptions

    try:
        key.ed25519.verify(digest, signature)
    except nacl.exceptions.BadSignatureError:
        return False
    return True
