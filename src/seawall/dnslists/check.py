"""``seawall dnsbl test``: does each configured list answer as RFC 5782 §5 says it must?

Every list keeps a test entry that is always listed (127.0.0.2 for IP lists, ``test`` for
domain lists, or the list's own ``test_entry``) and never lists 127.0.0.1 or ``invalid``;
an IP list with IPv6 entries lists ::FFFF:7F00:2 and never ::FFFF:7F00:1, asked as 32
nibbles.  Asking them through the configured resolver shows a mistyped zone, a resolver
that cannot reach the list, one the list refuses (Spamhaus's 127.255.255.254 for public
resolvers), a list configured for IPv6 that has none, and a resolver that rewrites
NXDOMAIN, before any mail is scored with the list.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from seawall.config import DnsblSettings
from seawall.dnslists.answer import Answer, Status
from seawall.dnslists.cache import AnswerCache
from seawall.dnslists.client import DnsClient, Resolver
from seawall.dnslists.lists import (
    DnsList,
    Kind,
    compile_lists,
    query_domain,
    reverse_ip,
    reverse_ipv6,
)
from seawall.dnslists.nameservers import parse_nameserver, system_nameservers

IPV6_ENTRIES = ("::ffff:7f00:2", "::ffff:7f00:1")  # RFC 5782 §5: always and never listed


@dataclass(frozen=True, slots=True)
class Health:
    """One list's result: ``problem`` is empty when it is healthy."""

    name: str
    zone: str
    entries: tuple[str, str]  # the always-listed entry, the never-listed one
    listed: str  # what the always-listed entry got
    unlisted: str  # what the never-listed entry got
    problem: str = ""
    note: str = ""
    family: str = ""  # IP lists with IPv6 entries are judged twice: "IPv4", then "IPv6"

    @property
    def healthy(self) -> bool:
        return not self.problem


async def check_lists(settings: DnsblSettings, resolver: Resolver | None = None) -> list[Health]:
    """Ask every list for its test entries, all at once, and judge the answers.

    A list with ``ipv6`` gives two results, one per address family.
    """
    lists = compile_lists(settings)
    own = resolver is None
    if resolver is None:
        servers = tuple(parse_nameserver(s) for s in settings.nameservers)
        resolver = DnsClient(servers or system_nameservers(), cache=AnswerCache(max_entries=0))
    try:
        asked = []
        for spec in lists:
            for family, entries in _entries(spec):
                keys = [_key(spec, entry, family) for entry in entries]
                pair = [resolver.lookup(spec.query_name(k) or k, spec.timeout_s) for k in keys]
                asked.append((spec, family, entries, pair))
        await asyncio.gather(*(f for *_, pair in asked for f in pair))
        return [
            _judge(spec, entries, pair[0].result(), pair[1].result(), family)
            for spec, family, entries, pair in asked
        ]
    finally:
        if own and isinstance(resolver, DnsClient):
            resolver.close()


def _entries(spec: DnsList) -> list[tuple[str, tuple[str, str]]]:
    """(family, (always-listed entry, never-listed entry)) for each family ``spec`` serves."""
    if spec.kind != "ip":
        return [("", (spec.test_entry, "invalid"))]
    if not spec.ipv6:
        return [("", (spec.test_entry, "127.0.0.1"))]
    return [("IPv4", (spec.test_entry, "127.0.0.1")), ("IPv6", IPV6_ENTRIES)]


def _key(spec: DnsList, entry: str, family: str) -> str:
    if family == "IPv6":
        key = reverse_ipv6(entry)
    else:
        key = reverse_ip(entry) if spec.kind == "ip" else query_domain(entry)
    return key or entry


def _judge(
    spec: DnsList, entries: tuple[str, str], listed: Answer, unlisted: Answer, family: str = ""
) -> Health:
    shown = _show(listed)
    negative = _show(unlisted)
    problem = note = ""
    if listed.status is Status.LISTED:
        meanings = [spec.meaning(address) for address in listed.addresses]
        errors = [m.reason for m in meanings if m.kind is Kind.ERROR]
        unknown = [
            a for a, m in zip(listed.addresses, meanings, strict=True) if m.kind is Kind.UNKNOWN
        ]
        if errors:
            problem = f"the list refuses to answer: {errors[0]}"
        elif unknown:
            note = f"codes the configuration does not name: {', '.join(unknown)}"
    elif listed.status is Status.NOT_LISTED:
        problem = (
            f"its test entry {entries[0]} is not listed: a mistyped zone, or a resolver "
            "that cannot reach the list"
        )
        if family == "IPv6":
            problem += ", or a list without IPv6 entries (set ipv6 = false)"
    else:
        problem = f"{listed.status.value}: {listed.detail}"
    if not problem:
        if unlisted.status is Status.LISTED:
            problem = "it lists an entry no list may list: a wildcard zone, or a resolver that "
            problem += "rewrites NXDOMAIN"
        elif unlisted.status.failed:
            problem = f"{unlisted.status.value}: {unlisted.detail}"
    return Health(spec.name, spec.zone, entries, shown, negative, problem, note, family)


def _show(answer: Answer) -> str:
    if answer.status is Status.LISTED:
        return ",".join(answer.addresses)
    return str(answer.status.value)
