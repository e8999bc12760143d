"""The simulated ISP: pools and names, sessions without clashes, zombies, the RADIUS file."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest

from seawall.errors import ConfigError
from seawall.sim import Plan, SimMessage, SimSettings, World, build_world, write_radius_detail
from seawall.sim.world import BUSINESS, DIALUP, DSL, RELAYS, isp_rdns, pool_of

_HEADER = re.compile(r"^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}$")
_ATTRIBUTE = re.compile(r'^\t([A-Za-z-]+) = ("[^"]*"|\S+)$')


def parse_detail(text: str) -> list[dict[str, str]]:
    """A FreeRADIUS detail file read back: one dict per record, "_header" its time line."""
    assert text.endswith("\n\n")
    records = []
    for block in text[:-2].split("\n\n"):
        header, *lines = block.split("\n")
        assert _HEADER.match(header), header
        record = {"_header": header}
        for line in lines:
            match = _ATTRIBUTE.match(line)
            assert match, line
            record[match.group(1)] = match.group(2).strip('"')
        records.append(record)
    return records


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(SimSettings())


def test_same_seed_same_world_other_seed_other_world() -> None:
    assert build_world(SimSettings(seed=3)) == build_world(SimSettings(seed=3))
    one, other = build_world(SimSettings(seed=3)), build_world(SimSettings(seed=4))
    assert one.sessions != other.sessions
    assert [b.host for b in one.bots] != [b.host for b in other.bots]


def test_pools_and_reverse_names() -> None:
    assert isp_rdns("198.18.3.7") == "ppp-198-18-3-7.dialup.example.net"
    assert isp_rdns("198.19.0.9") == "dsl-198-19-0-9.dsl.example.net"
    assert isp_rdns("198.19.128.5") == "static-198-19-128-5.biz.example.net"
    assert isp_rdns("192.0.2.1") is None
    assert pool_of("198.19.200.1") is None  # between the business statics and the relays


def test_sessions_use_the_accounts_pool_and_never_share_an_address(world: World) -> None:
    pools = {"dialup": DIALUP, "dsl": DSL, "business": BUSINESS}
    kind = {a.name: a.pool for a in world.accounts}
    holders: dict[str, list[tuple[float, float]]] = {}
    for s in world.sessions:
        assert ipaddress.ip_address(s.ip) in pools[kind[s.account]]
        assert s.start < s.stop
        holders.setdefault(s.ip, []).append((s.start, s.stop))
    for spans in holders.values():
        spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
    # Dynamic addresses pass from one subscriber to another over the hours simulated.
    owners: dict[str, set[str]] = {}
    for s in world.sessions:
        owners.setdefault(s.ip, set()).add(s.account)
    assert any(len(o) > 1 for o in owners.values())


def test_every_dynamic_account_has_sessions_back_to_back(world: World) -> None:
    for account in world.accounts:
        sessions = [s for s in world.sessions if s.account == account.name]
        assert sessions
        assert sessions[0].start <= world.start - 3 * 3600
        assert all(a.stop <= b.start for a, b in zip(sessions, sessions[1:], strict=False))
        if account.infected:  # zombies' PCs stay on: they redial within a minute and a half
            assert all(b.start - a.stop <= 90 for a, b in zip(sessions, sessions[1:], strict=False))


def test_zombies_are_ours_and_foreign(world: World) -> None:
    ours = [b for b in world.bots if b.account is not None]
    foreign = [b.host for b in world.bots if b.host is not None]
    assert len(world.bots) == 200
    assert len(ours) == 60
    infected = {a.name for a in world.accounts if a.infected}
    assert {b.account for b in ours} == infected
    assert all(a.pool in ("dialup", "dsl") for a in world.accounts if a.infected)
    nets = {ipaddress.ip_network(f"{h.ip}/16", strict=False) for h in foreign}
    assert len(nets) >= 0.9 * len(foreign)
    assert all(ipaddress.ip_address(h.ip).is_global for h in foreign)
    unnamed = [h for h in foreign if h.rdns is None]
    assert 0 < len(unnamed) < len(foreign) / 2
    assert all(h.rdns.endswith(".example") for h in foreign if h.rdns)
    assert any(h.rdns.startswith("dyn-") and ".pool." in h.rdns for h in foreign if h.rdns)


def test_mail_hosts(world: World) -> None:
    assert [r.rdns for r in world.relays] == ["relay1.example.net", "relay2.example.net"]
    assert all(ipaddress.ip_address(r.ip) in RELAYS for r in world.relays)
    assert all(h.rdns == f"mail.{h.domain}" for h in world.legit)
    assert 2 <= len(world.esp) <= 3
    assert all(re.fullmatch(r"mta\d\.esp\.example\.com", h.rdns or "") for h in world.esp)


def test_settings_that_cannot_work_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="hours"):
        SimSettings(hours=0)
    with pytest.raises(ConfigError, match="speed"):
        SimSettings(speed=float("inf"))
    with pytest.raises(ConfigError, match="zombies"):
        SimSettings(zombies=0)


def test_radius_detail_round_trips(world: World, tmp_path: Path) -> None:
    path = tmp_path / "detail"
    written = write_radius_detail(world, path)
    records = parse_detail(path.read_text(encoding="ascii"))
    assert written == len(records)
    by_id = {(s.nas_ip, s.session_id): s for s in world.sessions}
    starts = stops = 0
    for r in records:
        session = by_id[(r["NAS-IP-Address"], r["Acct-Session-Id"])]
        assert r["User-Name"] == session.account
        assert r["Framed-IP-Address"] == session.ip
        at = int(r["Timestamp"])
        assert at <= world.end
        assert r["Acct-Unique-Session-Id"] == session.unique_id
        if r["Acct-Status-Type"] == "Start":
            starts += 1
            assert at == session.start
        else:
            assert r["Acct-Status-Type"] == "Stop"
            stops += 1
            assert at == session.stop
            assert int(r["Acct-Session-Time"]) == session.stop - session.start
    assert starts == sum(s.start <= world.end for s in world.sessions)
    assert stops == sum(s.stop <= world.end for s in world.sessions)
    times = [int(r["Timestamp"]) for r in records]
    assert times == sorted(times)
    assert records[0]["Event-Timestamp"].endswith(" UTC")


def test_radius_sessions_cover_what_infected_accounts_sent(
    quarter_plan: Plan, quarter: list[SimMessage], tmp_path: Path
) -> None:
    """What a later reader needs: (ip, time) of every zombie's copy maps back to its account."""
    world = quarter_plan.world
    write_radius_detail(world, tmp_path / "detail")
    spans: dict[str, list[tuple[str, int, float]]] = {}
    for r in parse_detail((tmp_path / "detail").read_text(encoding="ascii")):
        if r["Acct-Status-Type"] == "Start":
            spans.setdefault(r["Acct-Unique-Session-Id"], []).append(
                (r["Framed-IP-Address"], int(r["Timestamp"]), float("inf"))
            )
        else:
            ip, start, _ = spans[r["Acct-Unique-Session-Id"]][0]
            spans[r["Acct-Unique-Session-Id"]] = [(ip, start, float(r["Timestamp"]))]
    users = {}
    for r in parse_detail((tmp_path / "detail").read_text(encoding="ascii")):
        users[r["Acct-Unique-Session-Id"]] = r["User-Name"]
    checked = 0
    for message in quarter:
        truth = message.truth
        if truth.account is None or not truth.infected:
            continue
        owners = [
            users[uid]
            for uid, ((ip, start, stop),) in spans.items()
            if ip == truth.ip and start <= truth.at < stop
        ]
        assert owners == [truth.account]
        checked += 1
    assert checked > 500
