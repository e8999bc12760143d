"""One milter connection's state, sans I/O: the envelope, macros, headers and body of
each message, and the replies to each command.

``Session.handle`` takes a decoded command and returns the responses to send; the server
(``server.py``) only reads, decodes, writes and closes.  At end of message it calls
``Scanner.check`` once and renders the Verdict: a reply code, or header edits and Continue.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from seawall.config import MilterSettings
from seawall.errors import MilterViolation
from seawall.frontends.base import Scanner
from seawall.frontends.milter.codec import (
    SMFIF,
    SMFIP,
    VERSION,
    Abort,
    AddHeader,
    Body,
    ChangeHeader,
    Command,
    Connect,
    Continue,
    Data,
    EndOfHeaders,
    EndOfMessage,
    Header,
    Helo,
    InsertHeader,
    Macro,
    MailFrom,
    OptionNegotiation,
    Quarantine,
    Quit,
    QuitNewConnection,
    RcptTo,
    ReplyCode,
    Response,
    TempFail,
    Unknown,
)
from seawall.frontends.render import (
    AUTH_RESULTS,
    HEADER_NAMES,
    authentication_results,
    host_name,
    reason,
    smtp_reply,
    spam_headers,
)
from seawall.message import Envelope
from seawall.policy.model import Action, Verdict

log = logging.getLogger(__name__)

WANTED_ACTIONS = SMFIF.ADDHDRS | SMFIF.CHGHDRS | SMFIF.QUARANTINE
# Events we never read, replies we never need to vary (each one saved is a round trip per
# recipient or header), and header values with their leading space so messages rebuild exactly.
# Only what the MTA offered is taken: Postfix refuses a reply asking for more.
WANTED_PROTOCOL = (
    SMFIP.NOUNKNOWN
    | SMFIP.NODATA
    | SMFIP.NOEOH
    | SMFIP.NR_CONN
    | SMFIP.NR_HELO
    | SMFIP.NR_MAIL
    | SMFIP.NR_RCPT
    | SMFIP.NR_DATA
    | SMFIP.NR_UNKN
    | SMFIP.NR_HDR
    | SMFIP.NR_EOH
    | SMFIP.NR_BODY
    | SMFIP.HDR_LEADSPC
)
SUBJECT_PREFIX = "*** SPAM *** "

# The flag that, once negotiated, means the MTA expects no reply to that command.
_NO_REPLY: dict[type[Command], SMFIP] = {
    Connect: SMFIP.NR_CONN,
    Helo: SMFIP.NR_HELO,
    MailFrom: SMFIP.NR_MAIL,
    RcptTo: SMFIP.NR_RCPT,
    Data: SMFIP.NR_DATA,
    Unknown: SMFIP.NR_UNKN,
    Header: SMFIP.NR_HDR,
    EndOfHeaders: SMFIP.NR_EOH,
    Body: SMFIP.NR_BODY,
    EndOfMessage: SMFIP(0),
}
# Events of a message that is already failed: nothing more to collect, tempfail when due.
_MESSAGE_EVENTS = (RcptTo, Data, Header, EndOfHeaders, Body, EndOfMessage)
_SPAM_HEADERS = {name.lower() for name in HEADER_NAMES}
_COMMENT = re.compile(r"\([^()]*\)")


def authserv_id_of(value: str) -> str:
    """The authserv-id an Authentication-Results value claims (RFC 8601 §2.2), lower case."""
    head = value.partition(";")[0]
    for _ in range(3):  # nested comments, a few levels
        head = _COMMENT.sub(" ", head)
    words = head.split()
    return words[0].lower().rstrip(".") if words else ""


@dataclass(slots=True)
class Transaction:
    """One transaction, MAIL FROM to end of data; ``head`` and ``body`` share the size budget."""

    room: int
    mail_from: str | None = None
    rcpts: list[str] = field(default_factory=list)
    head: bytearray = field(default_factory=bytearray)
    body: bytearray = field(default_factory=bytearray)
    forged: dict[str, int] = field(default_factory=dict)  # X-Spam-* name -> occurrences
    auth_results: int = 0  # Authentication-Results fields seen
    forged_auth: list[int] = field(default_factory=list)  # ... those of our authserv-id, from 1
    subject: str | None = None  # the first Subject, without the leading space
    failed: bool = False  # an error while no reply was due: tempfail at the next reply

    def keep(self, buffer: bytearray, data: bytes) -> None:
        """Append what fits; the rest is dropped and the cut message still scanned."""
        kept = data[: max(self.room, 0)]
        buffer += kept
        self.room -= len(kept)


class Session:
    """The state of one milter connection and the replies to each command."""

    def __init__(
        self,
        scanner: Scanner,
        settings: MilterSettings,
        log_message: Callable[[Envelope, Verdict], None] | None,
    ) -> None:
        self.scanner = scanner
        self.settings = settings
        self.log_message = log_message
        self.authserv_id = settings.authserv_id or host_name()
        self.version = 0
        self.actions = SMFIF(0)
        self.protocol = SMFIP(0)
        self.negotiated = False
        self.closed = False
        self._reset_connection()

    def _reset_connection(self) -> None:
        self.conn_macros: dict[str, str] = {}
        self.connect: Connect | None = None
        self.helo: str | None = None
        self._reset_message()

    def _reset_message(self) -> None:
        self.msg_macros: dict[str, str] = {}
        # Two bytes are kept back for the blank line between header and body.
        self.message = Transaction(room=self.scanner.max_message_bytes - 2)

    @property
    def protocol(self) -> SMFIP:
        """The negotiated protocol flags (which events the MTA sends, which need no reply)."""
        return self._protocol

    @protocol.setter
    def protocol(self, value: SMFIP) -> None:
        # Flag arithmetic costs a microsecond or so; these are read for every packet.
        self._protocol = value
        bits = int(value)
        self._replied = frozenset(t for t, f in _NO_REPLY.items() if not bits & int(f))
        self._leadspc = bool(bits & SMFIP.HDR_LEADSPC)

    def wants_reply(self, command: Command) -> bool:
        return type(command) in self._replied

    def fail(self, command: Command) -> list[Response]:
        """After an internal error: a tempfail now if a reply is due, else at the next one."""
        if self.wants_reply(command):
            self._reset_message()
            return [TempFail()]
        self.message.failed = True
        return []

    async def handle(self, command: Command) -> list[Response]:
        responses = self.step(command)
        if responses is None:  # the end of a message: it is scanned
            assert isinstance(command, EndOfMessage)
            self.message.keep(self.message.body, command.chunk)
            return await self._end_of_message()
        return responses

    def step(self, command: Command) -> list[Response] | None:
        """The replies to ``command``, at once; None for an end of message to scan (then
        ``handle`` it).  Every other event needs no wait, so the server spares a coroutine
        for each of the fifty-odd packets of a message."""
        if isinstance(command, OptionNegotiation):
            return [self._negotiate(command)]
        if not self.negotiated:
            raise MilterViolation(f"{type(command).__name__} before option negotiation")
        if self.message.failed and isinstance(command, _MESSAGE_EVENTS):
            return self.fail(command)
        match command:
            # The commonest first: a message is mostly macros, header fields and body.
            case Macro(for_command=for_command, macros=macros):
                # Macros sent for Connect and HELO last the session; the others one message.
                scope = self.conn_macros if for_command in ("C", "H") else self.msg_macros
                scope.update((name.strip("{}"), value) for name, value in macros)
                return []
            case Header(name=name, value=value):
                self._header(name, value)
            case Body(chunk=chunk):
                self.message.keep(self.message.body, chunk)
            case EndOfMessage():
                return None
            case Abort():
                self._reset_message()
                return []
            case Quit():
                self.closed = True
                return []
            case QuitNewConnection():
                self._reset_connection()
                return []
            case Connect():
                self.connect = command
            case Helo(name=name):
                self.helo = name
            case MailFrom(address=address):
                # A new transaction; its macros came just before and stay.
                self.message = Transaction(room=self.scanner.max_message_bytes - 2)
                self.message.mail_from = address.strip().strip("<>")
            case RcptTo(address=address):
                self.message.rcpts.append(address.strip().strip("<>"))
        return [Continue()] if self.wants_reply(command) else []

    def _negotiate(self, offer: OptionNegotiation) -> OptionNegotiation:
        if offer.version < 2:
            raise MilterViolation(f"milter protocol version {offer.version} is too old")
        self.actions = WANTED_ACTIONS & offer.actions
        self.protocol = WANTED_PROTOCOL & offer.protocol
        self.negotiated = True
        self.version = min(offer.version, VERSION)
        return OptionNegotiation(self.version, self.actions, self.protocol)

    def _plain(self, value: str) -> str:
        # Without SMFIP_HDR_LEADSPC the MTA ate the one space after the colon already.
        return value[1:] if self._leadspc and value.startswith(" ") else value

    def _wire(self, value: str) -> str:
        # With SMFIP_HDR_LEADSPC the MTA writes our values verbatim: the space is ours to add.
        return f" {value}" if value and self._leadspc else value

    def _header(self, name: str, value: str) -> None:
        message = self.message
        lower = name.lower()
        if lower in _SPAM_HEADERS:
            message.forged[lower] = message.forged.get(lower, 0) + 1
        elif lower == "authentication-results":
            message.auth_results += 1
            if authserv_id_of(value) == self.authserv_id.lower().rstrip("."):
                message.forged_auth.append(message.auth_results)
        elif lower == "subject" and message.subject is None:
            message.subject = self._plain(value)
        sep = ":" if self._leadspc else ": "
        # Folded values arrive with bare "\n" between their lines (Sendmail's internal form).
        line = f"{name}{sep}{value}"
        if "\n" in line:
            line = line.replace("\r\n", "\n").replace("\n", "\r\n")
        line += "\r\n"
        message.keep(message.head, line.encode("utf-8", "surrogateescape"))

    def macro(self, name: str) -> str | None:
        return self.msg_macros.get(name) or self.conn_macros.get(name) or None

    def envelope(self) -> Envelope:
        message = self.message
        return Envelope(
            client_ip=self._client_ip(),
            helo=self.helo,
            mail_from=message.mail_from,
            rcpts=tuple(message.rcpts),
            queue_id=self.macro("i"),
            hostname=self._hostname(),
            user=self.macro("auth_authen"),
        )

    def _client_ip(self) -> str | None:
        candidates = [self.macro("client_addr")]
        if self.connect is not None and self.connect.family in ("4", "6"):
            candidates.insert(0, self.connect.address)
        for candidate in candidates:
            # Sendmail writes IPv6 clients as "IPv6:2001:db8::1".
            text = (candidate or "").removeprefix("IPv6:").removeprefix("ipv6:")
            with contextlib.suppress(ValueError):
                return str(ipaddress.ip_address(text))
        return None

    def _hostname(self) -> str | None:
        # "unknown" (Postfix) and "[192.0.2.1]" (Sendmail) both mean: no verified rDNS name.
        names = [self.macro("client_name"), self.connect.hostname if self.connect else None]
        for name in names:
            if name and name != "unknown" and not name.startswith("["):
                return name
        return None

    async def _end_of_message(self) -> list[Response]:
        envelope = self.envelope()
        message = self.message
        # One copy into the scan's bytes, then the buffers go: a message is never held
        # twice while it is scanned.
        raw = b"".join((message.head, b"\r\n", message.body))
        message.head.clear()
        message.body.clear()
        verdict = await self.scanner.check(envelope, raw)
        responses = self._render(verdict)
        if self.log_message is not None:
            # A broken log sink must not turn a verdict into a tempfail.
            try:
                self.log_message(envelope, verdict)
            except Exception:
                log.exception("milter: log_message failed")
        self._reset_message()
        return responses

    def _render(self, verdict: Verdict) -> list[Response]:
        action = verdict.action
        reply = smtp_reply(verdict)
        if reply is not None:
            code = self.settings.reject_code
            if action is not Action.REJECT:
                code = self.settings.tempfail_code
            return [ReplyCode(code, reply[2])]
        responses: list[Response] = []
        if action is Action.QUARANTINE and self.actions & SMFIF.QUARANTINE:
            responses.append(Quarantine(reason(verdict)))
        message = self.message
        if self.actions & SMFIF.CHGHDRS:
            # Delete the sender's forged copies, last first so indexes stay valid.
            for name in HEADER_NAMES:
                for index in range(message.forged.get(name.lower(), 0), 0, -1):
                    responses.append(ChangeHeader(index, name, ""))
            # Results claiming to be ours were written by someone else: delete them.
            for index in reversed(message.forged_auth):
                responses.append(ChangeHeader(index, AUTH_RESULTS, ""))
        if action is Action.REWRITE_SUBJECT:
            responses.extend(self._rewrite_subject())
        if self.actions & SMFIF.ADDHDRS:
            for name, value in spam_headers(verdict):
                responses.append(AddHeader(name, self._wire(value)))
            auth = authentication_results(verdict, self.authserv_id)
            if auth is not None:
                # On top, above the fields it judges (RFC 8601 §5), where the MTA can insert.
                if self.version >= 3:
                    responses.append(InsertHeader(0, AUTH_RESULTS, self._wire(auth)))
                else:
                    responses.append(AddHeader(AUTH_RESULTS, self._wire(auth)))
        responses.append(Continue())
        return responses

    def _rewrite_subject(self) -> list[Response]:
        subject = self.message.subject
        if subject is None:
            if self.actions & SMFIF.ADDHDRS:
                return [AddHeader("Subject", self._wire(SUBJECT_PREFIX.rstrip()))]
            return []
        if subject.startswith(SUBJECT_PREFIX) or not self.actions & SMFIF.CHGHDRS:
            return []
        return [ChangeHeader(1, "Subject", self._wire(SUBJECT_PREFIX + subject))]
