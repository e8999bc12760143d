"""ARC chain validation over the committed fixtures (tests/auth/make_arc_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

from tests.auth.signing import RSA_PUBLIC

from seawall.auth import arc
from seawall.dnslists.answer import Answer, Status

EML = Path(__file__).parent.parent / "corpus" / "eml"
KEY = "arc._domainkey.lists.example.org"
KEYS = {KEY: Answer(Status.LISTED, (f"v=DKIM1; k=rsa; p={RSA_PUBLIC}",))}


def test_a_sealed_list_message_passes_with_the_first_results() -> None:
    raw = (EML / "auth_arc_list.eml").read_bytes()
    assert arc.key_names(raw) == [KEY]
    result = arc.verify(raw, KEYS)
    assert (result.status, result.sealer, result.instances) == (
        arc.ArcStatus.PASS,
        "lists.example.org",
        1,
    )
    assert result.recorded("dmarc") == [
        arc.Recorded("dmarc", "pass", {"header.from": "example.com"})
    ]
    assert result.recorded("dkim")[0].properties == {"header.d": "example.com", "header.s": "rsa"}
    assert result.recorded("spf")[0].result == "pass"


def test_a_body_changed_after_sealing_fails() -> None:
    raw = (EML / "auth_arc_broken.eml").read_bytes()
    result = arc.verify(raw, KEYS)
    assert result.status is arc.ArcStatus.FAIL
    assert result.first == ()


def test_no_key_answer_is_a_temperror_and_no_key_a_fail() -> None:
    raw = (EML / "auth_arc_list.eml").read_bytes()
    assert arc.verify(raw, {}).status is arc.ArcStatus.TEMPERROR
    assert arc.verify(raw, {KEY: Answer(Status.TIMEOUT)}).status is arc.ArcStatus.TEMPERROR
    gone = {KEY: Answer(Status.NOT_LISTED, nxdomain=True)}
    assert arc.verify(raw, gone).status is arc.ArcStatus.FAIL


def test_unsealed_mail_is_none_and_a_seal_without_instance_fails() -> None:
    assert arc.verify(b"From: a@example.com\r\n\r\nhi\r\n", {}).status is arc.ArcStatus.NONE
    raw = b"ARC-Seal: cv=none; d=x.example; s=s; b=AA\r\nFrom: a@example.com\r\n\r\nhi\r\n"
    assert arc.verify(raw, {}).status is arc.ArcStatus.FAIL


def test_a_seal_instance_of_thousands_of_digits_is_no_instance() -> None:
    """int() refuses more than 4,300 digits: such an i= is a fail, not an exception."""
    raw = b"ARC-Seal: i=" + b"9" * 5000 + b"; cv=none; d=x.example; s=s; b=AA\r\n"
    raw += b"From: a@example.com\r\n\r\nhi\r\n"
    result = arc.verify(raw, {})
    assert result.status is arc.ArcStatus.FAIL
    assert result.detail == "no ARC-Seal with an instance"


def test_what_is_remembered_between_messages_is_bounded() -> None:
    """The detector reads each message once (a ``dkim.Message``, handed to every check);
    of messages given as bytes only the last is remembered, and not a hostile giant."""
    from seawall.auth import dkim

    seal = b"ARC-Seal: i=1; cv=none; a=rsa-sha256; d=x.example; s=s; b=AA\r\n"
    big_head = seal + b"X-Filler: " + b"a" * 100_000 + b"\r\nFrom: a@example.com\r\n\r\nhi\r\n"
    assert arc.key_names(big_head) == ["s._domainkey.x.example"]
    small = seal + b"From: a@example.com\r\n\r\nhi\r\n"
    read = dkim.Message(small)
    assert dkim.as_message(read) is read
    assert arc.key_names(read) == ["s._domainkey.x.example"]
    assert arc.verify(read, {}).status is arc.ArcStatus.TEMPERROR
    giant = b"From: a@example.com\r\n\r\n" + b"x" * (2 << 20)
    assert dkim.message_of(giant) is not dkim.message_of(giant)
    assert dkim.message_of(small) is dkim.message_of(small)
