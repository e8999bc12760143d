"""The walled set exported three ways: an nftables file, an ipset restore file, and a
FreeRADIUS ``users`` file for the NAS.

Each file replaces the whole set in one step when it is loaded, and is itself written
atomically (a rename), so a loader never sees half a set:

- ``walled.nft`` for ``nft -f``: declares the table and its two sets (``walled`` for IPv4,
  ``walled6`` for IPv6), flushes them and adds the elements; nft applies a file as one
  transaction.  The operator's own rules use the sets, e.g. ``ip saddr @walled tcp dport 25
  drop`` and a DNAT of port 80 to the garden.
- ``walled.ipset`` for ``ipset restore``: fills a ``-new`` set and swaps it with the live one
  (``hash:ip``, ``family inet``, and ``inet6`` for the ``6`` set), then destroys the spare.
- ``walled.users`` for FreeRADIUS's files module: each walled account gets the garden's
  reply attributes (``Filter-Id`` by default) with ``Fall-Through = Yes``, so the NAS gardens
  the account's next session whatever address it is given.

Example::

    paths = export_walled([Walled("alice", ("192.0.2.10",))], settings, Path("/var/lib/seawall"))
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from seawall.config import RemediationSettings
from seawall.zombies.sharing.zone import write_atomically

log = logging.getLogger("seawall.zombies.exports")

NFT_FILE = "walled.nft"
IPSET_FILE = "walled.ipset"
RADIUS_FILE = "walled.users"
HEADER = "Seawall's walled garden, written as it changes; do not edit"

# nft and ipset names: letters, digits, and a few punctuation marks, never a space.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,27}")
_FAMILIES = ("ip", "ip6", "inet", "arp", "bridge", "netdev")
# A RADIUS attribute name as FreeRADIUS dictionaries spell them.
_ATTRIBUTE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True, slots=True)
class Walled:
    """One walled account (or address case) and the addresses it holds now."""

    subject: str  # the account, else the address
    ips: tuple[str, ...]
    account: bool = True  # False: an address case, nothing for the RADIUS file


def _split(walled: Iterable[Walled]) -> tuple[list[str], list[str]]:
    """The IPv4 and the IPv6 addresses, each sorted once; bad ones are logged and left out."""
    v4: set[ipaddress.IPv4Address] = set()
    v6: set[ipaddress.IPv6Address] = set()
    for item in walled:
        for text in item.ips:
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                log.warning("walled set: not an address, left out: %r", text)
                continue
            if isinstance(address, ipaddress.IPv4Address):
                v4.add(address)
            else:
                v6.add(address)
    return [str(a) for a in sorted(v4)], [str(a) for a in sorted(v6)]


def _table(spec: str) -> tuple[str, str]:
    family, _, name = spec.strip().partition(" ")
    if family not in _FAMILIES or not _NAME.fullmatch(name.strip()):
        raise ValueError(f"remediation.nft_table: expected 'FAMILY NAME', got {spec!r}")
    return family, name.strip()


def render_nft(v4: Sequence[str], v6: Sequence[str], *, table: str, set_name: str) -> str:
    """The ``nft -f`` file that makes the two sets hold exactly ``v4`` and ``v6``."""
    family, name = _table(table)
    if not _NAME.fullmatch(set_name):
        raise ValueError(f"remediation.nft_set: not a set name: {set_name!r}")
    lines = [
        f"# {HEADER}",
        f"table {family} {name} {{",
        f"\tset {set_name} {{",
        "\t\ttype ipv4_addr",
        "\t}",
        f"\tset {set_name}6 {{",
        "\t\ttype ipv6_addr",
        "\t}",
        "}",
        f"flush set {family} {name} {set_name}",
        f"flush set {family} {name} {set_name}6",
    ]
    for suffix, addresses in (("", v4), ("6", v6)):
        if addresses:
            elements = ", ".join(addresses)
            lines.append(f"add element {family} {name} {set_name}{suffix} {{ {elements} }}")
    return "\n".join(lines) + "\n"


def render_ipset(v4: Sequence[str], v6: Sequence[str], *, name: str) -> str:
    """The ``ipset restore`` file that swaps in sets holding exactly ``v4`` and ``v6``."""
    if not _NAME.fullmatch(name) or len(name) > 26:  # ipset names end at 31 with "6-new"
        raise ValueError(f"remediation.ipset_name: not a set name: {name!r}")
    lines = [f"# {HEADER}"]
    for suffix, family, addresses in (("", "inet", v4), ("6", "inet6", v6)):
        live, new = f"{name}{suffix}", f"{name}{suffix}-new"
        lines += [
            f"create {live} hash:ip family {family} -exist",
            f"create {new} hash:ip family {family} -exist",
            f"flush {new}",
            *(f"add {new} {address}" for address in addresses),
            f"swap {new} {live}",
            f"destroy {new}",
        ]
    return "\n".join(lines) + "\n"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_radius(accounts: Iterable[str], attributes: Mapping[str, str]) -> str:
    """The FreeRADIUS ``users`` entries giving each account the garden's reply attributes."""
    for attribute in attributes:
        if not _ATTRIBUTE.fullmatch(attribute):
            raise ValueError(f"remediation.radius_attributes: not an attribute: {attribute!r}")
    lines = [f"# {HEADER}"]
    for account in sorted(set(accounts)):
        if not account or any(ord(c) < 32 or ord(c) == 127 for c in account):
            log.warning("walled set: account name unfit for RADIUS, left out: %r", account)
            continue
        lines.append(_quote(account))
        lines += [f"\t{name} := {_quote(value)}," for name, value in attributes.items()]
        lines += ["\tFall-Through = Yes", ""]
    return "\n".join(lines) + "\n"


def export_dir(settings: RemediationSettings, state_dir: str) -> Path:
    """Where the files go: ``[remediation] export_dir``, else the state folder."""
    return Path(settings.export_dir or state_dir)


def export_walled(
    walled: Iterable[Walled], settings: RemediationSettings, directory: Path
) -> list[Path]:
    """Write the three files for ``walled``; the paths of those that changed."""
    items = list(walled)
    v4, v6 = _split(items)
    files = {
        NFT_FILE: render_nft(v4, v6, table=settings.nft_table, set_name=settings.nft_set),
        IPSET_FILE: render_ipset(v4, v6, name=settings.ipset_name),
        RADIUS_FILE: render_radius(
            (w.subject for w in items if w.account), settings.radius_attributes
        ),
    }
    changed = []
    for name, text in files.items():
        path = directory / name
        if write_atomically(path, text, mode=0o640):
            changed.append(path)
    if changed:
        log.info("walled set: %d accounts, %d addresses exported", len(items), len(v4) + len(v6))
    return changed
