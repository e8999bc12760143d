"""Where the log lines go: stderr, syslog or a file, as ``[logging]`` says.

``configure`` replaces the root logger's handlers; every command that reads a configuration
calls it (``cli/common.py``), and ``seawall serve`` again on each reload, so the workers it
forks inherit the handler.  A file is opened for appending and reopened by :func:`reopen`,
which ``seawall serve`` runs on SIGUSR1 in the supervisor, each worker and the campaign
tracker: logrotate renames the file, then its ``postrotate`` sends SIGUSR1 and the next
lines go to a new file of the old name.
"""

from __future__ import annotations

import logging
import logging.handlers
import socket
import sys

from seawall.config import LoggingSettings
from seawall.errors import ConfigError

log = logging.getLogger("seawall.logs")

FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"
# syslog stamps the time and the host itself; the tag names the program and the process.
SYSLOG_FORMAT = "seawall[%(process)d]: %(levelname)s %(name)s: %(message)s"
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

_installed: tuple[LoggingSettings, logging.Handler] | None = None


class ReopeningFileHandler(logging.FileHandler):
    """A file appended to that :meth:`reopen` opens again by its name (after a rename)."""

    def reopen(self) -> bool:
        """Open the file again; False (and the old file kept) when it cannot be opened."""
        self.acquire()
        try:
            try:
                fresh = self._open()
            except OSError as exc:
                print(f"seawall: cannot reopen {self.baseFilename}: {exc}", file=sys.stderr)
                return False
            old, self.stream = self.stream, fresh
        finally:
            self.release()
        if old is not None:
            old.close()
        return True


def handler(settings: LoggingSettings) -> logging.Handler:
    """The handler ``settings`` names, with its format; ConfigError when it cannot be opened
    (a file that cannot be written, a syslog host that does not resolve).  A syslog socket
    that is not there yet is tried again at each line, as syslog(3) does."""
    made: logging.Handler
    if settings.target == "file":
        try:
            made = ReopeningFileHandler(settings.file, encoding="utf-8")
        except OSError as exc:
            why = exc.strerror or exc
            raise ConfigError(f"logging.file: cannot open {settings.file}: {why}") from None
        made.setFormatter(logging.Formatter(FORMAT))
    elif settings.target == "syslog":
        facility = logging.handlers.SysLogHandler.facility_names[settings.syslog_facility]
        address = syslog_address(settings.syslog_address)
        try:
            made = logging.handlers.SysLogHandler(address, facility)
        except OSError as exc:
            raise ConfigError(
                f"logging.syslog_address: cannot reach {settings.syslog_address}: {exc.strerror}"
            ) from None
        sock: socket.socket | None = getattr(made, "socket", None)
        if sock is None or sock.fileno() == -1:  # not there yet: tried again at each line
            print(
                f"seawall: syslog is not listening on {settings.syslog_address} (yet); log"
                " lines are lost until it does",
                file=sys.stderr,
            )
        made.setFormatter(logging.Formatter(SYSLOG_FORMAT))
    else:
        made = logging.StreamHandler(sys.stderr)
        made.setFormatter(logging.Formatter(FORMAT))
    return made


def syslog_address(text: str) -> str | tuple[str, int]:
    """A socket path as it is; ``host:port`` (``[v6]:port``) as a UDP address."""
    if text.startswith("/"):
        return text
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def configure(settings: LoggingSettings, *, verbose: bool = False) -> None:
    """Send the root logger's lines where ``settings`` says, in place of its handlers.

    The level is ``settings.level`` when set, debug with ``verbose``, else what the command
    set.  Settings equal to those already in force change nothing (a reload keeps the file
    open), and the handler is built before the old one goes, so a bad setting leaves the
    logging as it was.  For stderr the handlers the command started with stay (the
    command's own, or those of a program that calls ``seawall.cli.main``), unless this
    replaced them with a file or syslog before.
    """
    global _installed
    root = logging.getLogger()
    if verbose:
        root.setLevel(logging.DEBUG)
    elif settings.level:
        root.setLevel(LEVELS[settings.level])
    if _installed is not None and _installed[0] == settings and _installed[1] in root.handlers:
        return
    if settings.target == "stderr" and _installed is None:
        return
    fresh = handler(settings)
    for old in list(root.handlers):
        root.removeHandler(old)
        if _installed is not None and old is _installed[1]:
            old.close()
    root.addHandler(fresh)
    _installed = (settings, fresh)


def reopen() -> bool:
    """Reopen the log file (SIGUSR1); whether there was one to reopen.  Logged, at info, to
    the new file: the first line each process writes there."""
    reopened = False
    for each in logging.getLogger().handlers:
        if isinstance(each, ReopeningFileHandler) and each.reopen():
            log.info("reopened the log file %s", each.baseFilename)
            reopened = True
    return reopened
