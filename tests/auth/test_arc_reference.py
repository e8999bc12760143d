"""Our ARC chain validation gives dkimpy's results.

Signed messages of the shared corpora, sealed here by dkimpy's ``arc_sign`` with the test
key as they pass one, two or three forwarders (each recording its Authentication-Results,
the later ones ``arc=pass``), then altered as mail is in transit, altered in their ARC
fields, or damaged at random: each through ``seawall.auth.arc.verify`` and through
dkimpy's ``ARC.verify`` with the same keys.  Whether the chain passes must agree, and on
a pass, the results the first set recorded.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import logging
import random
import re
from collections.abc import Callable

import dkim as dkimpy
import dkim.crypto
import pytest
from dkim.canonicalization import Relaxed
from tests.auth.signing import RSA_PRIVATE, RSA_PUBLIC
from tests.auth.test_dkim_reference import ALTERATIONS, _corpus_messages

from seawall.auth import arc
from seawall.dnslists.answer import Answer, Status

pytest.importorskip("authres")  # dkimpy's arc_sign reads Authentication-Results with it

SEALERS = (b"lists.example.org", b"fwd.example.net", b"relay.example.com")
KEY = Answer(Status.LISTED, (f"v=DKIM1; k=rsa; p={RSA_PUBLIC}",))
SIGNED = [b"from", b"to", b"subject", b"date", b"message-id"]
_QUIET = logging.getLogger("tests.arc.dkimpy")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


def seal(raw: bytes, hops: int) -> bytes | None:
    """``raw`` as it leaves ``hops`` forwarders, each sealing what it saw."""
    message = raw
    for hop in range(hops):
        sealer = SEALERS[hop]
        results = (
            b"Authentication-Results: " + sealer + b"; spf=pass smtp.mailfrom=example.com;"
            b"\r\n dkim=pass header.d=example.com; dmarc=pass header.from=example.com"
            + (b"; arc=pass" if hop else b"")
            + b"\r\n"
        )
        message = results + message
        try:
            fields = dkimpy.arc_sign(
                message, b"arc", sealer, RSA_PRIVATE, sealer, include_headers=SIGNED
            )
        except (dkimpy.DKIMException, IndexError, ValueError, UnicodeDecodeError):
            return None  # a header section dkimpy cannot seal
        if not fields:
            return None
        message = b"".join(fields) + message
    return message


def keys_for(raw: bytes) -> dict[str, Answer | None]:
    """The test key for our sealers' names, no such name for any other a damaged field
    names (so that neither side stops at a missing answer)."""
    known = {f"arc._domainkey.{s.decode()}" for s in SEALERS}
    return {
        name: KEY if name in known else Answer(Status.NOT_LISTED, nxdomain=True)
        for name in arc.key_names(raw)
    }


def reference(raw: bytes, keys: dict[str, Answer | None]) -> tuple[bool, bytes]:
    """dkimpy's verdict: passed, and the first set's ARC-Authentication-Results."""
    records = {n: a.records[0] for n, a in keys.items() if a is not None and a.records}

    def dnsfunc(name: bytes | str, timeout: float = 5.0) -> bytes | None:
        text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        record = records.get(text.lower().rstrip("."))
        return record.encode() if record is not None else None

    try:
        cv, data, _ = dkimpy.ARC(raw, logger=_QUIET).verify(dnsfunc=dnsfunc)
    except (dkimpy.DKIMException, ValueError, KeyError, IndexError, TypeError):
        return False, b""
    if cv != dkimpy.CV_Pass:
        return False, b""
    return True, next((d["aar-value"] for d in data if d.get("instance") == 1), b"")


def both(raw: bytes) -> str:
    """Check ``raw`` both ways; the outcome ("pass", or our status) when they agree."""
    keys = keys_for(raw)
    passed, first = reference(raw, keys)
    ours = arc.verify(raw, keys)
    assert (ours.status is arc.ArcStatus.PASS) is passed, (ours, raw[:3000])
    if passed:
        assert ours.first == arc._parse_results(first)
    return ours.status.value


def _arc_retag(raw: bytes, pattern: bytes, replacement: bytes) -> bytes:
    return re.sub(pattern, replacement, raw, count=1)


ARC_ALTERATIONS: dict[str, Callable[[bytes], bytes]] = {
    "newest seal says cv=fail": lambda r: _arc_retag(r, rb"cv=pass", b"cv=fail"),
    "first seal says cv=pass": lambda r: re.sub(rb"cv=none", b"cv=pass", r),
    "a results field dropped": lambda r: re.sub(
        rb"(?m)^ARC-Authentication-Results:[^\n]*\n(?:[ \t][^\n]*\n)*", b"", r, count=1
    ),
    "a seal repeated": lambda r: (
        (m := re.search(rb"(?m)^ARC-Seal:[^\n]*\n(?:[ \t][^\n]*\n)*", r)) and m[0] + r or r
    ),
    "newest message signature's b= changed": lambda r: _arc_retag(
        r, rb"(ARC-Message-Signature:(?:[^\n]|\n(?=[ \t]))*?\sb=)[A-Za-z0-9+/]", rb"\1A"
    ),
    "oldest message signature's bh= changed": lambda r: re.sub(
        rb"(?s)(.*ARC-Message-Signature:.*?\sbh=)[A-Za-z0-9+/]", rb"\1A", r, count=1
    ),
    "instance renumbered": lambda r: _arc_retag(r, rb"i=1;", b"i=4;"),
    "seal signs h=": lambda r: _arc_retag(r, rb"(ARC-Seal: )", rb"\1h=from; "),
    "message signature signs ARC-Seal": lambda r: _arc_retag(r, rb"h=from", b"h=arc-seal : from"),
    "sets reordered": lambda r: _swap_first_two_sets(r),
    "sealer's algorithm sha1": lambda r: _arc_retag(r, rb"a=rsa-sha256", b"a=rsa-sha1"),
    "seal folded again": lambda r: _arc_retag(r, rb"(ARC-Seal: [^;]*;)", rb"\1\r\n\t "),
}


def _swap_first_two_sets(raw: bytes) -> bytes:
    """The newest ARC set moved below the one before it (the fields stay as they are)."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = re.split(rb"\r\n(?![ \t])", head)
    arcs = [i for i, line in enumerate(lines) if line.lower().startswith(b"arc-")]
    if len(arcs) < 6:
        return raw
    first, second = lines[arcs[0] : arcs[0] + 3], lines[arcs[3] : arcs[3] + 3]
    rest = [line for i, line in enumerate(lines) if i not in arcs[:6]]
    return b"\r\n".join([*second, *first, *rest]) + sep + body


@pytest.fixture(scope="module")
def sealed() -> list[bytes]:
    out = []
    for turn, (_, raw) in enumerate(_corpus_messages()[::60]):
        one = seal(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), 1 + turn % 3)
        if one is not None:
            out.append(one)
    assert len(out) > 30
    return out


def test_sealed_corpus_messages_pass_both_ways(sealed: list[bytes]) -> None:
    seen = collections.Counter(both(raw) for raw in sealed)
    assert seen["pass"] > 0.9 * len(sealed), seen


def test_altered_in_transit_as_dkimpy_says(sealed: list[bytes]) -> None:
    seen = collections.Counter[str]()
    names = list(ALTERATIONS) + list(ARC_ALTERATIONS)
    for turn, raw in enumerate(sealed):
        for name in names[turn % 3 :: 3]:
            alter = ALTERATIONS.get(name) or ARC_ALTERATIONS[name]
            seen[f"{name}: {both(alter(raw))}"] += 1
    print(dict(seen))
    assert any(k.endswith("pass") for k in seen)
    assert any(k.endswith("fail") for k in seen)


def test_random_damage_as_dkimpy_says(sealed: list[bytes]) -> None:
    rng = random.Random(8617)
    pieces = [b" ", b"\t", b"\r\n", b"\n", b"\r\n ", b":", b";", b"=", b"A", b"i=2;", b""]
    seen = collections.Counter[str]()
    for turn in range(200):
        raw = sealed[turn % len(sealed)]
        head_end = raw.find(b"\r\n\r\n")
        for _ in range(2):
            at = rng.randrange(head_end if rng.random() < 0.8 else len(raw))
            raw = raw[:at] + rng.choice(pieces) + raw[at + rng.choice((0, 0, 1)) :]
        seen[both(raw)] += 1
    assert seen["pass"] > 0
    assert seen["fail"] > 0


def reseal(message: bytes, cv: bytes) -> bytes:
    """``message`` with its newest ARC-Seal saying ``cv=`` instead, and signed again over
    the chain as a verifier hashes it (dkimpy's own parse and canonicalisation): a seal
    that verifies and says what it should not."""
    headers, body = dkimpy.rfc822_parse(message)
    sets = []
    for position, (name, value) in enumerate(headers):
        if name.lower() in (b"arc-seal", b"arc-message-signature", b"arc-authentication-results"):
            found = re.search(rb"i\s*=\s*(\d+)", value)
            assert found is not None
            sets.append((int(found[1]), name.lower(), position))
    newest = max(i for i, _, _ in sets)
    seal_at = next(p for i, n, p in sets if i == newest and n == b"arc-seal")
    value = re.sub(rb"cv=\w+", b"cv=" + cv, headers[seal_at][1], count=1)
    order = {b"arc-authentication-results": 0, b"arc-message-signature": 1, b"arc-seal": 2}
    signed = [headers[p] for _, _, p in sorted(sets, key=lambda s: (s[0], order[s[1]]))]
    signed = [h for h in signed if h is not headers[seal_at]]
    empty = dkimpy.RE_BTAG.sub(rb"\1", value)
    data = b"".join(n + b":" + v for n, v in Relaxed.canonicalize_headers(signed))
    ((name, last),) = Relaxed.canonicalize_headers([(b"ARC-Seal", empty)])
    digest = hashlib.sha256(data + name + b":" + last.rstrip())
    key = dkimpy.crypto.parse_pem_private_key(RSA_PRIVATE)
    b = base64.b64encode(dkimpy.crypto.RSASSA_PKCS1_v1_5_sign(digest, key))
    headers[seal_at] = (headers[seal_at][0], re.sub(rb"b=[^;]*$", b"b=" + b + b"\r\n", empty))
    return b"".join(n + b":" + v for n, v in headers) + b"\r\n" + body


@pytest.mark.parametrize(
    ("hops", "cv", "passes"),
    [
        (2, b"pass", True),  # resealed as it was: the helper makes seals that verify
        (1, b"none", True),
        (2, b"none", False),  # only the first seal may say cv=none
        (1, b"pass", False),  # the first seal must say cv=none
        (2, b"fail", False),  # a forwarder saw the chain broken: it ends there
        (3, b"fail", False),
    ],
)
def test_what_each_seal_says_of_the_chain_as_dkimpy_says(
    sealed: list[bytes], hops: int, cv: bytes, passes: bool
) -> None:
    checked = 0
    for _, raw in _corpus_messages()[:400:40]:
        message = seal(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), hops)
        if message is not None:
            assert (both(reseal(message, cv)) == "pass") is passes
            checked += 1
    assert checked >= 5
