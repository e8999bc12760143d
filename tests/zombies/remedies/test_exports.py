"""The walled set's three exports: nftables, ipset restore, FreeRADIUS users.

Where ``nft`` or ``ipset`` is installed the files are also loaded by the tool itself (nft in
check mode; ipset in a network namespace of its own, so the host's sets are never touched);
otherwise the formats are checked by reading them back as the tools do.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from seawall.config import RemediationSettings
from seawall.zombies.remedies.exports import (
    IPSET_FILE,
    NFT_FILE,
    RADIUS_FILE,
    Walled,
    export_walled,
    render_ipset,
    render_nft,
    render_radius,
)

WALLED = [
    Walled("alice", ("192.0.2.10", "2001:db8::10")),
    Walled("bob", ("192.0.2.9",)),
    Walled('odd "name"\\x', ("198.51.100.1", "not an ip")),
    Walled("198.51.100.77", ("198.51.100.77",), account=False),
    Walled("evil\nname", ()),
]


def nft_sets(text: str) -> dict[str, set[str]]:
    """Each set's elements after ``nft -f`` runs the file: declarations, flushes, adds."""
    sets: dict[str, set[str]] = {}
    table = ""
    for line in text.splitlines():
        line = line.strip()
        if m := re.fullmatch(r"table (\w+) (\S+) \{", line):
            table = f"{m[1]} {m[2]}"
        elif m := re.fullmatch(r"set (\S+) \{", line):
            sets.setdefault(f"{table} {m[1]}", set())
        elif m := re.fullmatch(r"flush set (\w+ \S+) (\S+)", line):
            assert f"{m[1]} {m[2]}" in sets, f"flush of an undeclared set: {line}"
            sets[f"{m[1]} {m[2]}"].clear()
        elif m := re.fullmatch(r"add element (\w+ \S+) (\S+) \{ (.+) \}", line):
            sets[f"{m[1]} {m[2]}"].update(m[3].split(", "))
        else:
            assert line in ("", "}", "type ipv4_addr", "type ipv6_addr") or line.startswith("#")
    return sets


def ipset_restore(text: str, live: dict[str, set[str]] | None = None) -> dict[str, set[str]]:
    """The sets after ``ipset restore`` of ``text`` over ``live`` (ipset's semantics)."""
    sets = {k: set(v) for k, v in (live or {}).items()}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        verb, name, *rest = line.split()
        if verb == "create":
            assert rest[0] == "hash:ip"
            assert rest[1] == "family"
            assert rest[2] in ("inet", "inet6")
            assert rest[3:] == ["-exist"]
            sets.setdefault(name, set())
        elif verb == "flush":
            sets[name].clear()
        elif verb == "add":
            (address,) = rest
            assert (":" in address) == name.split("-new")[0].endswith("6")
            sets[name].add(address)
        elif verb == "swap":
            other = rest[0]
            sets[name], sets[other] = sets[other], sets[name]
        elif verb == "destroy":
            del sets[name]
        else:
            raise AssertionError(f"unknown ipset command: {line}")
    return sets


def radius_users(text: str) -> dict[str, dict[str, str]]:
    """FreeRADIUS users entries: name -> reply attributes (each entry falls through)."""
    entries: dict[str, dict[str, str]] = {}
    name = None
    for line in text.splitlines():
        if not line or line.startswith("#"):
            name = None
            continue
        if not line.startswith("\t"):
            assert line.startswith('"')
            assert line.endswith('"')
            name = re.sub(r"\\(.)", r"\1", line[1:-1])
            entries[name] = {}
            continue
        assert name is not None
        item = line.strip().rstrip(",")
        if item == "Fall-Through = Yes":
            assert not line.endswith(",")  # the last reply item ends the entry
            continue
        attr, op, value = item.split(" ", 2)
        assert op == ":="
        assert line.endswith(",")
        entries[name][attr] = value.strip('"')
    return entries


def test_nft_file_sets_exactly_the_walled_addresses() -> None:
    text = render_nft(
        ["192.0.2.9", "192.0.2.10"], ["2001:db8::10"], table="inet seawall", set_name="walled"
    )
    assert nft_sets(text) == {
        "inet seawall walled": {"192.0.2.9", "192.0.2.10"},
        "inet seawall walled6": {"2001:db8::10"},
    }
    empty = render_nft([], [], table="inet seawall", set_name="walled")
    assert nft_sets(empty) == {"inet seawall walled": set(), "inet seawall walled6": set()}
    with pytest.raises(ValueError, match="nft_table"):
        render_nft([], [], table="inet sea wall; drop", set_name="walled")


def test_ipset_file_swaps_in_the_new_set() -> None:
    text = render_ipset(["192.0.2.9"], ["2001:db8::10"], name="seawall-walled")
    before = {"seawall-walled": {"203.0.113.1"}, "seawall-walled6": set()}
    assert ipset_restore(text, before) == {
        "seawall-walled": {"192.0.2.9"},
        "seawall-walled6": {"2001:db8::10"},
    }
    assert ipset_restore(text) == ipset_restore(text, ipset_restore(text))  # idempotent
    with pytest.raises(ValueError, match="ipset_name"):
        render_ipset([], [], name="x" * 30)


def test_radius_users_file_quotes_names_and_falls_through() -> None:
    text = render_radius(
        ["bob", 'odd "name"\\x'], {"Filter-Id": "seawall-walled", "Session-Timeout": "600"}
    )
    assert radius_users(text) == {
        "bob": {"Filter-Id": "seawall-walled", "Session-Timeout": "600"},
        'odd "name"\\x': {"Filter-Id": "seawall-walled", "Session-Timeout": "600"},
    }
    with pytest.raises(ValueError, match="radius_attributes"):
        render_radius(["bob"], {"Filter-Id := x\n": "y"})


def test_export_writes_the_three_files_and_only_rewrites_changes(tmp_path: Path) -> None:
    settings = RemediationSettings()
    changed = export_walled(WALLED, settings, tmp_path)
    assert sorted(p.name for p in changed) == sorted([NFT_FILE, IPSET_FILE, RADIUS_FILE])
    sets = nft_sets((tmp_path / NFT_FILE).read_text())
    assert sets["inet seawall walled"] == {
        "192.0.2.9",
        "192.0.2.10",
        "198.51.100.1",
        "198.51.100.77",
    }
    assert sets["inet seawall walled6"] == {"2001:db8::10"}
    assert (
        ipset_restore((tmp_path / IPSET_FILE).read_text())["seawall-walled"]
        == sets["inet seawall walled"]
    )
    users = radius_users((tmp_path / RADIUS_FILE).read_text())
    assert sorted(users) == ["alice", "bob", 'odd "name"\\x']  # no address case, no newline
    assert users["alice"] == {"Filter-Id": "seawall-walled"}
    assert export_walled(WALLED, settings, tmp_path) == []
    assert export_walled(WALLED[:1], settings, tmp_path) != []
    assert radius_users((tmp_path / RADIUS_FILE).read_text()) == {
        "alice": {"Filter-Id": "seawall-walled"}
    }


@pytest.mark.skipif(shutil.which("nft") is None, reason="nft is not installed")
def test_nft_accepts_the_file(tmp_path: Path) -> None:
    export_walled(WALLED, RemediationSettings(), tmp_path)
    subprocess.run(["nft", "-c", "-f", str(tmp_path / NFT_FILE)], check=True, timeout=30)


@pytest.mark.skipif(
    shutil.which("ipset") is None or shutil.which("unshare") is None,
    reason="ipset is not installed",
)
def test_ipset_restores_the_file_in_a_namespace(tmp_path: Path) -> None:
    export_walled(WALLED, RemediationSettings(), tmp_path)
    path = tmp_path / IPSET_FILE
    script = f"ipset restore < {path} && ipset restore < {path} && ipset list seawall-walled"
    out = subprocess.run(
        ["unshare", "-n", "sh", "-c", script],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "192.0.2.10" in out.stdout
    assert "2001:db8" not in out.stdout
