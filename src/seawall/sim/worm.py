"""Mass-mailing worm copies (Netsky, Sober and MyDoom style): a short lure and a zipped program.

The "program" is a harmless blob that merely looks like a Windows executable: the MZ
header, the DOS stub's message and a PE signature, then seeded random bytes; no code.
"""

from __future__ import annotations

import io
import random
import time
import zipfile
from dataclasses import dataclass

from seawall.message.model import Envelope
from seawall.sim import mime
from seawall.sim.model import SimMessage, Truth
from seawall.sim.mutate import boundary, forged_helo, message_id
from seawall.sim.recipients import pick_recipients
from seawall.sim.world import ISP_DOMAIN, Bot, World


@dataclass(frozen=True, slots=True)
class WormFamily:
    """One worm: what its copies say and what they carry."""

    name: str  # "worm-netsky"
    tool: str  # its SMTP engine's Message-ID shape (a key of mutate.TOOLS)
    subjects: tuple[str, ...]
    bodies: tuple[str, ...]
    payloads: tuple[tuple[str, str], ...]  # (zip file name, member with a double extension)


FAMILIES = (
    WormFamily(
        "worm-netsky",
        "darkmailer",
        ("Re: Your document", "Re: Thank you!", "Re: Your details", "Re: Approved", "Re: Hello"),
        (
            "Please have a look at the attached file.",
            "Your document is attached.",
            "See the attached file for details.",
        ),
        (
            ("your_document.zip", "your_document.txt.pif"),
            ("details.zip", "details.doc.scr"),
            ("document.zip", "document.txt.pif"),
            ("data.zip", "data.xls.pif"),
        ),
    ),
    WormFamily(
        "worm-sober",
        "outlook-express",
        ("Ihr Passwort", "Re: Ihre Bestellung", "Sie versenden Viren", "Registrierungsbestätigung"),
        (
            "Bitte lesen Sie das Dokument im Anhang.",
            "Anbei die gewünschten Unterlagen.",
            "Ihre Zugangsdaten befinden sich im Anhang.",
        ),
        (
            ("dokument.zip", "dokument.txt.pif"),
            ("daten.zip", "daten.doc.scr"),
            ("rechnung.zip", "rechnung.pdf.exe"),
        ),
    ),
    WormFamily(
        "worm-mydoom",
        "qmail-inject",
        ("Mail Delivery System", "Delivery Status Notification", "hello", "Error"),
        (
            "The message contains Unicode characters and has been sent as a binary attachment.",
            "Mail transaction failed. Partial message is available.",
        ),
        (("text.zip", "text.htm.pif"), ("message.zip", "message.txt.scr")),
    ),
)


def payload(family: WormFamily, seed: int) -> bytes:
    """The family's "executable": the same bytes in every copy, as a worm's own body is."""
    rng = random.Random(f"{seed}:{family.name}:payload")
    stub = b"This program cannot be run in DOS mode.\r\r\n$"
    header = bytearray(0x80)
    header[0:2] = b"MZ"
    header[0x3C:0x40] = (0x80).to_bytes(4, "little")  # e_lfanew: where "PE\0\0" sits
    header[0x4E : 0x4E + len(stub)] = stub
    return bytes(header) + b"PE\x00\x00" + rng.randbytes(rng.randint(4096, 12288))


def zipped(member: str, data: bytes, at: float) -> bytes:
    buffer = io.BytesIO()
    info = zipfile.ZipInfo(member, date_time=time.gmtime(at)[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, data)
    return buffer.getvalue()


def render_worm(
    world: World,
    family: WormFamily,
    blob: bytes,
    bot: Bot,
    ip: str,
    rdns: str | None,
    at: float,
    seed: int,
) -> SimMessage:
    """One copy ``bot`` mails at ``at``: From an address out of its victim's address book."""
    rng = random.Random(seed)
    (rcpt,) = pick_recipients(world, rng, 1)
    (forged_from,) = pick_recipients(world, rng, 1)
    sender = forged_from.address if rng.random() < 0.7 else f"admin@{ISP_DOMAIN}"
    helo = forged_helo(rng, bot, ip, rdns)
    qid = mime.queue_id(rng)
    archive_name, member = rng.choice(family.payloads)
    text = mime.leaf("text/plain", rng.choice(family.bodies), "iso-8859-1", "8bit")
    kind = rng.choice(("application/octet-stream", "application/x-zip-compressed"))
    attached = mime.attachment(kind, archive_name, zipped(member, blob, at))
    entity = mime.multipart("mixed", boundary(rng, family.tool), [text, attached])
    mid = message_id(rng, family.tool, at, bot.machine if rng.random() < 0.5 else ISP_DOMAIN)
    fields = [
        ("Received", mime.mx_received(helo, rdns, ip, qid, (rcpt.address,), at)),
        ("From", sender),
        ("To", rcpt.address),
        ("Subject", mime.header_text(rng.choice(family.subjects), "iso-8859-1")),
        ("Date", mime.format_date(at + bot.skew_s, bot.timezone)),
        ("Message-ID", f"<{mid}>"),
        ("X-Priority", "3"),
    ]
    envelope = Envelope(
        client_ip=ip,
        helo=helo,
        mail_from=sender,
        rcpts=(rcpt.address,),
        queue_id=qid,
        hostname=rdns,
    )
    truth = Truth(mid, "worm", family.name, ip, bot.account, True, at)
    return SimMessage(at, envelope, mime.message(fields, entity), truth)
