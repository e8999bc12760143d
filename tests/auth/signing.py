"""DKIM signing for the tests: fixed keys (never used anywhere else) and their records.

The RSA key is 1024 bits (RFC 8301's minimum, and fast); the ed25519 key's seed is 0..31.
"""

from __future__ import annotations

import base64

import dkim
from tests.auth.dns_server import txt

RSA_PRIVATE = b"""-----BEGIN RSA PRIVATE KEY-----
MIICXQIBAAKBgQDMVLFbga+TgTDveVh5pjL0tn03yEUaPNwGedm/A0NOdPLoaUze
s0wXVit2YObbYMkVQcsJD+EQzxOYKIP0WonZnLV2FjjjyrveRvw10+hWKFAXn8ck
1olTtU3vw/wd2Spl6syyVqLXlwrNYMJGoZP/SZCehG4gFrTQw5S10KjmNQIDAQAB
AoGAKvj43+zTVytJdmPH1rW8a7jhdtTYq573CymfQMvX4O05lOVodEGzFAlcVKYm
hybAw4a1w68iP129mjeTINXVvZ036CNqH53WmJfPvGxkIiZSjGOXWkkDDi1q3AVE
lY0q6tS40vSHGuzhlQduiwWFmcwGZeeYcGbsurIpag9ykmECQQDrsWkvPmCkt7fo
KYX/oOvQ7+cYkwKfcZq4mHRtwzDNEP6h4w0GzPe+G5n1YzuK+p9yhuSEx0NeFcUH
vkRStFJZAkEA3e+J3AiqMOC41ZOWgtLIHGj/sg7I0EzNbYr6LHBonz/LjUUbsYgP
p/cFop37GF7hUtPTx2eQOnLF/eumd2yfPQJBALWRc32AqUTbfyKrsl3OYzwPRFFL
F08rXkzsrWzNXK/tcqvV1PgzOHtMmhtO+dTD48d/oVWkiAJX9PRVIB8yaOkCQCV5
XvPSWrpqF4uoog9w++0gJZyxNmNFtKI8h0WdrWzGXt55vtVZPhuEcGUm+9D/pFhS
AD55VDcqThg0BCXCJ5kCQQDRWWUdPkikExn7hqEaCBcbdx4YveCXl5+ovDbHxqdr
gmIpIInA8Lg7VmFvM6R6CPKLp8xx/c8e2BKJuV8iVn1Z
-----END RSA PRIVATE KEY-----
"""
RSA_PUBLIC = (
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDMVLFbga+TgTDveVh5pjL0tn03yEUaPNwGedm/A0NO"
    "dPLoaUzes0wXVit2YObbYMkVQcsJD+EQzxOYKIP0WonZnLV2FjjjyrveRvw10+hWKFAXn8ck1olTtU3v"
    "w/wd2Spl6syyVqLXlwrNYMJGoZP/SZCehG4gFrTQw5S10KjmNQIDAQAB"
)
ED25519_SEED = bytes(range(32))
ED25519_PUBLIC = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="
SIGNED = [b"from", b"to", b"subject", b"date", b"message-id"]


def rsa_record() -> str:
    return txt(f"v=DKIM1; k=rsa; p={RSA_PUBLIC}")


def ed25519_record() -> str:
    return txt(f"v=DKIM1; k=ed25519; p={ED25519_PUBLIC}")


def sign(
    message: bytes,
    domain: str,
    selector: str = "rsa",
    *,
    ed25519: bool = False,
    length: bool = False,
    headers: list[bytes] | None = None,
    canonicalize: tuple[bytes, bytes] = (b"relaxed", b"simple"),
) -> bytes:
    """``message`` with a DKIM-Signature field added on top."""
    key = base64.b64encode(ED25519_SEED) if ed25519 else RSA_PRIVATE
    field = dkim.sign(
        message,
        selector.encode(),
        domain.encode(),
        key,
        signature_algorithm=b"ed25519-sha256" if ed25519 else b"rsa-sha256",
        include_headers=headers or SIGNED,
        length=length,
        canonicalize=canonicalize,
    )
    return bytes(field) + message
