"""Is it mail?  sniff.not_mail names what is not, and the parser's not_mail defect agrees."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import random
import tarfile
import zipfile

import pytest

from seawall.message import parse_message
from seawall.message.sniff import BINARY, EMPTY, TEXT, is_mail_field, kind_of, not_mail

MAIL = b"From: a@example.org\nTo: b@example.net\nSubject: hello\n\nSee you at noon.\n"


def _tar() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("cur/1.eml")
        info.size = len(MAIL)
        tar.addfile(info, io.BytesIO(MAIL))
    return out.getvalue()


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("1.eml", MAIL)
    return out.getvalue()


NOT_MAIL = {
    "xz archive": lzma.compress(MAIL),
    "gzip archive": gzip.compress(MAIL),
    "bzip2 archive": bz2.compress(MAIL),
    "zip archive": _zip(),
    "tar archive": _tar(),
    "ELF binary": b"\x7fELF\x02\x01\x01\x00" + bytes(120),
    "Windows program": b"MZ\x90\x00\x03\x00\x00\x00" + bytes(56),
    "zstd archive": b"\x28\xb5\x2f\xfd\x04\x58" + bytes(20),
    "SQLite database": b"SQLite format 3\x00" + bytes(84),
    "PDF document": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n",
    "PNG image": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    BINARY: random.Random(19).randbytes(8192),
    TEXT: b'# seawall.toml\nstate_dir = "var"\n\n[serve]\nworkers = 4\n',
}
TEXTS = {
    "yaml": b"name: seawall\nversion: 1\ndependencies:\n  - msgspec\n",
    "letter": b"Hello,\n\nI found your address in a business directory.\n",
    "script": b"#!/bin/sh\nexec seawall serve\n",
}
MAILS = {
    "plain": MAIL,
    "crlf": MAIL.replace(b"\n", b"\r\n"),
    "mbox": b"From a@example.org Fri Nov 27 10:00:00 2026\n" + MAIL,
    "only an X- field": b"X-Spam-Flag: YES\n\nbody\n",
    "received first": b"Received: from a (b [192.0.2.1])\n\tby mx; Fri, 27 Nov 2026\n\nbody\n",
    # A mail client's own lines above the mbox "From " line end the header section early.
    "client lines on top": b"Replied: Fri, 04 Oct 2002\nFrom x@example.org  Fri Oct  4 2002\n"
    + MAIL,
    "8-bit header": "Subject: Grüße aus Köln\n\nHallo\n".encode("latin-1"),
}


@pytest.mark.parametrize("kind", sorted(NOT_MAIL))
def test_what_is_not_mail_is_named(kind: str) -> None:
    raw = NOT_MAIL[kind]
    assert not_mail(raw) == kind
    assert "not_mail" in parse_message(raw).defects


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_text_without_a_field_of_mail_is_not_mail(name: str) -> None:
    assert not_mail(TEXTS[name]) == TEXT
    assert "not_mail" in parse_message(TEXTS[name]).defects


@pytest.mark.parametrize("name", sorted(MAILS))
def test_mail_is_mail(name: str) -> None:
    assert not_mail(MAILS[name]) is None
    assert "not_mail" not in parse_message(MAILS[name]).defects


@pytest.mark.parametrize("raw", [b"", b"\n", b"  \r\n\t"])
def test_empty_input_is_empty_not_not_mail(raw: bytes) -> None:
    assert not_mail(raw) == EMPTY
    defects = parse_message(raw).defects
    assert "empty" in defects
    assert "not_mail" not in defects


def test_field_names_of_mail() -> None:
    for name in ("From", "SUBJECT", "message-id", "X-Mailer", "Content-Type", "List-Id"):
        assert is_mail_field(name), name
    for name in ("name", "version", "state_dir", "Hello"):
        assert not is_mail_field(name), name


def test_kind_of_magic_beats_the_binary_guess() -> None:
    assert kind_of(NOT_MAIL["ELF binary"]) == "ELF binary"
    assert kind_of(bytes(range(32)) * 10) == BINARY
    assert kind_of(b"just words") == TEXT
