"""A private rbldnsd serving the zone file Seawall writes, reloading it every second
(``-c 1``), and DNS lookups in it with dnspython."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
from tests.integration.rbldnsd import _daemon_user, free_udp_port

ZONE = "zombies.seawall.test"


@contextmanager
def rbldnsd(
    root: Path, filename: str, up_check: str = "127.0.0.2", ipv6: str = ""
) -> Iterator[int]:
    """rbldnsd serving ``root/filename`` as ``ZONE`` (and ``root/ipv6``, an ip6trie file,
    in the same zone); yields its port once ``up_check`` answers (the file must list it)."""
    binary = shutil.which("rbldnsd", path=os.environ.get("PATH", "") + ":/usr/sbin")
    assert binary, "rbldnsd is not installed; `make test` installs it"
    root.chmod(0o755)
    port = free_udp_port()
    args = [binary, "-n", "-b", f"127.0.0.1/{port}", "-c", "1"]
    if os.geteuid() == 0:  # chroot into the folder, then drop to rbldnsd's own user
        args += ["-r", str(root), "-u", _daemon_user()]
    else:
        args += ["-w", str(root)]
    log_path = root.parent / f"rbldnsd-{port}.log"
    with log_path.open("wb") as log:
        zones = [f"{ZONE}:ip4set:{filename}", *([f"{ZONE}:ip6trie:{ipv6}"] if ipv6 else [])]
        proc = subprocess.Popen([*args, *zones], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 15
        while lookup(port, up_check) is None:
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "rbldnsd did not answer"
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def lookup(port: int, ip: str) -> tuple[str, str] | None:
    """(A, TXT) for ``ip`` in the zone, or None for NXDOMAIN; raises nothing on a timeout.
    An IPv6 address is asked by its 32 reversed nibbles (RFC 5782 §2.4)."""
    if ":" in ip:
        name = ipaddress.IPv6Address(ip).reverse_pointer.removesuffix(".ip6.arpa") + "." + ZONE
    else:
        name = ".".join(reversed(ip.split("."))) + "." + ZONE
    try:
        answer = dns.query.udp(
            dns.message.make_query(name, "ANY"), "127.0.0.1", port=port, timeout=0.5
        )
    except (dns.exception.Timeout, OSError):
        return None
    if answer.rcode() == dns.rcode.NXDOMAIN:
        return None
    a = txt = ""
    for rrset in answer.answer:
        for rdata in rrset:
            if rrset.rdtype == dns.rdatatype.A:
                a = rdata.to_text()
            elif rrset.rdtype == dns.rdatatype.TXT:
                txt = b"".join(rdata.strings).decode()
    return a, txt


def wait_for(port: int, ip: str, expected: tuple[str, str] | None) -> tuple[str, str] | None:
    """Query until rbldnsd answers ``expected`` (it reloads within a few seconds)."""
    deadline = time.monotonic() + 20
    got = lookup(port, ip)
    while got != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        got = lookup(port, ip)
    return got
