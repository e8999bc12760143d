"""DNS block lists: list definitions, the query codec, the answer cache and the UDP client.

The detector (``seawall.detectors.dnsbl``) plans the lookups of a message from the names
``names`` finds in it (link domains, the sender's names); this package asks them:
``DnsClient.lookup(name, timeout_s)`` sends at once and returns a future of an
:class:`Answer`, served from the :class:`AnswerCache` when it can be.  The same client
asks other record types for ``seawall.auth`` (SPF, DKIM, DMARC):
``DnsClient.resolve(name, RdType.TXT, timeout_s)``, its records in ``Answer.records``.
"""

from __future__ import annotations

from seawall.dnslists.answer import Answer, Status
from seawall.dnslists.cache import AnswerCache, CacheStats
from seawall.dnslists.client import ClientStats, DnsClient, RecordResolver, Resolver
from seawall.dnslists.lists import DnsList, Kind, Meaning, compile_lists
from seawall.dnslists.nameservers import parse_nameserver, system_nameservers
from seawall.dnslists.wire import RdType

__all__ = [
    "Answer",
    "AnswerCache",
    "CacheStats",
    "ClientStats",
    "DnsClient",
    "DnsList",
    "Kind",
    "Meaning",
    "RdType",
    "RecordResolver",
    "Resolver",
    "Status",
    "compile_lists",
    "parse_nameserver",
    "system_nameservers",
]
