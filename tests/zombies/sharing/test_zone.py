"""The zombie zone: entries, classes, expiry, atomic rewrites, and a real rbldnsd serving it.

rbldnsd is started on the very file Seawall writes, checking it for changes every second
(``-c 1``), and queried over DNS with dnspython: a rewrite shows in its answers, an expired
entry leaves them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.zombies.sharing.rbl import lookup, rbldnsd, wait_for

from seawall.zombies.model import Zombie
from seawall.zombies.sharing.zone import (
    ZoneFile,
    parse_zone,
    render_zone,
    render_zone6,
    write_atomically,
    zone6_entries,
    zone_entries,
)

NOW = 1_800_000_000.0
ZONE = "zombies.seawall.test"


def zombie(ip: str, cls: str = "own", *, expires: float = NOW + 3600, **kw: object) -> Zombie:
    return Zombie(ip=ip, cls=cls, expires=expires, **kw)  # type: ignore[arg-type]


def test_entries_take_the_strongest_class_and_drop_the_expired_and_ipv6() -> None:
    entries = zone_entries(
        [
            zombie("198.51.100.7", "botnet", campaigns=("c1",)),
            zombie("198.51.100.7", "malware", expires=NOW + 60, campaigns=("c2",)),
            zombie("192.0.2.10", "own"),
            zombie("192.0.2.10", "botnet"),
            zombie("192.0.2.11", "own", expires=NOW - 1),
            zombie("2001:db8::1", "botnet"),
            zombie("not-an-ip", "botnet"),
        ],
        NOW,
    )
    assert [(e.ip, e.cls, e.code) for e in entries] == [
        ("192.0.2.10", "own", "127.0.0.2"),
        ("198.51.100.7", "malware", "127.0.0.4"),
    ]
    assert entries[1].expires == NOW + 3600  # the latest expiry of the address
    assert entries[1].campaigns == ("c1", "c2")


def test_render_and_parse_round_trip() -> None:
    entries = zone_entries([zombie("192.0.2.10"), zombie("203.0.113.5", "botnet")], NOW)
    text = render_zone(entries, dns_ttl_s=120, soa="ns.example. hm.example.", txt="a: b $")
    assert text.splitlines()[:2] == [
        "$TTL 120",
        "$SOA 120 ns.example. hm.example. 0 600 300 86400 120",
    ]
    assert "192.0.2.10 :127.0.0.2:a  b $" in text  # a colon would end rbldnsd's TXT field
    assert parse_zone(text) == {"192.0.2.10": "127.0.0.2", "203.0.113.5": "127.0.0.3"}


def test_write_is_atomic_skips_unchanged_and_moves_the_time_on(tmp_path: Path) -> None:
    path = tmp_path / "z.ip4set"
    assert write_atomically(path, "$TTL 1\n")
    inode = path.stat().st_ino
    first = path.stat().st_mtime
    assert not write_atomically(path, "$TTL 1\n")  # same text: untouched
    assert path.stat().st_ino == inode
    assert write_atomically(path, "$TTL 2\n")
    assert path.stat().st_ino != inode  # a new file renamed over the old one
    assert int(path.stat().st_mtime) > int(first)  # the same second would hide the change
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in tmp_path.iterdir()] == ["z.ip4set"]  # no temporary left


def test_a_failed_write_leaves_the_old_zone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "z.ip4set"
    write_atomically(path, "old\n")

    def broken(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, "new\n")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["z.ip4set"]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ZoneFile, int]]:
    """A ZoneFile and an rbldnsd serving that file, reloading it every second."""
    root = tmp_path / "rbldnsd"
    root.mkdir()
    tmp_path.chmod(0o755)
    zone = ZoneFile(
        root / "zombies.ip4set",
        dns_ttl_s=60,
        soa="ns.seawall.test. hm.seawall.test.",
        txt="zombie $",
    )
    zone.publish([zombie("127.0.0.2", "botnet")], now=NOW)  # RFC 5782 test entry: up-check
    with rbldnsd(root, "zombies.ip4set") as port:
        yield zone, port


def test_rbldnsd_serves_the_classes_and_follows_rewrites(served: tuple[ZoneFile, int]) -> None:
    zone, port = served
    zombies = [
        zombie("192.0.2.10", "own", case_id="c0ffee"),
        zombie("198.51.100.7", "botnet"),
        zombie("203.0.113.9", "malware", expires=NOW + 30),
    ]
    assert zone.publish(zombies, now=NOW)
    assert wait_for(port, "192.0.2.10", ("127.0.0.2", "zombie 192.0.2.10")) == (
        "127.0.0.2",
        "zombie 192.0.2.10",
    )
    assert lookup(port, "198.51.100.7") == ("127.0.0.3", "zombie 198.51.100.7")
    assert lookup(port, "203.0.113.9") == ("127.0.0.4", "zombie 203.0.113.9")
    assert lookup(port, "192.0.2.99") is None

    # Time passes: the malware entry expires, a new own zombie arrives; rewritten at once.
    zombies.append(zombie("192.0.2.20", "own"))
    assert zone.publish(zombies, now=NOW + 31)
    assert wait_for(port, "203.0.113.9", None) is None
    assert lookup(port, "192.0.2.20") == ("127.0.0.2", "zombie 192.0.2.20")
    assert lookup(port, "198.51.100.7") == ("127.0.0.3", "zombie 198.51.100.7")
    assert not zone.publish(zombies, now=NOW + 32)  # nothing changed: no rewrite


def test_ipv6_zombies_are_listed_by_their_prefix() -> None:
    zombies = [
        zombie("2001:db8:1:2::5", "botnet", campaigns=("c1",)),
        zombie("2001:db8:1:2:aaaa::9", "own", campaigns=("c2",)),  # the same /64
        zombie("2001:db8:1:3::5", "malware", expires=NOW - 1),  # expired
        zombie("2001:db8:ff::1", "botnet"),
        zombie("::ffff:192.0.2.10", "own"),  # IPv4-mapped: an IPv4 zombie
        zombie("192.0.2.11", "own"),
        zombie("not-an-ip", "botnet"),
    ]
    entries = zone6_entries(zombies, NOW)
    assert [(e.ip, e.cls, e.code) for e in entries] == [
        ("2001:db8:1:2::/64", "own", "127.0.0.2"),
        ("2001:db8:ff::/64", "botnet", "127.0.0.3"),
    ]
    assert entries[0].campaigns == ("c1", "c2")
    assert [e.ip for e in zone6_entries(zombies, NOW, prefix=48)] == [
        "2001:db8:1::/48",
        "2001:db8:ff::/48",
    ]
    assert [e.ip for e in zone_entries(zombies, NOW)] == ["192.0.2.10", "192.0.2.11"]
    text = render_zone6(entries, dns_ttl_s=60, txt="zombie $")
    assert text.splitlines() == [
        "$TTL 60",
        "2001:db8:1:2::/64 :127.0.0.2:zombie $",
        "2001:db8:ff::/64 :127.0.0.3:zombie $",
    ]


def test_rbldnsd_answers_ipv6_reverse_queries(tmp_path: Path) -> None:
    """The ip6trie file beside the ip4set one, in the same zone of a real rbldnsd: a
    nibble-reversed query for any address of a listed /64 answers with its class."""
    root = tmp_path / "rbldnsd"
    root.mkdir()
    tmp_path.chmod(0o755)
    zone = ZoneFile(
        root / "zombies.ip4set",
        dns_ttl_s=60,
        soa="ns.seawall.test. hm.seawall.test.",
        txt="zombie $",
        ipv6_path=root / "zombies.ip6trie",
    )
    zombies = [zombie("127.0.0.2", "botnet"), zombie("2001:db8:1:2::5", "own")]
    assert zone.publish(zombies, now=NOW)
    with rbldnsd(root, "zombies.ip4set", ipv6="zombies.ip6trie") as port:
        assert lookup(port, "2001:db8:1:2::5") == ("127.0.0.2", "zombie 2001:db8:1:2::5")
        # Another address of the subscriber's /64: listed too.
        assert lookup(port, "2001:db8:1:2:dead:beef:0:1") == (
            "127.0.0.2",
            "zombie 2001:db8:1:2:dead:beef:0:1",
        )
        assert lookup(port, "2001:db8:1:3::5") is None
        assert lookup(port, "127.0.0.2") == ("127.0.0.3", "zombie 127.0.0.2")
        # A new external zombie, and the own one expires: the IPv6 file is rewritten.
        zombies = [
            zombie("127.0.0.2", "botnet"),
            zombie("2001:db8:1:2::5", "own", expires=NOW + 10),
            zombie("2001:db8:77::1", "malware"),
        ]
        assert zone.publish(zombies, now=NOW + 11)
        assert wait_for(port, "2001:db8:77::1", ("127.0.0.4", "zombie 2001:db8:77::1")) == (
            "127.0.0.4",
            "zombie 2001:db8:77::1",
        )
        assert wait_for(port, "2001:db8:1:2::5", None) is None
