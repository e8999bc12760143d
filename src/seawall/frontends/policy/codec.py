"""Sans-I/O codec for Postfix's policy delegation protocol (SMTPD_POLICY_README).

A request is ``name=value`` lines ended by ``\\n`` and closed by an empty line; one
connection carries many requests, each answered by one ``action=...`` line and an
empty line.  ``PolicyParser.feed`` turns bytes from Postfix into requests, however TCP
split or joined them; ``encode_reply`` renders one answer::

    >>> parser = PolicyParser()
    >>> parser.feed(b"request=smtpd_access_policy\\nprotocol_state=RCPT\\n")
    []
    >>> [r.protocol_state for r in parser.feed(b"client_address=192.0.2.7\\n\\n")]
    ['RCPT']
    >>> encode_reply("DUNNO")
    b'action=DUNNO\\n\\n'

Values travel as UTF-8 decoded with ``surrogateescape``: Postfix passes 8-bit addresses
(SMTPUTF8) through, and they survive the round trip unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from seawall.errors import PolicyViolation

# Postfix 3.x sends about 30 attributes; certificate subjects and issuers are the long ones
# (a few hundred bytes).  Beyond these bounds the peer is not Postfix: stop reading.
MAX_LINE_BYTES = 8192
MAX_ATTRIBUTES = 100
# One request's bytes: Postfix sends about a kilobyte; 100 full lines would be 800 KiB a
# connection, which a thousand idle connections would multiply.
MAX_REQUEST_BYTES = 65536

REQUEST_TYPE = "smtpd_access_policy"

# Control characters would end the reply line early or smuggle in a second attribute.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class PolicyRequest:
    """One request: its attributes as sent, and the few that policy decisions read.

    A missing attribute reads as ``""``, as Postfix itself sends unavailable ones
    (SMTPD_POLICY_README: absent, ``name=`` or ``name=0``).
    """

    attributes: Mapping[str, str]

    def get(self, name: str) -> str:
        return self.attributes.get(name, "")

    @property
    def request(self) -> str:
        return self.get("request")

    @property
    def protocol_state(self) -> str:
        """``CONNECT``, ``EHLO``, ``HELO``, ``MAIL``, ``RCPT``, ``DATA``, ``END-OF-MESSAGE``,
        ``VRFY`` or ``ETRN``: the SMTP stage whose restrictions called the service."""
        return self.get("protocol_state").upper()

    @property
    def client_address(self) -> str:
        return self.get("client_address")

    @property
    def client_name(self) -> str:
        """The client's verified host name (its PTR, confirmed by a forward lookup), or
        ``unknown``.  Not ``reverse_client_name``, the PTR alone, which its owner writes."""
        return self.get("client_name")

    @property
    def sasl_username(self) -> str:
        return self.get("sasl_username")

    @property
    def instance(self) -> str:
        """Postfix's id of the mail transaction, set at MAIL FROM and the same for every
        request of that transaction (empty before MAIL FROM)."""
        return self.get("instance")


class PolicyParser:
    """Bytes from Postfix in, complete :class:`PolicyRequest` values out.

    Raises :class:`~seawall.errors.PolicyViolation` for a line longer than
    ``max_line_bytes``, more than ``max_attributes`` attributes, a line without ``=``,
    an empty name or a request without the required ``request`` attribute.  Postfix
    waits for each reply before sending the next request, so the requests of a chunk
    that also holds a violation are not answered: the connection is closed anyway.
    """

    def __init__(
        self,
        *,
        max_line_bytes: int = MAX_LINE_BYTES,
        max_attributes: int = MAX_ATTRIBUTES,
        max_request_bytes: int = MAX_REQUEST_BYTES,
    ) -> None:
        self.max_line_bytes = max_line_bytes
        self.max_attributes = max_attributes
        self.max_request_bytes = max_request_bytes
        self._buffer = bytearray()
        self._attributes: dict[str, str] = {}
        self._size = 0  # bytes of the request being read

    @property
    def pending(self) -> bool:
        """Part of a request has been read (an end of stream now cuts it short)."""
        return bool(self._buffer or self._attributes)

    def feed(self, data: bytes) -> list[PolicyRequest]:
        """Take the next bytes of the stream; return the requests they complete."""
        self._buffer += data
        requests: list[PolicyRequest] = []
        start = 0
        buffer = self._buffer
        while (end := buffer.find(b"\n", start)) >= 0:
            line = bytes(buffer[start:end])
            start = end + 1
            if len(line) > self.max_line_bytes:
                raise PolicyViolation(f"policy request line longer than {self.max_line_bytes}")
            self._size += len(line) + 1
            if self._size > self.max_request_bytes:
                raise PolicyViolation(f"policy request longer than {self.max_request_bytes}")
            if line.endswith(b"\r"):  # tolerated for people testing by hand with telnet
                line = line[:-1]
            if line:
                self._attribute(line)
            else:
                requests.append(self._finish())
        del buffer[:start]
        if len(buffer) > self.max_line_bytes:
            raise PolicyViolation(f"policy request line longer than {self.max_line_bytes}")
        return requests

    def _attribute(self, line: bytes) -> None:
        name, equals, value = line.partition(b"=")
        if not equals or not name:
            shown = line[:40].decode("ascii", "backslashreplace")
            raise PolicyViolation(f"policy request line is not name=value: {shown!r}")
        if len(self._attributes) >= self.max_attributes:
            raise PolicyViolation(f"policy request with more than {self.max_attributes} attributes")
        # SMTPD_POLICY_README lets a server keep either value of a repeated name: the last.
        key = name.decode("utf-8", "surrogateescape")
        self._attributes[key] = value.decode("utf-8", "surrogateescape")

    def _finish(self) -> PolicyRequest:
        attributes, self._attributes = self._attributes, {}
        self._size = 0
        if "request" not in attributes:  # required by SMTPD_POLICY_README
            raise PolicyViolation("policy request without a request= attribute")
        return PolicyRequest(attributes)


def encode_reply(action: str) -> bytes:
    """The reply to one request: ``action=<action>`` and the empty line that ends it.

    Control characters in ``action`` become spaces, so text taken from a request can
    never end the reply early.
    """
    text = _CONTROL.sub(" ", action)
    return f"action={text}\n\n".encode("utf-8", "surrogateescape")
