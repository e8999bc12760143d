"""The zombie desk's records: Evidence, Case, Transition, Zombie, and the CaseStore protocol.

**Evidence** is one observation against one address, at one time:

================  =====================================================================
``id``            its identity (hex digest): the same observation imported twice is one
``source``        where it came from: ``verdict`` (Seawall's own verdict on mail from the
                  ISP's networks), ``policy`` (a rate hit of the policy service), ``arf``,
                  ``xarf`` (a report from another network), ``feed`` (a Shadowserver CSV)
``kind``          what it says, the key of its weight in ``[zombies.weights]``: ``spam``,
                  ``malware``, ``worm``, ``botnet`` (a botnet-like campaign),
                  ``direct_mx`` (a dynamic address speaking straight to the MX), ``rate``,
                  ``report`` (ARF/X-ARF), ``drone``, ``sinkhole``, ``spam_source``
                  (feed rows); and ``clean`` (the account's own clean mail, weight 0: what
                  tells a cleaned-up PC from a quiet one)
``at``            epoch seconds of the observation (the mail's arrival, the report's
                  ``Arrival-Date``, the feed row's timestamp)
``ip``            the client address it names
``account``       who held ``ip`` at ``at`` (RADIUS accounting), the relay's
                  ``{auth_authen}``, or None (a static customer, an external address)
``own``           True when ``ip`` is in ``[isp] networks`` (or an account is named);
                  False: an **external** zombie, for sharing and never a case
``queue_id``      the MTA's queue id; ``message_id`` the Message-ID behind it;
                  ``campaign`` the campaign id; ``symbols`` the verdict's symbols (or the
                  report's ``Feedback-Type`` / the feed's tag); ``subject`` a sample subject
                  line; ``infection`` the malware or infection named (ClamAV, the feed)
``weight``        what it adds to the score (from the config at ingestion)
``raw_ref``       the digest of its raw original (the report, the CSV row) kept in the
                  store: ``CaseStore.raw(ref)``; "" when there is none (a verdict)
================  =====================================================================

**Case**: one per account, else per address (a static customer), over everything seen
against it.  ``id`` is derived from the subject (``case_id("account", "alice")``), so the
same account always has the same case.  States::

    open -> notified -> walled -> released      any state -> closed
    released / closed -> open    (new evidence reopens: Seawall does it, logged)
    released -> walled           (re-entry: a relapse re-gardens)

``score`` is decayed to ``score_at`` (``Case.score_now(t, half_life_s)``).  Every change of
state is a ``Transition`` (``at``, ``from_state``, ``to_state``, ``who``, ``why``); a note
is a transition to the same state.

**CaseStore** (async; ``seawall.zombies.store.open_case_store(config)``: SQLite tables in
``state.sqlite`` embedded, ``{zombies}`` keys on Redis) is what the desk, the CLI, the
HTTP API and the remedies use:

- ``add_evidence(evidence, raw)`` -> ``Ingested`` (new?, the case after, the move it made)

- ``get(case_id)``, ``find(account=, ip=)``, ``list(states=, account=, ip=, campaign=,
  since=, limit=)``
- ``transition(case_id, new_state, who, why)`` -> the Case after it; raises
  :class:`CaseError` for an unknown case or a move the table above forbids.  The store
  only records; ``seawall.zombies.cases.Desk.transition`` (what the CLI, the API and the
  engine call) records and then calls the :class:`Remedies` hook.  Remedies that act by
  themselves record their own moves with ``CaseStore.transition`` (no hook, no loop).
- ``note(case_id, who, why)``
- ``evidence(case_id, limit=)`` newest first, ``raw(ref)`` the original bytes,
  ``external_evidence(ip, limit=)`` the evidence against an external address
- ``active_zombies(now)`` -> ``Zombie`` records for the DNSBL zone and feed: own cases in
  ``notified``/``walled`` (class ``own``) and external addresses seen within
  ``[zombies] external_ttl_s`` (class ``botnet`` or ``malware``), each with its expiry
- ``campaign_senders(campaign)`` -> (own accounts or addresses, count of external addresses)
"""

from __future__ import annotations

import builtins
import hashlib
from collections.abc import Sequence
from typing import Literal, Protocol, get_args

import msgspec

from seawall.errors import SeawallError

Source = Literal["verdict", "policy", "arf", "xarf", "feed"]
Kind = Literal[
    "spam",
    "malware",
    "worm",
    "botnet",
    "direct_mx",
    "rate",
    "report",
    "drone",
    "sinkhole",
    "spam_source",
    "clean",
]
State = Literal["open", "notified", "walled", "released", "closed"]
# The return code class of the zone: 127.0.0.2 own, .3 external botnet, .4 malware.
EvidenceClass = Literal["own", "botnet", "malware"]

SOURCES: tuple[str, ...] = get_args(Source)
KINDS: tuple[str, ...] = get_args(Kind)
STATES: tuple[str, ...] = get_args(State)
# States in which the customer has been told or gardened: the zone lists these.
ACTIVE_STATES: tuple[State, ...] = ("notified", "walled")

# Which moves a transition may make (a note stays in its state).
ALLOWED: dict[str, frozenset[str]] = {
    "open": frozenset({"notified", "walled", "closed"}),
    "notified": frozenset({"walled", "released", "closed"}),
    "walled": frozenset({"released", "closed"}),
    "released": frozenset({"open", "walled", "closed"}),
    "closed": frozenset({"open"}),
}


class CaseError(SeawallError):
    """An unknown case, or a transition its state does not allow."""


class Evidence(msgspec.Struct, frozen=True, kw_only=True):
    """One observation; see the module docstring for each field."""

    id: str
    source: Source
    kind: Kind
    at: float
    ip: str
    account: str | None = None
    own: bool = True
    queue_id: str = ""
    message_id: str = ""
    campaign: str = ""
    symbols: tuple[str, ...] = ()
    subject: str = ""
    infection: str = ""
    weight: float = 0.0
    raw_ref: str = ""


class Transition(msgspec.Struct, frozen=True, kw_only=True):
    """One change of a case's state (or a note: ``from_state == to_state``)."""

    at: float
    from_state: State | None  # None: the case was opened
    to_state: State
    who: str
    why: str


class Case(msgspec.Struct, frozen=True, kw_only=True):
    """Everything known against one account (or one address without an account)."""

    id: str
    account: str | None
    ip: str | None  # the address of an address case; None for an account case
    ips: tuple[str, ...]
    state: State
    opened_at: float
    updated_at: float
    score: float  # as of score_at
    score_at: float
    evidence_count: int
    kinds: dict[str, int]  # kind -> count of evidence
    campaigns: tuple[str, ...]
    first_seen: float
    last_seen: float  # the newest evidence against it (not counting clean mail)
    clean_count: int = 0  # own clean messages since the last evidence
    last_clean: float = 0.0
    transitions: tuple[Transition, ...] = ()

    @property
    def subject(self) -> str:
        """The account, else the address."""
        return self.account if self.account is not None else (self.ip or "")

    def score_now(self, now: float, half_life_s: float) -> float:
        """The score decayed from ``score_at`` to ``now``."""
        return decay(self.score, self.score_at, now, half_life_s)


class Zombie(msgspec.Struct, frozen=True, kw_only=True):
    """An address to publish: own (a case told or gardened) or external."""

    ip: str
    cls: EvidenceClass
    expires: float  # epoch seconds after which it leaves the zone
    case_id: str | None = None  # the own case, None for an external address
    last_seen: float = 0.0
    campaigns: tuple[str, ...] = ()


class Ingested(msgspec.Struct, frozen=True, kw_only=True):
    """What ``CaseStore.add_evidence`` did."""

    new: bool  # False: the same evidence was recorded before
    case: Case | None  # the subject's case after it (None: no case, or external)
    moved: Transition | None = None  # the case was opened or reopened by it


class CasePage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of a filtered case list, and how many cases the filters match in all."""

    cases: tuple[Case, ...]  # newest updated_at first, at most the page's size
    total: int
    by_state: dict[str, int]


class CaseStore(Protocol):
    """The cases and their evidence, shared by the desk, the CLI, the API and the remedies."""

    async def add_evidence(self, evidence: Evidence, raw: bytes | None = None) -> Ingested:
        """Record ``evidence`` (and its raw original), count it against its subject, and
        open or reopen the case by the ``[zombies]`` rules (``rules.py``), in one atomic
        step.  Evidence already recorded changes nothing (``Ingested.new`` is False)."""
        ...

    async def get(self, case_id: str) -> Case | None: ...

    async def find(self, *, account: str | None = None, ip: str | None = None) -> Case | None:
        """The case of ``account``, else of the address ``ip``."""
        ...

    async def list(
        self,
        *,
        states: Sequence[State] = (),
        account: str | None = None,
        ip: str | None = None,
        campaign: str | None = None,
        since: float | None = None,
        limit: int | None = None,
    ) -> builtins.list[Case]:
        """Cases, newest ``updated_at`` first; each filter given narrows (``ip``: any of
        ``ips``; ``since``: updated at or after)."""
        ...

    async def page(
        self,
        *,
        states: Sequence[State] = (),
        account: str | None = None,
        ip: str | None = None,
        campaign: str | None = None,
        since: float | None = None,
        limit: int = 100,
    ) -> CasePage:
        """:meth:`list`'s first ``limit`` cases with the count of all that match, by state:
        one read of the store for a page of the dashboard."""
        ...

    async def transition(
        self, case_id: str, new_state: State, who: str, why: str, *, at: float | None = None
    ) -> Case:
        """Move the case; raises CaseError for an unknown case or a forbidden move."""
        ...

    async def note(self, case_id: str, who: str, why: str, *, at: float | None = None) -> Case:
        """Log a note on the case (a transition to its own state)."""
        ...

    async def evidence(self, case_id: str, *, limit: int | None = None) -> builtins.list[Evidence]:
        """The case's evidence, newest first."""
        ...

    async def raw(self, ref: str) -> bytes | None:
        """The raw original behind ``Evidence.raw_ref``."""
        ...

    async def external_evidence(
        self, ip: str, *, limit: int | None = None
    ) -> builtins.list[Evidence]:
        """The evidence against an external address (which has no case), newest first."""
        ...

    async def active_zombies(self, now: float) -> builtins.list[Zombie]:
        """Own cases notified or walled, and external addresses not yet expired."""
        ...

    async def campaign_senders(self, campaign: str) -> tuple[builtins.list[str], int]:
        """The own accounts (or addresses) that sent ``campaign``, and how many external
        addresses did."""
        ...

    async def close(self) -> None: ...


class Remedies(Protocol):
    """What acts on cases (notices, the garden, CoA); the default does nothing (dry-run).

    The desk, the CLI and the API get theirs from ``seawall.zombies.remedies.build(config,
    store) -> Remedies`` when that function exists (``cases.load_remedies``), else
    ``cases.DryRun``.

    Both hooks run in the process that made the change (the desk, a CLI command, an API
    worker), after it is recorded; an exception is logged, never undoes the change.
    """

    async def on_transition(self, case: Case, transition: Transition) -> str | None:
        """Act on a recorded move (``case`` is the case after it); return what was done,
        logged on the case as a note by ``remedies`` (None: nothing to log)."""
        ...

    async def on_evidence(self, case: Case, evidence: Evidence) -> None:
        """New evidence (including ``clean`` mail) landed on an existing ``case``."""
        ...


def case_id(kind: Literal["account", "ip"], value: str) -> str:
    """The stable id of the case of an account or an address (12 hex digits)."""
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()[:12]


def evidence_id(*parts: object) -> str:
    """The identity of an observation from what makes it the same observation."""
    h = hashlib.sha256()
    for part in parts:
        h.update(str(part).encode("utf-8", "surrogateescape"))
        h.update(b"\x00")
    return h.hexdigest()[:32]


def decay(value: float, since: float, now: float, half_life_s: float) -> float:
    """``value`` at ``since``, halved every ``half_life_s`` until ``now`` (never grows)."""
    if half_life_s <= 0:
        return value
    return float(value * 0.5 ** (max(0.0, now - since) / half_life_s))


def can_move(current: State, new: State) -> bool:
    """Whether a transition from ``current`` to ``new`` is allowed."""
    return new in ALLOWED[current]
