"""Fingerprints: normalisation, stable hashing, MinHash estimates and band collisions."""

from __future__ import annotations

import doctest
import os
import subprocess
import sys

import numpy as np
import pytest

from seawall.campaigns import fingerprint, index, protocol, quality, registry
from seawall.campaigns.fingerprint import (
    BANDS,
    MIN_TOKENS,
    PERMUTATIONS,
    ROWS,
    Fingerprint,
    band_keys,
    minhash,
    similarity,
    word_hashes,
    words,
)
from seawall.message import parse_message

TEXT = (
    "We are pleased to tell you that your account was selected for our annual loyalty "
    "reward. To receive the gift card, confirm your shipping details before the end of "
    "the week and keep this message for your records."
)


@pytest.mark.parametrize(
    "module", [fingerprint, index, protocol, quality, registry], ids=lambda m: m.__name__
)
def test_docstring_examples(module: object) -> None:
    failed, attempted = doctest.testmod(module)  # type: ignore[arg-type]
    assert attempted > 0
    assert failed == 0


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param("Total: $1,299.00 for Order #A-77812", "total $5 for order a", id="numbers"),
        pytest.param("ＦＲＥＥ　ｏｆｆｅｒ", "free offer", id="nfkc-fullwidth"),
        pytest.param("STRASSE Straße", "strasse strasse", id="casefold"),
        pytest.param("“quoted” — dash… • bullet 🎉", "quoted dash bullet", id="symbols"),
        pytest.param(
            "see http://x.example/a?u=9f8e7d or mail bob@x.example, www.y.example/z",
            "see or mail",
            id="addresses",
        ),
        pytest.param("a b c I x", "", id="one-letter-words"),
        pytest.param("abc " + "Q" * 31 + " def", "abc def", id="long-words"),
    ],
)
def test_normalisation_makes_these_the_same_words(a: str, b: str) -> None:
    assert word_hashes(a).tolist() == word_hashes(b).tolist()


def test_unspaced_scripts_are_split_into_characters() -> None:
    assert words("限时优惠，立即购买") == [c.encode() for c in "限时优惠"] + [
        c.encode() for c in "立即购买"
    ]
    assert len(word_hashes("Ваш аккаунт заблокирован")) == 3


def test_equal_text_equal_fingerprint_and_small_edits_stay_near() -> None:
    a = Fingerprint.from_text(TEXT, "Your reward", frozenset({"shop.example"}))
    b = Fingerprint.from_text(TEXT, "Your reward", frozenset({"shop.example"}))
    assert a.digest == b.digest
    assert a.bands == b.bands
    assert np.array_equal(a.minhash, b.minhash)
    edited = Fingerprint.from_text(TEXT.replace("annual", "yearly"), "Your reward")
    assert 0.6 <= similarity(a.minhash, edited.minhash) < 1.0
    other = Fingerprint.from_text("Minutes of the planning meeting are attached, see item four.")
    assert similarity(a.minhash, other.minhash) < 0.1


def test_fingerprint_fields() -> None:
    fp = Fingerprint.from_text(TEXT, "Hi", frozenset({"a.example", "b.example"}), "text/plain;")
    assert fp.minhash.shape == (PERMUTATIONS,)
    assert fp.minhash.dtype == np.uint16
    assert not fp.minhash.flags.writeable
    assert len(fp.bands) == BANDS
    assert len(set(fp.bands)) == BANDS
    assert all(isinstance(k, int) and 0 <= k < 2**64 for k in fp.bands)
    assert fp.domains == frozenset({"a.example", "b.example"})
    assert len(fp.digest) == 16
    assert int(fp.digest, 16) >= 0
    # 36 three-word shingles of the 38 words, plus structure, subject and two domains
    assert fp.tokens == 36 + 4
    assert fp.clusterable


def test_short_text_is_not_clusterable() -> None:
    fp = Fingerprint.of(parse_message(b"Subject: hi\n\nThanks, see you!\n"))
    assert fp.tokens < MIN_TOKENS
    assert not fp.clusterable


def test_of_reads_subject_domains_and_structure() -> None:
    raw = (
        b"Subject: Your reward\nMIME-Version: 1.0\nContent-Type: text/html\n\n"
        b"<p>" + TEXT.encode() + b' <a href="http://www.shop.example/x?id=1">here</a></p>\n'
    )
    fp = Fingerprint.of(parse_message(raw))
    assert fp.domains == frozenset({"shop.example"})
    plain = Fingerprint.from_text(TEXT + " here", "Your reward", frozenset({"shop.example"}))
    assert similarity(fp.minhash, plain.minhash) > 0.8  # only the structure feature differs


def test_from_minhash_checks_the_shape() -> None:
    with pytest.raises(ValueError, match="128 slots"):
        Fingerprint.from_minhash(np.zeros(64, dtype=np.uint16), tokens=10)
    sig = np.arange(PERMUTATIONS, dtype=np.uint16)
    fp = Fingerprint.from_minhash(sig, tokens=10)
    sig[0] = 99  # the fingerprint holds its own copy
    assert fp.minhash[0] == 0


def test_fingerprints_agree_across_processes() -> None:
    """No salted hash(): another interpreter with another hash seed gives the same digest."""
    here = Fingerprint.from_text(TEXT, "Your reward", frozenset({"shop.example"}))
    code = (
        "from seawall.campaigns.fingerprint import Fingerprint\n"
        f"fp = Fingerprint.from_text({TEXT!r}, 'Your reward', frozenset({{'shop.example'}}))\n"
        "print(fp.digest, fp.bands[0], fp.bands[-1])\n"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [here.digest, str(here.bands[0]), str(here.bands[-1])]


# Fingerprints of fingerprint.VERSION 2.  Saved indexes hold signatures: a change that moves
# any of these (a faster hash, another normalisation) must bump VERSION, so that a saved
# index is refused and rebuilt instead of silently never matching again.
PINNED = [
    ((TEXT, "Your reward", frozenset({"shop.example"}), "text/plain;"), "96b28a5595780d0f", 39),
    (
        (
            "Ваш аккаунт заблокирован. Подтвердите данные по ссылке http://x.example/a?id=77 "
            "до 12:00 сегодня, иначе доступ будет закрыт",
            "Срочно",
            frozenset({"x.example"}),
            "text/html;",
        ),
        "2762efbeb7a0a53e",
        14,
    ),
    (
        (
            "限时优惠，立即购买！全场商品五折，仅限今天。"
            "请访问 www.shop.example 查看详情，订单号 88231",
            "优惠",
            frozenset(),
            "text/plain;",
        ),
        "78b7e1263158949e",
        28,
    ),
    (("one", "", frozenset(), ""), "2cba47dfaae9b189", 2),
]


@pytest.mark.parametrize(("parts", "digest", "tokens"), PINNED, ids=["en", "ru", "zh", "tiny"])
def test_fingerprints_are_those_of_this_version(
    parts: tuple[str, str, frozenset[str], str], digest: str, tokens: int
) -> None:
    assert fingerprint.VERSION == 2
    fp = Fingerprint.from_text(*parts)
    assert (fp.digest, fp.tokens) == (digest, tokens)
    assert np.array_equal(fp.keys, np.array(fp.bands, dtype=np.uint64))
    assert fp.keys.tolist() == band_keys(fp.minhash).tolist()


def _pair(rng: np.random.Generator, n: int, jaccard: float) -> tuple[np.ndarray, np.ndarray]:
    shared = round(2 * n * jaccard / (1 + jaccard))
    common = rng.integers(0, 2**64, shared, dtype=np.uint64, endpoint=False)
    a = np.concatenate((common, rng.integers(0, 2**64, n - shared, dtype=np.uint64)))
    b = np.concatenate((common, rng.integers(0, 2**64, n - shared, dtype=np.uint64)))
    return a, b


@pytest.mark.parametrize("size", [12, 60, 400, 3000])
def test_minhash_estimates_jaccard_without_bias(size: int) -> None:
    rng = np.random.default_rng(size)
    for jaccard in (0.1, 0.3, 0.5, 0.8):
        errors = []
        for _ in range(60):
            a, b = _pair(rng, size, jaccard)
            shared = np.intersect1d(a, b).size
            exact = shared / (2 * size - shared)
            errors.append(similarity(minhash(a), minhash(b)) - exact)
        # 128 slots: the standard error is at most 0.044; the mean of 60 is within 0.02
        assert abs(float(np.mean(errors))) < 0.02, (size, jaccard)
        assert float(np.std(errors)) < 0.06, (size, jaccard)


def test_band_collisions_follow_the_s_curve() -> None:
    rng = np.random.default_rng(3)
    for jaccard in (0.1, 0.3, 0.5):
        hits = 0
        for _ in range(300):
            a, b = _pair(rng, 300, jaccard)
            hits += bool((band_keys(minhash(a)) == band_keys(minhash(b))).any())
        expected = 1 - (1 - jaccard**ROWS) ** BANDS
        assert abs(hits / 300 - expected) < 0.08, (jaccard, hits / 300, expected)


def test_band_keys_of_many_signatures_match_one_by_one() -> None:
    sigs = np.random.default_rng(1).integers(0, 2**16, (5, PERMUTATIONS)).astype(np.uint16)
    many = band_keys(sigs)
    assert many.shape == (5, BANDS)
    for row, sig in zip(many, sigs, strict=True):
        assert np.array_equal(row, band_keys(sig))


def test_bytes_round_trip_for_other_processes() -> None:
    fp = Fingerprint.from_text(TEXT, "Your reward", frozenset({"shop.example", "x.example"}))
    again = Fingerprint.from_bytes(fp.to_bytes())
    assert np.array_equal(again.minhash, fp.minhash)
    assert (again.bands, again.digest, again.tokens) == (fp.bands, fp.digest, fp.tokens)
    assert again.domains == fp.domains
    plain = Fingerprint.from_text(TEXT)
    assert Fingerprint.from_bytes(plain.to_bytes()).domains == frozenset()


@pytest.mark.parametrize(
    "data", [b"", b"\x01short", bytes((fingerprint.VERSION + 1,)) + bytes(4 + 2 * PERMUTATIONS)]
)
def test_bytes_of_another_kind_are_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match="not a fingerprint"):
        Fingerprint.from_bytes(data)
