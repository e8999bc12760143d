"""Write the seed corpus in tests/fuzz/corpus/ (kept in the repository; rerun to rebuild).

    python -m tests.fuzz.seeds [--shared ../shared/corpora]

Seeds are small real inputs: the test suite's .eml fixtures and a few small messages of the
shared SpamAssassin and Nazario corpora for the message parser; the attachments of the
fixtures' archive messages, plus a gzip and a tar, for the archive walk; a Postfix milter
session, SPAMC requests, Postfix policy requests, DNS replies, FreeRADIUS detail records,
RADIUS accounting requests, ARF and X-ARF reports and feed CSVs as their peers send them.
The seeds of the harnesses that read a control byte first start with one.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import mailbox
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path

import dns.flags
import dns.message
import dns.rrset

from seawall.message import parse_message

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
MAX_MESSAGE_SEED = 12 * 1024


def write(target: str, seeds: Iterable[bytes]) -> int:
    folder = HERE / "corpus" / target
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    count = 0
    for seed in seeds:
        (folder / hashlib.sha1(seed).hexdigest()[:16]).write_bytes(seed)
        count += 1
    return count


def message_seeds(shared: Path | None) -> list[bytes]:
    seeds = [
        path.read_bytes()
        for path in sorted((TESTS / "corpus" / "eml").glob("*.eml"))
        if path.stat().st_size <= MAX_MESSAGE_SEED
    ]
    seeds += [path.read_bytes() for path in sorted((TESTS / "message" / "fixtures").iterdir())]
    if shared is not None:
        seeds += _spamassassin(shared / "spamassassin_public_corpus.tar.xz", per_folder=3)
        seeds += _nazario(shared / "nazario_phishing_2004-2005.tar.xz", count=4)
    return seeds


def _spamassassin(archive: Path, per_folder: int) -> list[bytes]:
    taken: dict[str, int] = {}
    seeds: list[bytes] = []
    with tarfile.open(archive) as tar:
        for info in tar:
            folder = info.name.split("/")[1] if info.name.count("/") >= 2 else ""
            if not info.isfile() or not folder or info.size > MAX_MESSAGE_SEED // 2:
                continue
            if folder in ("spam", "spam_2", "hard_ham") and taken.get(folder, 0) < per_folder:
                handle = tar.extractfile(info)
                if handle is not None:
                    seeds.append(handle.read())
                    taken[folder] = taken.get(folder, 0) + 1
    return seeds


def _nazario(archive: Path, count: int) -> list[bytes]:
    with tarfile.open(archive) as tar:
        member = next(info for info in tar if info.name.endswith(".mbox"))
        handle = tar.extractfile(member)
        assert handle is not None
        data = handle.read()
    scratch = HERE / ".nazario.mbox"
    scratch.write_bytes(data)
    try:
        box = mailbox.mbox(scratch, create=False)
        found = [m.as_bytes() for m in box.itervalues()]
        box.close()
    finally:
        scratch.unlink()
    return [m for m in found if len(m) <= MAX_MESSAGE_SEED // 2][:count]


def _info(name: str) -> zipfile.ZipInfo:
    """A zip entry dated once and for all, so the seeds are the same bytes on every run."""
    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def archive_seeds() -> list[bytes]:
    seeds: list[bytes] = []
    for path in sorted((TESTS / "corpus" / "eml").glob("*.eml")):
        if path.name.startswith(("zip_", "archive_")):
            for attachment in parse_message(path.read_bytes()).attachments:
                if attachment.data and len(attachment.data) <= 16 * 1024:
                    seeds.append(b"\x03" + attachment.data)  # 3: sniffed by its magic
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(_info("invoice.pdf.exe"), b"MZ\x90\x00" + b"\x00" * 200)
        archive.writestr(_info("docs/"), b"")
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(_info("inner.zip"), inner.getvalue())
        archive.writestr(_info("readme.txt"), b"hello " * 50)
    seeds.append(b"\x00" + outer.getvalue())
    seeds.append(b"\x01" + gzip.compress(inner.getvalue(), mtime=0))
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in (("scan.js", b"var a = 1;\n"), ("inner.zip", inner.getvalue())):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    seeds.append(b"\x02" + tar_bytes.getvalue())
    seeds.append(b"\x01" + gzip.compress(tar_bytes.getvalue(), mtime=0))
    return seeds


def _packet(code: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload) + 1) + code + payload


def milter_seeds() -> list[bytes]:
    session = b"".join(
        (
            _packet(b"O", struct.pack(">III", 6, 0x1FF, 0x1FFFFF)),
            _packet(b"D", b"Cj\0mx.example.net\0{daemon_name}\0smtpd\0"),
            _packet(b"C", b"mail.example.org\x004" + struct.pack(">H", 12345) + b"192.0.2.1\0"),
            _packet(b"D", b"H{client_addr}\x00192.0.2.1\0"),
            _packet(b"H", b"mail.example.org\0"),
            _packet(b"D", b"Mi\x004XyZ123\0{auth_authen}\0\0"),
            _packet(b"M", b"<a@example.org>\0SIZE=1234\0BODY=8BITMIME\0"),
            _packet(b"R", b"<b@example.net>\0"),
            _packet(b"T"),
            _packet(b"L", b"Subject\0 Hello\0"),
            _packet(b"L", b"Received\0from x\n\tby y\0"),
            _packet(b"N"),
            _packet(b"B", b"Hi there,\r\nsee http://example.com/\r\n"),
            _packet(b"E"),
            _packet(b"A"),
            _packet(b"K"),
        )
    )
    other = b"".join(
        (
            _packet(b"C", b"[unix]\0L\0\0/var/run/x\0"),
            _packet(b"C", b"host6\x006" + struct.pack(">H", 25) + b"2001:db8::1\0"),
            _packet(b"C", b"unknown\0U"),
            _packet(b"U", b"VRFY root\0"),
            _packet(b"E", b"last chunk"),
            _packet(b"Q"),
        )
    )
    return [bytes([0]) + session, bytes([7]) + session, bytes([200]) + session, b"\x03" + other]


def spamd_seeds() -> list[bytes]:
    message = (TESTS / "corpus" / "eml" / "auth_pass.eml").read_bytes()[:2000]
    requests = [
        b"PING SPAMC/1.5\r\n\r\n",
        b"PING SPAMC/1.2\r\n",
        b"CHECK SPAMC/1.5\r\nContent-length: %d\r\nUser: alice\r\n\r\n" % len(message) + message,
        b"PROCESS SPAMC/1.2\r\nContent-length: %d\r\n\r\n" % len(message) + message,
        b"SYMBOLS SPAMC/1.0\r\n" + message,
        b"TELL SPAMC/1.5\r\nMessage-class: spam\r\nSet: local,remote\r\n"
        b"Content-length: %d\r\n\r\n" % len(message) + message,
        b"TELL SPAMC/1.5\r\nRemove: local\r\nContent-length: 5\r\n\r\nhello",
    ]
    packed = zlib.compress(message, 3)
    requests.append(
        b"REPORT SPAMC/1.5\r\nCompress: zlib\r\nContent-length: %d\r\n\r\n" % len(packed) + packed
    )
    return [bytes([index * 37 % 256]) + r for index, r in enumerate(requests)]


def policy_seeds() -> list[bytes]:
    request = (
        b"request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
        b"client_address=192.0.2.7\nclient_name=mail.example.org\n"
        b"reverse_client_name=mail.example.org\nclient_port=51234\nhelo_name=mail.example.org\n"
        b"sender=a@example.org\nrecipient=b@example.net\nrecipient_count=0\nqueue_id=\n"
        b"instance=1a2b.5f3c1d2e.9a8b.0\nsize=12345\netrn_domain=\nstress=\nsasl_method=\n"
        b"sasl_username=\nsasl_sender=\nccert_subject=\nccert_issuer=\nccert_fingerprint=\n"
        b"ccert_pubkey_fingerprint=\nencryption_protocol=TLSv1.3\n"
        b"encryption_cipher=TLS_AES_256_GCM_SHA384\nencryption_keysize=256\n"
        b"server_address=203.0.113.1\nserver_port=25\npolicy_context=\ncompatibility_level=3.6\n"
        b"mail_version=3.7.11\n\n"
    )
    short = b"request=smtpd_access_policy\r\nprotocol_state=CONNECT\r\nclient_address=::1\r\n\r\n"
    return [b"\x00" + request + request, b"\x05" + short, b"\xc1" + short]


def dns_seeds() -> list[bytes]:
    asked = (
        ("2.0.0.127.zen.example.", "A", ["127.0.0.2", "127.0.0.10"]),
        ("_dmarc.example.com.", "TXT", ['"v=DMARC1; p=reject; " "rua=mailto:d@example.com"']),
        ("mail.example.net.", "AAAA", ["2001:db8::25"]),
        ("example.org.", "MX", ["10 mx1.example.org.", "5 mx0.example.org."]),
        ("7.2.0.192.in-addr.arpa.", "PTR", ["mail.example.org."]),
    )
    seeds: list[bytes] = []
    for index, (name, rdtype, records) in enumerate(asked):
        query = dns.message.make_query(name, rdtype)
        query.id = 0x1234
        for listed in (True, False):
            reply = dns.message.make_response(query)
            reply.flags |= dns.flags.RA
            if listed:
                for record in records:  # an RRset each: a set has no fixed order on the wire
                    reply.answer.append(dns.rrset.from_text(name, 300, "IN", rdtype, record))
            else:
                reply.set_rcode(3)
                soa = "ns.example. hostmaster.example. 1 3600 600 86400 120"
                reply.authority.append(dns.rrset.from_text("example.", 60, "IN", "SOA", soa))
            wire = reply.to_wire()
            end = wire.index(b"\0", 12) + 5  # past the question
            seeds.append(bytes([index]) + wire[:12] + wire[end:])
    return seeds


DETAIL = b"""Fri Nov 27 12:00:00 2026
\tPacket-Type = Accounting-Request
\tAcct-Session-Id = "4D2B0001"
\tAcct-Status-Type = Start
\tUser-Name = "alice@example.net"
\tNAS-IP-Address = 192.0.2.1
\tFramed-IP-Address = 198.19.0.7
\tFramed-IPv6-Prefix = 2001:db8:7::/64
\tEvent-Timestamp = "Nov 27 2026 12:00:00 UTC"
\tAcct-Delay-Time = 0
\tAcct-Unique-Session-Id = "0123456789abcdef"
\tTimestamp = 1795780800

Fri Nov 27 12:10:00 2026
\tAcct-Session-Id = "4D2B0001"
\tAcct-Status-Type = Stop
\tUser-Name = "al\\"ice\\101"
\tNAS-Identifier = "bras-1"
\tAcct-Session-Time = 600
\tTimestamp = 1795781400

Fri Nov 27 12:11:00 2026
\tAcct-Status-Type = Accounting-On
\tNAS-IP-Address = 192.0.2.1
\tTimestamp = 1795781460

"""


def radius_detail_seeds() -> list[bytes]:
    return [b"\x00" + DETAIL, b"\x07" + DETAIL, b"\x3f" + DETAIL.replace(b"\n", b"\r\n")]


def _attribute(code: int, value: bytes) -> bytes:
    return bytes([code, len(value) + 2]) + value


def radius_packet_seeds() -> list[bytes]:
    """Identifier and attributes (the harness signs them): a Start, an Interim-Update with
    IPv6, a Stop with Event-Timestamp and counters, an Accounting-On."""
    nas = _attribute(4, bytes([192, 0, 2, 1]))
    session = _attribute(44, b"4D2B0001") + _attribute(1, b"alice@example.net")
    start = _attribute(40, struct.pack(">I", 1)) + session + nas
    start += _attribute(8, bytes([198, 19, 0, 7])) + _attribute(41, struct.pack(">I", 0))
    interim = _attribute(40, struct.pack(">I", 3)) + session + _attribute(32, b"bras-1")
    interim += _attribute(97, b"\x00\x40" + bytes.fromhex("20010db800070000"))
    interim += _attribute(123, b"\x00\x38" + bytes.fromhex("20010db8ff0001"))
    stop = _attribute(40, struct.pack(">I", 2)) + session + nas
    stop += _attribute(55, struct.pack(">I", 1795781400)) + _attribute(46, struct.pack(">I", 600))
    stop += _attribute(42, struct.pack(">I", 12345)) + _attribute(49, struct.pack(">I", 1))
    on = _attribute(40, struct.pack(">I", 7)) + nas
    return [bytes([0, index]) + body for index, body in enumerate((start, interim, stop, on))]


def arf_seeds() -> list[bytes]:
    from tests.zombies.reports import arf, xarf

    return [
        arf("10.1.2.3", "m1@shop.example", when=1_796_000_000.0),
        arf("198.51.100.9", "v@x", feedback="virus", when=1_796_000_000.0),
        xarf("10.1.2.3"),
        xarf("2001:db8::1", report_type="malware"),
    ]


def feeds_seeds() -> list[bytes]:
    from tests.zombies.reports import DRONE_CSV, SINKHOLE_CSV

    return [b"\x00" + DRONE_CSV.encode(), b"\x01" + SINKHOLE_CSV.encode()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=TESTS.parent.parent / "shared" / "corpora")
    args = parser.parse_args(argv)
    shared = args.shared if args.shared.is_dir() else None
    for target, seeds in (
        ("message", message_seeds(shared)),
        ("archives", archive_seeds()),
        ("milter", milter_seeds()),
        ("spamd", spamd_seeds()),
        ("policy", policy_seeds()),
        ("dns", dns_seeds()),
        ("radius_detail", radius_detail_seeds()),
        ("radius_packet", radius_packet_seeds()),
        ("arf", arf_seeds()),
        ("feeds", feeds_seeds()),
    ):
        print(f"{target}: {write(target, seeds)} seeds")


if __name__ == "__main__":
    main()
