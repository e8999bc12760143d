"""Following a FreeRADIUS detail file as it grows, through log rotation.

``DetailTail(path).poll()`` returns what was appended since the last poll, parsed.  It reads
the file from its start when first opened (storing a record twice changes nothing), then
from where it stopped.  Rotation:

- renamed (logrotate's default, or FreeRADIUS's own dated files): the old file, still open,
  is read to its end, then the new file at ``path`` from its start;
- copied and truncated (``copytruncate``): the file is shorter than what was read, so it is
  read again from its start.  Records written between the last poll and the truncation are
  only in the copy: poll often (``[accounting] poll_s``), or rotate by renaming;
- missing: polled until it appears.
"""

from __future__ import annotations

import logging
import os
from typing import BinaryIO

from seawall.accounting.detail import DetailParser, Problem
from seawall.accounting.records import Record

log = logging.getLogger("seawall.accounting")

CHUNK = 1 << 20  # bytes read per call; a poll reads up to MAX_READ
MAX_READ = 16 << 20  # per poll: a huge backlog is taken in slices, the loop stays responsive


class DetailTail:
    """One detail file followed; see the module docstring."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file: BinaryIO | None = None
        self._inode: tuple[int, int] | None = None
        self._offset = 0
        self._parser = DetailParser(path)
        self._missing_logged = False

    def poll(self) -> list[Record | Problem]:
        """What was appended since the last poll, and what rotation revealed."""
        out: list[Record | Problem] = []
        if self._file is None and not self._open():
            return out
        assert self._file is not None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None  # renamed away and not yet replaced: finish the old file
        if st is not None and (st.st_dev, st.st_ino) != self._inode:
            out += self._read(limit=None)  # renamed: the rest of the old file, then the new
            out += self._parser.end()
            self._close()
            if self._open():
                out += self._read()
            return out
        if st is not None and st.st_size < self._offset:
            log.info("%s was truncated (copytruncate): reading it from its start", self.path)
            out += self._parser.end()
            self._parser = DetailParser(self.path)
            self._offset = 0
            self._file.seek(0)
        out += self._read()
        return out

    def close(self) -> None:
        self._close()

    def _open(self) -> bool:
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - kept open across polls
        except FileNotFoundError:
            if not self._missing_logged:
                log.warning("%s does not exist (yet): waiting for it", self.path)
                self._missing_logged = True
            return False
        except OSError as exc:
            if not self._missing_logged:
                log.error("%s cannot be read: %s", self.path, exc)
                self._missing_logged = True
            return False
        st = os.fstat(f.fileno())
        self._file, self._inode, self._offset = f, (st.st_dev, st.st_ino), 0
        self._parser = DetailParser(self.path)
        self._missing_logged = False
        log.info("following %s", self.path)
        return True

    def _read(self, limit: int | None = MAX_READ) -> list[Record | Problem]:
        assert self._file is not None
        out: list[Record | Problem] = []
        taken = 0
        while limit is None or taken < limit:
            data = self._file.read(CHUNK)
            if not data:
                break
            taken += len(data)
            self._offset += len(data)
            out += self._parser.feed(data)
        return out

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file, self._inode, self._offset = None, None, 0
