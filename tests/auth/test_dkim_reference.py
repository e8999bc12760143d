"""Our DKIM verification gives dkimpy's results, signature by signature.

Every signed message of the shared corpora (CSDMC2010 and Phishing Pot carry signatures;
the SpamAssassin, Enron and Nazario sets predate DKIM and carry none), the same messages
signed again here under every canonicalisation and then altered as mail is in transit,
random damage to those, and the canonicalisation pieces on random input: each through
``seawall.auth.dkim.verify`` and through dkimpy (tests/auth/dkimpy_reference.py), with the
same keys.  Status, domain, selector, algorithm and l= safety must be the same (the one
deliberate difference, keys too large to check, has a test of its own).
"""

from __future__ import annotations

import base64
import collections
import functools
import random
import re
import time
from collections.abc import Callable
from pathlib import Path

import dkim as dkimpy
import pytest
from dkim.canonicalization import Relaxed, Simple
from dkim.util import InvalidTagValueList, parse_tag_value
from tests.auth.dkimpy_reference import reference_verify
from tests.auth.signing import ED25519_PUBLIC, RSA_PUBLIC, sign

from seawall import corpus
from seawall.auth import dkimcanon, dkimkeys
from seawall.auth.dkim import DkimResult, key_name, signatures, verify
from seawall.auth.dkimcanon import parse_tags, tag_problem
from seawall.dnslists.answer import Answer, Status

RSA = Answer(Status.LISTED, (f"v=DKIM1; k=rsa; p={RSA_PUBLIC}",))
ED = Answer(Status.LISTED, (f"v=DKIM1; k=ed25519; p={ED25519_PUBLIC}",))
ANSWERS: list[Answer | None] = [
    RSA,
    ED,
    Answer(Status.NOT_LISTED, nxdomain=True),
    Answer(Status.SERVFAIL),
    None,
    Answer(Status.LISTED, ("v=DKIM1; k=rsa; p=",)),
    Answer(Status.LISTED, (f"v=DKIM1; k=rsa; s=tlsrpt; p={RSA_PUBLIC}",)),
    Answer(Status.LISTED, (f"v=DKIM1; k=rsa; s=other; p={RSA_PUBLIC}",)),
]
OURS = {"rsa._domainkey.dkim.test": RSA, "ed._domainkey.dkim.test": ED}
MESSAGE = (
    b"From: Alice <alice@mail.dkim.test>\r\n"
    b"To: bob@example.net\r\n"
    b"Subject: the quarterly\r\n\tfigures\r\n"
    b"Date: Fri, 27 Nov 2026 11:00:00 +0000\r\n"
    b"Message-ID: <figures@mail.dkim.test>\r\n"
    b"\r\n"
    b"Here are  the figures.\t\r\n\r\nRegards,\r\nAlice\r\n\r\n\r\n"
)
FORMS = [(h, b) for h in (b"relaxed", b"simple") for b in (b"relaxed", b"simple")]


def _head_body(raw: bytes) -> tuple[bytes, bytes]:
    head = dkimcanon.header_block(raw)
    return head, raw[len(head) :]


def _retag(raw: bytes, old: bytes, new: bytes) -> bytes:
    return raw.replace(old, new, 1)


ALTERATIONS: dict[str, Callable[[bytes], bytes]] = {
    "none": lambda r: r,
    "subject tagged": lambda r: re.sub(rb"(?mi)^subject:", b"Subject: [SPAM]", r, count=1),
    "footer appended": lambda r: r + b"\r\n--\r\nSent through the list\r\n",
    "blank lines appended": lambda r: r + b"\r\n\r\n",
    "spaces at line ends": lambda r: _head_body(r)[0] + _head_body(r)[1].replace(b"\n", b"  \n"),
    "tabs in the body": lambda r: _head_body(r)[0] + _head_body(r)[1].replace(b" ", b"\t", 5),
    "headers refolded": lambda r: re.sub(rb"(?mi)^(to|date):\s*", rb"\1:\r\n   ", r),
    "names lower-cased": lambda r: re.sub(rb"(?m)^(From|Subject):", lambda m: m[0].lower(), r),
    "LF line ends": lambda r: r.replace(b"\r\n", b"\n"),
    "CRLF line ends": lambda r: r.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"),
    "second From": lambda r: b"From: Mallory <m@evil.example>\r\n" + r,
    "b= damaged": lambda r: (
        re.sub(rb"(\sb=\s*)([A-Za-z0-9+/])", rb"\1A", r, count=1)
        if not re.search(rb"\sb=\s*A", r)
        else re.sub(rb"(\sb=\s*)([A-Za-z0-9+/])", rb"\1B", r, count=1)
    ),
    "bh= damaged": lambda r: _retag(r, b"bh=", b"bh=AAAA"),
    "expired x=": lambda r: _retag(r, b"; s=", b"; x=1000000000; s="),
    "future t=": lambda r: re.sub(rb"\bt=\d+", b"t=4000000000", r, count=1),
    "bad c=": lambda r: re.sub(rb"c=\w+/\w+", b"c=relaxed/loose", r, count=1),
    "i= elsewhere": lambda r: re.sub(rb"\bi=@[\w.]+", b"i=@elsewhere.example", r, count=1),
    "empty l=": lambda r: re.sub(rb"\bl=\d+", b"l=", r, count=1),
    "h= spaced": lambda r: r.replace(b" : ", b" :\r\n\t ", 2),
}


def outcome(results: list[DkimResult]) -> list[tuple[object, ...]]:
    return [(r.status, r.domain, r.selector, r.algorithm, r.partial) for r in results]


def both(
    raw: bytes, keys: dict[str, Answer | None], *, min_rsa_bits: int = 1024
) -> list[DkimResult]:
    found = signatures(raw)
    ours = verify(raw, found, keys, min_rsa_bits=min_rsa_bits)
    theirs = reference_verify(raw, found, keys, min_rsa_bits=min_rsa_bits)
    assert outcome(ours) == outcome(theirs), (raw[:3000], [r.detail for r in ours])
    return ours


def keys_for(raw: bytes, turn: int) -> dict[str, Answer | None]:
    keys: dict[str, Answer | None] = {
        key_name(s): ANSWERS[(turn + i) % len(ANSWERS)] for i, s in enumerate(signatures(raw))
    }
    keys.update(OURS)
    return keys


def _signed_again(raw: bytes, turn: int) -> bytes | None:
    head, body = FORMS[turn % 4], turn // 4 % 2 == 1
    try:
        return sign(
            raw,
            "dkim.test",
            "ed" if body else "rsa",
            ed25519=body,
            length=turn // 8 % 3 == 0,
            canonicalize=head,
        )
    except (dkimpy.DKIMException, IndexError):  # no header section dkimpy can sign
        return None


@pytest.mark.parametrize("form", FORMS, ids=lambda f: b"/".join(f).decode())
@pytest.mark.parametrize("ed25519", [False, True], ids=["rsa", "ed25519"])
@pytest.mark.parametrize("length", [False, True], ids=["whole", "l="])
def test_the_altered_in_transit_cases_match(
    form: tuple[bytes, bytes], ed25519: bool, length: bool
) -> None:
    raw = sign(
        MESSAGE,
        "dkim.test",
        "ed" if ed25519 else "rsa",
        ed25519=ed25519,
        length=length,
        canonicalize=form,
    )
    seen = collections.Counter[str]()
    for alteration in ALTERATIONS.values():
        altered = alteration(raw)
        for min_bits in (1024, 2048):
            results = both(altered, OURS, min_rsa_bits=min_bits)
            seen.update(r.status.value + ("/partial" if r.partial else "") for r in results)
        for answer in ANSWERS:  # the wrong key type, no key, a failed lookup ...
            both(altered, {"rsa._domainkey.dkim.test": answer, "ed._domainkey.dkim.test": answer})
    assert seen["pass"] > 0
    assert seen["fail"] > 0
    assert seen["permerror"] > 0
    if length:
        assert seen["pass/partial"] > 0


@functools.cache  # read once a session: the DKIM and ARC reference tests all use it
def _corpus_messages() -> list[tuple[Path, bytes]]:
    out = []
    for name in (corpus.SPAMASSASSIN, corpus.CSDMC, corpus.ENRON_HAM, corpus.PHISHING_POT):
        try:
            root = corpus.unpack(name)
        except corpus.CorpusError as exc:
            pytest.skip(str(exc))
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix != ".csv":
                raw = path.read_bytes()
                if b"dkim-signature" in dkimcanon.header_block(raw).lower():
                    out.append((path, raw))
    return out


def test_every_corpus_header_section_reads_as_dkimpy_reads_it() -> None:
    """All 30,000 messages of the shared corpora, signed or not (mbox lines, folds, CRs)."""
    count = 0
    for name in (corpus.SPAMASSASSIN, corpus.CSDMC, corpus.ENRON_HAM, corpus.PHISHING_POT):
        try:
            root = corpus.unpack(name)
        except corpus.CorpusError as exc:
            pytest.skip(str(exc))
        for path in root.rglob("*"):
            if not path.is_file() or path.suffix == ".csv":
                continue
            head = dkimcanon.header_block(path.read_bytes())
            try:
                expected: object = [tuple(h) for h in dkimpy.rfc822_parse(head)[0]]
            except (dkimpy.MessageFormatError, IndexError):
                expected = "not a header section"
            try:
                got: object = dkimcanon.parse_fields(head)
            except dkimcanon.HeaderFormatError:
                got = "not a header section"
            assert got == expected, path
            count += 1
    assert count > 30_000


def test_every_signed_corpus_message_matches_dkimpy() -> None:
    """The real signatures with the keys turning through every kind of answer, then every
    other message signed again here, its canonicalisation and alteration taken in turn
    (dkimpy's signing took most of the test's time when every message was)."""
    messages = _corpus_messages()
    assert len(messages) >= 2500, len(messages)
    seen = collections.Counter[str]()
    names = list(ALTERATIONS)
    for turn, (_, raw) in enumerate(messages):
        results = both(raw, keys_for(raw, turn))
        seen.update(r.status.value for r in results)
        again = None if turn % 2 else _signed_again(raw, turn // 2)
        if again is None:
            continue
        altered = ALTERATIONS[names[turn // 2 % len(names)]](again)
        results = both(altered, keys_for(altered, turn // 2))
        seen.update(r.status.value + ("/partial" if r.partial else "") for r in results)
    print(dict(seen))
    for status in ("pass", "pass/partial", "fail", "permerror", "temperror"):
        assert seen[status] > 0, (status, seen)


def test_random_damage_matches_dkimpy() -> None:
    """Bytes inserted, deleted or changed anywhere in messages signed here."""
    rng = random.Random(8463)
    messages = [raw for _, raw in _corpus_messages()[::25]] + [MESSAGE]
    pieces = [b" ", b"\t", b"\r\n", b"\n", b"\r", b"\r\n ", b"\n\t", b":", b";", b"=", b"A", b""]
    seen = collections.Counter[str]()
    for turn in range(600):
        signed = _signed_again(messages[turn % len(messages)], turn)
        if signed is None:
            continue
        for _ in range(3):
            at = rng.randrange(len(signed))
            if rng.random() < 0.7:  # mostly in the header section, where the parse is
                at = rng.randrange(len(dkimcanon.header_block(signed)))
            cut = rng.choice((0, 0, 1))
            damaged = signed[:at] + rng.choice(pieces) + signed[at + cut :]
            seen.update(r.status.value for r in both(damaged, OURS))
    assert seen["pass"] > 0
    assert seen["fail"] > 0


def test_the_canonicalisations_match_dkimpy_on_random_input() -> None:
    rng = random.Random(6376)
    alphabet = b"ab \t\r\n:;=\x0b"
    for _ in range(5000):
        text = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
        body = text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        assert dkimcanon.canonical_body(body, False) == Simple.canonicalize_body(body)
        assert dkimcanon.canonical_body(body, True) == Relaxed.canonicalize_body(body)
        name = b"X-" + bytes(rng.choice(b"AbC-") for _ in range(3))
        for relaxed, form in ((False, Simple), (True, Relaxed)):
            ((n, v),) = form.canonicalize_headers([(name, text)])
            assert dkimcanon.canonical_field(name, text, relaxed) == n + b":" + v
        value = b" v=1; b=" + text + b"; bh=x" if rng.random() < 0.5 else b"a=1;b=" + text
        assert dkimcanon.without_b(value) == dkimpy.RE_BTAG.sub(rb"\1", value)


def test_relaxed_body_matches_dkimpy_on_long_runs_of_white_space() -> None:
    """Runs of spaces and tabs of every length, at line ends and inside lines, and a
    body of nothing else: the relaxed body is made with replace passes, not one regex."""
    rng = random.Random(4)
    pieces = [b" ", b"  ", b" " * 7, b"\t", b" \t ", b"\t" * 5, b"x", b"\r\n", b"\r", b"\x0b"]
    for _ in range(2000):
        text = b"".join(rng.choice(pieces) for _ in range(rng.randrange(0, 60)))
        body = text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        assert dkimcanon.canonical_body(body, True) == Relaxed.canonicalize_body(body), body
    for body in (b" " * 3_000, b"\t \r\n" * 1_000, b"a" + b" " * 2_049 + b"b\r\n"):
        assert dkimcanon.canonical_body(body, True) == Relaxed.canonicalize_body(body)
    # Megabyte runs: dkimpy's expressions take time quadratic in a run; ours do not.
    assert dkimcanon.canonical_body(b" " * 1_000_000, True) == b" \r\n"
    assert dkimcanon.canonical_body(b"\t \r\n" * 200_000, True) == b""
    assert dkimcanon.canonical_body(b"a" + b"\t" * 1_000_000 + b"b\r\n", True) == b"a b\r\n"


def test_tag_lists_parse_as_dkimpy_parses_them() -> None:
    rng = random.Random(3)
    alphabet = b"ab1_ =;\t\r\n"
    for _ in range(5000):
        text = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 30)))
        try:
            expected: object = parse_tag_value(text)
        except InvalidTagValueList:
            expected = "invalid"
        try:
            got: object = dkimcanon.parse_tags(text)
        except dkimcanon.TagListError:
            got = "invalid"
        assert got == expected, text


def _dkimpy_key(record: bytes) -> object:
    try:
        pk, bits, kind, tlsrpt = dkimpy.evaluate_pk(b"k._domainkey.dkim.test", record)
    except (dkimpy.DKIMException, ValueError, AssertionError):  # AssertionError: its DER
        return "bad"
    if kind is None:
        return "not for email"
    if kind == b"rsa":
        if pk["publicExponent"].bit_length() > dkimkeys.MAX_EXPONENT_BITS:
            return "bad"  # refused on purpose: seconds of Python pow per signature
        return ("rsa", bits, tlsrpt, pk["modulus"], pk["publicExponent"])
    return ("ed25519", bits, tlsrpt, bytes(pk), 0)


def _our_key(record: bytes) -> object:
    key = dkimkeys.load("k._domainkey.dkim.test", record.decode("utf-8", "replace"))
    if isinstance(key, str):
        return "bad"
    if not key.kind:
        return "not for email"
    if key.kind == "rsa":
        return ("rsa", key.bits, key.tlsrpt, key.modulus, key.exponent)
    return ("ed25519", key.bits, key.tlsrpt, bytes(key.ed25519), 0)


def test_key_records_read_as_dkimpy_reads_them() -> None:
    """Every tag of a key record, and DER damaged anywhere (SubjectPublicKeyInfo and the
    bare RSAPublicKey inside it)."""
    spki = base64.b64decode(RSA_PUBLIC)
    bare = spki[22:]  # the RSAPublicKey in the BIT STRING
    assert dkimkeys.rsa_numbers(bare) == dkimkeys.rsa_numbers(spki)
    records = [f"v=DKIM1; k=rsa; p={RSA_PUBLIC}".encode(), f"p={RSA_PUBLIC}".encode()]
    records += [f"v=DKIM1; k=ed25519; p={ED25519_PUBLIC}".encode()]
    for extra in ("v=DKIM2;", "k=dsa;", "s=email;", "s=tlsrpt;", "s=*;", "s=other;", "h=sha256;"):
        records += [extra.encode() + r for r in records[:3]]
    records += [b"", b"v=DKIM1", b"v=DKIM1; k=rsa", b"v=DKIM1; p=", b"p=AAAA", b"p=!!!", b";"]
    records += [b"k=ed25519; p=" + base64.b64encode(bytes(31)), b"k=ed25519; p=A"]
    rng = random.Random(5280)
    for _ in range(3000):
        der = bytearray(rng.choice((spki, bare)))
        for _ in range(rng.randrange(1, 3)):
            at = rng.randrange(max(1, len(der)))
            roll = rng.random()
            if roll < 0.5 and der:
                der[at] = rng.randrange(256)
            elif roll < 0.75:
                del der[at:]
            else:
                der[at:at] = bytes([rng.choice((0x00, 0x02, 0x05, 0x30, 0x80, 0x81, 0xFF))])
        records.append(b"k=rsa; p=" + base64.b64encode(bytes(der)))
    kinds = collections.Counter[str]()
    for record in records:
        expected = _dkimpy_key(record)
        assert _our_key(record) == expected, record
        kinds[expected if isinstance(expected, str) else str(expected[0])] += 1
    assert kinds["rsa"] > 100
    assert kinds["bad"] > 100
    assert kinds["ed25519"]
    assert kinds["not for email"]


def test_tag_checks_refuse_what_dkimpy_refuses() -> None:
    now = time.time()
    good = parse_tags(_sig_value(MESSAGE))
    rng = random.Random(4871)
    values = [
        b"",
        b"1",
        b"0",
        b"12",
        b"x",
        b"pass",
        b"dns/txt",
        b"@dkim.test",
        b"a.dkim.test",
        b"dkim.test",
        b"@DKIM.TEST",
        b"rsa-sha1",
        b"RSA-SHA256",
        b"ed25519-sha256",
        b"AAAA",
        b"AAA",
        b"AA==",
        b"A A=",
        b"a b",
        b"d(x)",
        b"\xe4.test",
        str(int(now)).encode(),
        str(int(now) + 10**6).encode(),
        b"1000000000",
        b"9" * 80,
    ]
    refused = 0
    for _ in range(5000):
        tags = dict(good)
        for _ in range(rng.randrange(1, 3)):
            tags[
                rng.choice((b"a", b"b", b"bh", b"cv", b"d", b"i", b"l", b"q", b"t", b"v", b"x"))
            ] = rng.choice(values)
        try:
            dkimpy.validate_signature_fields(dict(tags))
            expected = False
        except (dkimpy.ValidationError, IndexError):
            expected = True
        assert bool(tag_problem(tags, now)) is expected, tags
        refused += expected
    assert refused > 500
    assert 5000 - refused > 200


def _sig_value(raw: bytes) -> bytes:
    signed = sign(raw, "dkim.test")
    return dkimcanon.parse_fields(dkimcanon.header_block(signed))[0][1]


def test_keys_too_large_to_check_are_refused() -> None:
    """The one place we differ from dkimpy: a key whose check would cost seconds (a
    16384-bit modulus, a huge exponent) is a permerror, not minutes of pow per message."""

    def record(modulus: int, exponent: int) -> str:
        def integer(value: int) -> bytes:
            body = value.to_bytes(value.bit_length() // 8 + 1, "big")
            return b"\x02" + _der_length(len(body)) + body

        numbers = integer(modulus) + integer(exponent)
        der = b"\x30" + _der_length(len(numbers)) + numbers
        return "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()

    big = (1 << 16383) | 1
    assert "too large" in str(dkimkeys.load("a._domainkey.x.test", record(big, 65537)))
    assert "too large" in str(dkimkeys.load("b._domainkey.x.test", record(1 << 2047 | 1, big)))
    usable = dkimkeys.load("c._domainkey.x.test", record((1 << 4095) | 1, 65537))
    assert isinstance(usable, dkimkeys.Key)
    assert usable.bits == 4096
    raw = sign(MESSAGE, "dkim.test")
    keys = {"rsa._domainkey.dkim.test": Answer(Status.LISTED, (record(big, 65537),))}
    assert [r.status.value for r in verify(raw, signatures(raw), keys)] == ["permerror"]


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body
