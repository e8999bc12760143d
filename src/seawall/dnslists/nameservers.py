"""Which resolvers to ask: configured "ip[:port]" strings, or /etc/resolv.conf's."""

from __future__ import annotations

import ipaddress

from seawall.errors import ConfigError

Nameserver = tuple[str, int]  # (canonical address, port)


def parse_nameserver(text: str) -> Nameserver:
    """``"192.0.2.53"``, ``"192.0.2.53:5353"``, ``"2001:db8::53"`` or ``"[2001:db8::53]:5353"``.

    >>> parse_nameserver("[::1]:5353")
    ('::1', 5353)
    """
    host, port = text.strip(), "53"
    if host.startswith("["):
        host, _, rest = host[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ConfigError(f"dnsbl: bad nameserver {text!r}")
            port = rest[1:]
    elif host.count(":") == 1:
        host, port = host.split(":")
    try:
        address = ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise ConfigError(f"dnsbl: nameserver {text!r} is not an IP address or ip:port") from None
    if not 0 < number < 65536:
        raise ConfigError(f"dnsbl: bad port in nameserver {text!r}")
    return str(address), number


def system_nameservers() -> tuple[Nameserver, ...]:
    """The nameservers of /etc/resolv.conf, read by dnspython."""
    import dns.resolver

    try:
        resolver = dns.resolver.Resolver(configure=True)
    except (dns.resolver.NoResolverConfiguration, OSError) as exc:
        raise ConfigError(
            f"dnsbl: cannot read the system's nameservers ({exc}); set detectors.dnsbl.nameservers"
        ) from None
    found: list[Nameserver] = []
    for server in resolver.nameservers:
        if isinstance(server, str):
            found.append((str(ipaddress.ip_address(server)), int(resolver.port)))
        else:  # a dns.nameserver.Nameserver (DoH/DoT entries are not for us)
            address, port = getattr(server, "address", None), getattr(server, "port", None)
            if isinstance(address, str) and isinstance(port, int) and server.kind() == "Do53":
                found.append((str(ipaddress.ip_address(address)), port))
    if not found:
        raise ConfigError("dnsbl: /etc/resolv.conf names no nameserver; set nameservers")
    return tuple(found)
