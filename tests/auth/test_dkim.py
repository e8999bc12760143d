"""DKIM verification (seawall.auth.dkim): rsa-sha256 and ed25519-sha256 signed here with
dkimpy, then altered; keys given as the DNS answers the detector would have fetched; and
the real signatures of the shared corpora, which must parse and fail without crashing."""

from __future__ import annotations

import collections
import random
import re
from typing import Any

import dkim as dkimpy
import pytest
from tests.auth.signing import ED25519_PUBLIC, RSA_PUBLIC, sign

from seawall import corpus
from seawall.auth.dkim import DkimResult, DkimStatus, _parsed, key_name, signatures, verify
from seawall.auth.dkimcanon import HeaderFormatError
from seawall.dnslists.answer import Answer, Status

MESSAGE = (
    b"From: Alice <alice@mail.dkim.test>\r\n"
    b"To: bob@example.net\r\n"
    b"Subject: the quarterly figures\r\n"
    b"Date: Fri, 27 Nov 2026 11:00:00 +0000\r\n"
    b"Message-ID: <figures@mail.dkim.test>\r\n"
    b"\r\n"
    b"Here are the figures.\r\n"
)
KEYS = {
    "rsa._domainkey.dkim.test": Answer(Status.LISTED, (f"v=DKIM1; k=rsa; p={RSA_PUBLIC}",)),
    "ed._domainkey.dkim.test": Answer(Status.LISTED, (f"v=DKIM1; k=ed25519; p={ED25519_PUBLIC}",)),
}


def check(raw: bytes, keys: dict[str, Answer | None] | None = None) -> list[DkimResult]:
    return verify(raw, signatures(raw), KEYS if keys is None else keys)


def statuses(raw: bytes, keys: dict[str, Answer | None] | None = None) -> list[str]:
    return [r.status.value for r in check(raw, keys)]


def test_rsa_and_ed25519_signatures_pass() -> None:
    raw = sign(sign(MESSAGE, "dkim.test", "rsa"), "dkim.test", "ed", ed25519=True)
    results = check(raw)
    assert [(r.status, r.selector, r.algorithm) for r in results] == [
        (DkimStatus.PASS, "ed", "ed25519-sha256"),
        (DkimStatus.PASS, "rsa", "rsa-sha256"),
    ]
    assert all(r.counts for r in results)
    assert [key_name(s) for s in signatures(raw)] == [
        "ed._domainkey.dkim.test",
        "rsa._domainkey.dkim.test",
    ]


@pytest.mark.parametrize("ed25519", [False, True])
def test_altered_header_or_body_fails(ed25519: bool) -> None:
    raw = sign(MESSAGE, "dkim.test", "ed" if ed25519 else "rsa", ed25519=ed25519)
    subject = raw.replace(b"the quarterly figures", b"URGENT: wire transfer")
    body = raw.replace(b"Here are the figures.", b"Pay to account 1234.")
    assert statuses(subject) == ["fail"]
    assert check(body)[0].detail == "body hash mismatch"


def test_length_tag_leaves_appended_content_weak() -> None:
    raw = sign(MESSAGE, "dkim.test", length=True)
    whole = check(raw)[0]
    assert whole.status is DkimStatus.PASS
    assert not whole.partial
    assert whole.counts
    appended = check(raw + b"Click http://phish.example/ now\r\n")[0]
    assert appended.status is DkimStatus.PASS
    assert appended.partial
    assert not appended.counts
    assert appended.detail.startswith("l=")


def test_keys_missing_failed_revoked_or_bad() -> None:
    raw = sign(MESSAGE, "dkim.test")
    name = "rsa._domainkey.dkim.test"
    assert statuses(raw, {}) == ["temperror"]  # not back in time
    assert statuses(raw, {name: Answer(Status.TIMEOUT)}) == ["temperror"]
    assert statuses(raw, {name: Answer(Status.SERVFAIL)}) == ["temperror"]
    assert statuses(raw, {name: Answer(Status.NOT_LISTED, nxdomain=True)}) == ["permerror"]
    revoked = Answer(Status.LISTED, ("v=DKIM1; k=rsa; p=",))
    assert statuses(raw, {name: revoked}) == ["permerror"]
    garbage = Answer(Status.LISTED, ("v=DKIM1; k=rsa; p=AAAA",))
    assert statuses(raw, {name: garbage}) == ["permerror"]
    other = {name: KEYS["ed._domainkey.dkim.test"]}  # the wrong key type for the signature
    assert statuses(raw, other) in (["fail"], ["permerror"])


def test_malformed_and_unsupported_signatures_are_permerrors() -> None:
    raw = sign(MESSAGE, "dkim.test")
    sha1 = raw.replace(b"a=rsa-sha256", b"a=rsa-sha1")
    no_domain = re.sub(rb"d=dkim\.test;", b"", raw)
    garbled = raw.replace(b"v=1;", b"v=1; v=2;")
    assert statuses(sha1) == ["permerror"]
    assert statuses(no_domain) == ["permerror"]
    assert statuses(garbled) == ["permerror"]
    assert signatures(MESSAGE) == []


def test_signatures_of_the_shared_corpora_parse_and_never_pass_offline() -> None:
    """Real DKIM-signed mail (phishing_pot, 2019-2025): with no key from its domain (here
    every key name answers with our test key, or nothing), each signature is checked by
    dkimpy and reported fail, permerror or temperror; nothing raises."""
    try:
        root = corpus.unpack(corpus.PHISHING_POT)
    except corpus.CorpusError as exc:
        pytest.skip(str(exc))
    paths = sorted(root.rglob("*.eml"))
    counts: collections.Counter[str] = collections.Counter()
    signed = 0
    for i, path in enumerate(paths):
        raw = path.read_bytes()
        found = signatures(raw)
        if not found:
            continue
        signed += 1
        key = KEYS["rsa._domainkey.dkim.test"] if i % 2 else None
        results = verify(raw, found, {key_name(s): key for s in found})
        assert len(results) == len(found)
        counts.update(r.status.value for r in results)
    assert signed >= 100, f"only {signed} of {len(paths)} messages carry a signature"
    assert counts["pass"] == 0
    assert set(counts) <= {"fail", "permerror", "temperror"}
    assert counts["fail"] + counts["permerror"] > 0
    assert counts["temperror"] > 0
    print(f"{signed} signed messages, signatures by result: {dict(counts)}")


def test_dkimpy_never_asks_other_names(monkeypatch: pytest.MonkeyPatch) -> None:
    import dkim

    def no_dns(*args: object, **kw: object) -> None:
        raise AssertionError("dkimpy's own resolver was called")

    monkeypatch.setattr(dkim, "get_txt", no_dns)
    raw = sign(MESSAGE, "dkim.test")
    assert statuses(raw) == ["pass"]


def test_the_fast_parse_reads_as_dkimpy_reads() -> None:
    """dkim._parsed (our header parse, the body made CRLF in one pass) gives what dkimpy's
    own rfc822_parse gives, or fails where it does, on any mix of CR, LF and folds."""

    def outcome(parse: Any, raw: bytes) -> object:
        try:
            headers, body = parse(raw)
        except (HeaderFormatError, dkimpy.MessageFormatError, IndexError):  # no header section
            return "not a header section"
        return [list(h) for h in headers], body

    rng = random.Random(6376)
    cases = [
        b"A: b\r\n\r\nbody\r\nx\n",
        b"A: b\n c\nB: d\n\nbody\r\r\nz\r\n\r\n",
        b"\nbody",
        b"\r\nbody",
        b"A: b\r\n\nbody\n\n",
        b"A: x\nB: y\n\r\nbo\r\ndy",
        b"A: b\r\r\n\r\nbody",
        b"From x\nA: b\n\nq",
        b" folded first\nA: b\n\n",
        b"A: x",
    ]
    cases += [
        bytes(rng.choice(b"A:b \r\n\t") for _ in range(rng.randrange(1, 30))) for _ in range(5000)
    ]
    # Whole lines: fields, folds, mbox "From " lines, odd names, CRs, in any order.
    lines = [b"A: b", b"From x", b"From: y", b" c", b"\tc", b"B:", b"::", b":x", b"x y: z", b"\r"]
    ends = [b"\n", b"\r\n", b"\r\r\n"]
    for _ in range(5000):
        parts = [rng.choice(lines) + rng.choice(ends) for _ in range(rng.randrange(1, 8))]
        if rng.random() < 0.8:
            parts.append(rng.choice(ends) + b"body\n")
        cases.append(b"".join(parts)[: None if rng.random() < 0.9 else -1])
    for raw in cases:
        assert outcome(_parsed, raw) == outcome(dkimpy.rfc822_parse, raw), raw
