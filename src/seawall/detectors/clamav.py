"""Malware: the message, or each of its attachments, scanned by ClamAV's clamd.

Symbols (scores in policy/scores.toml):
    CLAMAV_VIRUS      clamd found a signature (options: its names); the message is rejected
    CLAMAV_FAILED     clamd is down, timed out, closed mid-scan or answered an error
                      (options: why); with on_failure = "tempfail" the message is soft-rejected
    CLAMAV_TOO_LARGE  over max_bytes or clamd's StreamMaxLength: not scanned (options: size)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import ClassVar

from seawall.clamd import DEFAULT_MAX_BYTES, Clamd, ClamdError, StreamTooLarge
from seawall.config import ClamavSettings
from seawall.detectors.base import Context, Hit, Parts
from seawall.errors import ConfigError
from seawall.message import Message, ParseLimits
from seawall.message.defects import NESTING_TOO_DEEP, PART_TOO_LARGE, TOO_MANY_PARTS, Defects
from seawall.message.headers import read_fields
from seawall.message.mime import Entity, Walk, describe
from seawall.policy.model import Action

log = logging.getLogger("seawall.detectors.clamav")

# In "attachments" mode a message with more attachments than this is sent whole instead:
# one round trip, and clamd's own limits (MaxFiles, MaxScanSize) bound its work.
MAX_PARTS = 32
_READABLE = frozenset({"text/plain", "text/enriched", "text/richtext", "text/html"})


class _AttachmentWalk(Walk):
    """Seawall's own MIME walk (linear, within ParseLimits), keeping attachments' bytes."""

    __slots__ = ("data",)

    def __init__(self, limits: ParseLimits, defects: Defects) -> None:
        super().__init__(limits, defects)
        self.data: list[bytes] = []

    def leaf(self, buf: bytes, start: int, end: int, entity: Entity) -> None:
        # An attachment as Message.attachments counts them: not text, or with a file name.
        if entity.filename is not None or entity.content_type not in _READABLE:
            if len(self.data) == MAX_PARTS:
                self.stop = True
                self.defects.add(TOO_MANY_PARTS)
                return
            self.data.append(self.decode(buf, start, end, entity.encoding))


def decoded_attachments(raw: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> list[bytes] | None:
    """Each attachment's decoded bytes, found as the message parser finds them.

    None when the walk could not see every attachment (more than MAX_PARTS, too many
    parts, nested too deep, one bigger than ``max_bytes``): then the message goes whole.
    """
    limits = ParseLimits(max_message_bytes=max_bytes, max_part_bytes=max_bytes)
    defects = Defects()
    start = 0
    if raw.startswith(b"From "):  # an mbox "From " line, not a header field
        start = raw.find(b"\n") + 1 or len(raw)
    fields, body = read_fields(raw, start, len(raw), limits.max_header_bytes, defects)
    walk = _AttachmentWalk(limits, defects)
    walk.entity(raw, body, len(raw), describe(fields, "text/plain", defects), 0)
    if any(name in defects for name in (TOO_MANY_PARTS, NESTING_TOO_DEEP, PART_TOO_LARGE)):
        return None
    return [data for data in walk.data if data]


class ClamavDetector:
    """Scans with clamd; a finding forces reject, a failure applies ``on_failure``."""

    name: ClassVar[str] = "clamav"
    io: ClassVar[bool] = True
    symbols: ClassVar[Mapping[str, str]] = {
        "CLAMAV_VIRUS": "ClamAV found malware (options: the signature names)",
        "CLAMAV_FAILED": "clamd could not scan the message: down, timed out or failing",
        "CLAMAV_TOO_LARGE": "Larger than clamav.max_bytes or clamd's StreamMaxLength: not scanned",
    }

    @classmethod
    def build(cls, parts: Parts) -> ClamavDetector:
        config = parts.config
        return cls(config.detectors.clamav, io_timeout_s=config.engine.io_timeout_s)

    def __init__(
        self, settings: ClamavSettings, *, io_timeout_s: float, client: Clamd | None = None
    ) -> None:
        if settings.timeout_s >= io_timeout_s:
            raise ConfigError(
                f"detectors.clamav.timeout_s ({settings.timeout_s:g}) must be below "
                f"engine.io_timeout_s ({io_timeout_s:g}), or a slow scan is cut before "
                "on_failure applies"
            )
        self.settings = settings
        if client is None:
            try:
                client = Clamd(
                    settings.address,
                    timeout_s=settings.timeout_s,
                    connect_timeout_s=settings.connect_timeout_s,
                    max_bytes=settings.max_bytes,
                    max_connections=settings.max_connections,
                )
            except ValueError as exc:
                raise ConfigError(f"detectors.clamav.address: {exc}") from None
        self.client = client

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]:
        s = self.settings
        # Authenticated senders are scanned too: an infected subscriber's PC mails its worm.
        if s.only_with_attachments and not msg.attachments:
            return ()
        raw = msg.raw
        if len(raw) > s.max_bytes:
            return (Hit("CLAMAV_TOO_LARGE", options=(f"{len(raw)} bytes",)),)
        try:
            async with asyncio.timeout(s.timeout_s):
                found = await self._scan(raw)
        except TimeoutError:
            return self._failed(f"no answer in {s.timeout_s:g}s")
        except StreamTooLarge:
            # Deterministic: a retry would be refused again, so this is no failure.
            return (Hit("CLAMAV_TOO_LARGE", options=(f"{len(raw)} bytes", "clamd's limit")),)
        except ClamdError as exc:
            return self._failed(str(exc))
        if found:
            return (Hit("CLAMAV_VIRUS", options=tuple(found), force=Action.REJECT),)
        return ()

    async def _scan(self, raw: bytes) -> list[str]:
        """The signature names found, in order, each once."""
        parts = None
        if self.settings.scan == "attachments":
            parts = decoded_attachments(raw, self.settings.max_bytes)
        names: list[str] = []
        for data in parts or [raw]:  # none found (odd MIME): ClamAV reads the whole message
            result = await self.client.instream(data)
            if result.signature is not None and result.signature not in names:
                names.append(result.signature)
        return names

    def _failed(self, why: str) -> Sequence[Hit]:
        log.warning("clamd scan failed: %s", why)
        tempfail = self.settings.on_failure == "tempfail"
        force = Action.SOFT_REJECT if tempfail else None
        return (Hit("CLAMAV_FAILED", options=(why,), force=force),)

    def close(self) -> None:
        self.client.close()
