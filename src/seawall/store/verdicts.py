"""The verdict history that ``seawall serve`` keeps: what the dashboard and the metrics read.

Every verdict a worker gives (the milter, spamd, HTTP) becomes a :class:`VerdictRecord`,
written in batches off the reply's path (``seawall.metrics.recorder``).  The history keeps:

- the last ``[serve.history] max_verdicts`` records, each with its queue id, Message-ID,
  envelope sender and recipients, From, Subject, client address, action, score and every
  symbol with its score, options and description, so a row can be explained symbol by
  symbol as ``seawall scan`` explains it;
- per-minute counters by action, and of infected-mail findings (:data:`INFECTED_SYMBOLS`);
- per-hour counters of symbol hits, and by recipient domain and sender domain (each split
  by action), for the per-domain statistics of a hosting ISP;
- off by default (``keep_messages``), the raw message of recent records, for a bounded time
  and total size, so a row can be learned from (see docs/metrics.md for the privacy side).

Counters expire ``counters_s`` after their minute or hour, records beyond ``max_verdicts``
are dropped oldest first, kept messages beyond ``keep_messages_s`` or
``keep_messages_max_bytes`` likewise: every part is bounded.

The interface (names kept stable; times are ``time.time()`` seconds):

``open_verdicts(config) -> Verdicts``      the backend beside the configured Store: SQLite
                                           (``<state_dir>/verdicts.sqlite``) or Redis
``await v.record(rec, raw=None) -> int``   record one verdict (and its message); its id
``await v.record_many([(rec, raw)])``      the same for a batch, one transaction/round trip
``await v.assign_ids([rec]) -> [rec]``     the records with the ids a write will keep, where
                                           the backend gives them before the write (Redis):
                                           a batch written again after a lost answer, with
                                           the ids it was given, is written once
``await v.minutes(start, end)``            [(minute_start, {action: count})], every minute
``await v.infected(start, end)``           [(minute_start, count)], every minute
``await v.top_symbols(start, end, limit)`` [(symbol, hits)], most hits first
``await v.domains(start, end, side, limit)``  [DomainStats], side "recipient" or "sender"
``await v.search(Search(...), limit)``     [VerdictRecord], newest first
``await v.get(id) -> VerdictRecord | None``
``await v.kept_message(id) -> bytes | None``  the raw message while it is kept
``await v.close()``

Minute counters answer for every minute that overlaps ``[start, end]``; symbol and domain
counters for every hour that overlaps it.  :class:`Search` fields are all optional and
combine with AND: ``queue_id``, ``message_id`` (with or without angle brackets),
``client_ip``, ``action`` and ``symbol`` match exactly; ``sender``, ``recipient`` and
``subject`` match a case-insensitive part; ``start``/``end`` bound the time;
``hide_no_action`` leaves "no action" rows out; ``older_than`` (a previous answer's last
``(time, id)``) pages on.  Answers are newest first, by time and then id.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import msgspec

from seawall.message.defects import Defects
from seawall.message.headers import decode_words, read_fields

if TYPE_CHECKING:
    from seawall.config import Config
    from seawall.message import Envelope
    from seawall.policy.model import Verdict

FILENAME = "verdicts.sqlite"

# Symbols of a finding in infected mail: clamd's, and the worm payloads the attachment
# detector names (a program attached or in an archive, or one behind a double extension:
# what Sober, Netsky and MyDoom copies carry).
INFECTED_SYMBOLS = frozenset(
    {
        "CLAMAV_VIRUS",
        "ATTACH_EXECUTABLE",
        "ATTACH_DOUBLE_EXT",
        "ARCHIVE_EXECUTABLE",
        "ARCHIVE_DOUBLE_EXT",
    }
)

MINUTE = 60
HOUR = 3600
# Bytes of the header section read for Subject and From (the rest of the message is not).
HEADER_BYTES = 64 * 1024
_TEXT_CHARS = 998  # a field kept in a record, as RFC 5322's line limit

Side = Literal["recipient", "sender"]


class SymbolRow(msgspec.Struct, frozen=True, array_like=True):
    """One symbol of a verdict: its name, score, options and description."""

    name: str
    score: float
    options: tuple[str, ...] = ()
    description: str = ""


class VerdictRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One verdict as the history keeps it; ``id`` is 0 until it is recorded."""

    time: float
    action: str
    score: float
    required: float
    symbols: tuple[SymbolRow, ...] = ()
    queue_id: str = ""
    message_id: str = ""
    sender: str = ""  # the envelope sender (MAIL FROM)
    recipients: tuple[str, ...] = ()
    from_header: str = ""
    subject: str = ""
    client_ip: str = ""
    hostname: str = ""
    helo: str = ""
    user: str = ""
    frontend: str = ""
    campaign: str = ""
    language: str = ""
    forced_by: str = ""
    skipped: str = ""
    elapsed_ms: float = 0.0
    size: int = 0
    id: int = 0
    kept: bool = False  # its raw message was kept (it may have expired since)

    @property
    def infected(self) -> bool:
        """The verdict holds an infected-mail finding (:data:`INFECTED_SYMBOLS`)."""
        return any(s.name in INFECTED_SYMBOLS for s in self.symbols)

    @property
    def symbol_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.symbols)

    @classmethod
    def of(
        cls,
        envelope: Envelope,
        raw: bytes,
        verdict: Verdict,
        *,
        frontend: str = "",
        now: float | None = None,
        size: int | None = None,
    ) -> VerdictRecord:
        """The record of ``verdict`` on ``raw``: Subject and From read from its header.

        ``raw`` may be the message's start only, its header section, with ``size`` the
        size of the whole message.
        """
        subject, from_header, message_id = header_summary(raw)
        symbols = tuple(
            SymbolRow(s.name, s.score, tuple(s.options), s.description)
            for s in sorted(verdict.symbols.values(), key=lambda s: (-abs(s.score), s.name))
        )
        return cls(
            time=time.time() if now is None else now,
            action=verdict.action.value,
            score=verdict.score,
            required=verdict.required,
            symbols=symbols,
            queue_id=_cut(envelope.queue_id),
            message_id=_cut(verdict.message_id or message_id),
            sender=_cut(envelope.mail_from),
            recipients=tuple(_cut(r) for r in envelope.rcpts[:100]),
            from_header=from_header,
            subject=subject,
            client_ip=_cut(envelope.client_ip),
            hostname=_cut(envelope.hostname),
            helo=_cut(envelope.helo),
            user=_cut(envelope.user),
            frontend=frontend,
            campaign=_cut(verdict.campaign),
            language=verdict.language or "",
            forced_by=verdict.forced_by or "",
            skipped=verdict.skipped or "",
            elapsed_ms=verdict.elapsed_ms,
            size=len(raw) if size is None else size,
        )


@dataclass(frozen=True, slots=True)
class Search:
    """What :meth:`Verdicts.search` looks for; see the module docstring."""

    queue_id: str = ""
    message_id: str = ""
    sender: str = ""
    recipient: str = ""
    subject: str = ""
    client_ip: str = ""
    action: str = ""
    symbol: str = ""
    start: float | None = None
    end: float | None = None
    hide_no_action: bool = False
    older_than: tuple[float, int] | None = None


@dataclass(frozen=True, slots=True)
class DomainStats:
    """Messages for (``side`` "recipient") or from ("sender") one domain, by action."""

    domain: str
    total: int
    actions: dict[str, int] = field(default_factory=dict)


class Verdicts(Protocol):
    """The verdict history; see the module docstring for what each call answers."""

    async def record(self, record: VerdictRecord, raw: bytes | None = None) -> int: ...

    async def assign_ids(self, records: Sequence[VerdictRecord]) -> list[VerdictRecord]: ...

    async def record_many(
        self, items: Sequence[tuple[VerdictRecord, bytes | None]]
    ) -> list[int]: ...

    async def minutes(self, start: float, end: float) -> list[tuple[int, dict[str, int]]]: ...

    async def infected(self, start: float, end: float) -> list[tuple[int, int]]: ...

    async def top_symbols(
        self, start: float, end: float, limit: int = 20
    ) -> list[tuple[str, int]]: ...

    async def domains(
        self, start: float, end: float, side: Side, limit: int = 50
    ) -> list[DomainStats]: ...

    async def search(self, query: Search, limit: int = 100) -> list[VerdictRecord]: ...

    async def get(self, record_id: int) -> VerdictRecord | None: ...

    async def kept_message(self, record_id: int) -> bytes | None: ...

    async def close(self) -> None: ...


def open_verdicts(config: Config) -> Verdicts:
    """The history beside the configured state: Redis when ``state`` is a Redis URL (the
    same namespace as the Store), else SQLite at ``<state_dir>/verdicts.sqlite``.

    Raises :class:`~seawall.errors.StoreError` when the file cannot be opened.
    """
    from seawall.config import state_url

    settings = config.serve.history
    url = state_url(config)
    if url is not None:
        from seawall.store.verdicts_redis import RedisVerdicts

        return RedisVerdicts.from_url(url, settings)
    from seawall.store.verdicts_sqlite import SqliteVerdicts

    return SqliteVerdicts.open(Path(config.state_dir) / FILENAME, settings)


# -- what the backends share ------------------------------------------------------------


def header_summary(raw: bytes) -> tuple[str, str, str]:
    """Subject, From and Message-ID of ``raw``, RFC 2047-decoded; never raises."""
    try:
        end = min(len(raw), HEADER_BYTES)
        fields, _ = read_fields(raw, 0, end, _TEXT_CHARS * 4, Defects())
    except Exception:  # a record must never cost the verdict
        return "", "", ""
    found: dict[str, str] = {}
    for name, value in fields:
        key = name.lower()
        if key in ("subject", "from", "message-id") and key not in found:
            found[key] = value
    defects = Defects()
    subject = _cut(decode_words(found.get("subject", ""), defects))
    from_header = _cut(decode_words(found.get("from", ""), defects))
    return subject, from_header, _cut(found.get("message-id", ""))


def _cut(value: str | None) -> str:
    if not value:
        return ""
    return value[:_TEXT_CHARS]


def domain_of_address(address: str) -> str:
    """The domain of a mail address, lower-cased; "" for none (the null sender)."""
    _, at, domain = address.strip().strip("<>").rpartition("@")
    return domain.lower().rstrip(".") if at else ""


def bare_message_id(value: str) -> str:
    return value.strip().strip("<>").strip()


def matches(record: VerdictRecord, query: Search) -> bool:
    """Whether ``record`` answers ``query`` (the semantics every backend implements)."""
    if query.start is not None and record.time < query.start:
        return False
    if query.end is not None and record.time > query.end:
        return False
    if query.older_than is not None and (record.time, record.id) >= query.older_than:
        return False
    if query.hide_no_action and record.action == "no action":
        return False
    exact = (
        (query.queue_id, record.queue_id),
        (query.client_ip, record.client_ip),
        (query.action, record.action),
    )
    if any(want and want != have for want, have in exact):
        return False
    if query.message_id and bare_message_id(query.message_id) != bare_message_id(record.message_id):
        return False
    if query.symbol and query.symbol not in record.symbol_names:
        return False
    if query.sender and query.sender.casefold() not in record.sender.casefold():
        return False
    if query.subject and query.subject.casefold() not in record.subject.casefold():
        return False
    if query.recipient:
        want = query.recipient.casefold()
        return any(want in r.casefold() for r in record.recipients)
    return True


def counter_updates(record: VerdictRecord) -> list[tuple[str, int, str]]:
    """The counters one record adds 1 to, as (kind, bucket start, name).

    Kinds: ``a`` action per minute, ``i`` infected per minute (name ""), ``s`` symbol per
    hour, ``r`` recipient domain per hour and ``f`` sender domain per hour (name
    ``domain<TAB>action``).
    """
    minute = int(record.time // MINUTE) * MINUTE
    hour = int(record.time // HOUR) * HOUR
    out = [("a", minute, record.action)]
    if record.infected:
        out.append(("i", minute, ""))
    out.extend(("s", hour, name) for name in dict.fromkeys(record.symbol_names))
    for domain in dict.fromkeys(domain_of_address(r) for r in record.recipients):
        if domain:
            out.append(("r", hour, f"{domain}\t{record.action}"))
    sender = domain_of_address(record.sender)
    if sender:
        out.append(("f", hour, f"{sender}\t{record.action}"))
    return out


def minute_range(start: float, end: float) -> range:
    """The starts of every minute overlapping ``[start, end]`` (at most 31 days of them)."""
    first = int(start // MINUTE) * MINUTE
    last = int(end // MINUTE) * MINUTE
    first = max(first, last - 31 * 86400)
    return range(first, last + 1, MINUTE)


def hour_range(start: float, end: float) -> range:
    first = int(start // HOUR) * HOUR
    last = int(end // HOUR) * HOUR
    first = max(first, last - 31 * 86400)
    return range(first, last + 1, HOUR)


def domain_stats(counts: Mapping[str, int], limit: int) -> list[DomainStats]:
    """``domain<TAB>action -> count`` summed into per-domain stats, the busiest first."""
    by_domain: dict[str, dict[str, int]] = {}
    for key, count in counts.items():
        domain, _, action = key.partition("\t")
        actions = by_domain.setdefault(domain, {})
        actions[action] = actions.get(action, 0) + count
    stats = [DomainStats(d, sum(a.values()), a) for d, a in by_domain.items()]
    stats.sort(key=lambda s: (-s.total, s.domain))
    return stats[: max(0, limit)]


def top(counts: Mapping[str, int], limit: int) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: max(0, limit)]


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(VerdictRecord)


def encode_record(record: VerdictRecord) -> bytes:
    return _encoder.encode(record)


def decode_record(data: bytes) -> VerdictRecord:
    return _decoder.decode(data)
