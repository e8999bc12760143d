"""DNS block lists: the sender's address and the message's link domains, asked of DNSBLs.

IP lists are asked for the envelope's client address and for the first untrusted
Received hop when it differs (private, trusted and unroutable addresses never); domain
lists for the registrable domains of the links, the most linked first, up to
``max_names`` per list.  :meth:`DnsblDetector.start` sends every query before it returns,
so the engine runs the CPU detectors while the answers travel.  Whatever is not back
within ``budget_s`` is given up as ``DNSBL_TIMEOUT``; no failure raises.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import asdict
from typing import ClassVar

from seawall.config import DnsblSettings, Trusted
from seawall.detectors.base import Context, Hit
from seawall.dnslists.answer import Answer, Status
from seawall.dnslists.cache import AnswerCache
from seawall.dnslists.client import DnsClient, Resolver
from seawall.dnslists.lists import (
    DnsList,
    Kind,
    compile_lists,
    listable_ip,
    query_domain,
    reverse_ip,
)
from seawall.dnslists.nameservers import parse_nameserver, system_nameservers
from seawall.errors import ConfigError
from seawall.message.model import Message
from seawall.message.received import trusted_networks

log = logging.getLogger("seawall.dnsbl")

_MAX_OPTIONS = 5  # pieces of evidence kept per symbol
_WARN_EVERY_S = 300.0  # one warning per list and problem this often

# (list, what was looked up, whether it is the connecting client, the pending answer)
_Lookup = tuple[DnsList, str, bool, "asyncio.Future[Answer]"]

STATUS_SYMBOLS = {
    "DNSBL_TIMEOUT": "A DNS list did not answer within its timeout or the message's budget",
    "DNSBL_SERVFAIL": "The resolver answered SERVFAIL for a DNS list",
    "DNSBL_FAILED": "A DNS list lookup failed: REFUSED, a malformed reply or a socket error",
    "DNSBL_BLOCKED": "A DNS list refused to answer (127.255.255.x: public resolver, over "
    "quota, zone typo) or answered outside 127/8",
    "DNSBL_UNKNOWN_CODE": "A DNS list returned a code its configuration does not name",
}
LIST_SYMBOLS = {
    "RBL_SPAMHAUS_SBL": "The sender (or a linked IP) is on Spamhaus SBL: a spam source or service",
    "RBL_SPAMHAUS_CSS": "The sender (or a linked IP) is on Spamhaus CSS: low-reputation sending",
    "RBL_SPAMHAUS_XBL": "The sender (or a linked IP) is on Spamhaus XBL: a hijacked PC or proxy",
    "RBL_SPAMHAUS_DROP": "The sender (or a linked IP) is in a Spamhaus DROP hijacked netblock",
    "RBL_SPAMHAUS_PBL": "The connecting client is on Spamhaus PBL: an end-user address sending "
    "direct to MX",
    "URIBL_DBL_SPAM": "A link domain is on Spamhaus DBL as a spam domain",
    "URIBL_DBL_PHISH": "A link domain is on Spamhaus DBL as a phishing domain",
    "URIBL_DBL_MALWARE": "A link domain is on Spamhaus DBL as a malware domain",
    "URIBL_DBL_BOTNET": "A link domain is on Spamhaus DBL as a botnet command and control domain",
    "URIBL_DBL_ABUSED_SPAM": "A link domain is on Spamhaus DBL: a legitimate domain abused by spam",
    "URIBL_DBL_ABUSED_REDIRECTOR": "A link domain is on Spamhaus DBL: an abused redirector",
    "URIBL_DBL_ABUSED_PHISH": "A link domain is on Spamhaus DBL: a legitimate domain abused for "
    "phishing",
    "URIBL_DBL_ABUSED_MALWARE": "A link domain is on Spamhaus DBL: a legitimate domain abused for "
    "malware",
    "URIBL_DBL_ABUSED_BOTNET": "A link domain is on Spamhaus DBL: a legitimate domain abused for "
    "botnet command and control",
    "URIBL_SURBL_PHISH": "A link domain is on SURBL's phishing list (PH)",
    "URIBL_SURBL_MALWARE": "A link domain is on SURBL's malware list (MW)",
    "URIBL_SURBL_ABUSE": "A link domain is on SURBL's spam and abuse list (ABUSE)",
    "URIBL_SURBL_CRACKED": "A link domain is on SURBL's list of cracked web sites (CR)",
}


class DnsblDetector:
    """DNSBL and URIBL lookups, concurrent, cached and within one time budget per message."""

    name: ClassVar[str] = "dnsbl"
    io: ClassVar[bool] = True
    symbols: ClassVar[Mapping[str, str]] = {**LIST_SYMBOLS, **STATUS_SYMBOLS}

    def __init__(
        self,
        settings: DnsblSettings,
        trusted: Trusted,
        *,
        io_timeout_s: float,
        resolver: Resolver | None = None,
    ) -> None:
        if settings.budget_s >= io_timeout_s:
            raise ConfigError(
                f"dnsbl: budget_s ({settings.budget_s:g}) must be below engine.io_timeout_s "
                f"({io_timeout_s:g}), or the engine cuts the lookups off first"
            )
        self.settings = settings
        self.lists = compile_lists(settings)
        self._ip_lists = tuple(spec for spec in self.lists if spec.kind == "ip")
        self._domain_lists = tuple(spec for spec in self.lists if spec.kind == "domain")
        self._hosts = any(spec.hosts for spec in self._domain_lists)
        self._trusted = trusted_networks(trusted.networks, trusted.private_is_trusted)
        self.cache = AnswerCache(
            max_entries=settings.cache_entries,
            min_ttl_s=settings.min_ttl_s,
            max_ttl_s=settings.max_ttl_s,
            failure_ttl_s=settings.failure_ttl_s,
        )
        if resolver is None:
            servers = tuple(parse_nameserver(s) for s in settings.nameservers)
            resolver = DnsClient(servers or system_nameservers(), cache=self.cache)
        self.resolver = resolver
        self._warned: dict[tuple[str, str], float] = {}

    def start(self, msg: Message, ctx: Context) -> Awaitable[Sequence[Hit]]:
        """Send every lookup of ``msg`` now; await the result for the hits.

        Called by the engine before the CPU detectors run, so the DNS round trips
        overlap them.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.budget_s
        lookups: list[_Lookup] = []
        lookup = self.resolver.lookup
        if self._ip_lists:
            senders = self._senders(msg, ctx)
            links = self._link_ips(msg) if any(s.link_ips for s in self._ip_lists) else []
            for spec in self._ip_lists:
                for ip, key, direct in senders + links if spec.link_ips else senders:
                    name = spec.query_name(key)
                    if name is not None:
                        lookups.append((spec, ip, direct, lookup(name, spec.timeout_s)))
        if self._domain_lists and msg.urls:
            domains, hosts = self._names(msg)
            for spec in self._domain_lists:
                for domain in hosts if spec.hosts else domains:
                    name = spec.query_name(domain)
                    if name is not None:
                        lookups.append((spec, domain, False, lookup(name, spec.timeout_s)))
        return self._collect(lookups, deadline)

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]:
        return await self.start(msg, ctx)

    def stats(self) -> dict[str, float]:
        """Cache and query counters of this process, for metrics and benchmarks."""
        cache = self.cache.stats
        out: dict[str, float] = {
            "cache_hits": cache.hits,
            "cache_misses": cache.misses,
            "cache_hit_rate": round(cache.hit_rate, 4),
            "cache_evictions": cache.evictions,
            "cache_entries": len(self.cache),
        }
        client = getattr(self.resolver, "stats", None)
        if client is not None and not callable(client):
            out.update(asdict(client))
        return out

    def close(self) -> None:
        closer = getattr(self.resolver, "close", None)
        if callable(closer):
            closer()

    def _senders(self, msg: Message, ctx: Context) -> list[tuple[str, str, bool]]:
        """(ip, list key, direct) of the client and the first untrusted hop behind it."""
        if ctx.authenticated:  # our own user: a dynamic address that logged in is normal
            return []
        out: list[tuple[str, str, bool]] = []
        client = msg.envelope.client_ip
        client_key = self._key(client) if client else None
        if client and client_key:
            out.append((client, client_key, True))
        hop = msg.first_untrusted
        if hop is not None and hop.ip and hop.ip != client:
            key = self._key(hop.ip)
            if key:
                # With no usable client (a stored message, or one our own relay passed on)
                # the first untrusted hop is the connection to our border: it is direct.
                out.append((hop.ip, key, client_key is None))
        return out

    def _key(self, ip: str) -> str | None:
        if not listable_ip(ip) or self._trusted.contains(ip):
            return None
        return reverse_ip(ip)

    def _link_ips(self, msg: Message) -> list[tuple[str, str, bool]]:
        out: list[tuple[str, str, bool]] = []
        seen: set[str] = set()
        for url in msg.urls:
            if url.is_ip and url.host not in seen:
                seen.add(url.host)
                key = self._key(url.host)
                if key:
                    out.append((url.host, key, False))
                    if len(out) >= self.settings.max_names:
                        break
        return out

    def _names(self, msg: Message) -> tuple[list[str], list[str]]:
        """Link domains, and domains with host names, the most linked first, capped."""
        domains: dict[str, int] = {}
        names: dict[str, int] = {}
        for url in msg.urls:
            if not url.is_ip:
                domain = url.domain
                domains[domain] = domains.get(domain, 0) + 1
                names[domain] = names.get(domain, 0) + 1
                if url.host != domain:
                    names[url.host] = names.get(url.host, 0) + 1
        limit = self.settings.max_names
        return _ranked(domains, limit), _ranked(names, limit) if self._hosts else []

    async def _collect(self, lookups: list[_Lookup], deadline: float) -> Sequence[Hit]:
        waiting = {future for *_, future in lookups if not future.done()}
        if waiting:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining > 0:
                await asyncio.wait(waiting, timeout=remaining)
        return self._hits(lookups)

    def _hits(self, lookups: Iterable[_Lookup]) -> list[Hit]:
        found: dict[str, list[str]] = {}
        weights: dict[str, float] = {}
        status: dict[str, list[str]] = {}
        for spec, target, direct, future in lookups:
            answer = future.result() if future.done() else None
            if answer is None or answer.status is Status.TIMEOUT:
                status.setdefault("DNSBL_TIMEOUT", []).append(spec.name)
            elif answer.status is Status.LISTED:
                for address in answer.addresses:
                    meaning = spec.meaning(address, direct=direct)
                    if meaning.kind is Kind.LISTED:
                        for symbol in meaning.symbols:
                            found.setdefault(symbol, []).append(f"{target}={address}")
                            weights[symbol] = max(weights.get(symbol, 0.0), spec.weight)
                    elif meaning.kind is not Kind.IGNORED:
                        error = meaning.kind is Kind.ERROR
                        symbol = "DNSBL_BLOCKED" if error else "DNSBL_UNKNOWN_CODE"
                        status.setdefault(symbol, []).append(f"{spec.name}={address}")
                        why = f"{target} -> {address}: {meaning.reason}"
                        self._warn(spec, meaning.kind.value, why)
            elif answer.status is Status.SERVFAIL:
                status.setdefault("DNSBL_SERVFAIL", []).append(spec.name)
            elif answer.status is Status.ERROR:
                status.setdefault("DNSBL_FAILED", []).append(f"{spec.name}: {answer.detail}")
        hits = [
            Hit(symbol, weight=weights[symbol], options=_summary(options))
            for symbol, options in found.items()
        ]
        hits += [Hit(symbol, options=_summary(opts)) for symbol, opts in status.items()]
        return hits

    def _warn(self, spec: DnsList, problem: str, text: str) -> None:
        """Log a list's problem at most once per _WARN_EVERY_S: it repeats on every message."""
        key = (spec.name, problem)
        now = time.monotonic()
        if now - self._warned.get(key, -_WARN_EVERY_S) >= _WARN_EVERY_S:
            self._warned[key] = now
            log.warning("dnsbl list %s (%s): %s", spec.name, spec.zone, text)


def _ranked(counts: dict[str, int], limit: int) -> list[str]:
    """The names that can be asked, most frequent first (first seen first on a tie)."""
    ordered = (
        counts if len(counts) <= limit else sorted(counts, key=counts.__getitem__, reverse=True)
    )
    out: list[str] = []
    for name in ordered:
        ascii_name = query_domain(name)
        if ascii_name is not None:
            out.append(ascii_name)
            if len(out) >= limit:
                break
    return out


def _summary(options: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(options))[:_MAX_OPTIONS]
