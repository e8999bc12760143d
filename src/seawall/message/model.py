"""The parsed message: immutable values read by every detector."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar, overload

from seawall.message.hosts import same_site

if TYPE_CHECKING:
    from seawall.message.parse import ParseLimits

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the MTA knows about a message; every field is optional for `seawall scan`."""

    client_ip: str | None = None
    helo: str | None = None
    mail_from: str | None = None
    rcpts: tuple[str, ...] = ()
    queue_id: str | None = None
    hostname: str | None = None  # the client's reverse DNS name as the MTA resolved it
    user: str | None = None  # SASL login; authenticated senders are our own users


class Headers(Mapping[str, str]):
    """Ordered, case-insensitive header fields with RFC 2047 words already decoded.

    ``headers["Subject"]`` gives the first value; ``headers.get_all("Received")`` all of them,
    top first.  Values are unfolded; ``raw_items()`` keeps the undecoded text.
    """

    __slots__ = ("_by_name", "_items", "_raw")

    def __init__(
        self, items: tuple[tuple[str, str], ...], raw: tuple[tuple[str, str], ...] = ()
    ) -> None:
        self._items = items
        self._raw = raw or items
        # Most names occur once: a tuple at once, and a list only for those that repeat.
        by_name: dict[str, tuple[str, ...]] = {}
        repeated: dict[str, list[str]] = {}
        for name, value in items:
            key = name.lower()
            if key not in by_name:
                by_name[key] = (value,)
            elif key in repeated:
                repeated[key].append(value)
            else:
                repeated[key] = [*by_name[key], value]
        for key, values in repeated.items():
            by_name[key] = tuple(values)
        self._by_name = by_name

    def __getitem__(self, name: str) -> str:
        return self._by_name[name.lower()][0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._by_name

    # Mapping.get answers a missing field through a KeyError; most messages lack most of
    # the fields detectors ask for, so the lookup is answered here without one.
    @overload
    def get(self, name: str, /) -> str | None: ...
    @overload
    def get(self, name: str, default: str, /) -> str: ...
    @overload
    def get(self, name: str, default: _T, /) -> str | _T: ...
    def get(self, name: str, default: object = None, /) -> object:
        values = self._by_name.get(name.lower())
        return values[0] if values is not None else default

    def get_all(self, name: str) -> tuple[str, ...]:
        return self._by_name.get(name.lower(), ())

    def items_in_order(self) -> tuple[tuple[str, str], ...]:
        return self._items

    def raw_items(self) -> tuple[tuple[str, str], ...]:
        return self._raw

    def __repr__(self) -> str:
        return f"Headers({len(self._items)} fields)"


@dataclass(frozen=True, slots=True)
class TextPart:
    """One human-readable MIME part, decoded to text."""

    content_type: str  # "text/plain" or "text/html"
    text: str  # plain text; HTML already converted
    charset: str  # the charset actually used to decode
    declared_charset: str | None  # what the part said, if anything
    size: int  # decoded size in bytes
    encoding: str = ""  # Content-Transfer-Encoding as declared, lower-case ("" for none)
    eight_bit: bool = False  # the decoded bytes are not all ASCII
    # HTML: letters written in (nearly) their background's colour, and of them those before
    # the text's first letters (a preview line)
    camouflaged: int = 0
    camouflaged_lead: int = 0


@dataclass(frozen=True, slots=True)
class Url:
    """A link found in the message, normalised."""

    url: str  # normalised: lower-case scheme and host, default port dropped, deobfuscated
    scheme: str
    host: str  # lower-case, IDNA-decoded where possible, no trailing dot
    domain: str  # registrable domain from the Public Suffix List ("example.co.uk"); host if IP
    is_ip: bool  # host is an IPv4/IPv6 literal (or a decimal/hex encoded IPv4)
    source: str  # "text", "href", "src", "action" (a form's target), "bare" (a domain with
    # no scheme) or "obfuscated" (hxxp://, example[.]com, an href host in %-escapes)
    link_text: str | None = None  # the visible text of an <a>, for "names another domain"


@dataclass(frozen=True, slots=True)
class Attachment:
    """A non-text part, or a part with a filename."""

    filename: str | None
    declared_type: str  # Content-Type as sent, lower-case
    sniffed_type: str | None  # from magic bytes, None when unknown
    size: int  # decoded bytes
    sha256: str  # hex digest of the decoded bytes
    members: tuple[str, ...] = ()  # names inside a zip archive (first level)
    defects: tuple[str, ...] = ()
    # The decoded bytes (at most limits.max_part_bytes), for detectors that open archives.
    data: bytes = field(default=b"", repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Hop:
    """One Received header, parsed."""

    helo: str | None  # the name the client gave ("from HELO")
    rdns: str | None  # the reverse DNS name the receiver recorded, None for "unknown"
    ip: str | None  # client address
    by: str | None  # the receiving host
    raw: str = field(default="", repr=False)
    # A mail reader's fetch from the reader's own mailbox (fetchmail's "with POP3" or
    # "with IMAP"), not a hop of SMTP: the mailbox's server is the reader's own provider.
    retrieved: bool = False


@dataclass(frozen=True, slots=True)
class Message:
    """A message parsed once, read by every detector.

    Never raised from: every problem of the input is a string in ``defects``
    (for example ``"truncated"``, ``"nesting_too_deep"``, ``"bad_base64"``).
    """

    raw: bytes
    envelope: Envelope
    headers: Headers
    subject: str
    text: str  # all human-readable text, decoded, bounded in length
    parts: tuple[TextPart, ...]
    urls: tuple[Url, ...]
    attachments: tuple[Attachment, ...]
    received: tuple[Hop, ...]  # top (newest) first
    first_untrusted: Hop | None  # the hop where mail entered from outside the trusted networks
    defects: tuple[str, ...]
    size: int  # bytes of the raw message before any truncation
    # The decoded source of the first HTML parts, as message/htmlsource.py reads them
    # under ``parsed_with``, the limits of the parse (None: read the message again).
    html: tuple[str, ...] | None = field(default=None, repr=False, compare=False)
    parsed_with: ParseLimits | None = field(default=None, repr=False, compare=False)

    @property
    def source_ip(self) -> str | None:
        """The address the message came from: the MTA's client, else the first untrusted hop's."""
        hop = self.first_untrusted
        return self.envelope.client_ip or (hop.ip if hop is not None else None)

    @property
    def source_name(self) -> str | None:
        """The looked-up name of the server the message came from, lower-case: the MTA's
        for its client, else the one the first untrusted hop's receiver recorded (never the
        client's own word, its HELO); None when none was found ("unknown")."""
        name = self.envelope.hostname
        if name is None and self.first_untrusted is not None:
            name = self.first_untrusted.rdns
        name = name.lower().rstrip(".") if name else None
        return name if name and name not in ("unknown", "[unknown]") else None

    def on_source_site(self, host: str) -> bool:
        """Whether ``host`` is on the site of the server the message came from
        (:attr:`source_name`): a mailing service's own tracker, form or redirector."""
        source = self.source_name
        return source is not None and same_site(source, host)

    @property
    def has_html(self) -> bool:
        return any(p.content_type == "text/html" for p in self.parts)

    @property
    def html_only(self) -> bool:
        """HTML without a plain-text alternative (an empty text/plain part is none)."""
        html = False
        for part in self.parts:
            if part.content_type == "text/html":
                html = True
            elif part.content_type == "text/plain" and part.text.strip():
                return False
        return html
