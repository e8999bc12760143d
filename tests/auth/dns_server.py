"""A real authoritative DNS server for the SPF, DKIM and DMARC tests: NSD on loopback.

NSD (Debian package nsd, which ``make test`` installs) runs in the foreground (``-d``) on a
free 127.0.0.1 port with its own configuration, pid file, database and logs in a temporary
folder, as whatever user runs the tests.  It serves one zone, the root: every record a test
adds lives in it, so any other name is NXDOMAIN (with the root's SOA, negative TTL 60) and
a name with records of other types only is NODATA, as on the real DNS.

Records are a dict of owner name to records in zone-file form, type first (a TTL before the
type is allowed), built with :func:`txt` for TXT::

    auth_dns.add({
        "example.com": [txt("v=spf1 mx -all"), "MX 10 mail.example.com.", "A 192.0.2.10"],
        "mail.example.com": "A 192.0.2.129",
    })

Each change rewrites the zone with the next serial, checks it with nsd-checkzone, sends
NSD a SIGHUP and waits until it serves the new serial (some 50 ms).  Use them as:

- ``auth_dns`` (session): the server; ``auth_dns.nameserver`` for a DnsClient,
  ``auth_dns.client()`` for one with a fresh cache;
- ``dns_records`` (per test): ``dns_records({...})`` adds records that go at its end;
- ``with auth_dns.serving({...}):`` in a module-scoped fixture, for a module's zone.

Records are added to whatever is served already; tests that share the session should use
their own names (SPF's are under ``.spf.test`` and the RFC's ``example.com``/``.org``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rdatatype
import psutil
import pytest

from seawall.dnslists.cache import AnswerCache
from seawall.dnslists.client import DnsClient

Records = Mapping[str, str | Iterable[str]]


def txt(*texts: str) -> str:
    """A TXT record: each text split into quoted character-strings of at most 255 bytes
    (several texts give several strings explicitly, which a reader joins)."""
    strings: list[str] = []
    for text in texts:
        raw = text.encode()
        chunks = [raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""]
        strings += ['"' + _escape(chunk, quoted=True) + '"' for chunk in chunks]
    return "TXT " + " ".join(strings)


def _escape(raw: bytes, *, quoted: bool) -> str:
    """Zone-file text for bytes: anything but letters, digits, '-' and '_' (and in quotes,
    other printable characters but '"' and '\\') as \\DDD."""
    plain = _QUOTED if quoted else _BARE
    return "".join(chr(byte) if byte in plain else f"\\{byte:03d}" for byte in raw)


_BARE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_*")
_QUOTED = frozenset(range(0x20, 0x7F)) - frozenset(b'"\\')


def _owner(name: str) -> str:
    labels = name.rstrip(".").split(".")
    return ".".join(_escape(label.encode(), quoted=False) for label in labels) + "."


def _free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1, as NSD binds both (tests/ports.py)."""
    from tests.ports import free_port

    return free_port("both")


class AuthDns:
    """NSD serving the root zone built from :attr:`records`; ``start()`` then ``stop()``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.records: dict[str, list[str]] = {}
        self.port = 0
        self.serial = 1
        self.proc: subprocess.Popen[bytes] | None = None
        self._mtime = 0  # of the zone file, in ns: each rewrite moves it on

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def nameserver(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def client(self, **kw: object) -> DnsClient:
        """A DnsClient asking this server, with a cache of its own (close it after)."""
        kw.setdefault("cache", AnswerCache())
        return DnsClient([self.nameserver], **kw)  # type: ignore[arg-type]

    # Records

    def add(self, records: Records) -> None:
        for name, new in _normalise(records).items():
            self.records.setdefault(name, []).extend(new)
        self._reload()

    def remove(self, *batches: Records) -> None:
        for records in batches:
            for name, old in _normalise(records).items():
                kept = self.records.get(name, [])
                for record in old:
                    if record in kept:
                        kept.remove(record)
                if not kept:
                    self.records.pop(name, None)
        self._reload()

    @contextmanager
    def serving(self, records: Records) -> Iterator[AuthDns]:
        self.add(records)
        try:
            yield self
        finally:
            self.remove(records)

    # The server

    def start(self) -> None:
        binary = shutil.which("nsd", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
        if binary is None:
            raise RuntimeError("nsd is not installed; `make test` installs it")
        self.root.mkdir(parents=True, exist_ok=True)
        self._write_zone()
        for attempt in range(3):
            self.port = _free_port()
            conf = self._write_conf()
            log = (self.root / "nsd.out").open("ab")
            self.proc = subprocess.Popen(
                [binary, "-d", "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT
            )
            log.close()
            try:
                self._wait_serial(self.serial, 15.0)
                return
            except RuntimeError:
                self.stop()
                if attempt == 2:
                    raise

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def log(self) -> str:
        parts = []
        for name in ("nsd.out", "nsd.log"):
            path = self.root / name
            if path.exists():
                parts.append(path.read_text(errors="replace")[-3000:])
        return "\n".join(parts)

    def _write_conf(self) -> Path:
        root = self.root
        conf = root / "nsd.conf"
        conf.write_text(
            "server:\n"
            f"    ip-address: 127.0.0.1@{self.port}\n"
            "    do-ip6: no\n"
            "    server-count: 1\n"
            '    username: ""\n'
            '    chroot: ""\n'
            f'    zonesdir: "{root}"\n'
            f'    database: "{root}/nsd.db"\n'
            f'    zonelistfile: "{root}/zone.list"\n'
            f'    xfrdfile: "{root}/xfrd.state"\n'
            f'    xfrdir: "{root}"\n'
            f'    pidfile: "{root}/nsd.pid"\n'
            f'    logfile: "{root}/nsd.log"\n'
            "    verbosity: 1\n"
            "    hide-version: yes\n"
            "    zonefiles-check: yes\n"
            # Response rate limiting would drop or truncate a test's bursts from loopback.
            "    rrl-ratelimit: 0\n"
            "    rrl-whitelist-ratelimit: 0\n"
            "remote-control:\n"
            "    control-enable: no\n"
            "zone:\n"
            '    name: "."\n'
            '    zonefile: "root.zone"\n'
        )
        return conf

    def _write_zone(self) -> None:
        lines = [
            "$TTL 300",
            f". 300 IN SOA ns.nsd.test. hostmaster.nsd.test. {self.serial} 3600 600 86400 60",
            ". 300 IN NS ns.nsd.test.",
            "ns.nsd.test. 300 IN A 127.0.0.1",
        ]
        for name, records in self.records.items():
            owner = _owner(name)
            for record in records:
                ttl, _, rest = record.partition(" ")
                if ttl.isdigit():
                    lines.append(f"{owner} {ttl} IN {rest}")
                else:
                    lines.append(f"{owner} 300 IN {record}")
        zone = self.root / "root.zone"
        new = self.root / "root.zone.new"
        new.write_text("\n".join(lines) + "\n")
        checkzone = shutil.which("nsd-checkzone", path=os.environ.get("PATH", "") + ":/usr/sbin")
        if checkzone is not None:
            check = subprocess.run([checkzone, ".", str(new)], capture_output=True, text=True)
            if check.returncode != 0:
                raise ValueError(f"NSD refuses the zone: {check.stdout}{check.stderr}")
        new.replace(zone)
        # NSD reloads a zone file whose mtime changed; make sure it did, however fast.
        stamp = max(time.time_ns(), self._mtime + 1_000_000_000)
        self._mtime = stamp
        os.utime(zone, ns=(stamp, stamp))

    def _reload(self) -> None:
        self.serial += 1
        self._write_zone()
        if self.proc is None:
            return
        # NSD forks new server processes with the new zone; the old ones answer a few
        # more queries with the old data before they go.  Wait for both.
        old = self._servers()
        os.kill(self.proc.pid, signal.SIGHUP)
        self._wait_serial(self.serial, 10.0)
        deadline = time.monotonic() + 10.0
        while any(_alive(process) for process in old):
            if time.monotonic() > deadline:
                raise RuntimeError(f"nsd's old server processes did not end:\n{self.log()}")
            time.sleep(0.002)

    def _servers(self) -> list[psutil.Process]:
        """NSD's processes that answer queries: those without children of their own."""
        assert self.proc is not None
        try:
            family = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        return [process for process in family if _alive(process) and not process.children()]

    def _wait_serial(self, serial: int, within_s: float) -> None:
        query = dns.message.make_query(".", dns.rdatatype.SOA)
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"nsd exited:\n{self.log()}")
            try:
                reply = dns.query.udp(query, "127.0.0.1", port=self.port, timeout=0.2)
                if reply.answer and reply.answer[0][0].serial == serial:  # type: ignore[attr-defined]
                    return
            except (dns.exception.DNSException, OSError):
                pass
            time.sleep(0.01)
        raise RuntimeError(f"nsd did not serve serial {serial} within {within_s:g}s:\n{self.log()}")


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _normalise(records: Records) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in records.items():
        key = name.rstrip(".").lower()
        out.setdefault(key, []).extend([value] if isinstance(value, str) else list(value))
    return out


@pytest.fixture(scope="session")
def auth_dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthDns]:
    """NSD for the whole session, serving nothing but its root until tests add records."""
    server = AuthDns(tmp_path_factory.mktemp("nsd"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def dns_records(auth_dns: AuthDns) -> Iterator[Callable[[Records], None]]:
    """``dns_records({...})`` adds records for this test; they go when it ends."""
    added: list[Records] = []

    def add(records: Records) -> None:
        auth_dns.add(records)
        added.append(records)

    yield add
    if added:
        auth_dns.remove(*added)
