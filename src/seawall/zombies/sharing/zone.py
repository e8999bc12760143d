"""The rbldnsd ``ip4set`` zone of active zombies, rewritten atomically as it changes.

Each listed address answers with its evidence class (``CODES``): 127.0.0.2 an own
subscriber (a case notified or walled), 127.0.0.3 an external botnet address, 127.0.0.4
malware.  An address in more than one class answers with the strongest: malware, then
own, then botnet.  Entries leave the zone at their expiry (``Zombie.expires``).

The file is written beside itself and renamed over the old one, so rbldnsd (which reloads a
changed file on its own, ``-c``) never reads half a zone.  rbldnsd notices a change by the
file's modification time in whole seconds, so a rewrite within the second of the last one
gets the next second as its time: no change is missed.

IPv6 zombies go to a second file, an rbldnsd ``ip6trie`` dataset served in the same zone
(``zombies.example.net:ip4set:zombies.ip4set zombies.example.net:ip6trie:zombies.ip6trie``).
A subscriber is given a whole /64 (or more) and a bot may use any address in it, so an
IPv6 zombie is listed by its prefix (``ipv6_prefix``, /64 by default), as the big DNSBLs
list IPv6: a query for any address in it answers.  IPv4-mapped addresses count as IPv4.

Example::

    zone = ZoneFile(Path("/var/lib/rbldnsd/zombies.ip4set"), dns_ttl_s=300,
                    ipv6_path=Path("/var/lib/rbldnsd/zombies.ip6trie"))
    zone.publish(await cases.active_zombies(now), now=now)   # True if it rewrote a file
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from seawall.zombies.model import EvidenceClass, Zombie

log = logging.getLogger("seawall.zombies.zone")

CODES: dict[EvidenceClass, str] = {
    "own": "127.0.0.2",
    "botnet": "127.0.0.3",
    "malware": "127.0.0.4",
}
# Which class wins for an address listed in several.
_RANK: dict[EvidenceClass, int] = {"botnet": 0, "own": 1, "malware": 2}


@dataclass(frozen=True, slots=True)
class ZoneEntry:
    """One listed address, as the zone and the JSON feed show it."""

    ip: str
    cls: EvidenceClass
    code: str
    expires: float
    last_seen: float
    campaigns: tuple[str, ...]


def _address(zombie: Zombie) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(zombie.ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _merged(old: ZoneEntry | None, entry: ZoneEntry) -> ZoneEntry:
    """One entry for two listings of an address (or prefix): the strongest class, the
    latest expiry and sighting, every campaign."""
    if old is None:
        return entry
    cls = entry.cls if _RANK[entry.cls] > _RANK[old.cls] else old.cls
    return ZoneEntry(
        entry.ip,
        cls,
        CODES[cls],
        max(old.expires, entry.expires),
        max(old.last_seen, entry.last_seen),
        tuple(sorted({*old.campaigns, *entry.campaigns})),
    )


def _entry(key: str, zombie: Zombie) -> ZoneEntry:
    return ZoneEntry(
        key, zombie.cls, CODES[zombie.cls], zombie.expires, zombie.last_seen, zombie.campaigns
    )


def zone_entries(zombies: Iterable[Zombie], now: float) -> list[ZoneEntry]:
    """The unexpired IPv4 zombies, one entry an address (the strongest class, the latest
    expiry), sorted by address."""
    best: dict[ipaddress.IPv4Address, ZoneEntry] = {}
    for zombie in zombies:
        if zombie.expires <= now:
            continue
        address = _address(zombie)
        if address is None:
            log.warning("zone: not an address, left out: %r", zombie.ip)
            continue
        if isinstance(address, ipaddress.IPv4Address):
            best[address] = _merged(best.get(address), _entry(str(address), zombie))
    return [best[a] for a in sorted(best)]


def zone6_entries(zombies: Iterable[Zombie], now: float, prefix: int = 64) -> list[ZoneEntry]:
    """The unexpired IPv6 zombies, one entry per ``/prefix`` holding any of them (``ip``
    is the network, "2001:db8:1:2::/64"), merged as :func:`zone_entries` merges, sorted."""
    best: dict[ipaddress.IPv6Network, ZoneEntry] = {}
    for zombie in zombies:
        if zombie.expires <= now:
            continue
        address = _address(zombie)
        if isinstance(address, ipaddress.IPv6Address):
            net = ipaddress.IPv6Network((address, prefix), strict=False)
            best[net] = _merged(best.get(net), _entry(str(net), zombie))
    return [best[n] for n in sorted(best)]


def render_zone(
    entries: Iterable[ZoneEntry], *, dns_ttl_s: int, soa: str = "", txt: str = ""
) -> str:
    """The ip4set data file for ``entries``.

    rbldnsd's syntax: ``$TTL``, an optional ``$SOA`` (serial 0: the file's time), then one
    ``address :A-value:TXT`` line an address; ``$`` in the TXT is the queried address.
    """
    lines = [f"$TTL {dns_ttl_s}"]
    if soa:
        lines.append(f"$SOA {dns_ttl_s} {soa} 0 600 300 86400 {dns_ttl_s}")
    text = txt.replace(":", " ").replace("\n", " ")
    lines += [f"{e.ip} :{e.code}:{text}" for e in entries]
    return "\n".join(lines) + "\n"


def render_zone6(
    entries: Iterable[ZoneEntry], *, dns_ttl_s: int, soa: str = "", txt: str = ""
) -> str:
    """The ip6trie data file for ``entries`` (prefixes): the same ``$TTL`` and ``$SOA`` as
    the IPv4 file, then one ``prefix :A-value:TXT`` line a prefix."""
    return render_zone(entries, dns_ttl_s=dns_ttl_s, soa=soa, txt=txt)


def parse_zone(text: str) -> dict[str, str]:
    """Address -> A value of an ip4set file as :func:`render_zone` writes it (for checks)."""
    listed: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line.startswith(("$", "#", ":")):
            continue
        address, _, value = line.partition(" ")
        listed[address] = value.lstrip(":").partition(":")[0]
    return listed


def write_atomically(path: Path, text: str, *, mode: int = 0o644) -> bool:
    """Replace ``path`` with ``text`` by a rename; False when it already holds ``text``.

    The new file's modification time is moved past the old one's second when they would
    share it, so a reader that watches whole-second times sees every change.
    """
    data = text.encode()
    try:
        if path.read_bytes() == data:
            return False
        old_mtime: float | None = path.stat().st_mtime
    except FileNotFoundError:
        old_mtime = None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)  # rbldnsd reads it as its own user
        if old_mtime is not None and int(time.time()) <= int(old_mtime):
            later = int(old_mtime) + 1
            os.utime(tmp, (later, later))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return True


class ZoneFile:
    """The zone file of ``path`` (and of ``ipv6_path``, the IPv6 prefixes, when given);
    :meth:`publish` rewrites each when its entries change."""

    def __init__(
        self,
        path: Path,
        *,
        dns_ttl_s: int = 300,
        soa: str = "",
        txt: str = "",
        ipv6_path: Path | None = None,
        ipv6_prefix: int = 64,
    ) -> None:
        self.path = path
        self.dns_ttl_s = dns_ttl_s
        self.soa = soa
        self.txt = txt
        self.ipv6_path = ipv6_path
        self.ipv6_prefix = ipv6_prefix
        self.entries: list[ZoneEntry] = []
        self.entries6: list[ZoneEntry] = []

    def publish(self, zombies: Iterable[Zombie], *, now: float) -> bool:
        """Write the unexpired ``zombies``; True when a file changed."""
        zombies = list(zombies)
        self.entries = zone_entries(zombies, now)
        text = render_zone(self.entries, dns_ttl_s=self.dns_ttl_s, soa=self.soa, txt=self.txt)
        changed = write_atomically(self.path, text)
        if changed:
            log.info("zone %s: %d addresses", self.path, len(self.entries))
        if self.ipv6_path is None:
            return changed
        self.entries6 = zone6_entries(zombies, now, self.ipv6_prefix)
        text6 = render_zone6(self.entries6, dns_ttl_s=self.dns_ttl_s, soa=self.soa, txt=self.txt)
        if write_atomically(self.ipv6_path, text6):
            log.info("zone %s: %d IPv6 prefixes", self.ipv6_path, len(self.entries6))
            changed = True
        return changed
