"""``Desk``: the cases as the CLI, the API and the desk process change them.

The store records; the Desk also attributes evidence to accounts (who held the address
at the evidence's time, from RADIUS accounting) and calls the :class:`Remedies` hook after
each recorded move, logging what the hook did as a note on the case.  The remedies come
from ``seawall.zombies.remedies.build(config, store) -> Remedies`` when that module offers
it; otherwise :class:`DryRun`, which acts on nothing and says so on the case.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from seawall.config import Config
from seawall.zombies.model import Case, Evidence, Ingested, Remedies, State, Transition
from seawall.zombies.store import CaseBook

log = logging.getLogger("seawall.zombies")

# who held ``ip`` at ``at``: the account name, or None
WhoLookup = Callable[[str, float], Awaitable[str | None]]
REMEDIES_MODULE = "seawall.zombies.remedies"
REMEDIES = "remedies"  # who notes what the remedies did


class DryRun:
    """The remedies when none are installed: nothing is done, and the case says so."""

    async def on_transition(self, case: Case, transition: Transition) -> str | None:
        if transition.from_state == transition.to_state:
            return None
        return f"dry-run: no remedies installed for {transition.to_state}"

    async def on_evidence(self, case: Case, evidence: Evidence) -> None:
        return None


def load_remedies(config: Config, store: CaseBook) -> Remedies:
    """``seawall.zombies.remedies.build(config, store)``, or :class:`DryRun` without it."""
    try:
        module: Any = importlib.import_module(REMEDIES_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != REMEDIES_MODULE:
            raise
        return DryRun()
    build = getattr(module, "build", None)
    if build is None:
        return DryRun()
    remedies: Remedies = build(config, store)
    return remedies


class Accounts:
    """RADIUS accounting as the desk asks it (``who`` for the WhoLookup), closed after."""

    def __init__(self, config: Config) -> None:
        from seawall.accounting import open_sessions

        self.sessions = open_sessions(config)

    async def who(self, ip: str, at: float) -> str | None:
        session = await self.sessions.who(ip, at)
        return session.account if session is not None else None

    async def close(self) -> None:
        await self.sessions.close()


def open_desk(config: Config, *, rebuild: bool = False) -> tuple[Desk, Accounts]:
    """The Desk on the configured state, with its remedies and accounting (close both:
    ``await desk.store.close(); await accounts.close()``); ``rebuild``: the desk process's
    open (see ``open_case_store``)."""
    from seawall.zombies.store import open_case_store

    store = open_case_store(config, rebuild=rebuild)
    accounts = Accounts(config)
    return Desk(store, remedies=load_remedies(config, store), who=accounts.who), accounts


class Desk:
    """Cases with attribution and remedies (see the module docstring)."""

    def __init__(
        self,
        store: CaseBook,
        *,
        remedies: Remedies | None = None,
        who: WhoLookup | None = None,
    ) -> None:
        self.store = store
        self.remedies: Remedies = remedies if remedies is not None else DryRun()
        self.who = who

    async def attribute(self, evidence: Evidence) -> Evidence:
        """``evidence`` with its account: who held its address at its time (own only)."""
        if evidence.account or not evidence.own or self.who is None:
            return evidence
        account = await self.who(evidence.ip, evidence.at)
        if not account:
            return evidence
        return msgspec.structs.replace(evidence, account=account)

    async def ingest(self, evidence: Evidence, raw: bytes | None = None) -> Ingested:
        """Attribute, record, and tell the remedies what changed."""
        evidence = await self.attribute(evidence)
        got = await self.store.add_evidence(evidence, raw)
        if got.case is not None and got.moved is not None:
            await self._after(got.case, got.moved)
        elif got.case is not None and (got.new or evidence.kind == "clean"):
            try:
                await self.remedies.on_evidence(got.case, evidence)
            except Exception:
                log.exception("remedies failed on new evidence for case %s", got.case.id)
        return got

    async def transition(
        self, case_id: str, new_state: State, who: str, why: str, *, at: float | None = None
    ) -> Case:
        """Move the case (CaseError when it cannot), then run the remedies for the move."""
        case = await self.store.transition(case_id, new_state, who, why, at=at)
        return await self._after(case, case.transitions[-1])

    async def note(self, case_id: str, who: str, why: str) -> Case:
        return await self.store.note(case_id, who, why)

    async def _after(self, case: Case, transition: Transition) -> Case:
        try:
            done = await self.remedies.on_transition(case, transition)
        except Exception as exc:
            log.exception("remedies failed for case %s (%s)", case.id, transition.to_state)
            done = f"remedies failed: {exc}"
        if done:
            case = await self.store.note(case.id, REMEDIES, done)
        return case
