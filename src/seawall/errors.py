"""Seawall's exceptions.

    SeawallError
     ├── ConfigError          bad configuration or scores file: exit 2 at startup
     ├── StoreError           the state store cannot be opened or written
     ├── CorpusError          a corpus archive or folder cannot be read
     ├── ScanError            a scan worker died: the messages it held were not scanned
     ├── LearningDisabled     a learn or forget request while the classifier is off
     ├── TrackerError         the campaign tracker cannot be reached or broke its protocol
     └── ProtocolViolation    a client broke its wire protocol: that connection is closed
          ├── MilterViolation a malformed, oversized or unknown milter packet from the MTA
          ├── SpamdViolation  a malformed SPAMC request (answered EX_PROTOCOL)
          └── PolicyViolation a malformed or oversized Postfix policy request (no reply)

Problems of a *message* are never exceptions: they are defects on the Message
and symbols on the Verdict.
"""

from __future__ import annotations


class SeawallError(Exception):
    """Base of every exception Seawall raises on purpose."""


class ConfigError(SeawallError):
    """The configuration cannot work; the process exits with status 2."""


class ScanError(SeawallError):
    """A ``seawall scan`` worker process died; the messages it held were not scanned."""


class LearningDisabled(SeawallError):
    """A learn or forget request while the classifier is disabled in the configuration."""


class TrackerError(SeawallError):
    """The campaign tracker process cannot be reached, or answered outside its protocol."""


class StoreError(SeawallError):
    """The state store cannot be opened, read or written."""


class CorpusError(SeawallError):
    """A corpus archive or folder cannot be read."""


class ProtocolViolation(SeawallError):
    """A client broke its wire protocol; the front end closes that connection."""


class SpamdViolation(ProtocolViolation):
    """A malformed SPAMC request: spamd answers EX_PROTOCOL and closes."""


class MilterViolation(ProtocolViolation):
    """A malformed, oversized or unknown milter packet: the milter closes that connection."""


class PolicyViolation(ProtocolViolation):
    """A malformed or oversized Postfix policy request: closed without a reply, as Postfix's
    SMTPD_POLICY_README asks of a server in trouble (Postfix logs it and tempfails)."""
