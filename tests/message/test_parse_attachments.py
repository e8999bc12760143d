"""Attachments: filenames, declared and sniffed types, hashes, zip members and zip defects."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile

import pytest

from seawall import corpus
from seawall.message import parse_message
from seawall.message.attachments import MAX_MEMBERS, sniff, zip_members


def with_attachment(data: bytes, headers: bytes) -> bytes:
    return (
        b'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\n'
        b"see attached\n--b\n"
        + headers
        + b"Content-Transfer-Encoding: base64\n\n"
        + base64.encodebytes(data)
        + b"--b--\n"
    )


def make_zip(names: list[str], payload: bytes = b"data") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, payload)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (make_zip(["a.txt"]), "application/zip"),
        (b"%PDF-1.7\n", "application/pdf"),
        (b"junk\n%PDF-1.4", "application/pdf"),
        (b"MZ\x90\x00\x03", "application/x-dosexec"),
        (b"\x7fELF\x02\x01", "application/x-executable"),
        (b"\x1f\x8b\x08\x00", "application/gzip"),
        (b"Rar!\x1a\x07\x01\x00", "application/x-rar"),
        (b"7z\xbc\xaf\x27\x1c\x00\x04", "application/x-7z-compressed"),
        (b"\x89PNG\r\n\x1a\n\x00", "image/png"),
        (b"\xff\xd8\xff\xe0", "image/jpeg"),
        (b"GIF89a\x01\x00", "image/gif"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00", "application/x-ole-storage"),
        (b"{\\rtf1\\ansi", "text/rtf"),
        (b"\xef\xbb\xbf  <!DOCTYPE html><html>", "text/html"),
        (b"<HTML><body>", "text/html"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'>", "image/svg+xml"),
        (b"\x00" * 0x8001 + b"CD001", "application/x-iso9660-image"),
        (b"L\x00\x00\x00\x01\x14\x02\x00\x00", "application/x-ms-shortcut"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8", "image/webp"),
        (b"plain text", None),
        (b"", None),
    ],
)
def test_sniff(data: bytes, mime: str | None) -> None:
    assert sniff(data) == mime


def test_attachment_fields() -> None:
    data = make_zip(["invoice.pdf.exe", "readme.txt"])
    raw = with_attachment(
        data,
        b"Content-Type: application/octet-stream; name=ignored.bin\n"
        b"Content-Disposition: attachment; filename*=utf-8''Rechnung%20M%C3%A4rz.zip\n",
    )
    msg = parse_message(raw)
    (attachment,) = msg.attachments
    assert attachment.filename == "Rechnung März.zip"
    assert attachment.declared_type == "application/octet-stream"
    assert attachment.sniffed_type == "application/zip"
    assert attachment.size == len(data)
    assert attachment.sha256 == hashlib.sha256(data).hexdigest()
    assert attachment.members == ("invoice.pdf.exe", "readme.txt")
    assert attachment.defects == ()
    assert msg.text == "see attached"


def test_rfc2047_name_parameter() -> None:
    raw = with_attachment(
        b"%PDF-1.4", b'Content-Type: application/pdf; name="=?utf-8?q?F=C3=BCr.pdf?="\n'
    )
    (attachment,) = parse_message(raw).attachments
    assert attachment.filename == "Für.pdf"


def test_inline_image_without_name() -> None:
    raw = with_attachment(b"\x89PNG\r\n\x1a\nxxxx", b"Content-Type: image/png\n")
    (attachment,) = parse_message(raw).attachments
    assert (attachment.filename, attachment.declared_type, attachment.sniffed_type) == (
        None,
        "image/png",
        "image/png",
    )


def test_encrypted_zip() -> None:
    data = bytearray(make_zip(["secret.exe"]))
    # Set the "encrypted" flag in the local and the central header, as zip tools do.
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature)
        data[at + offset] |= 0x01
    members, defects = zip_members(bytes(data))
    assert members == ("secret.exe",)
    assert defects == ("zip_encrypted",)


def test_broken_zip() -> None:
    data = make_zip(["a.txt"])
    assert zip_members(data[: len(data) // 2]) == ((), ("zip_broken",))
    assert zip_members(b"PK\x03\x04 not really") == ((), ("zip_broken",))


def test_zip_member_names_are_bounded() -> None:
    members, defects = zip_members(make_zip([f"f{i}.txt" for i in range(MAX_MEMBERS + 50)], b""))
    assert len(members) == MAX_MEMBERS
    assert defects == ()


def test_huge_zip_directory_is_not_read() -> None:
    data = bytearray(make_zip(["a"], b""))
    end = data.rfind(b"PK\x05\x06")
    data[end + 10 : end + 12] = (60000).to_bytes(2, "little")
    assert zip_members(bytes(data)) == ((), ("zip_too_many_members",))


def test_corpus_docx_attachment_lists_its_members() -> None:
    """A phishing .docx from the corpus is a zip: its parts are listed."""
    (item,) = [i for i in corpus.items(corpus.PHISHING_POT) if i.path.name == "sample-5295.eml"]
    msg = parse_message(item.path.read_bytes())
    docx = [a for a in msg.attachments if a.filename and a.filename.endswith(".docx")]
    assert docx
    assert docx[0].sniffed_type == "application/zip"
    assert "word/document.xml" in docx[0].members
    assert "[Content_Types].xml" in docx[0].members


def test_lying_directory_count_is_caught() -> None:
    """The count in the end record can lie; the directory size bounds zipfile's work too."""
    data = bytearray(make_zip([str(i) for i in range(30_000)], b""))
    end = data.rfind(b"PK\x05\x06")
    data[end + 8 : end + 12] = (10).to_bytes(2, "little") * 2
    assert zip_members(bytes(data)) == ((), ("zip_too_many_members",))
