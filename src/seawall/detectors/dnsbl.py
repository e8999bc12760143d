"""DNS block lists: the sender's address and names and the message's links, asked of DNSBLs.

IP lists are asked for the envelope's client address and for the first untrusted
Received hop when it differs (private, trusted and unroutable addresses never; IPv6 ones
only of lists with ``ipv6``); domain lists for the registrable domains of the links, the
most linked first, up to ``max_names`` per list, and for those of the sender's names their
``checks`` name (MAIL FROM, From, Reply-To, HELO, rDNS), each name once per list.
:meth:`DnsblDetector.start` sends every query before it returns, so the engine runs the
CPU detectors while the answers travel.  Whatever is not back within ``budget_s`` is given
up as ``DNSBL_TIMEOUT``; no failure raises.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict
from typing import ClassVar

from seawall.config import DnsblSettings, Trusted
from seawall.detectors.base import Context, Hit, Parts
from seawall.dnslists.answer import Answer, Status
from seawall.dnslists.cache import AnswerCache
from seawall.dnslists.client import DnsClient, Resolver
from seawall.dnslists.lists import (
    DnsList,
    Kind,
    Meaning,
    compile_lists,
    listable_ip,
    reverse_ip,
)
from seawall.dnslists.names import SenderName, link_names, sender_names
from seawall.dnslists.nameservers import parse_nameserver, system_nameservers
from seawall.errors import ConfigError
from seawall.message.model import Message
from seawall.message.received import trusted_networks

log = logging.getLogger("seawall.dnsbl")

_MAX_OPTIONS = 5  # pieces of evidence kept per symbol
_IPV4_KEY = 15  # a reversed IPv4 address is at most 15 characters, an IPv6 one 63
_WARN_EVERY_S = 300.0  # one warning per list and problem this often

# (list, what was looked up, ip lists: it is the connecting client / domain lists: it is
# a link, the sender's names it is for ("helo", "from", ...), the pending answer)
_Lookup = tuple[DnsList, str, bool, tuple[str, ...], "Answer | asyncio.Future[Answer]"]
# (address, list key, the connecting client, IPv6)
_Sender = tuple[str, str, bool, bool]

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
    "RBL_DBL_SPAM": "A sender name (HELO, rDNS, MAIL FROM, From, Reply-To) is on Spamhaus DBL "
    "as a spam domain",
    "RBL_DBL_PHISH": "A sender name is on Spamhaus DBL as a phishing domain",
    "RBL_DBL_MALWARE": "A sender name is on Spamhaus DBL as a malware domain",
    "RBL_DBL_BOTNET": "A sender name is on Spamhaus DBL as a botnet command and control domain",
    "RBL_DBL_ABUSED": "A sender name is on Spamhaus DBL as a legitimate domain abused by spam, "
    "phishing or malware",
}


class DnsblDetector:
    """DNSBL and URIBL lookups, concurrent, cached and within one time budget per message."""

    name: ClassVar[str] = "dnsbl"
    io: ClassVar[bool] = True
    symbols: ClassVar[Mapping[str, str]] = {**LIST_SYMBOLS, **STATUS_SYMBOLS}

    @classmethod
    def build(cls, parts: Parts) -> DnsblDetector:
        config = parts.config
        return cls(config.detectors.dnsbl, config.trusted, io_timeout_s=config.engine.io_timeout_s)

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
        self._link_lists = any(spec.link_ips for spec in self._ip_lists)
        self._links = any(spec.links for spec in self._domain_lists)
        self._sender_roles = frozenset().union(*(spec.senders for spec in self._domain_lists))
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
        self._lookup: Callable[[str, float], Answer | asyncio.Future[Answer]] = resolver.lookup
        if isinstance(resolver, DnsClient) and resolver.cache is self.cache:
            # A cached answer is read here, with no future made for it: most lookups hit.
            get, fetch = self.cache.get, resolver.fetch

            def cached_first(name: str, timeout_s: float) -> Answer | asyncio.Future[Answer]:
                answer = get(name)
                return answer if answer is not None else fetch(name, timeout_s)

            self._lookup = cached_first
        self._warned: dict[tuple[str, str], float] = {}

    def start(self, msg: Message, ctx: Context) -> Awaitable[Sequence[Hit]]:
        """Send every lookup of ``msg`` now; await the result for the hits.

        Called by the engine before the CPU detectors run, so the DNS round trips
        overlap them.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.budget_s
        lookups: list[_Lookup] = []
        lookup = self._lookup
        if self._ip_lists:
            senders = self._senders(msg, ctx)
            links = self._link_ips(msg, senders) if self._link_lists else []
            for spec in self._ip_lists:
                for ip, key, direct, v6 in senders + links if spec.link_ips else senders:
                    if v6 and not spec.ipv6:
                        continue
                    name = spec.query_name(key)
                    if name is not None:
                        lookups.append((spec, ip, direct, (), lookup(name, spec.timeout_s)))
        if self._domain_lists:
            if self._links and msg.urls:
                domains, hosts = link_names(msg, self.settings.max_names, hosts=self._hosts)
            else:
                domains = hosts = []
            roles = self._sender_roles
            people = sender_names(msg, roles, authenticated=ctx.authenticated) if roles else ()
            for spec in self._domain_lists:
                linked = (hosts if spec.hosts else domains) if spec.links else ()
                asked = self._sender_keys(spec, people) if spec.senders and people else None
                for domain in linked:
                    why = asked.pop(domain, ()) if asked else ()
                    name = spec.query_name(domain)
                    if name is not None:
                        lookups.append((spec, domain, True, why, lookup(name, spec.timeout_s)))
                for domain, why in asked.items() if asked else ():
                    name = spec.query_name(domain)
                    if name is not None:
                        lookups.append((spec, domain, False, why, lookup(name, spec.timeout_s)))
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

    def _senders(self, msg: Message, ctx: Context) -> list[_Sender]:
        """(ip, list key, direct, IPv6) of the client and the first untrusted hop behind it."""
        if ctx.authenticated:  # our own user: a dynamic address that logged in is normal
            return []
        out: list[_Sender] = []
        client = msg.envelope.client_ip
        client_key = self._key(client) if client else None
        if client and client_key:
            out.append((client, client_key, True, len(client_key) > _IPV4_KEY))
        hop = msg.first_untrusted
        if hop is not None and hop.ip and hop.ip != client:
            key = self._key(hop.ip)
            if key:
                # With no usable client (a stored message, or one our own relay passed on)
                # the first untrusted hop is the connection to our border: it is direct.
                out.append((hop.ip, key, client_key is None, len(key) > _IPV4_KEY))
        return out

    def _key(self, ip: str) -> str | None:
        if not listable_ip(ip) or self._trusted.contains(ip):
            return None
        return reverse_ip(ip)

    def _link_ips(self, msg: Message, senders: list[_Sender]) -> list[_Sender]:
        """Links to bare addresses, but the senders' own (asked already), capped."""
        out: list[_Sender] = []
        seen = {ip for ip, *_ in senders}
        for url in msg.urls:
            if url.is_ip and url.host not in seen:
                seen.add(url.host)
                key = self._key(url.host)
                if key:
                    out.append((url.host, key, False, len(key) > _IPV4_KEY))
                    if len(out) >= self.settings.max_names:
                        break
        return out

    @staticmethod
    def _sender_keys(spec: DnsList, people: Sequence[SenderName]) -> dict[str, tuple[str, ...]]:
        """The names ``spec`` is asked for the sender, each with what it names."""
        asked: dict[str, tuple[str, ...]] = {}
        for role, domain, host in people:
            if role in spec.senders:
                asked[domain] = (*asked.get(domain, ()), role)
                if spec.hosts and host != domain:
                    asked[host] = (*asked.get(host, ()), role)
        return asked

    async def _collect(self, lookups: list[_Lookup], deadline: float) -> Sequence[Hit]:
        waiting = {
            pending
            for *_, pending in lookups
            if isinstance(pending, asyncio.Future) and not pending.done()
        }
        if waiting:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining > 0:
                await asyncio.wait(waiting, timeout=remaining)
        return self._hits(lookups)

    def _hits(self, lookups: Iterable[_Lookup]) -> list[Hit]:
        found: dict[str, list[str]] = {}
        weights: dict[str, float] = {}
        status: dict[str, list[str]] = {}
        for spec, target, flag, roles, pending in lookups:
            if isinstance(pending, Answer):
                answer: Answer | None = pending
            else:
                answer = pending.result() if pending.done() else None
            if answer is None or answer.status is Status.TIMEOUT:
                status.setdefault("DNSBL_TIMEOUT", []).append(spec.name)
            elif answer.status is Status.LISTED:
                for address in answer.addresses:
                    # An ip list's flag says the client is direct; a domain list's, a link.
                    if spec.kind == "ip" or flag:
                        meaning = spec.meaning(address, direct=flag)
                        self._read(meaning, spec, f"{target}={address}", found, weights, status)
                    if roles:
                        meaning = spec.meaning(address, sender=True)
                        for role in roles:
                            evidence = f"{role}:{target}={address}"
                            self._read(meaning, spec, evidence, found, weights, status)
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

    def _read(
        self,
        meaning: Meaning,
        spec: DnsList,
        evidence: str,
        found: dict[str, list[str]],
        weights: dict[str, float],
        status: dict[str, list[str]],
    ) -> None:
        """Note one answer's ``meaning``: its symbols with ``evidence``, or a problem."""
        if meaning.kind is Kind.LISTED:
            for symbol in meaning.symbols:
                found.setdefault(symbol, []).append(evidence)
                weights[symbol] = max(weights.get(symbol, 0.0), spec.weight)
        elif meaning.kind is not Kind.IGNORED:
            error = meaning.kind is Kind.ERROR
            symbol = "DNSBL_BLOCKED" if error else "DNSBL_UNKNOWN_CODE"
            address = evidence.rpartition("=")[2]
            status.setdefault(symbol, []).append(f"{spec.name}={address}")
            self._warn(spec, meaning.kind.value, f"{evidence}: {meaning.reason}")

    def _warn(self, spec: DnsList, problem: str, text: str) -> None:
        """Log a list's problem at most once per _WARN_EVERY_S: it repeats on every message."""
        key = (spec.name, problem)
        now = time.monotonic()
        if now - self._warned.get(key, -_WARN_EVERY_S) >= _WARN_EVERY_S:
            self._warned[key] = now
            log.warning("dnsbl list %s (%s): %s", spec.name, spec.zone, text)


def _summary(options: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(options))[:_MAX_OPTIONS]
