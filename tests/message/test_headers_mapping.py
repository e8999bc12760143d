"""``Headers`` answers as the Mapping it is: the fast ``get`` gives Mapping.get's results."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from seawall.message.model import Headers
from seawall.message.parse import parse_message

ITEMS = (("Subject", "hello"), ("Received", "top"), ("received", "below"), ("X-Empty", ""))
NAMES = ("Subject", "SUBJECT", "received", "X-Empty", "x-empty", "Message-ID", "", "Subj")


@pytest.mark.parametrize("name", NAMES)
def test_get_answers_as_mapping_get(name: str) -> None:
    headers = Headers(ITEMS)
    sentinel = object()
    assert headers.get(name) == Mapping.get(headers, name)
    assert headers.get(name, "dflt") == Mapping.get(headers, name, "dflt")
    assert headers.get(name, sentinel) is Mapping.get(headers, name, sentinel)
    assert (name in headers) == (name.lower() in {n.lower() for n, _ in ITEMS})


def test_first_value_empty_value_and_missing() -> None:
    headers = Headers(ITEMS)
    assert headers.get("RECEIVED") == "top"  # the first, top down
    assert headers.get_all("Received") == ("top", "below")
    assert headers.get("x-empty", "dflt") == ""  # present and empty is not missing
    assert headers.get("Message-ID") is None
    assert headers.get_all("Message-ID") == ()
    assert 3 not in headers  # a Mapping's `in` takes any key


def test_get_on_a_parsed_message() -> None:
    msg = parse_message(b"Subject: =?utf-8?q?caf=C3=A9?=\r\nMessage-ID: <a@b>\r\n\r\nbody\r\n")
    assert msg.headers.get("subject") == "café"
    assert msg.headers.get("message-id") == "<a@b>"
    assert msg.headers.get("In-Reply-To", "none") == "none"


def test_repeated_fields_keep_their_order_and_first_seen_names() -> None:
    items = (
        ("Received", "r1"),
        ("To", "t"),
        ("RECEIVED", "r2"),
        ("X-A", "a1"),
        ("received", "r3"),
        ("x-a", "a2"),
        ("Subject", "s"),
    )
    headers = Headers(items)
    assert list(headers) == ["received", "to", "x-a", "subject"]  # as first seen
    assert len(headers) == 4
    assert headers.get_all("Received") == ("r1", "r2", "r3")
    assert headers.get_all("X-A") == ("a1", "a2")
    assert headers.get_all("to") == ("t",)
    assert dict(headers) == {"received": "r1", "to": "t", "x-a": "a1", "subject": "s"}
    assert headers.items_in_order() == items
    assert headers.raw_items() == items
