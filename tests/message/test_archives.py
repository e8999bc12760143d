"""Archive walks within bounds, and what file names claim."""

from __future__ import annotations

import gzip
import io
import random
import tarfile
import time
import tracemalloc
import zipfile

import pytest

from seawall.message.archives import (
    BOMB,
    BROKEN,
    ENCRYPTED,
    LIMIT,
    TOO_DEEP,
    TOO_MANY,
    UNREADABLE,
    ArchiveLimits,
    ArchiveWalk,
)
from seawall.message.attachments import (
    claimed_kind,
    contradicts,
    is_double_extension,
    sniff,
    visible_name,
)

PROGRAM = b"MZ\x90\x00" + bytes(60) + b"PE\x00\x00" + bytes(200)
EXECUTABLES = {"exe", "scr", "pif", "com"}
DECOYS = {"txt", "doc", "pdf", "jpg", "htm"}
MiB = 1024 * 1024


def make_zip(entries: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def walk(data: bytes, name: str = "a.zip", **limits: int | float) -> ArchiveWalk:
    result = ArchiveWalk(ArchiveLimits(**limits))  # type: ignore[arg-type]
    result.open(data, name, sniff(data))
    return result


def paths(result: ArchiveWalk) -> list[str]:
    return [m.path for m in result.members]


def set_sizes(data: bytes, name: str, size: int) -> bytes:
    """``data`` with the uncompressed size of member ``name`` rewritten in both its local
    and its central header, as a bomb that lies about its sizes does."""
    out = bytearray(data)
    encoded = name.encode()
    for signature, field, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        at = out.find(signature)
        while at >= 0 and out[at + name_at : at + name_at + len(encoded)] != encoded:
            at = out.find(signature, at + 1)
        out[at + field : at + field + 4] = size.to_bytes(4, "little")
    return bytes(out)


def test_nested_zip_members_are_listed_with_their_types() -> None:
    inner = make_zip([("invoice.pdf.exe", PROGRAM), ("photo.jpg", PROGRAM)])
    result = walk(make_zip([("docs/inner.zip", inner), ("readme.txt", b"hello")]))
    assert paths(result) == [
        "a.zip/docs/inner.zip",
        "a.zip/docs/inner.zip/invoice.pdf.exe",
        "a.zip/docs/inner.zip/photo.jpg",
        "a.zip/readme.txt",
    ]
    types = {m.path: (m.depth, m.sniffed_type) for m in result.members}
    assert types["a.zip/docs/inner.zip"] == (1, "application/zip")
    assert types["a.zip/docs/inner.zip/photo.jpg"] == (2, "application/x-dosexec")
    assert types["a.zip/readme.txt"] == (1, None)
    assert result.findings == {}


def test_stored_members_are_read_too() -> None:
    inner = make_zip([("a.txt.scr", PROGRAM)], zipfile.ZIP_STORED)
    result = walk(make_zip([("in.zip", inner)], zipfile.ZIP_STORED))
    assert result.members[-1].sniffed_type == "application/x-dosexec"
    assert result.members[-1].path == "a.zip/in.zip/a.txt.scr"


def test_encrypted_members_keep_their_names() -> None:
    data = bytearray(make_zip([("document.doc.exe", PROGRAM)]))
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature)
        data[at + offset] |= 0x01  # the "encrypted" flag, as zip tools set it
    result = walk(bytes(data), "bagle.zip")
    (member,) = result.members
    assert (member.name, member.encrypted, member.sniffed_type) == ("document.doc.exe", True, None)
    assert result.findings == {ENCRYPTED: ["bagle.zip"]}


def test_42_style_recursive_bomb_is_bounded() -> None:
    """16 x 16 x 16 x 16 zips of a 20 MiB file of zeros: 1.3 TB if inflated completely."""
    level = make_zip([("zeros.bin", bytes(20 * MiB))])
    for depth in range(4):
        level = make_zip([(f"lib{depth}_{i}.zip", level) for i in range(16)])
    assert len(level) < 100_000
    start = time.perf_counter()
    shallow = walk(level, "42.zip")
    assert set(shallow.findings) == {TOO_DEEP, TOO_MANY}
    assert len(shallow.members) == 1000
    deep = walk(level, "42.zip", max_depth=10, max_members=300)
    bomb = deep.findings[BOMB][0]
    assert bomb.startswith("42.zip/lib3_0.zip/lib2_0.zip/lib1_0.zip/lib0_0.zip/zeros.bin: ")
    assert "declares 20971520 bytes from " in bomb
    (where,) = deep.findings[TOO_MANY]
    assert where.startswith("42.zip/lib3_0.zip/")
    assert 0 <= deep.budget < ArchiveLimits().max_unpacked_bytes
    # A hang guard (inflating it all would take hours); bench.hostile input measures the walks.
    assert time.perf_counter() - start < 60


def test_lying_small_size_is_caught_while_inflating() -> None:
    honest = make_zip([("zeros.bin", bytes(64 * MiB))])
    lying = set_sizes(honest, "zeros.bin", 1000)  # the ratio it declares is tiny
    tracemalloc.start()
    try:
        result = walk(lying)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.findings == {BOMB: ["a.zip/zeros.bin: inflates past its declared 1000 bytes"]}
    assert peak < 2 * MiB
    assert result.budget > ArchiveLimits().max_unpacked_bytes - 2000


def test_lying_large_size_is_caught_by_the_inflating_ratio() -> None:
    lying = set_sizes(make_zip([("zeros.bin", bytes(64 * MiB))]), "zeros.bin", 2 * MiB)
    result = walk(lying)
    assert result.findings == {BOMB: ["a.zip/zeros.bin: inflates over 200 to 1"]}
    # Only what the ratio check needs was inflated, not the 64 MiB.
    assert ArchiveLimits().max_unpacked_bytes - result.budget <= MiB + 1


def test_zeros_at_the_start_of_an_honest_file_are_not_a_bomb() -> None:
    image = bytes(0x8000) + random.Random(1).randbytes(3 * MiB)
    result = walk(make_zip([("disk.bin", image)]))
    assert result.findings == {}


def test_declared_total_and_overlapping_members() -> None:
    data = make_zip([("a.bin", bytes(1000)), ("b.bin", bytes(1000))])
    big = set_sizes(set_sizes(data, "a.bin", 3 * 1024**3 // 2), "b.bin", 3 * 1024**3 // 2)
    assert walk(big).findings[BOMB][0] == "a.zip: declares 3221225472 bytes"
    # Two directory entries pointing at one member's data: Fifield's non-recursive bomb.
    shared = bytearray(data)
    second = shared.rfind(b"PK\x01\x02")
    first = shared.find(b"PK\x01\x02")
    shared[second + 42 : second + 46] = shared[first + 42 : first + 46]
    assert "a.zip: members share their data" in walk(bytes(shared)).findings[BOMB]


def test_byte_budget_stops_inflating() -> None:
    noise = random.Random(2).randbytes(MiB // 2)  # does not compress
    inner = make_zip([("noise.bin", noise)])
    result = walk(make_zip([("one.zip", inner), ("two.zip", inner)]), max_unpacked_bytes=MiB)
    assert result.findings == {LIMIT: ["a.zip/two.zip"]}
    assert result.budget == 0
    assert paths(result)[:2] == ["a.zip/one.zip", "a.zip/one.zip/noise.bin"]


def test_gzip_member_name_and_tar_inside() -> None:
    gz = gzip.compress(PROGRAM)
    named = gz[:3] + b"\x08" + gz[4:10] + b"invoice.pdf.exe\x00" + gz[10:]  # FNAME
    assert paths(walk(named, "invoice.gz")) == ["invoice.gz/invoice.pdf.exe"]
    assert paths(walk(gz, "invoice.pdf.gz")) == ["invoice.pdf.gz/invoice.pdf"]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("bin/data.txt.scr")
        info.size = len(PROGRAM)
        tar.addfile(info, io.BytesIO(PROGRAM))
    result = walk(gzip.compress(buffer.getvalue()), "x.tgz")
    assert [(m.path, m.sniffed_type) for m in result.members] == [
        ("x.tgz/x.tar", "application/x-tar"),
        ("x.tgz/x.tar/bin/data.txt.scr", "application/x-dosexec"),
    ]


def test_gzip_bomb_and_multi_member_gzip() -> None:
    bomb = gzip.compress(bytes(16 * MiB))
    assert walk(bomb, "z.gz").findings == {BOMB: ["z.gz/z: inflates over 200 to 1"]}
    # bgzip and pigz write one gzip member per block; the trailer's size is the last one's.
    blocks = gzip.compress(b"chr1\t12345\tA\tG\n" * 5000) + gzip.compress(b"end\n")
    result = walk(blocks, "calls.vcf.gz")
    assert (paths(result), result.findings) == (["calls.vcf.gz/calls.vcf"], {})


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"Rar!\x1a\x07\x01\x00" + bytes(100), "application/x-rar"),
        (b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(100), "application/x-7z-compressed"),
        (b"MSCF" + bytes(100), "application/vnd.ms-cab-compressed"),
    ],
)
def test_other_archive_types_are_unreadable(data: bytes, kind: str) -> None:
    assert walk(data, "x").findings == {UNREADABLE: [f"x ({kind})"]}
    inside = walk(make_zip([("payload", data)]))
    assert inside.findings == {UNREADABLE: [f"a.zip/payload ({kind})"]}


def test_too_many_members_over_the_whole_message() -> None:
    data = make_zip([(f"f{i}.txt", b"x") for i in range(30)])
    result = ArchiveWalk(ArchiveLimits(max_members=50))
    result.open(data, "one.zip", "application/zip")
    result.open(data, "two.zip", "application/zip")
    assert len(result.members) == 50
    assert result.findings == {TOO_MANY: ["two.zip"]}


def test_broken_archives() -> None:
    data = make_zip([("a.txt", b"hello" * 100)])
    assert walk(data[: len(data) // 2]).findings == {BROKEN: ["a.zip"]}
    assert walk(b"\x1f\x8b\x08\x00garbage", "x.gz").findings == {BROKEN: ["x.gz"]}
    corrupt = bytearray(data)
    corrupt[35:40] = b"\xff" * 5  # the first deflate block header: a reserved type
    assert walk(bytes(corrupt)).findings == {BROKEN: ["a.zip/a.txt"]}


def test_mutated_archives_never_raise() -> None:
    inner = make_zip([("a.doc.exe", PROGRAM), ("b.txt", b"text" * 500)])
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("x.zip")
        info.size = len(inner)
        tar.addfile(info, io.BytesIO(inner))
    seeds = [
        make_zip([("in.zip", inner), ("c.txt", b"c")]),
        gzip.compress(buffer.getvalue()),
    ]
    rng = random.Random(3)
    for seed in seeds:
        for _ in range(300):
            data = bytearray(seed)
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            cut = bytes(data[: rng.randint(len(data) // 2, len(data))])
            result = walk(cut, "m", max_unpacked_bytes=4 * MiB)
            assert result.budget >= 0


@pytest.mark.parametrize(
    ("name", "visible"),
    [
        ("Invoice.PDF.exe", "invoice.pdf.exe"),
        ("setup.exe. . ", "setup.exe"),
        ("folder\\sub/Readme\u202etxt.exe", "readmetxt.exe"),
    ],
)
def test_visible_name(name: str, visible: str) -> None:
    assert visible_name(name) == visible


@pytest.mark.parametrize(
    ("name", "double"),
    [
        ("data.xls.pif", False),  # xls is not among these decoys
        ("details.doc.scr", True),
        ("your_document.txt.pif", True),
        ("invoice.pdf.exe", True),
        ("document.txt                .exe", True),
        ("document.txt_____.exe", True),
        ("photo.jpg\u2003\u2003.com", True),
        ("setup.v2.exe", False),
        ("putty-0.60.exe", False),
        ("report.pdf", False),
        (".pdf.exe", False),
        ("archive.tar.gz", False),
    ],
)
def test_double_extension(name: str, double: bool) -> None:
    assert is_double_extension(visible_name(name), EXECUTABLES, DECOYS) is double


@pytest.mark.parametrize(
    ("name", "declared", "sniffed", "mismatch"),
    [
        ("photo.jpg", "image/jpeg", "application/x-dosexec", True),
        ("notes.txt", "text/plain", "application/zip", True),
        ("scan", "image/jpeg", "application/x-dosexec", True),  # no extension: the type
        ("invoice.pdf", "application/pdf", "text/html", True),
        ("report.docx", "application/msword", "application/zip", False),  # OOXML is a zip
        ("report.doc", "application/msword", "application/x-rar", True),
        ("notes.txt", "text/plain", "text/html", False),
        ("logo.jpg", "image/jpeg", "image/png", False),  # wrong, but harmless
        ("data.bin", "application/octet-stream", "application/x-dosexec", False),
        ("a.zip", "text/plain", "application/zip", False),  # the name wins over the type
    ],
)
def test_type_mismatch(name: str, declared: str, sniffed: str, mismatch: bool) -> None:
    assert contradicts(claimed_kind(name, declared), sniffed) is mismatch
