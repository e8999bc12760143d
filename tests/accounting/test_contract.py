"""One contract over every backend: who held an address when, exact to the second."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.accounting.conftest import open_backend

from seawall.accounting import Record, Sessions, Status

T0 = 1_795_000_000.0
NAS = "192.0.2.1"


def start(t: float, sid: str, user: str, ip: str, nas: str = NAS) -> Record:
    return Record(Status.START, T0 + t, nas, sid, user, (ip,))


def interim(t: float, sid: str, user: str, ip: str, up: float | None, nas: str = NAS) -> Record:
    return Record(Status.INTERIM, T0 + t, nas, sid, user, (ip,), up)


def stop(t: float, sid: str, user: str, ip: str, up: float | None, nas: str = NAS) -> Record:
    return Record(Status.STOP, T0 + t, nas, sid, user, (ip,), up)


async def holder(sessions: Sessions, ip: str, t: float) -> str | None:
    found = await sessions.who(ip, T0 + t)
    return None if found is None else found.account


async def test_ip_reuse_within_the_hour_is_exact_to_the_second(sessions: Sessions) -> None:
    ip = "198.19.0.7"
    await sessions.add(
        [
            start(0, "A1", "alice", ip),
            stop(600, "A1", "alice", ip, 600),
            start(600, "B1", "bob", ip),  # handed out in the second alice gave it back
            stop(1500, "B1", "bob", ip, 900),
            start(1501, "C1", "carol", ip),
        ]
    )
    expected = {
        -1: None,
        0: "alice",
        599: "alice",
        599.999: "alice",
        600: "bob",
        1499: "bob",
        1500: None,
        1500.5: None,
        1501: "carol",
        86400: "carol",
    }
    for t, who in expected.items():
        assert await holder(sessions, ip, t) == who, t


async def test_a_session_known_only_from_an_interim_update(sessions: Sessions) -> None:
    ip = "198.19.0.8"
    await sessions.add([interim(1000, "X", "xavier", ip, 400)])
    assert await holder(sessions, ip, 599) is None
    assert await holder(sessions, ip, 600) == "xavier"  # 1000 - 400 seconds up
    found = await sessions.who(ip, T0 + 2000)
    assert found is not None
    assert (found.start, found.stop, found.nas, found.session_id) == (T0 + 600, None, NAS, "X")


async def test_a_late_stop_and_a_late_start(sessions: Sessions) -> None:
    ip = "198.19.0.9"
    # The Stop of alice's session arrives after bob's Start on the same address, and her
    # Start arrives last of all.
    await sessions.add([interim(300, "A", "alice", ip, 200)])
    await sessions.add([start(900, "B", "bob", ip)])
    await sessions.add([stop(800, "A", "alice", ip, 750)])
    await sessions.add([start(50, "A", "alice", ip)])
    assert await holder(sessions, ip, 49) is None
    assert await holder(sessions, ip, 50) == "alice"  # the Start's own time wins
    assert await holder(sessions, ip, 799) == "alice"
    assert await holder(sessions, ip, 800) is None
    assert await holder(sessions, ip, 900) == "bob"
    history = await sessions.history(ip, T0, T0 + 1000)
    assert [(s.account, s.start - T0, s.stop) for s in history] == [
        ("alice", 50, T0 + 800),
        ("bob", 900, None),
    ]


async def test_a_late_interim_never_reopens_a_session(sessions: Sessions) -> None:
    ip = "198.19.0.10"
    await sessions.add([start(0, "A", "alice", ip), stop(100, "A", "alice", ip, 100)])
    await sessions.add([interim(90, "A", "alice", ip, 90)])
    assert await holder(sessions, ip, 99) == "alice"
    assert await holder(sessions, ip, 100) is None


async def test_accounting_on_closes_every_open_session_of_its_nas(sessions: Sessions) -> None:
    await sessions.add(
        [
            start(0, "A", "alice", "198.19.1.1"),
            start(10, "B", "bob", "198.19.1.2"),
            start(20, "C", "carol", "198.19.1.3", nas="192.0.2.2"),  # another NAS
            start(30, "D", "dave", "198.19.1.4"),
            stop(40, "D", "dave", "198.19.1.4", 10),
            Record(Status.ON, T0 + 100, NAS),  # the NAS rebooted
            start(150, "E", "erin", "198.19.1.1"),
        ]
    )
    assert await holder(sessions, "198.19.1.1", 99) == "alice"
    assert await holder(sessions, "198.19.1.1", 100) is None
    assert await holder(sessions, "198.19.1.1", 150) == "erin"
    assert await holder(sessions, "198.19.1.2", 100) is None
    assert await holder(sessions, "198.19.1.3", 100) == "carol"
    assert await holder(sessions, "198.19.1.4", 35) == "dave"
    # The Stop that the reboot lost arrives later: its exact time wins.
    await sessions.add([stop(95, "B", "bob", "198.19.1.2", 85)])
    assert await holder(sessions, "198.19.1.2", 94) == "bob"
    assert await holder(sessions, "198.19.1.2", 95) is None
    # Accounting-Off (the NAS shut down) closes erin's session the same way.
    await sessions.add([Record(Status.OFF, T0 + 200, NAS)])
    assert await holder(sessions, "198.19.1.1", 199) == "erin"
    assert await holder(sessions, "198.19.1.1", 200) is None


async def test_a_stop_without_an_address_finds_its_open_session(sessions: Sessions) -> None:
    await sessions.add([start(0, "A", "alice", "198.19.2.1")])
    await sessions.add([Record(Status.STOP, T0 + 60, NAS, "A", "alice", (), 60)])
    assert await holder(sessions, "198.19.2.1", 59) == "alice"
    assert await holder(sessions, "198.19.2.1", 60) is None


async def test_a_stop_without_an_address_in_the_batch_of_its_start(sessions: Sessions) -> None:
    await sessions.add(
        [start(0, "A", "alice", "198.19.2.2"), Record(Status.STOP, T0 + 60, NAS, "A", "", ())]
    )
    assert await holder(sessions, "198.19.2.2", 59) == "alice"
    assert await holder(sessions, "198.19.2.2", 60) is None


async def test_the_same_records_twice_change_nothing(sessions: Sessions) -> None:
    records = [
        start(0, "A", "alice", "198.19.3.1"),
        interim(300, "A", "alice", "198.19.3.1", 300),
        stop(600, "A", "alice", "198.19.3.1", 600),
        Record(Status.ON, T0 + 700, NAS),
    ]
    assert await sessions.add(records) > 0
    assert await sessions.add(records) == 0
    assert [s.account for s in await sessions.history("198.19.3.1", T0, T0 + 1000)] == ["alice"]


async def test_a_lost_stop_is_ended_by_the_next_session(sessions: Sessions) -> None:
    ip = "198.19.4.1"
    await sessions.add([start(0, "A", "alice", ip), start(500, "B", "bob", ip)])
    assert await holder(sessions, ip, 499) == "alice"
    assert await holder(sessions, ip, 500) == "bob"
    history = await sessions.history(ip, T0 + 600, T0 + 700)
    assert [s.account for s in history] == ["bob"]
    history = await sessions.history(ip, T0, T0 + 700)
    assert [(s.account, s.stop) for s in history] == [("alice", T0 + 500), ("bob", None)]


async def test_a_lost_stop_before_a_session_that_stopped(sessions: Sessions) -> None:
    ip = "198.19.4.2"
    await sessions.add([start(0, "A", "alice", ip), start(500, "B", "bob", ip)])
    await sessions.add([stop(600, "B", "bob", ip, 100)])
    history = await sessions.history(ip, T0, T0 + 1000)
    assert [(s.account, s.stop) for s in history] == [("alice", T0 + 500), ("bob", T0 + 600)]
    assert [s.account for s in await sessions.history(ip, T0 + 550, T0 + 560)] == ["bob"]
    assert await sessions.history(ip, T0 + 700, T0 + 800) == []
    assert await holder(sessions, ip, 700) is None


async def test_sessions_of_an_account(sessions: Sessions) -> None:
    await sessions.add(
        [
            start(0, "A1", "alice", "198.19.5.1"),
            stop(100, "A1", "alice", "198.19.5.1", 100),
            start(200, "A2", "alice", "198.19.5.2"),
            start(250, "B1", "bob", "198.19.5.3"),
        ]
    )
    got = await sessions.sessions_of("alice", T0, T0 + 1000)
    assert [(s.ip, s.start - T0) for s in got] == [("198.19.5.1", 0), ("198.19.5.2", 200)]
    got = await sessions.sessions_of("alice", T0 + 150, T0 + 1000)
    assert [s.ip for s in got] == ["198.19.5.2"]
    assert await sessions.sessions_of("alice", T0 - 100, T0 - 50) == []
    assert await sessions.sessions_of("nobody", T0, T0 + 1000) == []


async def test_ipv6_prefixes_hold_their_addresses(sessions: Sessions) -> None:
    await sessions.add(
        [
            Record(Status.START, T0, NAS, "V", "victor", ("198.19.6.1", "2001:db8:1:100::/56")),
            Record(Status.START, T0, NAS, "W", "wendy", ("2001:db8:2::/64",)),
        ]
    )
    assert await holder(sessions, "2001:db8:1:1ff::25", 1) == "victor"
    assert await holder(sessions, "198.19.6.1", 1) == "victor"
    assert await holder(sessions, "2001:db8:2::1", 1) == "wendy"
    assert await holder(sessions, "::ffff:198.19.6.1", 1) == "victor"
    assert await holder(sessions, "2001:db8:3::1", 1) is None
    with pytest.raises(ValueError, match="not an IP address"):
        await sessions.who("not-an-ip", T0)


@pytest.mark.parametrize("backend", ["sqlite", "redis", "redis-cluster"])
async def test_retention_drops_what_ended_long_before(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    sessions = open_backend(backend, request, tmp_path, retention_s=3600.0)
    try:
        ip = "198.19.7.1"
        records = []
        for i in range(50):  # one session an hour, for 50 hours
            records += [start(i * 3600, f"S{i}", f"user{i}", ip)]
            records += [stop(i * 3600 + 1800, f"S{i}", f"user{i}", ip, 1800)]
        for record in records:  # one by one, as they arrive
            await sessions.add([record])
        kept = await sessions.history(ip, 0, T0 + 10**6)
        # What ended more than an hour before the newest record is gone: at most the last
        # two sessions are left, and the newest is answered exactly.
        assert 1 <= len(kept) <= 2
        assert await holder(sessions, ip, 49 * 3600) == "user49"
        assert await holder(sessions, ip, 3 * 3600) is None
    finally:
        await sessions.close()
