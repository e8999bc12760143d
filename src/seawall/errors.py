"""Seawall's exceptions.

    SeawallError
     ├── ConfigError          bad configuration or scores file: exit 2 at startup
     ├── StoreError           the state store cannot be opened or written
     └── CorpusError          a corpus archive or folder cannot be read

Problems of a *message* are never exceptions: they are defects on the Message
and symbols on the Verdict.
"""

from __future__ import annotations


class SeawallError(Exception):
    """Base of every exception Seawall raises on purpose."""


class ConfigError(SeawallError):
    """The configuration cannot work; the process exits with status 2."""


class StoreError(SeawallError):
    """The state store cannot be opened, read or written."""


class CorpusError(SeawallError):
    """A corpus archive or folder cannot be read."""
