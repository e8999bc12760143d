"""Fuzz target: the archive walk (zip, nested zip, gzip, tar) never raises and keeps its bounds.

The first byte picks how the attachment was sniffed (zip, gzip, tar, or by its own magic
bytes), so tar, which has no magic a random mutation would find, is fuzzed too.  Budgets are
small, so the bomb and limit paths are reached with small inputs.
"""

from __future__ import annotations

from seawall.message.archives import ArchiveLimits, ArchiveWalk
from seawall.message.attachments import build_attachment, sniff

LIMITS = ArchiveLimits(
    max_depth=3,
    max_members=50,
    max_unpacked_bytes=256 * 1024,
    max_ratio=50.0,
    min_bomb_bytes=64 * 1024,
    max_declared_bytes=1024 * 1024,
)
KINDS = ("application/zip", "application/gzip", "application/x-tar")


def check(data: bytes) -> None:
    if not data:
        return
    choice, data = data[0], data[1:]
    kind = KINDS[choice % 4] if choice % 4 < 3 else sniff(data)
    walk = ArchiveWalk(LIMITS)
    walk.open(data, "attachment.bin", kind)
    assert walk.count <= LIMITS.max_members
    assert len(walk.members) <= LIMITS.max_members
    assert 0 <= walk.budget <= LIMITS.max_unpacked_bytes
    assert all(member.depth <= LIMITS.max_depth for member in walk.members)
    attachment = build_attachment(data, "attachment.bin", kind or "application/octet-stream")
    assert attachment.size == len(data)
