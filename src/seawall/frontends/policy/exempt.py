"""Sources the policy service never limits: the ISP's relays and the allowlist.

``[trusted] networks`` are exempt too, but trusting a network also changes how the scanners
read its Received headers (its hops are ours).  The ISP's own relays (``[isp] relays``) and
big legitimate senders (``[serve.policy] allow_networks`` and ``allow_hosts``) only need to
pass the rate limits and the spam history: they send more than any one subscriber, and
deferring them delays everybody's mail.  Their messages are still scanned as any other.

A host name is matched against Postfix's ``client_name``: the reverse name of the client's
address, kept only when a forward lookup of that name gives the address back (Postfix sends
``unknown`` otherwise).  ``reverse_client_name``, the bare PTR, is never used: whoever holds
an address block writes its PTR records, so a spammer could name its bots
``mail-1.google.com``; the forward lookup in google.com is Google's alone.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from seawall.addresses import Networks
from seawall.config import Config
from seawall.errors import ConfigError


class HostNames:
    """Host names and suffixes: ``mx.example.org`` matches that name only, ``.google.com``
    any name under google.com (not google.com itself).  Case and a final dot do not matter.

    >>> HostNames((".google.com", "mx.example.org")).match("MAIL-ed1-f41.google.com.")
    '.google.com'
    """

    __slots__ = ("_names", "_suffixes")

    def __init__(self, entries: Iterable[str], *, where: str = "hosts") -> None:
        names: dict[str, str] = {}
        suffixes: dict[str, str] = {}
        for entry in entries:
            name = entry.strip().lower().rstrip(".")
            under = name.startswith(".")
            name = name.removeprefix(".")
            labels = name.split(".")
            if not name or not all(labels) or any(c.isspace() for c in name):
                raise ConfigError(f"{where}: {entry!r} is not a host name or .suffix")
            if under:
                suffixes[name] = entry
            else:
                names[name] = entry
        self._names = names
        self._suffixes = suffixes

    def __bool__(self) -> bool:
        return bool(self._names or self._suffixes)

    def match(self, name: str) -> str | None:
        """The entry ``name`` matches, as configured; None for no match or ``unknown``."""
        name = name.strip().lower().rstrip(".")
        if not name or name == "unknown":
            return None
        found = self._names.get(name)
        if found is not None:
            return found
        labels = name.split(".")
        for i in range(1, len(labels)):
            found = self._suffixes.get(".".join(labels[i:]))
            if found is not None:
                return found
        return None


class Exemptions:
    """``[isp] relays``, ``allow_networks`` and ``allow_hosts``, parsed once per configuration.

    Raises ConfigError for a network or name that does not parse.
    """

    __slots__ = ("hosts", "networks", "relays")

    def __init__(
        self, relays: Iterable[str], networks: Iterable[str], hosts: Iterable[str]
    ) -> None:
        self.relays = Networks(relays, where="isp.relays")
        self.networks = Networks(networks, where="serve.policy.allow_networks")
        self.hosts = HostNames(hosts, where="serve.policy.allow_hosts")

    @classmethod
    def of(cls, config: Config) -> Exemptions:
        """The shared instance for this configuration's keys."""
        policy = config.serve.policy
        return _exemptions(
            tuple(config.isp.relays), tuple(policy.allow_networks), tuple(policy.allow_hosts)
        )

    def reason(self, address: str, client_name: str) -> str | None:
        """Why this client is exempt (``relay``, ``allow_network``, ``allow_host``), or None.

        ``address`` is the client's address as text, ``client_name`` Postfix's verified name.
        """
        if self.relays.contains(address):
            return "relay"
        if self.networks.contains(address):
            return "allow_network"
        if self.hosts and self.hosts.match(client_name) is not None:
            return "allow_host"
        return None


NONE = Exemptions((), (), ())


@functools.lru_cache(maxsize=16)
def _exemptions(
    relays: tuple[str, ...], networks: tuple[str, ...], hosts: tuple[str, ...]
) -> Exemptions:
    return Exemptions(relays, networks, hosts)
