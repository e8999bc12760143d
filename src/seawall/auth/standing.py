"""A sender domain's standing: reputation kept per authenticated domain, beside the per-IP one.

Only a domain the message proved it came from is looked up and fed: the d= of each DKIM
signature that verifies over the whole body, and the MAIL FROM domain when SPF passed for it
and it shares its organisational domain with From (relaxed alignment, RFC 7489 §3.1.2).  A
forger can thus neither borrow a newsletter's good name nor spoil it, while a domain that
only ever sends spam (a throw-away domain with its own SPF and DKIM) is learned like a
spamming address.  The counts are :mod:`seawall.reputation`'s, under ``rep:dom:`` keys.

Symbols (declared by detectors/auth.py):
    REP_DOMAIN_SPAM  an authenticated sender domain sent mostly spam recently
    REP_DOMAIN_HAM   every authenticated sender domain has a steady history of ham
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from seawall.auth.dkim import DkimResult
from seawall.auth.spf import Result, SpfResult
from seawall.config import ReputationSettings
from seawall.errors import StoreError
from seawall.message.hosts import registrable_domain
from seawall.policy.model import Hit
from seawall.reputation import Record, Reputation
from seawall.store import Store

log = logging.getLogger("seawall.auth")

SYMBOLS = {
    "REP_DOMAIN_SPAM": "An authenticated sender domain (DKIM d=, aligned SPF) sent mostly spam "
    "recently",
    "REP_DOMAIN_HAM": "The authenticated sender domains (DKIM d=, aligned SPF) have a steady "
    "recent history of ham",
}
_MAX_DOMAINS = 3  # a message's authenticated domains looked up and fed, at most


def authenticated_domains(
    spf: SpfResult | None, from_domain: str, dkim: Sequence[DkimResult]
) -> tuple[str, ...]:
    """The domains ``msg`` proved it came from: DKIM d= of whole-body passes, and the MAIL
    FROM domain of an SPF pass aligned (relaxed) with the From domain."""
    found = [r.domain.lower().rstrip(".") for r in dkim if r.counts and r.domain]
    if spf is not None and spf.result is Result.PASS and spf.domain and from_domain:
        # Names under no known suffix align only with themselves.
        org = registrable_domain(from_domain) or from_domain.lower()
        if (registrable_domain(spf.domain) or spf.domain.lower()) == org:
            found.append(spf.domain.lower().rstrip("."))
    return tuple(dict.fromkeys(found))[:_MAX_DOMAINS]


class DomainStanding:
    """Reads and feeds the domain records; the store is opened on first use."""

    def __init__(self, store: Callable[[], Store], settings: ReputationSettings) -> None:
        self.settings = settings
        self._open = store
        self._reputation: Reputation | None = None
        self._broken = False
        self._wanted: set[str] = set()  # domains the next batched read fetches
        self._batch: asyncio.Task[None] | None = None
        self._wanted_at = 0.0  # the earliest time of the messages that want them

    @property
    def reputation(self) -> Reputation | None:
        if self._reputation is None and not self._broken:
            try:
                self._reputation = Reputation(self._open(), self.settings)
            except StoreError as exc:
                self._broken = True
                log.error("domain reputation is off: %s", exc)
        return self._reputation

    def cached_judge(self, domains: Sequence[str], now: float) -> list[Hit] | None:
        """What :meth:`judge` would answer, when every record is fresh in this worker's
        cache (no store call, no await); else None."""
        reputation = self.reputation
        if not domains or reputation is None:
            return []
        records = reputation.cached_domains(domains, now)
        return None if records is None else self._judge(records)

    async def judge(self, domains: Sequence[str], now: float) -> list[Hit]:
        """REP_DOMAIN_SPAM when any of ``domains`` sent mostly spam; REP_DOMAIN_HAM when
        all that have a record show a steady ham history.

        The records not fresh in the cache are read with those the other messages of
        this turn of the loop want, in one store call (one thread hop, not one each)."""
        reputation = self.reputation
        if not domains or reputation is None:
            return []
        records = reputation.cached_domains(domains, now)
        if records is None:
            self._wanted.update(domains)
            batch = self._batch
            if batch is None:
                self._wanted_at = now
                batch = self._batch = asyncio.get_running_loop().create_task(self._read(reputation))
            else:  # read as of the earliest: decay then carries each record to its time
                self._wanted_at = min(self._wanted_at, now)
            await asyncio.shield(batch)
            records = reputation.cached_domains(domains, now)
            if records is None:  # the store failed: read each, as the cache stands
                records = await reputation.lookup_domains(domains, now)
        return self._judge(records)

    async def _read(self, reputation: Reputation) -> None:
        await asyncio.sleep(0)  # the other messages of this turn add theirs
        wanted, self._wanted = self._wanted, set()
        self._batch = None  # what is wanted from now on goes into the next read
        await reputation.lookup_domains(sorted(wanted), self._wanted_at)

    def _judge(self, found: Sequence[Record | None]) -> list[Hit]:
        records = [r for r in found if r]
        s, prior = self.settings, self.settings.prior
        spam = [
            r
            for r in records
            if r.spam >= s.ip_min_spam and r.cautious_share(prior) >= s.spam_share
        ]
        if spam:
            worst = max(spam, key=lambda r: r.cautious_share(prior))
            return [_hit("REP_DOMAIN_SPAM", worst, worst.cautious_share(prior))]
        good = [
            r
            for r in records
            if r.ham >= s.ip_min_ham and r.cautious_ham_share(prior) >= s.ham_share
        ]
        if good and len(good) == len(records):
            return [_hit("REP_DOMAIN_HAM", good[0], 1.0)]
        return []

    async def record(self, domains: Sequence[str], *, spam: bool, ham: bool, now: float) -> None:
        reputation = self.reputation
        if reputation is None:
            return
        for domain in domains:
            await reputation.record_domain(domain, spam=spam, ham=ham, now=now)

    async def flush(self) -> None:
        if self._reputation is not None:
            await self._reputation.flush()


def _hit(symbol: str, record: Record, weight: float) -> Hit:
    return Hit(symbol, weight=round(weight, 3), options=(record.key, record.describe()))
