"""Features: hashed byte 4-grams of four regions, for any script, deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from seawall.classifier.features import digest, features, parts, split
from seawall.message import parse_message

from .conftest import inline


def test_keys_are_sorted_unique_and_split_into_a_unit_vector_per_model() -> None:
    keys = features(inline("Cheap watches", "Buy now " * 50, "id@x"), bits=12)
    assert keys.dtype == np.uint32
    assert (np.diff(keys.astype(np.int64)) > 0).all()
    slots, values = split(keys, bits=12)
    assert int(slots.max()) < 2 * 2**12  # two models' weights, interleaved
    assert values.dtype == np.float32
    full, content = parts(keys, bits=12)
    assert full.size + content.size == keys.size
    assert content.size > 0
    for part, parity in ((full, 0), (content, 1)):
        part_slots, part_values = split(part, bits=12)
        # a slot's full weight is at 2 * slot, its content weight beside it
        assert (part_slots % 2 == parity).all()
        assert np.array_equal(part_slots >> np.uint32(1), part & np.uint32(2**12 - 1))
        assert abs(float((part_values.astype(np.float64) ** 2).sum()) - 1.0) < 1e-5
        # the same values whether a part is split alone or with the other
        where = slice(0, full.size) if parity == 0 else slice(full.size, None)
        assert np.array_equal(part_values, values[where])
        assert np.array_equal(part_slots, slots[where])
    # a long body does not drown the headers: each region keeps its share
    regions = keys >> np.uint32(12)
    body = float((values[regions == 2].astype(np.float64) ** 2).sum())
    headers = float((values[regions == 0].astype(np.float64) ** 2).sum())
    assert body == pytest.approx(headers, rel=1e-4)


def test_same_message_same_slots() -> None:
    a = features(inline("Hello", "the same text"), bits=20)
    b = features(inline("Hello", "the same text"), bits=20)
    assert np.array_equal(a, b)


def test_any_script_gives_features() -> None:
    for body in (
        "Sehr geehrter Kunde, Ihr Konto wurde gesperrt",
        "Ваш аккаунт заблокирован",
        "您的账户已被冻结，请立即验证",
    ):
        base = features(inline("x", ""), bits=20)
        slots = features(inline("x", body), bits=20)
        assert np.setdiff1d(slots, base).size >= len(body.encode()) // 2


def test_regions_are_separate_namespaces() -> None:
    nothing = features(inline("", ""), bits=20)
    in_body = np.setdiff1d(features(inline("", "lottery winner"), bits=20), nothing)
    in_subject = np.setdiff1d(features(inline("lottery winner", ""), bits=20), nothing)
    assert in_body.size > 10
    assert np.intersect1d(in_subject, in_body).size <= 2  # hash collisions or region edges


def test_own_verdict_headers_are_ignored() -> None:
    plain = features(inline("Hi", "text"), bits=20)
    marked = features(inline("Hi", "text", extra="X-Spam-Flag: YES\nX-Spam-Score: 12.5\n"), bits=20)
    assert np.array_equal(plain, marked)


def test_digest_ignores_delivery_headers_when_there_is_a_message_id() -> None:
    body = b"Message-ID: <1@x>\nSubject: s\n\nbody\n"
    one = parse_message(b"Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\n" + body)
    two = parse_message(b"Delivered-To: someone@example.org\n" + body)
    assert digest(one) == digest(two)
    assert digest(one) != digest(parse_message(body.replace(b"body", b"other")))


def test_digest_without_message_id_is_the_raw_message() -> None:
    assert digest(inline("s", "b")) != digest(inline("s", "b", extra="Received: from x\n"))


def test_link_shapes_are_a_region_of_their_own() -> None:
    from seawall.classifier.features import url_shapes

    phish = parse_message(
        b"Subject: s\n\nhttp://secure-login-7.paypal.com.verify.example.ru/a/b/login.php?id=1"
        b" http://user@192.0.2.1:8080/\n"
    )
    assert url_shapes(phish).splitlines() == [
        "http ip port userinfo depth0",
        "http tld:ru sub4 depth3 query ext:php",
    ]
    keys = features(phish, bits=20)
    assert (keys >> np.uint32(20) == 4).sum() > 10  # region 4: the shapes
    # Two phishing links on hosts never seen share most of their shape features.
    other = parse_message(b"Subject: s\n\nhttp://a.b.c.login-update.example.ru/x/y/z.php?q=2\n")
    one, two = (features(m, bits=20) for m in (phish, other))
    shapes_one = one[one >> np.uint32(20) == 4]
    shapes_two = two[two >> np.uint32(20) == 4]
    assert np.intersect1d(shapes_one, shapes_two).size >= shapes_two.size // 2


def test_no_links_no_shapes() -> None:
    keys = features(inline("Hello", "no links here"), bits=20)
    for part, first in zip(parts(keys, bits=20), (0, 4), strict=True):
        regions = (part >> np.uint32(20)) - np.uint32(first)
        assert not (regions >= 3).any()  # subject and body only (and headers, in the full)


def test_the_content_model_sees_everything_but_the_header_block() -> None:
    plain = inline("Hello", "the same text")
    relayed = inline("Hello", "the same text", extra="Received: from a.example by b.example\n")
    full_a, content_a = parts(features(plain, bits=20), bits=20)
    full_b, content_b = parts(features(relayed, bits=20), bits=20)
    assert np.array_equal(content_a, content_b)
    assert not np.array_equal(full_a, full_b)
    # its keys are the full model's subject, body, host and shape keys, four regions up
    shifted = full_a[full_a >= np.uint32(1 << 20)] + np.uint32(4 << 20)
    assert np.array_equal(shifted, content_a)
