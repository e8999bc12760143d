"""The shared secret of each NAS that sends accounting, by the address it sends from.

FreeRADIUS keeps one ``client`` per NAS or network of NASes, each with its own secret, and
picks the one a request's source address falls in.  So does the accounting listener
(``[[accounting.clients]]``): the most specific network holding the datagram's source
address gives the secret its Request Authenticator must verify with; an address in no
client network is checked with ``[accounting] secret`` when one is set, and is dropped
otherwise.  A NAS sending from an IPv4-mapped IPv6 address (a dual-stack socket) is
matched by its IPv4 address.

Example::

    secrets = nas_secrets(config.accounting)
    secrets.secret_for("192.0.2.10")   # b"the NAS's secret", or None: not a client
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from pathlib import Path

from seawall.config import AccountingSettings
from seawall.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def read_secret(secret: str, secret_file: str, where: str) -> bytes:
    """``secret``, else the first line of ``secret_file``; b"" when neither is set.
    ConfigError when the file cannot be read or is empty."""
    if secret:
        return secret.encode()
    if not secret_file:
        return b""
    try:
        lines = Path(secret_file).read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}.secret_file: {exc}") from None
    if not lines or not lines[0].strip():
        raise ConfigError(f"{where}.secret_file: {secret_file} is empty")
    return lines[0].strip().encode()


class NasSecrets:
    """Source address -> shared secret (see the module docstring)."""

    def __init__(self, clients: Iterable[tuple[str, bytes]], default: bytes = b"") -> None:
        nets: list[tuple[Network, bytes]] = []
        for text, secret in clients:
            try:
                nets.append((ipaddress.ip_network(text, strict=False), secret))
            except ValueError:
                raise ConfigError(
                    f"accounting.clients: not an address or network: {text!r}"
                ) from None
        # The most specific network first: a NAS's own entry beats its pool's.
        self.clients = sorted(nets, key=lambda n: -n[0].prefixlen)
        self.default = default

    def __bool__(self) -> bool:
        return bool(self.clients or self.default)

    def secret_for(self, ip: str) -> bytes | None:
        """The secret to check a request from ``ip`` with; None: not a client, drop it."""
        try:
            address = ipaddress.ip_address(ip.partition("%")[0])
        except ValueError:
            return None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        for network, secret in self.clients:
            if address.version == network.version and address in network:
                return secret
        return self.default or None


def nas_secrets(settings: AccountingSettings) -> NasSecrets:
    """The listener's secrets from ``[accounting]``: each client's, and ``secret`` (or
    ``secret_file``) for the rest.  ConfigError for an unreadable secret file or an
    address that is not one."""
    clients = [
        (c.address, read_secret(c.secret, c.secret_file, f"accounting.clients[{n}]"))
        for n, c in enumerate(settings.clients)
    ]
    default = read_secret(settings.secret, settings.secret_file, "accounting")
    return NasSecrets(clients, default)
