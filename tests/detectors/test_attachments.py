"""The attachments detector: programs, disguised names, lying types and hostile archives."""

from __future__ import annotations

import base64
import io
import re
import tarfile
import zipfile
from pathlib import Path

import msgspec
import pytest

from seawall import corpus
from seawall.config import AttachmentsSettings, Config, load_config
from seawall.detectors import build_detectors
from seawall.detectors.attachments import AttachmentsDetector
from seawall.detectors.base import Hit
from seawall.engine import Engine
from seawall.errors import ConfigError
from seawall.message import Message, ParseLimits, parse_message
from seawall.policy.model import Action
from seawall.policy.scores import load_scores
from seawall.sim import SimSettings, simulate

from .conftest import msg, scan

DETECTOR = AttachmentsDetector(AttachmentsSettings())
PROGRAM = b"MZ\x90\x00" + bytes(60) + b"PE\x00\x00" + bytes(200)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(100)


def mail(*files: tuple[str, bytes, str]) -> bytes:
    """A message with a text part and each (filename, data, content type) attached."""
    parts = [b"--b\nContent-Type: text/plain\n\nsee attached\n"]
    for name, data, kind in files:
        parts.append(
            f'--b\nContent-Type: {kind}\nContent-Disposition: attachment; filename="{name}"\n'
            "Content-Transfer-Encoding: base64\n\n".encode()
            + base64.encodebytes(data)
        )
    head = b'From: a@example.org\nSubject: files\nContent-Type: multipart/mixed; boundary="b"\n\n'
    return head + b"".join(parts) + b"--b--\n"


def make_zip(entries: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


async def hits(
    *files: tuple[str, bytes, str], detector: AttachmentsDetector = DETECTOR
) -> dict[str, Hit]:
    return await scan(detector, msg(mail(*files)))


async def test_plain_program_scores_without_force() -> None:
    found = await hits(("setup.exe", PROGRAM, "application/octet-stream"))
    assert set(found) == {"ATTACH_EXECUTABLE"}
    assert found["ATTACH_EXECUTABLE"].options == ("setup.exe",)
    assert found["ATTACH_EXECUTABLE"].force is None


@pytest.mark.parametrize(
    "name",
    [
        "invoice.pdf.exe",
        "document.txt                .exe",
        "details.doc_____.scr",
        "your_document.txt.pif",
        "Photo.JPG.lnk",
    ],
)
async def test_double_extension_is_rejected(name: str) -> None:
    found = await hits((name, PROGRAM, "application/octet-stream"))
    assert found["ATTACH_DOUBLE_EXT"].force is Action.REJECT
    assert found["ATTACH_DOUBLE_EXT"].options == (name,)
    assert found["ATTACH_EXECUTABLE"].force is None


async def test_score_mode_does_not_force() -> None:
    detector = AttachmentsDetector(AttachmentsSettings(double_extension_action="score"))
    found = await hits(("invoice.pdf.exe", PROGRAM, "application/pdf"), detector=detector)
    assert found["ATTACH_DOUBLE_EXT"].force is None


async def test_right_to_left_override() -> None:
    raw = mail(("x", PROGRAM, "application/octet-stream")).replace(
        b'filename="x"', b"filename*=utf-8''invoice%E2%80%AEfdp.exe"
    )
    found = await scan(DETECTOR, msg(raw))
    assert found["ATTACH_RTLO"].options == ("invoice<U+202E>fdp.exe",)
    assert found["ATTACH_RTLO"].force is Action.REJECT  # it hides ".exe"
    assert "ATTACH_EXECUTABLE" in found
    harmless = raw.replace(b"fdp.exe", b"fdp.txt").replace(
        base64.encodebytes(PROGRAM), base64.encodebytes(b"words")
    )
    found = await scan(DETECTOR, msg(harmless))
    assert set(found) == {"ATTACH_RTLO"}
    assert found["ATTACH_RTLO"].force is None


@pytest.mark.parametrize(
    ("name", "kind", "data", "detail"),
    [
        ("photo.jpg", "image/jpeg", PROGRAM, "photo.jpg: application/x-dosexec"),
        ("notes.txt", "text/plain", make_zip([("a.txt", b"a")]), "notes.txt: application/zip"),
    ],
)
async def test_type_mismatch(name: str, kind: str, data: bytes, detail: str) -> None:
    found = await hits((name, data, kind))
    assert found["ATTACH_TYPE_MISMATCH"].options == (detail,)
    assert found["ATTACH_TYPE_MISMATCH"].force is None


async def test_iso_and_shortcut_are_programs() -> None:
    iso = bytes(0x8001) + b"CD001" + bytes(100)
    found = await hits(("scan.jpg", iso, "image/jpeg"), ("quotation.iso", iso, "image/jpeg"))
    assert found["ATTACH_EXECUTABLE"].options == ("scan.jpg", "quotation.iso")
    assert found["ATTACH_TYPE_MISMATCH"].options == ("scan.jpg: application/x-iso9660-image",)


async def test_programs_in_nested_archives() -> None:
    inner = make_zip([("data.xls.pif", PROGRAM), ("cat.jpg", PROGRAM), ("tool.exe", PROGRAM)])
    outer = make_zip([("more/inner.zip", inner), ("readme.txt", b"hi")])
    found = await hits(("files.zip", outer, "application/zip"))
    assert set(found) == {"ARCHIVE_EXECUTABLE", "ARCHIVE_DOUBLE_EXT", "ARCHIVE_TYPE_MISMATCH"}
    assert found["ARCHIVE_DOUBLE_EXT"].options == ("files.zip/more/inner.zip/data.xls.pif",)
    assert found["ARCHIVE_DOUBLE_EXT"].force is Action.REJECT
    assert found["ARCHIVE_EXECUTABLE"].options == (
        "files.zip/more/inner.zip/data.xls.pif",
        "files.zip/more/inner.zip/cat.jpg",
        "files.zip/more/inner.zip/tool.exe",
    )
    assert found["ARCHIVE_EXECUTABLE"].force is None


async def test_undecodable_names_in_options_are_encodable() -> None:
    buffer = io.BytesIO()
    with tarfile.open(
        fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT, encoding="latin-1"
    ) as tar:
        info = tarfile.TarInfo("caf\xe9.doc.exe")  # stored as the byte 0xE9, not UTF-8
        info.size = len(PROGRAM)
        tar.addfile(info, io.BytesIO(PROGRAM))
    found = await hits(("files.tar", buffer.getvalue(), "application/x-tar"))
    assert found["ARCHIVE_DOUBLE_EXT"].options == ("files.tar/caf?.doc.exe",)
    assert found["ARCHIVE_DOUBLE_EXT"].force is Action.REJECT


async def test_encrypted_archive_with_a_disguised_program() -> None:
    data = bytearray(make_zip([("document.doc.exe", PROGRAM)]))
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature)
        data[at + offset] |= 0x01
    found = await hits(("document.zip", bytes(data), "application/zip"))
    assert found["ARCHIVE_ENCRYPTED"].options == ("document.zip",)
    assert found["ARCHIVE_DOUBLE_EXT"].force is Action.REJECT


async def test_archive_findings_become_symbols() -> None:
    bomb = make_zip([("zeros.bin", bytes(8 * 1024 * 1024))])
    rar = b"Rar!\x1a\x07\x01\x00" + bytes(50)
    deep = make_zip([("z.txt", b"z")])
    for i in range(4):
        deep = make_zip([(f"level{i}.zip", deep)])
    found = await hits(
        ("bomb.zip", bomb, "application/zip"),
        ("files.rar", rar, "application/octet-stream"),
        ("deep.zip", deep, "application/zip"),
        ("half.zip", bomb[:100], "application/zip"),
    )
    assert found["ARCHIVE_BOMB"].options[0].startswith("bomb.zip/zeros.bin: declares 8388608")
    assert found["ARCHIVE_UNREADABLE"].options == ("files.rar (application/x-rar)",)
    assert found["ARCHIVE_TOO_DEEP"].options == ("deep.zip/level3.zip/level2.zip/level1.zip",)
    assert found["ARCHIVE_BROKEN"].options == ("half.zip",)
    assert all(hit.force is None for hit in found.values())


async def test_harmless_attachments_say_nothing() -> None:
    docx = make_zip([("[Content_Types].xml", b"<Types/>"), ("word/document.xml", b"<w/>")])
    found = await hits(
        ("report.pdf", b"%PDF-1.4\n" + bytes(50), "application/pdf"),
        ("photo.jpg", JPEG, "image/jpeg"),
        ("letter.docx", docx, "application/msword"),
        ("putty-0.60.tar.gz", b"\x1f\x8b\x08\x00" + bytes(30), "application/x-gzip"),
        ("ChangeLog.txt", b"2004-01-27 fixed", "text/plain"),
    )
    assert set(found) == {"ARCHIVE_BROKEN"}  # the gzip is a stub


def test_worm_mail_from_the_simulator_is_rejected() -> None:
    settings = SimSettings(hours=0.05, peak_per_hour=3000, ham_per_hour=600, worm_share=1.0)
    worms = [m for m in simulate(settings) if m.truth.kind == "worm"]
    families = {m.truth.campaign for m in worms}
    assert families == {"worm-netsky", "worm-sober", "worm-mydoom"}
    engine = Engine(scores=load_scores(), detectors=[DETECTOR], limits=ParseLimits())
    scoring = AttachmentsDetector(AttachmentsSettings(double_extension_action="score"))
    scored = Engine(scores=load_scores(), detectors=[scoring], limits=ParseLimits())
    try:
        for worm in worms[:60]:
            verdict = engine.scan_sync(worm.envelope, worm.raw).verdict
            assert verdict.action is Action.REJECT
            assert verdict.forced_by == "ARCHIVE_DOUBLE_EXT"
            assert verdict.symbols["ARCHIVE_EXECUTABLE"].score == 4.0
        verdict = scored.scan_sync(worms[0].envelope, worms[0].raw).verdict
        assert verdict.forced_by is None
        assert verdict.score == 14.0  # 10 + 4, at the group's cap
        assert verdict.action is Action.ADD_HEADER
    finally:
        engine.close()
        scored.close()


# Where a message can have an attachment: a file name, or a part that is not readable text.
_MAY_ATTACH = re.compile(
    rb"(?i)name\*?[0-9]*\*?[ \t]*=|content-type:\s*+"
    rb"(?!text/(?:plain|html|enriched|richtext)\b|multipart/(?!digest))"
)


@pytest.fixture(scope="module")
def ham_with_attachments() -> list[Message]:
    """Every ham of the shared corpora that has an attachment (354 of 22,175), found once."""
    found = []
    for name in (corpus.SPAMASSASSIN, corpus.CSDMC, corpus.ENRON_HAM):
        for item in corpus.items(name):
            if item.label != "ham":
                continue
            raw = item.path.read_bytes()
            if _MAY_ATTACH.search(raw) is not None:
                parsed = parse_message(raw)
                if parsed.attachments:
                    found.append(parsed)
    return found


async def test_no_shared_ham_is_flagged(ham_with_attachments: list[Message]) -> None:
    assert len(ham_with_attachments) >= 300
    flagged = {}
    for message in ham_with_attachments:
        found = await scan(DETECTOR, message)
        if found:
            flagged[message.headers.get("Message-ID")] = found
    assert flagged == {}


def test_symbols_are_scored_in_the_capped_group() -> None:
    scores = load_scores()
    for symbol, description in AttachmentsDetector.symbols.items():
        definition = scores.symbols[symbol]
        assert (definition.group, definition.description) == ("attachments", description)
        assert 0.0 <= definition.score <= 10.0
    cap = scores.groups["attachments"].max_score
    assert cap is not None
    assert 0 < cap < scores.required  # only a forced action rejects on attachments alone


def test_registered_and_configurable(tmp_path: Path) -> None:
    names = [d.name for d in build_detectors(Config(), None)]
    assert "attachments" in names
    off = msgspec.structs.replace(
        Config().detectors, attachments=AttachmentsSettings(enabled=False)
    )
    assert "attachments" not in [
        d.name for d in build_detectors(msgspec.structs.replace(Config(), detectors=off), None)
    ]
    bad = tmp_path / "bad.toml"
    for line in ("max_depth = 0", 'double_extension_action = "drop"', "max_ratio = 1.0"):
        bad.write_text(f"[detectors.attachments]\n{line}\n")
        with pytest.raises(ConfigError, match="attachments"):
            load_config(bad)
