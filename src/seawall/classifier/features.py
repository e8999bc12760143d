"""A message to hashed, binary character n-gram features: any language, no word lists.

Five regions of the message are turned into text: the header block (names and
undecoded values), the subject, the decoded body text (whitespace collapsed),
the sorted set of URL hosts, and the *shape* of the links (:func:`url_shapes`:
an IP host, a port, user info, the path's depth, the number of subdomains, a
digit- or hyphen-laden domain, the top-level domain...), so that the classifier
learns what phishing links look like, not only where the ones it saw went.
Each region is cut to a byte budget, encoded as UTF-8, and every 4-byte window
becomes one feature: the window read as a little-endian ``uint32``, mixed with
the region's constant, and hashed into
``2**bits`` slots by a multiplicative (Fibonacci) hash.  Features are binary:
the sorted, de-duplicated slot numbers, each tagged with its region
(``key = region << bits | slot``).

Each region is scaled to its own unit length, times a region weight, and the
message to unit length overall (:func:`split`): a long body does not drown the
headers, and a one-line subject does not outweigh both.  On the SpamAssassin
corpus this per-region scaling lifted spam recall at 0.1% ham FPR by two to
three points over one joint scaling.

Every message has two vectors, one per model (:data:`MODELS`): the *full* one over all
five regions (keys of regions 0-4), and the *content* one over the four regions a sender
writes (subject, body, hosts, link shapes: the same slots again as keys of regions 5-8,
its own unit length, no header region).  Their weights live in one array, interleaved:
a slot's full weight at ``2 * slot`` and its content weight at ``2 * slot + 1``
(:func:`split` maps the keys there), so they never share a weight, and the two weights a
message reads for one slot are one memory fetch (with the content model's half after
the full one's, a scan's second gather missed the CPU caches again: 51 against 37 us a
message, the one model's alone 37, on 3,000 keys after other work).  The content model
is what still speaks on mail of a style never learned, whose headers (an era's relays
and mailers) look like the ham learned (``bench/loso_margins.py``, docs/learning.md).

Byte 4-grams are the TREC spam-track recipe (Sculley and Wachman 2007): they
need no tokeniser, so they work the same for German compounds, Cyrillic or
Chinese, and they see obfuscations ("V1agra", "f r e e") that word lists miss.
Everything is vectorised with numpy; there is no per-character Python loop.

>>> from seawall.message import parse_message
>>> keys = features(parse_message(b"Subject: Hallo\\n\\nGuten Tag"), bits=20)
>>> slots, scales = split(keys, bits=20)
>>> round(float((scales**2).sum()), 4)  # two models, each at unit length
2.0
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
from numpy.typing import NDArray

from seawall.message.model import Message

VERSION = 5  # bump when a change here moves any slot or weight: stored states become stale

HEADER_BYTES = 3000  # header text read; Received chains are long, the rest is short
SUBJECT_BYTES = 400
BODY_BYTES = 3000  # the TREC recipe: the start of a message carries most of the signal
HOSTS_MAX = 50

# Our own verdict headers must not teach the classifier what it said last time.
_OWN_HEADERS = ("x-spam", "x-seawall")

# One constant per region, so "free" in a subject and in a body are different features.
_REGIONS = np.array([0x1B873593, 0x85EBCA6B, 0xC2B2AE35, 0x27D4EB2F, 0x165667B1], dtype=np.uint32)
_GOLDEN = np.uint32(0x9E3779B1)  # 2**32 / phi, odd: multiplication permutes uint32
# Relative weight of headers, subject, body, hosts and link shapes: measured
# (bench/accuracy_classifier.py).
_WEIGHTS = (1.0, 0.5, 1.0, 0.5, 0.5)
_SHAPED = frozenset({"href", "text", "bare", "action", "obfuscated"})  # links a reader follows
_SHAPES_MAX = 20
_CONTENT = 4  # the content model's region r + _CONTENT is the full model's region r
# Region weights of all keys: the full model's five, then the content model's four.
_ALL_WEIGHTS = (*_WEIGHTS, *_WEIGHTS[1:])
_BOUNDS = np.arange(1, len(_ALL_WEIGHTS) + 1, dtype=np.uint32)  # region r ends below (r+1) << bits
MODELS = 2  # full, content: weight vectors in one array

Keys = NDArray[np.uint32]  # region << bits | slot, sorted, unique
Slots = NDArray[np.uint32]
Scales = NDArray[np.float32]


def url_shapes(msg: Message) -> str:
    """What the message's links look like, as words: one line per distinct shape.

    >>> from seawall.message import parse_message
    >>> url_shapes(parse_message(b"\\n\\nhttp://user@192.0.2.1:8080/a/b/c.php?x=1"))
    'http ip port userinfo depth3 query ext:php'
    """
    shapes: set[str] = set()
    for url in msg.urls:
        if url.source not in _SHAPED:
            continue
        rest = url.url[len(url.scheme) + 3 :]
        netloc, _, path = rest.partition("/")
        words = [url.scheme]
        if url.is_ip:
            words.append("ip")
        else:
            host, domain = url.host, url.domain
            subdomains = host[: -len(domain)].count(".") if host.endswith(domain) else 0
            label = domain.partition(".")[0]
            words.append(f"tld:{domain.rpartition('.')[2][:12]}")
            words.append(f"sub{min(subdomains, 4)}")
            if any(c.isdigit() for c in label):
                words.append("digits")
            if label.count("-"):
                words.append(f"hyphen{min(label.count('-'), 3)}")
            if len(label) > 15:
                words.append("longlabel")
            if not host.isascii():
                words.append("idn")
        hostport = netloc.rpartition("@")[2]
        if ":" in (hostport.rpartition("]")[2] if hostport.startswith("[") else hostport):
            words.append("port")
        if "@" in netloc:
            words.append("userinfo")
        path, _, query = path.partition("?")
        words.append(f"depth{min(path.count('/') + bool(path), 6)}")
        if query:
            words.append("query")
        name = path.rpartition("/")[2]
        if "." in name:
            words.append(f"ext:{name.rpartition('.')[2][:5].lower()}")
        if "@" in path or "//" in path:
            words.append("pathtrick")
        shapes.add(" ".join(words))
        if len(shapes) >= _SHAPES_MAX:
            break
    return "\n".join(sorted(shapes))


def regions(msg: Message) -> tuple[str, str, str, str, str]:
    """The five texts features are read from: headers, subject, body, URL hosts, shapes."""
    lines = [
        f"{name}: {value}"
        for name, value in msg.headers.raw_items()
        if not name.lower().startswith(_OWN_HEADERS)
    ]
    body = " ".join(msg.text[: BODY_BYTES * 3].split())
    hosts = " ".join(sorted({url.host for url in msg.urls})[:HOSTS_MAX])
    return "\n".join(lines), " ".join(msg.subject.split()), body, hosts, url_shapes(msg)


def features(msg: Message, *, bits: int) -> Keys:
    """The message's features: sorted, unique ``region << bits | slot`` keys."""
    headers, subject, body, hosts, shapes = regions(msg)
    chunks = [
        headers[:HEADER_BYTES].encode("utf-8", "replace")[:HEADER_BYTES],
        subject[:SUBJECT_BYTES].encode("utf-8", "replace")[:SUBJECT_BYTES],
        body[:BODY_BYTES].encode("utf-8", "replace")[:BODY_BYTES],
    ]
    if hosts:  # a message with no links has neither hosts nor shapes
        chunks.append(hosts[:HEADER_BYTES].encode("utf-8", "replace")[:HEADER_BYTES])
        chunks.append(shapes[:HEADER_BYTES].encode("utf-8", "replace")[:HEADER_BYTES])
    # One buffer, each region between spaces, so a region's first and last bytes make
    # windows too; the few windows that straddle two regions are harmless constants.
    data = b" " + b"  ".join(chunks) + b" "
    count = len(data) - 3
    sizes = [len(chunk) + 2 for chunk in chunks]
    tags = np.repeat(_REGIONS[: len(chunks)], sizes)[:count]
    regions_of = np.repeat(np.arange(len(chunks), dtype=np.uint32) << np.uint32(bits), sizes)
    # Window i is the 4 bytes at i..i+3 read as one uint32: a strided view, no copy.
    windows = np.ndarray((count,), dtype="<u4", buffer=data, offset=0, strides=(1,))
    mixed = windows ^ tags
    mixed ^= mixed >> np.uint32(15)
    mixed *= _GOLDEN
    mixed >>= np.uint32(32 - bits)
    mixed |= regions_of[:count]
    mixed.sort()
    keep = np.empty(count, dtype=bool)
    keep[0] = True
    np.not_equal(mixed[1:], mixed[:-1], out=keep[1:])
    unique = mixed[keep]
    # The content model's keys: regions 1-4 again as 5-8 (all above region 4's, so sorted).
    content = unique[np.searchsorted(unique, np.uint32(1 << bits)) :]
    both: Keys = np.concatenate((unique, content + np.uint32(_CONTENT << bits)))
    return both


def cut_of(keys: Keys, *, bits: int) -> int:
    """Where the content model's keys start."""
    return int(np.searchsorted(keys, np.uint32((_CONTENT + 1) << bits)))


def parts(keys: Keys, *, bits: int) -> tuple[Keys, Keys]:
    """A message's keys as the full model's and the content model's (either may be empty)."""
    cut = cut_of(keys, bits=bits)
    return keys[:cut], keys[cut:]


def split(keys: Keys, *, bits: int) -> tuple[Slots, Scales]:
    """Slots and their values: each region at unit length times its weight, each model's
    part at unit length; slot ``s`` is weight ``2 * s`` of the full model and ``2 * s + 1``
    of the content model (the module docstring).

    A pure function of ``keys``, so every process computes identical float32 values.
    """
    slots: Slots = (keys & np.uint32((1 << bits) - 1)) << np.uint32(1)
    # Keys are sorted, and the region is their top bits: a region is one contiguous run.
    ends = np.searchsorted(keys, _BOUNDS << np.uint32(bits)).tolist()
    counts = [end - start for start, end in zip([0, *ends[:-1]], ends, strict=True)]
    values: list[float] = []
    for first, last in ((0, _CONTENT + 1), (_CONTENT + 1, len(_ALL_WEIGHTS))):
        pairs = list(zip(_ALL_WEIGHTS[first:last], counts[first:last], strict=True))
        norm = math.sqrt(sum(w * w for w, n in pairs if n)) or 1.0
        values.extend(w / math.sqrt(n) / norm if n else 0.0 for w, n in pairs)
    scales: Scales = np.repeat(np.array(values, dtype=np.float32), counts)
    content = ends[_CONTENT]  # the content model's keys start here
    if content < len(slots):
        slots[content:] |= np.uint32(1)
    return slots, scales


def digest(msg: Message) -> bytes:
    """What makes two copies "the same message" for learning: Message-ID and body.

    Copies of one message fetched from different mailboxes differ in their
    Received and Delivered-To headers but not in these.  Without a Message-ID
    the whole raw message is the key.
    """
    raw = msg.raw
    message_id = msg.headers.get("Message-ID", "").strip()
    if not message_id:
        return hashlib.sha256(b"raw\0" + raw).digest()
    ends = [end for end in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if end >= 0]
    body = raw[min(ends) :].lstrip(b"\r\n") if ends else b""
    return hashlib.sha256(b"mid\0" + message_id.encode("utf-8", "replace") + b"\0" + body).digest()
