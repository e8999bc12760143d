"""ClamAV against a real clamd: findings, both sockets, size limits, and clamd failing.

One clamd serves the module (signatures built by the test: EICAR and hashes of the test's
own files); tests that kill, stop or restart clamd start their own.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import json
import random
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import msgspec
import pytest
from tests.integration.clamd import EICAR, EICAR_NAME, ClamdServer
from tests.integration.postfix import free_port
from tests.integration.seawall_proc import Seawall

from seawall.clamd import Clamd, ClamdUnavailable
from seawall.config import ClamavSettings
from seawall.detectors.base import Context, Hit
from seawall.detectors.clamav import ClamavDetector
from seawall.engine import Engine
from seawall.message import Envelope, ParseLimits, parse_message
from seawall.policy.model import Action
from seawall.policy.scores import load_scores


def zipped(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo(name, date_time=(2026, 1, 2, 3, 4, 6))
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, data)
    return buffer.getvalue()


# The test's own "malware": a zip with a harmless program-looking blob, known by its hash.
DROPPER = b"MZ" + random.Random(7).randbytes(4000)
DROPPER_ZIP = zipped("invoice.pdf.exe", DROPPER)
HASHES = {"Seawall.Test.DropperZip": DROPPER_ZIP}
EICAR_ZIP = zipped("eicar.com", EICAR)


def mail(*attachments: tuple[str, bytes], body: str = "Please see the attached file.") -> bytes:
    """A multipart message with base64 attachments (filename, bytes)."""
    msg = EmailMessage()
    msg["From"] = "alice@example.org"
    msg["To"] = "bob@example.net"
    msg["Subject"] = "Your document"
    msg.set_content(body)
    for filename, data in attachments:
        msg.add_attachment(data, "application", "octet-stream", filename=filename)
    return msg.as_bytes()


# A multipart head with a text part; the tests append their own attachment part.
HEAD = (
    b"From: alice@example.org\nTo: bob@example.net\nSubject: test\nMIME-Version: 1.0\n"
    b'Content-Type: multipart/mixed; boundary="b1"\n\n--b1\nContent-Type: text/plain\n\n'
    b"See the file.\n"
)
# EICAR as a plain 7bit attachment, no transfer encoding at all.
PLAIN_EICAR = (
    HEAD + b"--b1\nContent-Type: text/plain\n"
    b'Content-Disposition: attachment; filename="eicar.com"\n\n' + EICAR + b"\n--b1--\n"
)
CLEAN = mail(("report.pdf", b"%PDF-1.4\n" + random.Random(1).randbytes(20000)))
INLINE_EICAR = b"From: alice@example.org\nSubject: hi\n\n" + EICAR + b"\n"


@functools.cache
def big_mail() -> bytes:
    """16 MB of attachment: more than loopback buffers hold for a reader that stopped."""
    data = base64.encodebytes(random.Random(3).randbytes(16_000_000))
    return HEAD + (
        b"--b1\nContent-Type: video/mp4\nContent-Transfer-Encoding: base64\n"
        b'Content-Disposition: attachment; filename="video.mp4"\n\n' + data + b"--b1--\n"
    )


_made: list[ClamavDetector] = []


def detector(address: str, io_timeout_s: float = 5.0, **settings: object) -> ClamavDetector:
    defaults: dict[str, object] = {"enabled": True, "address": address, "timeout_s": 3.0}
    config = msgspec.convert(defaults | settings, ClamavSettings)
    made = ClamavDetector(config, io_timeout_s=io_timeout_s)
    _made.append(made)
    return made


@pytest.fixture(autouse=True)
def _close_detectors() -> Iterator[None]:
    yield
    while _made:
        _made.pop().close()


async def check(det: ClamavDetector, raw: bytes) -> dict[str, Hit]:
    hits = await det.check(parse_message(raw), Context(now=0.0))
    return {hit.symbol: hit for hit in hits}


@pytest.fixture(scope="module")
def clamd() -> Iterator[ClamdServer]:
    server = ClamdServer(hashes=HASHES)
    server.start()
    # With a two-signature database clamd answers PING within a second or so of exec (start()
    # gives up after 60 s); the figure is printed, not tested.
    print(f"\nclamd answered PING {server.started_in_s:.2f} s after exec")
    yield server
    server.remove()


@pytest.fixture
def own_clamd() -> Iterator[ClamdServer]:
    """A clamd this test may kill, stop or restart."""
    server = ClamdServer(hashes=HASHES)
    server.start()
    yield server
    server.remove()


@pytest.fixture(params=["tcp", "unix"])
def address(request: pytest.FixtureRequest, clamd: ClamdServer) -> str:
    return clamd.tcp_address if request.param == "tcp" else clamd.unix_address


async def test_ping_and_version(address: str) -> None:
    client = Clamd(address)
    await client.ping()
    assert (await client.version()).startswith("ClamAV ")
    client.close()


async def test_clean_message_passes(address: str) -> None:
    assert await check(detector(address), CLEAN) == {}


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(PLAIN_EICAR, id="plain"),
        pytest.param(mail(("eicar.com", EICAR)), id="base64"),
        pytest.param(mail(("eicar.zip", EICAR_ZIP)), id="zip"),
    ],
)
@pytest.mark.parametrize("scan", ["message", "attachments"])
async def test_eicar_is_found_and_rejected(address: str, raw: bytes, scan: str) -> None:
    hits = await check(detector(address, scan=scan), raw)
    assert set(hits) == {"CLAMAV_VIRUS"}
    assert hits["CLAMAV_VIRUS"].options == (EICAR_NAME,)
    assert hits["CLAMAV_VIRUS"].force is Action.REJECT


@pytest.mark.parametrize("scan", ["message", "attachments"])
async def test_hash_signature_of_a_zip(clamd: ClamdServer, scan: str) -> None:
    raw = mail(("report.pdf", b"%PDF-1.4\n"), ("invoice.zip", DROPPER_ZIP))
    hits = await check(detector(clamd.tcp_address, scan=scan), raw)
    assert hits["CLAMAV_VIRUS"].options == ("Seawall.Test.DropperZip.UNOFFICIAL",)


async def test_verdict_is_reject_with_the_signature(clamd: ClamdServer) -> None:
    engine = Engine(
        scores=load_scores(),
        detectors=[detector(clamd.unix_address, io_timeout_s=5.0)],
        limits=ParseLimits(),
        io_timeout_s=5.0,
    )
    verdict = await engine.scan(Envelope(), mail(("eicar.zip", EICAR_ZIP)))
    assert verdict.action is Action.REJECT
    assert verdict.forced_by == "CLAMAV_VIRUS"
    assert verdict.symbols["CLAMAV_VIRUS"].options == (EICAR_NAME,)
    assert (await engine.scan(Envelope(), CLEAN)).action is Action.NO_ACTION


async def test_text_only_mail_is_sent_only_when_asked(clamd: ClamdServer) -> None:
    assert await check(detector(clamd.tcp_address), INLINE_EICAR) == {}
    hits = await check(detector(clamd.tcp_address, only_with_attachments=False), INLINE_EICAR)
    assert hits["CLAMAV_VIRUS"].options == (EICAR_NAME,)


async def test_over_max_bytes_is_not_sent() -> None:
    # Nothing listens at this address: a send would be CLAMAV_FAILED, not CLAMAV_TOO_LARGE.
    det = detector(f"127.0.0.1:{free_port()}", max_bytes=1000)
    raw = mail(("big.bin", bytes(2000)))
    hits = await check(det, raw)
    assert set(hits) == {"CLAMAV_TOO_LARGE"}
    assert hits["CLAMAV_TOO_LARGE"].options == (f"{len(raw)} bytes",)
    assert hits["CLAMAV_TOO_LARGE"].force is None


async def test_over_clamds_stream_limit_is_too_large_and_the_pool_recovers() -> None:
    server = ClamdServer(stream_max_length="1M")
    server.start()
    try:
        det = detector(server.tcp_address)
        hits = await check(det, mail(("big.bin", random.Random(2).randbytes(2_000_000))))
        assert set(hits) == {"CLAMAV_TOO_LARGE"}
        assert "clamd's limit" in hits["CLAMAV_TOO_LARGE"].options
        assert (await check(det, mail(("e.com", EICAR))))["CLAMAV_VIRUS"].options == (EICAR_NAME,)
    finally:
        server.remove()


@pytest.mark.parametrize("where", ["tcp", "unix"])
@pytest.mark.parametrize("policy", ["tempfail", "continue"])
async def test_clamd_down_applies_the_failure_policy(
    tmp_path: Path, where: str, policy: str
) -> None:
    address = f"127.0.0.1:{free_port()}" if where == "tcp" else str(tmp_path / "no.sock")
    # Timeouts far longer than the hang guard: a pass proves none of them was waited for.
    det = detector(address, io_timeout_s=60.0, timeout_s=30.0, on_failure=policy)
    engine = Engine(scores=load_scores(), detectors=[det], limits=ParseLimits(), io_timeout_s=60.0)
    t0 = time.perf_counter()
    verdict = await engine.scan(Envelope(), mail(("e.com", EICAR)))
    assert time.perf_counter() - t0 < 15  # refused at once: no waiting for a timeout
    assert "cannot connect" in verdict.symbols["CLAMAV_FAILED"].options[0]
    assert verdict.symbols["CLAMAV_FAILED"].score == 0.0
    if policy == "tempfail":
        assert verdict.action is Action.SOFT_REJECT
        assert verdict.forced_by == "CLAMAV_FAILED"
    else:
        assert verdict.action is Action.NO_ACTION
        assert verdict.forced_by is None


@pytest.mark.parametrize("pooled", [False, True], ids=["new-connection", "pooled-session"])
async def test_clamd_killed_mid_stream(own_clamd: ClamdServer, pooled: bool) -> None:
    det = detector(own_clamd.tcp_address, timeout_s=30.0, io_timeout_s=40.0)
    if pooled:  # a session clamd has accepted and served once
        assert await check(det, CLEAN) == {}
    own_clamd.pause()  # it stops reading: the big send below fills the socket buffers
    task = asyncio.create_task(check(det, big_mail()))
    await asyncio.sleep(0.5)
    assert not task.done()  # still sending
    own_clamd.kill()
    t0 = time.perf_counter()
    hits = await task
    assert time.perf_counter() - t0 < 15  # noticed at once, not after the 30 s timeout
    assert set(hits) == {"CLAMAV_FAILED"}
    assert hits["CLAMAV_FAILED"].force is Action.SOFT_REJECT
    why = hits["CLAMAV_FAILED"].options[0]
    assert "closed the connection" in why or "cannot connect" in why  # the retry was refused


async def test_stopped_clamd_times_out_within_the_budget(own_clamd: ClamdServer) -> None:
    det = detector(own_clamd.unix_address, timeout_s=0.5, io_timeout_s=1.0)
    engine = Engine(scores=load_scores(), detectors=[det], limits=ParseLimits(), io_timeout_s=1.0)
    raw = mail(("e.com", EICAR))
    own_clamd.pause()
    try:
        t0 = time.perf_counter()
        verdict = await engine.scan(Envelope(), raw)
        elapsed = time.perf_counter() - t0
    finally:
        own_clamd.resume()
    assert elapsed >= 0.5  # clamd's timeout was waited for, and it ended the wait:
    assert verdict.action is Action.SOFT_REJECT
    assert verdict.symbols["CLAMAV_FAILED"].options == ("no answer in 0.5s",)
    assert "DETECTOR_TIMEOUT" not in verdict.symbols  # the engine did not have to cut it
    assert (await engine.scan(Envelope(), raw)).forced_by == "CLAMAV_VIRUS"


async def test_pool_recovers_after_clamd_restarts(own_clamd: ClamdServer) -> None:
    client = Clamd(own_clamd.tcp_address, timeout_s=3.0)
    assert (await client.instream(EICAR)).signature == EICAR_NAME
    own_clamd.stop()
    with pytest.raises(ClamdUnavailable, match="cannot connect"):
        await client.instream(EICAR)
    own_clamd.start()
    assert (await client.instream(EICAR)).signature == EICAR_NAME
    kept = list(client._idle)
    own_clamd.stop()  # a restart between two scans leaves a dead session in the pool
    own_clamd.start()
    assert (await client.instream(b"clean")).signature is None
    assert len(client._idle) == 1
    assert client._idle[0] not in kept
    client.close()


async def test_sessions_are_reused_and_bounded(clamd: ClamdServer) -> None:
    client = Clamd(clamd.tcp_address, max_connections=3)
    for _ in range(3):
        assert (await client.instream(b"hello")).signature is None
    assert len(client._idle) == 1
    first = client._idle[0]
    data = [EICAR if i % 2 else CLEAN for i in range(30)]
    results = await asyncio.gather(*(client.instream(d) for d in data))
    assert [r.signature for r in results] == [EICAR_NAME if i % 2 else None for i in range(30)]
    assert len(client._idle) <= 3
    assert first in client._idle
    client.close()


def test_serve_rejects_a_virus_over_checkv2(clamd: ClamdServer, workdir: Path) -> None:
    """The client in forked serve workers on uvloop."""
    extra = f'[detectors.clamav]\nenabled = true\naddress = "{clamd.tcp_address}"\n'
    sw = Seawall(root=workdir / "seawall", state=workdir / "state", workers=2, extra=extra)
    sw.start()
    try:
        for raw, action in [(mail(("e.com", EICAR)), "reject"), (CLEAN, "no action")] * 3:
            request = urllib.request.Request(sw.url("/checkv2"), data=raw, method="POST")
            with urllib.request.urlopen(request, timeout=30) as resp:
                body = json.loads(resp.read())
            assert body["action"] == action
            if action == "reject":
                assert body["symbols"]["CLAMAV_VIRUS"]["options"] == [EICAR_NAME]
    finally:
        sw.stop()
    assert "clamd scan failed" not in sw.log()


def test_base64_helper_is_what_clamav_sees() -> None:
    # The base64 case above really carries EICAR only in encoded form.
    raw = mail(("eicar.com", EICAR))
    assert EICAR not in raw
    assert base64.b64encode(EICAR)[:40] in raw.replace(b"\n", b"")
