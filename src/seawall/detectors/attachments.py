"""Dangerous attachments: programs, disguised names, lying types and hostile archives.

A program whose name hides its type (a double extension, a right-to-left override) is the
mark of the mass-mailing worms (Netsky, Sober, Bagle, MyDoom) and of today's malware mail;
by default it is rejected outright, attached or inside an archive.  A plain program type
scores.  Archives are opened within :class:`~seawall.message.archives.ArchiveLimits`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from seawall.config import AttachmentsSettings
from seawall.detectors.base import Context, Hit, Parts
from seawall.message import archives
from seawall.message.archives import ArchiveLimits, ArchiveWalk
from seawall.message.attachments import (
    EXECUTABLE_TYPES,
    claimed_kind,
    contradicts,
    extension,
    has_bidi,
    is_double_extension,
    visible_name,
)
from seawall.message.model import Message
from seawall.policy.model import Action

_FINDINGS = {
    archives.ENCRYPTED: "ARCHIVE_ENCRYPTED",
    archives.BOMB: "ARCHIVE_BOMB",
    archives.TOO_DEEP: "ARCHIVE_TOO_DEEP",
    archives.TOO_MANY: "ARCHIVE_TOO_MANY_MEMBERS",
    archives.UNREADABLE: "ARCHIVE_UNREADABLE",
    archives.BROKEN: "ARCHIVE_BROKEN",
    archives.LIMIT: "ARCHIVE_LIMIT",
}
_MAX_OPTIONS = 5  # file names shown per symbol
_MAX_LABEL = 150  # characters of one file name or path shown
# Shown escaped in options: bidi controls would reorder the log line they are printed in.
_ESCAPE = {c: f"<U+{c:04X}>" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
_ESCAPE.update({c: "?" for c in range(32)})


class AttachmentsDetector:
    """Attached programs, disguised or not, type mismatches, and archives with their members.

    >>> detector = AttachmentsDetector(AttachmentsSettings())
    >>> [h.symbol for h in await detector.check(worm_mail, ctx)]     # doctest: +SKIP
    ['ARCHIVE_EXECUTABLE', 'ARCHIVE_DOUBLE_EXT']
    """

    name: ClassVar[str] = "attachments"
    io: ClassVar[bool] = False
    symbols: ClassVar[Mapping[str, str]] = {
        "ATTACH_EXECUTABLE": "An attached program or disk image (by extension or content)",
        "ATTACH_DOUBLE_EXT": "An attached program behind a harmless extension: 'invoice.pdf.exe'",
        "ATTACH_RTLO": "An attachment name with a right-to-left override or other bidi control",
        "ATTACH_TYPE_MISMATCH": "An attachment is a program, archive or HTML, not what it claims",
        "ARCHIVE_EXECUTABLE": "An archive holds a program or disk image",
        "ARCHIVE_DOUBLE_EXT": "An archive holds a program behind a harmless extension",
        "ARCHIVE_RTLO": "A name in an archive with a right-to-left override or other bidi control",
        "ARCHIVE_TYPE_MISMATCH": "A file in an archive is a program, archive or HTML, not what "
        "its name claims",
        "ARCHIVE_ENCRYPTED": "A password-protected archive: its content cannot be scanned",
        "ARCHIVE_BOMB": "A decompression bomb: sizes or ratios no real file has, or sizes that lie",
        "ARCHIVE_TOO_DEEP": "Archives nested deeper than max_depth",
        "ARCHIVE_TOO_MANY_MEMBERS": "More files in the message's archives than max_members",
        "ARCHIVE_UNREADABLE": "An archive type or compression method that is not opened "
        "(RAR, 7z, CAB, bzip2, xz)",
        "ARCHIVE_BROKEN": "An archive, or a file in it, that cannot be read",
        "ARCHIVE_LIMIT": "The message's archives exceed max_unpacked_bytes; the rest was not read",
    }

    @classmethod
    def build(cls, parts: Parts) -> AttachmentsDetector:
        return cls(parts.config.detectors.attachments)

    def __init__(self, settings: AttachmentsSettings) -> None:
        self.settings = settings
        self.executables = frozenset(e.lower().lstrip(".") for e in settings.executable_extensions)
        self.decoys = frozenset(e.lower().lstrip(".") for e in settings.decoy_extensions)
        self.limits = ArchiveLimits(
            max_depth=settings.max_depth,
            max_members=settings.max_members,
            max_unpacked_bytes=settings.max_unpacked_bytes,
            max_ratio=settings.max_ratio,
            min_bomb_bytes=settings.min_bomb_bytes,
            max_declared_bytes=settings.max_declared_bytes,
        )
        self.force = Action.REJECT if settings.double_extension_action == "reject" else None

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]:
        if not msg.attachments:
            return ()
        walk = ArchiveWalk(self.limits)
        files: list[tuple[str, str | None, str | None, str, str]] = []
        for attachment in msg.attachments:
            name = attachment.filename or ""
            label = name or f"({attachment.declared_type})"
            sniffed = attachment.sniffed_type
            files.append((name, sniffed, attachment.declared_type, "ATTACH", label))
            if attachment.data:
                walk.open(attachment.data, label, sniffed)
        files.extend((m.name, m.sniffed_type, None, "ARCHIVE", m.path) for m in walk.members)
        found: dict[str, list[str]] = {}
        forced: set[str] = set()
        for name, sniffed, declared, family, label in files:
            for symbol, force in self._judge(name, sniffed, declared, family):
                detail = f"{label}: {sniffed}" if symbol.endswith("_TYPE_MISMATCH") else label
                found.setdefault(symbol, []).append(detail)
                if force:
                    forced.add(symbol)
        for finding, evidence in walk.findings.items():
            found[_FINDINGS[finding]] = evidence
        return tuple(
            Hit(symbol, options=_summarize(options), force=self.force if symbol in forced else None)
            for symbol, options in found.items()
        )

    def _judge(
        self, name: str, sniffed: str | None, declared: str | None, family: str
    ) -> list[tuple[str, bool]]:
        """The ``family``_* symbols that ``name`` and its sniffed type earn, each with
        whether it is a disguised program (forced under ``double_extension_action``)."""
        visible = visible_name(name)
        executable = extension(visible) in self.executables
        out = []
        if executable or sniffed in EXECUTABLE_TYPES:
            out.append((f"{family}_EXECUTABLE", False))
        if is_double_extension(visible, self.executables, self.decoys):
            out.append((f"{family}_DOUBLE_EXT", True))
        if has_bidi(name):
            # An override that hides ".exe" is the same trick as a double extension.
            out.append((f"{family}_RTLO", executable))
        if contradicts(claimed_kind(visible, declared), sniffed):
            out.append((f"{family}_TYPE_MISMATCH", False))
        return out


def _summarize(options: list[str]) -> tuple[str, ...]:
    """Up to :data:`_MAX_OPTIONS` distinct names, printable, bounded and encodable (tar
    names keep undecodable bytes as lone surrogates, which no wire format accepts)."""
    shown = dict.fromkeys(
        o.translate(_ESCAPE)[:_MAX_LABEL].encode("utf-8", "replace").decode("utf-8")
        for o in options
    )
    return tuple(shown)[:_MAX_OPTIONS]
