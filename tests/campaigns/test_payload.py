"""Attachment features: a worm's renamed, re-zipped copies cluster; photos and documents don't."""

from __future__ import annotations

import doctest
import io
import random
import zipfile
from email.message import EmailMessage

import pytest

from seawall.campaigns import Clusterer, Fingerprint, payload
from seawall.campaigns.fingerprint import similarity
from seawall.campaigns.payload import WEIGHT, carries_program, payload_features
from seawall.message import parse_message
from seawall.message.model import Attachment

LINES = ("Please read the attached file.", "Your document is attached.", "See the file.")
SUBJECTS = ("Re: Your document", "Re: Thanks!", "Re: Approved", "Hello")
NAMES = (("document.zip", "document.txt.pif"), ("details.zip", "details.doc.scr"))


def program(seed: int, size: int) -> bytes:
    """Bytes that start like a Windows program (no code): the same for every copy of a seed."""
    rng = random.Random(seed)
    return b"MZ" + bytes(0x3E) + b"PE\x00\x00" + rng.randbytes(size)


def zipped(member: str, data: bytes, when: tuple[int, ...]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        info = zipfile.ZipInfo(member, date_time=when[:6])  # type: ignore[arg-type]
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, data)
    return out.getvalue()


def mail(text: str, subject: str, name: str, data: bytes, kind: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "someone@example.net"
    msg["To"] = "user@example.org"
    msg["Subject"] = subject
    msg.set_content(text)
    maintype, subtype = kind.split("/")
    msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


def worm_copy(rng: random.Random, blob: bytes) -> bytes:
    archive, member = rng.choice(NAMES)
    when = (2026, 11, 27, 12, rng.randrange(60), 2 * rng.randrange(30))
    kind = rng.choice(("application/octet-stream", "application/x-zip-compressed"))
    return mail(rng.choice(LINES), rng.choice(SUBJECTS), archive, zipped(member, blob, when), kind)


def test_docstring_examples() -> None:
    failed, attempted = doctest.testmod(payload)
    assert attempted > 0
    assert failed == 0


@pytest.mark.parametrize(
    ("att", "expected"),
    [
        pytest.param(
            Attachment("a.zip", "application/zip", "application/zip", 900, "0", ("a.txt.pif",)),
            True,
            id="double-extension-in-zip",
        ),
        pytest.param(
            Attachment("a.bin", "application/octet-stream", "application/x-dosexec", 900, "0"),
            True,
            id="sniffed-program",
        ),
        pytest.param(
            Attachment("Setup.EXE ", "application/octet-stream", None, 900, "0"), True, id="name"
        ),
        pytest.param(
            Attachment("a.zip", "application/zip", "application/zip", 900, "0", ("r.pdf",)),
            False,
            id="documents-in-zip",
        ),
        pytest.param(Attachment("me.jpg", "image/jpeg", "image/jpeg", 900, "0"), False, id="photo"),
        pytest.param(
            Attachment(None, "application/pgp-signature", None, 230, "0"), False, id="sig"
        ),
    ],
)
def test_what_carries_a_program(att: Attachment, expected: bool) -> None:
    assert carries_program(att) is expected


def test_worm_copies_with_other_names_and_lines_but_one_program_cluster_together() -> None:
    rng = random.Random(1)
    blob = program(seed=7, size=6000)
    raws = [worm_copy(rng, blob) for _ in range(40)]
    messages = [parse_message(raw) for raw in raws]
    # Every archive differs in its bytes (the timestamps), and the text is a line or two.
    assert len({m.attachments[0].sha256 for m in messages}) > 30
    assert all(len(m.text.split()) <= 8 for m in messages)
    fps = [Fingerprint.of(m) for m in messages]
    assert all(fp.clusterable for fp in fps)
    index = Clusterer()
    clusters = {index.assign(fp, now=float(i)).cluster for i, fp in enumerate(fps)}
    assert len(clusters) == 1
    # Another worm (another program, a fifth bigger) is another cluster.
    other = program(seed=8, size=7500)
    strangers = [Fingerprint.of(parse_message(worm_copy(rng, other))) for _ in range(5)]
    found = {index.assign(fp, now=100.0 + i).cluster for i, fp in enumerate(strangers)}
    assert len(found) == 1
    assert found.isdisjoint(clusters)


def test_photos_and_documents_of_one_size_do_not_cluster() -> None:
    # People send photos and files of similar sizes all day: only an exact copy of a file
    # is evidence, never its size.
    rng = random.Random(2)
    index = Clusterer()
    found = []
    for i in range(20):
        photo = b"\xff\xd8\xff\xe0" + rng.randbytes(6000 + i)
        raw = mail(f"Here is the photo from {i}.", "Photo", f"img{i}.jpg", photo, "image/jpeg")
        found.append(index.assign(Fingerprint.of(parse_message(raw)), now=float(i)))
        report = zipped(f"report{i}.pdf", b"%PDF-1.4 " + rng.randbytes(6000), (2026, 1, 1, 0, 0, 0))
        raw = mail("The report, as promised.", "Report", f"r{i}.zip", report, "application/zip")
        found.append(index.assign(Fingerprint.of(parse_message(raw)), now=float(i)))
    assert not any(a.clustered and a.size > 1 for a in found)


def test_the_payload_outweighs_a_line_of_text_but_not_a_letter() -> None:
    blob = program(seed=3, size=5000)
    when = (2026, 11, 27, 12, 0, 0)
    a = parse_message(
        mail("Hi.", "Hi", "a.zip", zipped("a.txt.pif", blob, when), "application/zip")
    )
    b = parse_message(
        mail("Look at it.", "Yo", "b.zip", zipped("bb.doc.scr", blob, when), "application/zip")
    )
    assert similarity(Fingerprint.of(a).minhash, Fingerprint.of(b).minhash) >= 0.5
    # Each program feature weighs WEIGHT features, each copy has 3 of them and its hash.
    assert len(payload_features(a.attachments)) == 1 + 3 * WEIGHT
    # Two long letters that happen to carry the same program stay apart.
    rng = random.Random(4)
    letters = [" ".join(rng.randbytes(6).hex() for _ in range(150)) for _ in range(2)]
    c, d = (
        parse_message(mail(text, "Hi", "a.zip", zipped(f"{n}.pif", blob, when), "application/zip"))
        for n, text in enumerate(letters)
    )
    assert similarity(Fingerprint.of(c).minhash, Fingerprint.of(d).minhash) < 0.3
