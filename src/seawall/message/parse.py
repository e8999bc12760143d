"""Raw bytes to an immutable :class:`Message`, within :class:`ParseLimits`.

Header section, MIME walk (:mod:`~seawall.message.mime`), Received chain, URLs.  Every
problem of the input becomes a defect name (:mod:`~seawall.message.defects`), never an
exception.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from seawall.config import Config, Limits, Trusted
from seawall.message import defects as d
from seawall.message.defects import Defects
from seawall.message.headers import decode_words, read_fields
from seawall.message.mime import Walk, describe
from seawall.message.model import Envelope, Headers, Hop, Message
from seawall.message.received import parse_received, trusted_networks
from seawall.message.sniff import is_mail
from seawall.message.urls import collect_urls

_MAX_RECEIVED = 100  # Received fields parsed into hops
# Machine fields whose encoded words wrap binary blobs, not text: Microsoft 365 adds ~60
# words of base64 to every message, and decoding them cost more than the rest of a parse.
_OPAQUE_FIELDS = ("x-microsoft-antispam", "x-ms-exchange-")
_CONTROL_BYTES = bytes(range(9)) + b"\x0b\x0c" + bytes(range(14, 32)) + b"\x7f"
_LIMITS = Limits()
_TRUSTED = Trusted()


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """The limits of one parse (config ``[limits]``) and the relays we trust (``[trusted]``).

    >>> ParseLimits(max_parts=50).max_depth
    30
    """

    # The defaults are config's, read once here: building a ParseLimits costs the same.
    max_message_bytes: int = _LIMITS.max_message_bytes
    max_parts: int = _LIMITS.max_parts
    max_depth: int = _LIMITS.max_depth
    max_header_bytes: int = _LIMITS.max_header_bytes
    max_text_chars: int = _LIMITS.max_text_chars
    max_part_bytes: int = _LIMITS.max_part_bytes
    max_urls: int = _LIMITS.max_urls
    trusted_networks: tuple[str, ...] = _TRUSTED.networks
    private_is_trusted: bool = _TRUSTED.private_is_trusted

    @classmethod
    def from_config(cls, config: Config) -> ParseLimits:
        """The limits of ``config``; a trusted network that does not parse is a ConfigError."""
        from seawall.errors import ConfigError

        trusted = config.trusted
        result = cls(
            **msgspec.structs.asdict(config.limits),
            trusted_networks=tuple(trusted.networks),
            private_is_trusted=trusted.private_is_trusted,
        )
        try:
            trusted_networks(result.trusted_networks, result.private_is_trusted)
        except ValueError as exc:
            raise ConfigError(f"trusted.networks: {exc}") from None
        return result


_NO_ENVELOPE = Envelope()
DEFAULT_LIMITS = ParseLimits()


def parse_message(
    raw: bytes, envelope: Envelope = _NO_ENVELOPE, limits: ParseLimits = DEFAULT_LIMITS
) -> Message:
    """Parse ``raw`` into a :class:`Message`; never raises for any input.

    ``Message.text`` joins the text parts in order; of the alternatives in a
    ``multipart/alternative`` only one counts (the HTML one, which is what readers see,
    unless it has no text), while ``Message.parts`` keeps them all.

    >>> msg = parse_message(b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\\n\\nHallo www.example.de")
    >>> msg.subject, msg.text, msg.urls[0].url
    ('Grüße', 'Hallo www.example.de', 'http://www.example.de/')
    """
    defects = Defects()
    size = len(raw)
    if not raw or raw.isspace():
        defects.add(d.EMPTY)
    end = size
    if size > limits.max_message_bytes:
        defects.add(d.TOO_LARGE)
        end = limits.max_message_bytes
    start = 0
    if raw.startswith(b"From "):  # an mbox "From " line, not a header field
        newline = raw.find(b"\n", 0, end)
        start = end if newline < 0 else newline + 1
    fields, body_start = read_fields(raw, start, end, limits.max_header_bytes, defects)
    head = raw[start : min(body_start if fields else end, start + 4096)]
    if not fields and d.EMPTY not in defects:
        defects.add(d.NO_HEADERS)  # the body starts at the top, or after a blank first line
    if d.EMPTY not in defects and not is_mail(raw, start, fields):
        defects.add(d.NOT_MAIL)  # an archive, a program, a text file: sniff.not_mail says which
    if b"\x00" in head or (
        not fields and len(head) - len(head.translate(None, _CONTROL_BYTES)) > len(head) // 20
    ):
        defects.add(d.BINARY_GARBAGE)
    items = fields
    if any("=?" in value for _, value in fields):
        items = [
            (name, value)
            if "=?" not in value or name[:20].lower().startswith(_OPAQUE_FIELDS)
            else (name, decode_words(value, defects))
            for name, value in fields
        ]
    headers = Headers(tuple(items), tuple(fields))

    walk = Walk(limits, defects)
    walk.entity(raw, body_start, end, describe(fields, "text/plain", defects), 0)

    received_values = headers.get_all("Received")
    if len(received_values) > _MAX_RECEIVED:
        defects.add(d.TOO_MANY_RECEIVED)
    received = tuple(parse_received(value) for value in received_values[:_MAX_RECEIVED])
    trusted = trusted_networks(limits.trusted_networks, limits.private_is_trusted)
    first_untrusted = trusted.first_untrusted(received)
    if not received and envelope.client_ip and not trusted.contains(envelope.client_ip):
        rdns = envelope.hostname if envelope.hostname != "unknown" else None
        first_untrusted = Hop(helo=envelope.helo, rdns=rdns, ip=envelope.client_ip, by=None)

    parts = tuple(walk.parts)
    text = "\n".join(p.text for p, shown in zip(parts, walk.shown, strict=True) if shown and p.text)
    urls = collect_urls(zip(walk.links, (p.text for p in parts), strict=True), limits.max_urls)
    return Message(
        raw=raw,
        envelope=envelope,
        headers=headers,
        subject=headers.get("Subject", ""),
        text=text[: limits.max_text_chars],
        parts=parts,
        urls=urls,
        attachments=tuple(walk.attachments),
        received=received,
        first_untrusted=first_untrusted,
        defects=defects.as_tuple(),
        size=size,
        html=tuple(walk.html) if walk.html_complete and not walk.stop else None,
        parsed_with=limits,
    )
