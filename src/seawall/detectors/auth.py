"""Who really sent it: SPF (MAIL FROM and HELO), DKIM, DMARC and ARC, over the async DNS client.

:meth:`AuthDetector.start` sends every DNS question the checks can name up front, before
the CPU detectors run: each DKIM signature's key (``selector._domainkey.domain``), the From
domain's ``_dmarc`` record and its organisational domain's, and the SPF checks start as
tasks.  The collector waits for them within ``budget_s``, then verifies the signatures
with dkimpy from the fetched keys only (no blocking DNS on the loop) and evaluates DMARC.

Authenticated senders (our own users) are not checked; SPF is skipped for a client in
``[trusted] networks`` or ``[isp] relays`` (our own relays: the SPF of their address means
nothing).  Stored mail scanned without an envelope (``seawall scan``) is checked as its first
untrusted Received hop and its Return-Path say it came (:func:`smtp_facts`).  A DMARC
failure while SPF or a signature could not be checked for a DNS failure is
``DMARC_TEMPFAIL``, never a policy verdict, so a resolver outage does not reject mail.  An
ARC chain sealed last by one of ``trusted_arc_signers`` stands in, with the results its
first set recorded, for a failing DMARC (``ARC_TRUSTED_FORWARDER``); its keys are asked in
``start()`` with the DKIM keys.

With ``[detectors.reputation]`` on, the domains a message authenticated as (DKIM d=, aligned
SPF) have a reputation of their own (``REP_DOMAIN_*``, :mod:`seawall.auth.standing`), fed
after the verdict by what the content scored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import ClassVar

from seawall.auth import arc as arc_
from seawall.auth import dkim as dkim_
from seawall.auth import dmarc as dmarc_
from seawall.auth.hits import (
    ARC_SYMBOLS,
    DKIM_SYMBOLS,
    DMARC,
    DMARC_FAILED,
    DMARC_SYMBOLS,
    MAX_OPTIONS,
    SPF_SYMBOLS,
    arc_hits,
    dkim_hits,
    spf_hit,
)
from seawall.auth.spf import Result, SpfChecker, SpfResult
from seawall.auth.standing import SYMBOLS as STANDING_SYMBOLS
from seawall.auth.standing import DomainStanding, authenticated_domains
from seawall.config import AuthSettings, Trusted
from seawall.detectors.base import Context, Hit, Parts
from seawall.dnslists.answer import Answer
from seawall.dnslists.cache import AnswerCache
from seawall.dnslists.client import DnsClient, RecordResolver
from seawall.dnslists.nameservers import parse_nameserver, system_nameservers
from seawall.dnslists.wire import RdType
from seawall.errors import ConfigError
from seawall.message.headers import addresses_of
from seawall.message.model import Message
from seawall.message.received import trusted_networks
from seawall.policy.model import Action, Verdict
from seawall.store import Store, open_store

_Pending = Answer | asyncio.Future[Answer]


def from_domain(msg: Message) -> tuple[str, str]:
    """The From domain DMARC judges (RFC 7489 §6.6.1), or "" and why there is none."""
    fields = msg.headers.get_all("From")
    if len(fields) != 1:
        return "", f"{len(fields)} From fields"
    addresses = addresses_of(fields[0])
    if len(addresses) != 1:
        return "", f"{len(addresses)} From addresses"
    domain = addresses[0].rpartition("@")[2].strip().lower().rstrip(".")
    return (domain, "") if "." in domain else ("", "no From domain")


def smtp_facts(msg: Message) -> tuple[str | None, str | None, str | None]:
    """The client address, HELO name and MAIL FROM that SPF checks: the MTA's envelope, or
    for stored mail scanned without one (``seawall scan``), the first untrusted Received hop
    and the Return-Path the final delivery wrote, as SpamAssassin does."""
    env = msg.envelope
    if env.client_ip:
        return env.client_ip, env.helo, env.mail_from
    hop = msg.first_untrusted
    paths = msg.headers.get_all("Return-Path")
    if hop is None or not hop.ip or len(paths) != 1:
        return None, None, None
    return hop.ip, hop.helo, paths[0].strip()


class AuthDetector:
    """SPF, DKIM and DMARC for one message, within one DNS budget."""

    name: ClassVar[str] = "auth"
    io: ClassVar[bool] = True
    symbols: ClassVar[Mapping[str, str]] = {
        **SPF_SYMBOLS,
        **DKIM_SYMBOLS,
        **DMARC_SYMBOLS,
        **ARC_SYMBOLS,
        **STANDING_SYMBOLS,
    }

    @classmethod
    def build(cls, parts: Parts) -> AuthDetector:
        config, store = parts.config, parts.store

        def opener() -> Store:
            return store if store is not None else open_store(config)

        reputation = config.detectors.reputation
        return cls(
            config.detectors.auth,
            config.trusted,
            relays=config.isp.relays,
            io_timeout_s=config.engine.io_timeout_s,
            standing=DomainStanding(opener, reputation) if reputation.enabled else None,
            spam_threshold=parts.spam_threshold,
        )

    def __init__(
        self,
        settings: AuthSettings,
        trusted: Trusted,
        *,
        io_timeout_s: float,
        relays: tuple[str, ...] = (),
        resolver: RecordResolver | None = None,
        standing: DomainStanding | None = None,
        spam_threshold: float = 15.0,
    ) -> None:
        if settings.budget_s >= io_timeout_s:
            raise ConfigError(
                f"auth: budget_s ({settings.budget_s:g}) must be below engine.io_timeout_s "
                f"({io_timeout_s:g}), or the engine cuts the checks off first"
            )
        self.settings = settings
        self._arc_trusted = frozenset(d.lower().rstrip(".") for d in settings.trusted_arc_signers)
        self._trusted = trusted_networks(trusted.networks + relays, trusted.private_is_trusted)
        if resolver is None:
            servers = tuple(parse_nameserver(s) for s in settings.nameservers)
            cache = AnswerCache(max_entries=settings.cache_entries)
            resolver = DnsClient(servers or system_nameservers(), cache=cache)
        self.resolver = resolver
        # A cached answer taken as it is (no future made for it), where the client can.
        now = getattr(resolver, "resolve_now", None)
        self._resolve: Callable[[str, RdType, float], _Pending] = (
            now if callable(now) else resolver.resolve
        )
        self.spf = SpfChecker(
            resolver, timeout_s=settings.timeout_s, budget_s=settings.budget_s * 0.95
        )
        self.standing = standing
        self.spam_threshold = spam_threshold
        # id(message) -> the domains it authenticated as, until its verdict is fed back
        self._domains: dict[int, tuple[str, ...]] = {}

    def start(self, msg: Message, ctx: Context) -> Awaitable[Sequence[Hit]]:
        """Send every question of ``msg`` now; await the result for the hits.

        When every answer is already in the cache (most mail of a busy hour), the checks
        are done here and then, with no task and no wait; else one task at most carries
        the SPF checks on while the CPU detectors run."""
        if ctx.authenticated:
            return _ready(())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.budget_s
        timeout = self.settings.timeout_s
        resolve = self._resolve
        # The header section read once for DKIM and ARC (most mail has no field of either
        # to parse): its fields, index and body are read when first needed, then kept.
        read = dkim_.Message(msg.raw)
        lowered = read.lowered
        found = dkim_.signatures(read) if b"dkim-signature" in lowered else []
        keys: dict[str, _Pending] = {}
        for sig in found:
            name = dkim_.key_name(sig)
            if not sig.problem and name not in keys:
                keys[name] = resolve(name, RdType.TXT, timeout)
        arc = b"arc-" in lowered  # as arc_.verify and key_names tell there is no chain
        for name in arc_.key_names(read) if arc else ():  # ARC-Seal and -Message-Signature
            if name not in keys:
                keys[name] = resolve(name, RdType.TXT, timeout)
        domain, why = from_domain(msg)
        names = dmarc_.policy_names(domain) if domain else ()
        policies = [resolve(n, RdType.TXT, timeout) for n in names]
        spf = _SpfChecks()
        client_ip, helo_name, mail_from = smtp_facts(msg)
        if client_ip and mail_from is not None and not self._trusted.contains(client_ip):
            if mail_from.strip("<> ") or helo_name:
                spf.mail_from = _unusable(
                    self.spf.check_mail_from_now, client_ip, mail_from, helo_name or ""
                )
                spf.wants_mail_from = True
            if self.settings.spf_helo and helo_name and "." in helo_name:
                spf.helo = _unusable(self.spf.check_helo_now, client_ip, helo_name)
                spf.wants_helo = True
        if spf.missing:
            spf.task = loop.create_task(
                self._spf(spf, client_ip or "", mail_from or "", helo_name or "")
            )
        elif _all_done(keys.values()) and _all_done(policies):
            hits, authenticated = self._hits(msg, read, found, keys, domain, why, policies, spf)
            if self.standing is None or not authenticated:
                return _ready(hits)
            judged = self.standing.cached_judge(authenticated, ctx.now)
            if judged is not None:
                self._remember(msg, authenticated)
                return _ready(hits + judged)
            return self._judge(msg, hits, authenticated, ctx.now)
        return self._collect(msg, read, found, keys, domain, why, policies, spf, deadline, ctx.now)

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]:
        return await self.start(msg, ctx)

    def close(self) -> None:
        closer = getattr(self.resolver, "close", None)
        if callable(closer):
            closer()

    async def _spf(self, spf: _SpfChecks, ip: str, mail_from: str, helo: str) -> None:
        """The SPF checks the cache could not answer, one after the other in one task
        (the questions of both are already on their way)."""
        try:
            if spf.wants_mail_from and spf.mail_from is None:
                spf.mail_from = await self.spf.check_mail_from(ip, mail_from, helo)
            if spf.wants_helo and spf.helo is None:
                spf.helo = await self.spf.check_helo(ip, helo)
        except ValueError:  # not an address
            unusable = SpfResult(Result.NONE, "", detail="client address unusable")
            spf.mail_from = spf.mail_from or unusable
            spf.helo = spf.helo or unusable

    async def _collect(
        self,
        msg: Message,
        read: dkim_.Message,
        found: list[dkim_.Signature],
        keys: dict[str, _Pending],
        domain: str,
        why: str,
        policies: Sequence[_Pending],
        spf: _SpfChecks,
        deadline: float,
        now: float,
    ) -> Sequence[Hit]:
        waiting: set[asyncio.Future[object]] = {
            p  # type: ignore[misc]
            for p in [*keys.values(), *policies, spf.task]
            if isinstance(p, asyncio.Future) and not p.done()
        }
        if waiting:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining > 0:
                await asyncio.wait(waiting, timeout=remaining)
        spf.end()
        hits, authenticated = self._hits(msg, read, found, keys, domain, why, policies, spf)
        if self.standing is None or not authenticated:
            return hits
        return await self._judge(msg, hits, authenticated, now)

    async def _judge(
        self, msg: Message, hits: list[Hit], authenticated: tuple[str, ...], now: float
    ) -> Sequence[Hit]:
        assert self.standing is not None
        hits = hits + await self.standing.judge(authenticated, now)
        self._remember(msg, authenticated)
        return hits

    def _remember(self, msg: Message, authenticated: tuple[str, ...]) -> None:
        if len(self._domains) > 10_000:  # verdicts that never came (cancelled scans)
            self._domains.clear()
        self._domains[id(msg)] = authenticated

    def _hits(
        self,
        msg: Message,
        read: dkim_.Message,
        found: list[dkim_.Signature],
        keys: dict[str, _Pending],
        domain: str,
        why: str,
        policies: Sequence[_Pending],
        spf: _SpfChecks,
    ) -> tuple[list[Hit], tuple[str, ...]]:
        """The hits from the answers that came, and the domains the message authenticated
        as (for the domain reputation)."""
        hits: list[Hit] = []
        spf_result, helo_result = spf.mail_from, spf.helo
        if spf_result is not None:
            hits.append(spf_hit(spf_result))
        if helo_result is not None and helo_result.result is Result.FAIL:
            hits.append(Hit("SPF_HELO_FAIL", options=(helo_result.domain,)))
        answers = {name: _answer(p) for name, p in keys.items()}
        results = (
            dkim_.verify(read, found, answers, min_rsa_bits=self.settings.min_rsa_bits)
            if found
            else []
        )
        hits += dkim_hits(results)
        if b"arc-" in read.lowered:  # as arc_.verify would find no chain without
            chain = arc_.verify(read, answers, min_rsa_bits=self.settings.min_rsa_bits)
            hits += arc_hits(chain)
        else:
            chain = _NO_CHAIN
            hits.append(_ARC_NONE)
        dmarc = self._dmarc_hit(msg, domain, why, policies, spf_result, results)
        if dmarc.symbol in DMARC_FAILED or dmarc.symbol == "DMARC_TEMPFAIL":
            hits += self._arc_override(domain, policies, chain) or [dmarc]
        else:
            hits.append(dmarc)
        if self.standing is None:
            return hits, ()
        return hits, authenticated_domains(spf_result, domain, results)

    async def after_verdict(self, msg: Message, verdict: Verdict, now: float) -> None:
        """Feed the authenticated domains' reputation with what the content scored (the
        domain symbols left out, so a name cannot feed on itself)."""
        domains = self._domains.pop(id(msg), ())
        if not domains or verdict.skipped or self.standing is None:
            return
        score = verdict.score - sum(
            r.score for name, r in verdict.symbols.items() if name in STANDING_SYMBOLS
        )
        ham_below = self.standing.settings.ham_below
        await self.standing.record(
            domains, spam=score >= self.spam_threshold, ham=score < ham_below, now=now
        )

    async def flush(self) -> None:
        """Write the domain counts still pending to the store."""
        if self.standing is not None:
            await self.standing.flush()

    def _arc_override(
        self, domain: str, policies: Sequence[_Pending], chain: arc_.ArcResult
    ) -> list[Hit]:
        """DMARC_PASS and ARC_TRUSTED_FORWARDER when a trusted sealer's chain validates and
        the results its first set recorded pass DMARC for ``domain``; else nothing."""
        if chain.status is not arc_.ArcStatus.PASS or chain.sealer not in self._arc_trusted:
            return []
        recorded = [
            f"dmarc:{domain}"
            for r in chain.recorded("dmarc")
            if r.result == "pass" and r.properties.get("header.from") == domain
        ]
        spf_passes = [r for r in chain.recorded("spf") if r.result == "pass"]
        spf = spf_passes[0].properties.get("smtp.mailfrom", "") if spf_passes else ""
        dkim_domains = [
            r.properties.get("header.d", "") for r in chain.recorded("dkim") if r.result == "pass"
        ]
        result = dmarc_.evaluate(
            domain,
            [_answer(p) for p in policies],
            spf_pass_domain=spf.rpartition("@")[2] if spf else None,
            dkim_pass_domains=[d for d in dkim_domains if d],
        )
        if result.disposition is dmarc_.Disposition.PASS:
            recorded = list(dict.fromkeys([*recorded, *result.aligned]))
        if not recorded:
            return []
        sealer = f"arc:{chain.sealer}"
        return [
            Hit("DMARC_PASS", options=(domain, sealer, *recorded)[:MAX_OPTIONS]),
            Hit("ARC_TRUSTED_FORWARDER", options=(chain.sealer, *recorded)[:MAX_OPTIONS]),
        ]

    def _dmarc_hit(
        self,
        msg: Message,
        domain: str,
        why: str,
        policies: Sequence[_Pending],
        spf: SpfResult | None,
        results: list[dkim_.DkimResult],
    ) -> Hit:
        if not domain:
            return Hit("DMARC_NA", options=(why,))
        spf_domain = spf.domain if spf is not None and spf.result is Result.PASS else None
        result = dmarc_.evaluate(
            domain,
            [_answer(p) for p in policies],
            spf_pass_domain=spf_domain,
            dkim_pass_domains=[r.domain for r in results if r.counts],
            sample_key=partial(_sample_key, msg),
        )
        disposition = result.disposition
        failed = disposition in (
            dmarc_.Disposition.REJECT,
            dmarc_.Disposition.QUARANTINE,
            dmarc_.Disposition.NONE,
        )
        dns_failed = (spf is not None and spf.result is Result.TEMPERROR) or any(
            r.status is dkim_.DkimStatus.TEMPERROR for r in results
        )
        if failed and dns_failed:
            return Hit("DMARC_TEMPFAIL", options=(domain, "SPF or DKIM could not be checked"))
        options = (domain, *(result.aligned or ([result.policy] if result.policy else [])))
        if result.detail and disposition is not dmarc_.Disposition.PASS:
            options = (*options, result.detail)
        force = None
        if disposition is dmarc_.Disposition.REJECT and self.settings.dmarc_reject_forces:
            force = Action.REJECT
        return Hit(DMARC[disposition], options=options[:MAX_OPTIONS], force=force)


_NO_CHAIN = arc_.ArcResult(arc_.ArcStatus.NONE)  # what arc_.verify says of mail without ARC
_ARC_NONE = arc_hits(_NO_CHAIN)[0]


def _sample_key(msg: Message) -> bytes:
    """What DMARC's ``pct`` sample hashes: the Message-ID, else the head of the message."""
    return msg.headers.get("Message-ID", "").encode() or msg.raw[:4096]


def _ready(hits: Sequence[Hit]) -> Awaitable[Sequence[Hit]]:
    future: asyncio.Future[Sequence[Hit]] = asyncio.get_running_loop().create_future()
    future.set_result(hits)
    return future


class _SpfChecks:
    """A message's SPF checks: asked for or not, their results as they come, and the one
    task that runs those the cache could not answer."""

    __slots__ = ("helo", "mail_from", "task", "wants_helo", "wants_mail_from")

    def __init__(self) -> None:
        self.wants_mail_from = self.wants_helo = False
        self.mail_from: SpfResult | None = None
        self.helo: SpfResult | None = None
        self.task: asyncio.Task[None] | None = None

    @property
    def missing(self) -> bool:
        return (self.wants_mail_from and self.mail_from is None) or (
            self.wants_helo and self.helo is None
        )

    def end(self) -> None:
        """After the wait: a check without a result is a temperror (the task cancelled
        when still running, as the budget is spent)."""
        task = self.task
        detail = "failed"
        if task is not None and not task.done():
            task.cancel()
            detail = "no result in time"
        elif task is not None and not task.cancelled() and task.exception() is not None:
            detail = "failed"
        if self.wants_mail_from and self.mail_from is None:
            self.mail_from = SpfResult(Result.TEMPERROR, "", detail=detail)
        if self.wants_helo and self.helo is None:
            self.helo = SpfResult(Result.TEMPERROR, "", detail=detail)


def _unusable(check: Callable[..., SpfResult | None], *args: str) -> SpfResult | None:
    """A ``check_*_now`` call, a client address that is none giving SPF none."""
    try:
        return check(*args)
    except ValueError:
        return SpfResult(Result.NONE, "", detail="client address unusable")


def _all_done(pending: Iterable[_Pending]) -> bool:
    return all(isinstance(p, Answer) or p.done() for p in pending)


def _answer(pending: _Pending) -> Answer | None:
    if isinstance(pending, Answer):
        return pending
    return pending.result() if pending.done() and not pending.cancelled() else None
