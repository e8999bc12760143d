"""Near-duplicate fingerprints: normalised word shingles, a MinHash signature and LSH band keys.

A message becomes a set of 64-bit features: every run of ``SHINGLE`` consecutive normalised
words of its text, plus one feature for its subject skeleton, one per registrable URL
domain, one for its MIME structure and those of its attachments (``payload.py``: a
worm's copies are a line of text and the same program under another name).  The set
is summarised by a MinHash signature of ``PERMUTATIONS`` slots (the share of equal
slots estimates the Jaccard similarity of two sets) whose first ``BANDS * ROWS`` slots
are cut into ``BANDS`` band keys for locality sensitive hashing: two messages that share
a band key are candidates, which the index then verifies on the whole signature.

Normalisation undoes what a bot does to each copy of a run: NFKC folds look-alike forms,
case is folded, URLs and e-mail addresses (per-message tokens) are dropped, every run of
digits becomes one ``0`` (prices, order numbers), one-byte words (so numbers alone) are
dropped, and so are words longer than ``MAX_TOKEN_BYTES`` (base64 debris, tracking ids).
Chinese and Japanese characters are words on their own, as they are written unspaced.

Words are split by C-level ``bytes`` methods and hashed with CRC-32; shingles, MinHash and
band keys are numpy arithmetic.  Every constant comes from BLAKE2b of a fixed label, so
fingerprints agree across processes, hosts and numpy versions (Python's ``hash()`` is
salted per process and is never used).

>>> a = Fingerprint.from_text("Dear Ann, your order 1234 of the blue widget has shipped today")
>>> b = Fingerprint.from_text("Dear Ann, your order 9876 of the blue widget has shipped today")
>>> a.digest == b.digest, a.bands == b.bands, a.tokens
(True, True, 10)
"""

from __future__ import annotations

import array
import hashlib
import re
import sys
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

import numpy as np
from numpy.typing import NDArray

from seawall.campaigns.payload import payload_features
from seawall.message.model import Message

VERSION: Final = 2  # bump when any change here moves a signature: snapshots become stale

# Three-word shingles: one inserted hash-buster word breaks two of them and adds three noise
# ones.  Four-word shingles lose a third more to each insertion; two-word shingles share
# stock phrases ("click here", "of the") across unrelated mail, which lifts ham-to-spam
# similarity (measured in tests/campaigns/test_corpus_clusters.py).
SHINGLE: Final = 3
PERMUTATIONS: Final = 128
# 32 bands of 3 slots (96 of the 128): a pair of Jaccard similarity s shares a band with
# probability 1 - (1 - s**3)**32: 0.99 at s = 0.5, 0.88 at 0.4, 0.58 at 0.3, 0.23 at 0.2,
# 0.03 at 0.1 and 0.004 at 0.05.  Copies of one spam run with 10-20% inserted hash-buster
# words sit at 0.35-0.5 from each other, where 4-slot bands (0.56 at 0.4) missed often
# enough to split runs (V-measure 0.94 against 0.99, tests/campaigns).  Pairs at 0.1-0.3
# (a shared footer) become candidates that the index then rejects on the whole signature,
# one comparison each.  Three 16-bit slots pack into one 64-bit word.
ROWS: Final = 3
BANDS: Final = 32
# The start of a message identifies it (99% of the SpamAssassin corpus is shorter); the cap
# bounds the cost of the longest ones.
MAX_TEXT_CHARS: Final = 10_000
MAX_TOKEN_BYTES: Final = 30  # 30 ASCII letters, 15 Cyrillic or 10 CJK characters
MAX_DOMAINS: Final = 64
# Fewer features than this and two unrelated messages ("Thanks!", "See attached") could
# look the same: such fingerprints are not clustered (``Fingerprint.clusterable``).
MIN_TOKENS: Final = 8

Signature = NDArray[np.uint16]
_WIRE_HEAD = 5  # to_bytes: the version byte and the token count
_NO_FEATURES: NDArray[np.uint64] = np.zeros(0, dtype=np.uint64)

_U64 = np.uint64
_MASK64 = (1 << 64) - 1
# numpy scalars made once: building one costs about as much as a small array operation.
_S16, _S29, _S32, _S33 = _U64(16), _U64(29), _U64(32), _U64(33)
_LOW16 = _U64(0xFFFF)
_LITTLE = sys.byteorder == "little"


def _constants(label: str, count: int, *, odd: bool = False) -> NDArray[np.uint64]:
    """``count`` stable 64-bit constants derived from ``label`` (odd ones are bijective)."""
    out = np.empty(count, dtype=np.uint64)
    for i in range(count):
        word = hashlib.blake2b(f"seawall.campaigns:{label}:{i}".encode(), digest_size=8)
        out[i] = int.from_bytes(word.digest(), "little") | (1 if odd else 0)
    return out


_SHINGLE_MUL = _constants("shingle", SHINGLE, odd=True)
_BAND_SALT = _constants("band", BANDS)
_ROW_SHIFTS = np.array([1 << (16 * i) for i in range(ROWS)], dtype=np.uint64)
_BAND_MUL = _constants("band-mul", BANDS, odd=True)
_SUBJECT, _DOMAIN, _STRUCTURE, _FINAL, _PROBE = (int(x) for x in _constants("misc", 5, odd=True))
_FINAL_U64 = _U64(_FINAL)


def _fmix(h: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """MurmurHash3's 64-bit finaliser: every input bit reaches every output bit."""
    h = h ^ (h >> _U64(33))
    h = h * _U64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> _U64(33))
    h = h * _U64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> _U64(33))


_BIN_BITS = PERMUTATIONS.bit_length() - 1
_BINS = np.arange(PERMUTATIONS)
_BIN_OF = np.arange(PERMUTATIONS, dtype=np.uint64)
_BIN_SHIFT = _U64(64 - _BIN_BITS)
_BIN_LOW = _BIN_OF << _BIN_SHIFT


def _probe_order() -> NDArray[np.intp]:
    """Each bin's probe sequence: the bins in the order an empty bin borrows from them.

    The sequences are fixed random permutations (a stable hash decides the order), so two
    sets that both leave bin ``i`` empty borrow from the same bin whenever it is filled in
    both: optimal densification, probing without replacement.
    """
    noise = _fmix(np.arange(PERMUTATIONS * PERMUTATIONS, dtype=np.uint64) + _U64(_PROBE))
    return np.argsort(noise.reshape(PERMUTATIONS, PERMUTATIONS), axis=1, kind="stable")


_PROBE_SEQUENCE = _probe_order()


def _byte_map(b: int) -> int:
    if b >= 0x80 or ord("a") <= b <= ord("z") or ord("A") <= b <= ord("Z"):
        return b
    return ord("0") if ord("0") <= b <= ord("9") else ord(" ")


# ASCII punctuation and controls become spaces and digits "0"; UTF-8 sequences are kept.
_ASCII = bytes(_byte_map(b) for b in range(256))
# Code points that are punctuation or symbols rather than letters: Latin-1 punctuation
# (NFKC has mapped the letters among U+0080-U+00BF away), the multiplication and division
# signs, U+2000-U+2BFF (general punctuation to miscellaneous symbols), CJK punctuation,
# private use, CJK compatibility forms, the half- and full-width forms NFKC left alone,
# specials, and everything beyond the BMP (emoji).
_SYMBOLS = re.compile(
    "[\u0080-\u00bf\u00d7\u00f7\u2000-\u2bff\u3000-\u303f\ue000-\uf8ff\ufe30-\ufe4f"
    "\uff00-\uffff\U00010000-\U0010ffff]+"
)
# Kana and CJK ideographs: unspaced scripts, so every character is a word of its own.
_IDEOGRAPHS = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
_DIGIT_RUNS = re.compile(rb"00+")
_MAX_ADDRESS = 2000  # longer "URLs" are cut there: a missing space must not eat the text


def _drop_addresses(text: str) -> str:
    """Remove URLs and e-mail addresses: chunks between whitespace holding ``://``, ``@``, ``www.``.

    Finding anchors with ``str.find`` is far cheaper than a regular expression, which would
    try every position; a chunk ends at a space, a newline or a tab.
    """
    spans: list[tuple[int, int]] = []
    size = len(text)
    for anchor in ("://", "@", "www."):
        at = text.find(anchor)
        while at >= 0:
            # Each search runs only over the chunk found so far, so a long line stays cheap.
            start = text.rfind(" ", max(at - _MAX_ADDRESS, 0), at) + 1
            start = max(text.rfind("\n", start, at), text.rfind("\t", start, at)) + 1 or start
            end = text.find(" ", at, at + _MAX_ADDRESS)
            end = min(at + _MAX_ADDRESS, size) if end < 0 else end
            for stop in ("\n", "\t"):
                found = text.find(stop, at, end)
                end = found if found >= 0 else end
            spans.append((start, end))
            at = text.find(anchor, end)
    if not spans:
        return text
    spans.sort()
    pieces: list[str] = []
    pos = 0
    for start, end in spans:
        if start > pos:
            pieces.append(text[pos:start])
        pos = max(pos, end)
    pieces.append(text[pos:])
    return " ".join(pieces)


def words(text: str) -> list[bytes]:
    """The normalised words of ``text`` in order, as UTF-8, long ones included.

    >>> words("Price: $19.99 for   JOHN@example.com, see www.example.com/x?id=7 Nº1 order A7-22b")
    [b'price', b'0', b'0', b'for', b'see', b'no0', b'order', b'a0', b'0b']
    """
    text = unicodedata.normalize("NFKC", text[:MAX_TEXT_CHARS]).casefold()
    text = _drop_addresses(text)
    if not text.isascii():
        text = _SYMBOLS.sub(" ", text)
        if _IDEOGRAPHS.search(text):
            text = _IDEOGRAPHS.sub(r" \g<0> ", text)
    data = text.encode("utf-8", "surrogatepass").translate(_ASCII)
    # Every run of digits becomes one "0": a price or an order number differs in every copy,
    # where it stands in the sentence does not.  A number on its own is then one byte.
    data = _DIGIT_RUNS.sub(b"0", data)
    return data.split()


def word_hashes(text: str) -> NDArray[np.uint64]:
    """The normalised words of ``text`` in order, each hashed with CRC-32.

    >>> bool((word_hashes("Price: $19.99, and more!") == word_hashes("price 5 AND MORE")).all())
    True
    """
    crc32 = zlib.crc32
    # Through a C array of 32-bit words: numpy converts a list of ints one by one.
    kept = array.array("I", [crc32(w) for w in words(text) if 1 < len(w) <= MAX_TOKEN_BYTES])
    return np.frombuffer(kept, dtype=np.uint32).astype(np.uint64)


def shingles(hashes: NDArray[np.uint64], size: int = SHINGLE) -> NDArray[np.uint64]:
    """64-bit hashes of every run of ``size`` consecutive words (one if there are fewer)."""
    if hashes.size == 0:
        return hashes
    n = max(hashes.size - size + 1, 1)
    acc: NDArray[np.uint64] = hashes[:n] * _SHINGLE_MUL[0]
    term = np.empty_like(acc)
    for j in range(1, min(size, hashes.size)):
        np.multiply(hashes[j : j + n], _SHINGLE_MUL[j], out=term)
        acc += term
    # A sum of CRCs times odd constants is uniform; one xor-shift-multiply round spreads
    # every word into the top bits, which pick the MinHash bin.
    np.right_shift(acc, _S29, out=term)
    acc ^= term
    acc *= _FINAL_U64
    return acc


@lru_cache(maxsize=4096)  # MIME shapes and link domains recur from message to message
def _feature(value: bytes, salt: int) -> int:
    digest = hashlib.blake2b(value, digest_size=8).digest()
    return (int.from_bytes(digest, "little") * salt) & _MASK64


def subject_skeleton(subject: str) -> int:
    """One feature for a subject's normalised words in order ("Re:" kept, numbers gone)."""
    kept = (w for w in words(subject) if 1 < len(w) <= MAX_TOKEN_BYTES)
    return _feature(b" ".join(kept), _SUBJECT)


def structure(msg: Message) -> str:
    """The MIME shape: which text parts there are and the types of the attachments."""
    kinds = sorted({p.content_type for p in msg.parts})
    attached = sorted({a.sniffed_type or a.declared_type for a in msg.attachments})
    return "+".join(kinds) + ";" + "+".join(attached)


def minhash(features: NDArray[np.uint64]) -> Signature:
    """The MinHash signature of a feature set: ``PERMUTATIONS`` 16-bit slots.

    One-permutation hashing (Li, Owen and Zhang 2012) with optimal densification
    (Shrivastava 2017): the features are uniform 64-bit hashes already, so their top 7
    bits pick one of 128 bins and each bin keeps its smallest value; an empty bin borrows
    the value of the first filled bin in its own fixed probe sequence.  Two signatures
    agree in a slot with probability equal to the Jaccard similarity of the sets, as with
    128 independent permutations, for one sort instead of 128 passes over the features.
    Each value is cut to its low 16 bits (b-bit minwise hashing): different minima agree
    by chance with probability 2**-16, far below the estimate's own error (0.044 at 0.5),
    for a quarter of the memory.
    """
    ordered = np.array(features, dtype=np.uint64)
    ordered.sort()
    return _signature(ordered)


def _signature(ordered: NDArray[np.uint64]) -> Signature:
    """``minhash`` of features already sorted (uniform 64-bit hashes: the top 7 bits are a bin)."""
    if ordered.size == 0:
        return np.zeros(PERMUTATIONS, dtype=np.uint16)
    # The first value at or above each bin's lower edge is the bin's minimum if it is in
    # the bin at all (past the end: the last value, which is in an earlier bin).
    first = ordered.searchsorted(_BIN_LOW)
    np.minimum(first, ordered.size - 1, out=first)
    values = ordered[first]
    filled = (values >> _BIN_SHIFT) == _BIN_OF
    empty = (~filled).nonzero()[0]
    if empty.size:
        # An empty bin takes the value of the first filled bin in its probe sequence (one
        # is filled: the set is not empty).
        probes = _PROBE_SEQUENCE[empty]
        source = probes[_BINS[: empty.size], filled[probes].argmax(axis=1)]
        values[empty] = values[source]
    # The low 16 bits of a minimum are uniform and independent of the bits that made it
    # the minimum.
    values &= _LOW16
    return values.astype(np.uint16)


def band_keys(signatures: Signature) -> NDArray[np.uint64]:
    """LSH band keys of one signature (shape ``(BANDS,)``) or of many (``(m, BANDS)``)."""
    if signatures.ndim == 1 and _LITTLE:
        return _band_keys_one(signatures)
    sig = np.ascontiguousarray(signatures, dtype="<u2")
    rows = sig.reshape(-1, PERMUTATIONS)[:, : BANDS * ROWS].reshape(-1, BANDS, ROWS)
    packed = rows.astype(np.uint64) @ _ROW_SHIFTS  # ROWS 16-bit slots side by side
    keys = (packed ^ _BAND_SALT) * _BAND_MUL
    keys ^= keys >> _S32
    return keys[0] if sig.ndim == 1 else keys


def _band_keys_one(sig: Signature) -> NDArray[np.uint64]:
    """``band_keys`` of one signature on a little-endian host: each band's ``ROWS`` slots
    go into the low 48 bits of a zeroed 64-bit word, which is the same packing."""
    words = np.zeros((BANDS, 4), dtype=np.uint16)
    words[:, :ROWS] = sig[: BANDS * ROWS].reshape(BANDS, ROWS)
    keys = words.view(np.uint64).reshape(BANDS)
    keys ^= _BAND_SALT
    keys *= _BAND_MUL
    keys ^= keys >> _S32
    return keys


def _distinct(ordered: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """The distinct values of a sorted array (``np.unique`` without its sort and hashing)."""
    keep = np.empty(ordered.size, dtype=np.bool_)
    keep[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def similarity(a: Signature, b: Signature) -> float:
    """Estimated Jaccard similarity of the feature sets behind two signatures."""
    return float(np.count_nonzero(a == b)) / PERMUTATIONS


@dataclass(frozen=True, slots=True, eq=False)
class Fingerprint:
    """What the campaign index needs of one message.

    ``minhash`` is read-only.  ``tokens`` counts the distinct features (shingles plus the
    subject, domain and structure features); below ``MIN_TOKENS`` the fingerprint is not
    ``clusterable``.  ``digest`` is 16 hex digits of BLAKE2b over the signature: equal for
    equal signatures in any process, it seeds cluster ids.  Fingerprints compare by
    identity (a numpy field has no plain ``==``): compare ``digest`` instead.  The band
    keys and the digest are made on first use: a worker that only sends the fingerprint to
    the tracker never needs them.

    >>> from seawall.message import parse_message
    >>> fp = Fingerprint.of(parse_message(b"Subject: Hi\\n\\nSee http://a.example/x?u=1 now"))
    >>> sorted(fp.domains), fp.tokens, fp.clusterable
    (['a.example'], 4, False)
    """

    minhash: Signature
    domains: frozenset[str]
    tokens: int
    # The distinct features themselves (sorted), for the tracker's recurring-feature pass;
    # empty for a fingerprint built from a signature alone.
    features: NDArray[np.uint64] = field(default_factory=lambda: _NO_FEATURES)
    _keys: NDArray[np.uint64] | None = field(default=None, repr=False)
    _digest: str = field(default="", repr=False)

    @property
    def clusterable(self) -> bool:
        return self.tokens >= MIN_TOKENS

    @property
    def keys(self) -> NDArray[np.uint64]:
        """The LSH band keys as a read-only array (as the index looks them up)."""
        keys = self._keys
        if keys is None:
            keys = band_keys(self.minhash)
            keys.flags.writeable = False
            object.__setattr__(self, "_keys", keys)
        return keys

    @property
    def bands(self) -> tuple[int, ...]:
        """The LSH band keys as ints."""
        return tuple(self.keys.tolist())

    @property
    def digest(self) -> str:
        digest = self._digest
        if not digest:
            sig = self.minhash
            wire = sig.tobytes() if _LITTLE else sig.astype("<u2").tobytes()
            digest = hashlib.blake2b(wire, digest_size=8).hexdigest()
            object.__setattr__(self, "_digest", digest)
        return digest

    @classmethod
    def of(cls, msg: Message) -> Fingerprint:
        """Fingerprint a parsed message (pure; about 0.3 ms for a typical one)."""
        domains = frozenset(u.domain for u in msg.urls if u.domain)
        payload = payload_features(msg.attachments)
        return cls.from_text(msg.text, msg.subject, domains, structure(msg), payload)

    @classmethod
    def from_text(
        cls,
        text: str,
        subject: str = "",
        domains: frozenset[str] = frozenset(),
        shape: str = "",
        payload: Sequence[int] = (),
    ) -> Fingerprint:
        """Fingerprint the parts of a message given one by one (tests, simulators).

        ``payload`` holds the attachments' features (``payload.payload_features``).
        """
        extra = [_feature(shape.encode(), _STRUCTURE), *payload]
        if subject.strip():
            extra.append(subject_skeleton(subject))
        extra.extend(_feature(d.encode(), _DOMAIN) for d in sorted(domains)[:MAX_DOMAINS])
        features = np.concatenate((shingles(word_hashes(text)), np.array(extra, dtype=np.uint64)))
        features.sort()
        distinct = _distinct(features)
        return cls._sealed(_signature(features), int(distinct.size), domains, distinct)

    @classmethod
    def from_features(cls, features: NDArray[np.uint64]) -> Fingerprint:
        """The fingerprint of a chosen subset of another's features (sorted, distinct)."""
        return cls._sealed(_signature(features), int(features.size), frozenset(), features)

    @classmethod
    def from_minhash(
        cls, signature: Signature, *, tokens: int, domains: frozenset[str] = frozenset()
    ) -> Fingerprint:
        """A fingerprint from a ready signature (a restored index, benchmarks)."""
        sig = np.array(signature, dtype=np.uint16)  # a copy: the caller's array may change
        if sig.shape != (PERMUTATIONS,):
            raise ValueError(f"a signature has {PERMUTATIONS} slots, not {sig.shape}")
        return cls._sealed(sig, tokens, domains)

    @classmethod
    def _sealed(
        cls,
        sig: Signature,
        tokens: int,
        domains: frozenset[str],
        features: NDArray[np.uint64] = _NO_FEATURES,
    ) -> Fingerprint:
        """The fingerprint of a signature of our own making, which no one else holds."""
        sig.flags.writeable = False
        return cls(sig, domains, tokens, features)

    def to_bytes(self) -> bytes:
        """A compact form for another process: version, tokens, signature, domains.

        >>> fp = Fingerprint.from_text("one two three four", domains=frozenset({"a.example"}))
        >>> again = Fingerprint.from_bytes(fp.to_bytes())
        >>> again.digest == fp.digest, again.tokens == fp.tokens, sorted(again.domains)
        (True, True, ['a.example'])
        """
        head = bytes((VERSION,)) + self.tokens.to_bytes(4, "little")
        domains = "\n".join(sorted(self.domains)).encode()
        features = self.features.astype("<u8").tobytes()
        return (
            head
            + self.minhash.astype("<u2").tobytes()
            + len(self.features).to_bytes(4, "little")
            + features
            + domains
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Fingerprint:
        """The fingerprint ``to_bytes`` wrote; ``ValueError`` for other bytes or versions."""
        if len(data) < _WIRE_HEAD + 2 * PERMUTATIONS or data[0] != VERSION:
            raise ValueError("not a fingerprint of this version")
        sig = np.frombuffer(data, dtype="<u2", count=PERMUTATIONS, offset=_WIRE_HEAD)
        at = _WIRE_HEAD + 2 * PERMUTATIONS
        count = int.from_bytes(data[at : at + 4], "little")
        end = at + 4 + 8 * count
        if len(data) < end:
            raise ValueError("fingerprint features cut short")
        features = np.frombuffer(data, dtype="<u8", count=count, offset=at + 4)
        if not _LITTLE:
            features = features.astype(np.uint64)
        try:
            names = data[end:].decode()
        except UnicodeDecodeError:
            raise ValueError("fingerprint domains are not UTF-8") from None
        tokens = int.from_bytes(data[1:_WIRE_HEAD], "little")
        domains = frozenset(names.split("\n")) if names else frozenset()
        if not _LITTLE:
            sig = sig.astype(np.uint16)
        # Read-only views of ``data`` (which they keep alive), no copies.
        return cls._sealed(sig, tokens, domains, features)
