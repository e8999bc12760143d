"""Raw bytes to an immutable :class:`Message`."""

from __future__ import annotations

from seawall.message.model import Attachment, Envelope, Headers, Hop, Message, TextPart, Url
from seawall.message.parse import ParseLimits, parse_message

__all__ = [
    "Attachment",
    "Envelope",
    "Headers",
    "Hop",
    "Message",
    "ParseLimits",
    "TextPart",
    "Url",
    "parse_message",
]
