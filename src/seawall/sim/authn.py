"""Sender authentication in the simulated world (``SimSettings.forge_sender``).

The newsletters' brands publish what a real sender domain does: DKIM keys (the ESP signs
each copy with d= the brand), DMARC ``p=reject``, and SPF naming the ESP's servers; the ESP's
bounce domain's SPF names them too.  With ``forge_sender`` the biggest spam campaign forges
the first brand in From and MAIL FROM, as zombies forge a bank: every forged copy then fails
SPF and DMARC for it, while the brand's own newsletter passes.

:func:`dns_records` gives the records the world's DNS would hold, for an authoritative server
started beside a replay (bench/auth_wave.py serves them with NSD).  The key below is the
simulator's own, published here on purpose: it signs simulated mail and nothing else.
"""

from __future__ import annotations

import dkim

from seawall.sim.world import World

SELECTOR = "sim2026"
# The brand the forging campaign claims: the first newsletter's (newsletter._BRANDS[0]).
FORGED_DOMAIN = "riverside-uni.example.org"
ESP_DOMAIN = "esp.example.com"

_PRIVATE = b"""-----BEGIN RSA PRIVATE KEY-----
MIICWwIBAAKBgQC7TdcJD74e2H8wP2g4HxAl32vw9ZuJsw92HSf4Kc/9AYCcbvEQ
IDGP68H6r2AZ1JjQn2iVN4wYV4gZGMj4/fWbzGMtDtf8IoEUQ+Ne88QrGrm6RjLu
J0ak1eBOMYZWKRVaUD1Eo7eOMYEJkVWhdkUuObRQel2LMcNH9GIsf4Nv4QIDAQAB
AoGAallBHlEE9wif9uoZp7vjdE2OQUuDG8VCoyLc3egHwzUGLExFrY1J9ti61Dad
jy0J83J/dDIM5olUqkNLYSz5NZrLFCM2FqWkaqbyJMsXR5tvMhkrHMbvvXBaIFCv
gdl5xRVKgpG3bJOWrcG5ov3oQxlpggSyvQM9JIq3tqG9E50CQQDpAhKPSgMNwDZz
xPnpqrHTUxBU/DZnKiNGIymX+hdIJ8Ar/LCcviaXWNEFDEQhHAV+yPAzllaXNvc1
b9IX/swrAkEAzclBa+lZlZM3vB7yZQ4qZf1N/iOkCjAxdCsFTi6dxS9atB+AbOrf
brXLqtRl6i4OsVo9QCXWagEEXJfLHjeSIwJAbdqOSYQJYIhIo9gwQxw47nrw7kBi
nczeCIk3aPF93ITxM0vVMHDt3NkA4rJfxIRjitzNcmTkujIt5sGreailNQJAHfyr
ydvRMBip0IH59Hvh9ca5rMTozItFSZZTSZdFakyCPSkx/60iLfHT4erdhwh7H6D0
t/pLilrnlc6QzLBwXQJAI/gQCwoKKvADPbLitTcvoIEQCiCcdhJrElS9S5dzRmTP
D9uRCo/2EbPtz1ST6Fu4sRbdCitH4cayQ1Kl8+0Y0g==
-----END RSA PRIVATE KEY-----
"""
_PUBLIC = (
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC7TdcJD74e2H8wP2g4HxAl32vw9ZuJsw92HSf4Kc/9"
    "AYCcbvEQIDGP68H6r2AZ1JjQn2iVN4wYV4gZGMj4/fWbzGMtDtf8IoEUQ+Ne88QrGrm6RjLuJ0ak1eBO"
    "MYZWKRVaUD1Eo7eOMYEJkVWhdkUuObRQel2LMcNH9GIsf4Nv4QIDAQAB"
)
_SIGNED = [b"from", b"to", b"subject", b"date", b"message-id", b"list-id", b"list-unsubscribe"]


def dns_records(world: World, brands: tuple[str, ...]) -> dict[str, list[str]]:
    """TXT records by owner name: SPF of the ESP and of each brand, each brand's DKIM key
    and DMARC policy."""
    servers = " ".join(f"ip4:{host.ip}" for host in world.esp)
    records: dict[str, list[str]] = {ESP_DOMAIN: [f"v=spf1 {servers} -all"]}
    for domain in brands:
        records[domain] = [f"v=spf1 {servers} -all"]
        records[f"{SELECTOR}._domainkey.{domain}"] = [f"v=DKIM1; k=rsa; p={_PUBLIC}"]
        records[f"_dmarc.{domain}"] = [f"v=DMARC1; p=reject; rua=mailto:dmarc@{domain}"]
    return records


def sign(message: bytes, domain: str) -> bytes:
    """``message`` with the ESP's DKIM-Signature for ``domain`` on top."""
    field = dkim.sign(
        message,
        SELECTOR.encode(),
        domain.encode(),
        _PRIVATE,
        include_headers=_SIGNED,
        canonicalize=(b"relaxed", b"relaxed"),
    )
    return bytes(field) + message
