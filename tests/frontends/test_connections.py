"""The connection table: caps, deadlines, and who is closed first to make room."""

from __future__ import annotations

import time

import pytest

from seawall.frontends.budget import Budget, OverBudget
from seawall.frontends.connections import BUSY, Conn, Table
from seawall.frontends.logsafe import printable


def conn(table: Table, client: str | None, closed: list[Conn]) -> Conn:
    c = Conn(client, close=lambda: closed.append(c))
    assert table.admit(client) == ""
    table.add(c)
    return c


def test_past_the_cap_the_longest_idle_or_slow_is_closed_first() -> None:
    table = Table(max_connections=3, max_per_client=10)
    closed: list[Conn] = []
    a, b, c = (conn(table, f"192.0.2.{i}", closed) for i in range(3))
    a.busy()  # being answered: never closed to make room
    b.reading(60)  # a request begun (slow, perhaps)
    c.idle(60)
    d = conn(table, "192.0.2.9", closed)
    assert closed == [b]  # b has been waiting longest (a is busy)
    assert b.closed_by == "evicted"
    assert table.conns == {a, c, d}
    c.reading(60)  # c moves to the back of the line: d is now the one waiting longest
    conn(table, "192.0.2.10", closed)
    assert closed == [b, d]


def test_with_every_connection_busy_a_new_one_is_refused() -> None:
    table = Table(max_connections=2, max_per_client=10)
    closed: list[Conn] = []
    for i in range(2):
        conn(table, f"192.0.2.{i}", closed).busy()
    assert "every one busy" in table.admit("192.0.2.7")
    assert closed == []
    assert table.stats()["refused"] == 1


def test_the_cap_per_client_refuses_without_closing_anything() -> None:
    table = Table(max_connections=100, max_per_client=2)
    closed: list[Conn] = []
    first = conn(table, "192.0.2.1", closed)
    conn(table, "192.0.2.1", closed)
    assert "2 connections from 192.0.2.1" in table.admit("192.0.2.1")
    assert table.admit("192.0.2.2") == ""
    table.remove(first)
    table.remove(first)  # twice is harmless
    assert table.admit("192.0.2.1") == ""
    assert closed == []


def test_sweep_closes_only_the_connections_past_their_deadline() -> None:
    table = Table(max_connections=10, max_per_client=10)
    closed: list[Conn] = []
    late, fresh, busy = (conn(table, None, closed) for _ in range(3))
    late.reading(0.5)
    fresh.idle(60)
    busy.busy()
    assert busy.phase == BUSY
    assert table.sweep(time.monotonic() + 1) == 1
    assert closed == [late]
    assert late.closed_by == "timeout"
    assert table.stats()["timed_out"] == 1
    assert table.conns == {fresh, busy}


def test_a_budget_refuses_bytes_beyond_its_limit_and_gets_them_back() -> None:
    budget = Budget(100)
    with budget.hold() as one, budget.hold() as two:
        one.take(60)
        with pytest.raises(OverBudget):
            two.take(41)
        two.take(40)
        assert budget.used == 100
    assert budget.used == 0
    assert budget.peak == 100


@pytest.mark.parametrize(
    ("value", "logged"),
    [
        pytest.param("4Kx1\nforged line", "4Kx1\\x0aforged line", id="newline"),
        pytest.param("a\rb\x1b[2Jc", "a\\x0db\\x1b[2Jc", id="escape-sequence"),
        pytest.param("x\u2028y\x85", "x\\u2028y\\x85", id="unicode-separators"),
        pytest.param(None, "-", id="none"),
        pytest.param("", "-", id="empty"),
        pytest.param("ok 192.0.2.1", "ok 192.0.2.1", id="plain"),
    ],
)
def test_printable_escapes_what_could_forge_a_line(value: str | None, logged: str) -> None:
    assert printable(value) == logged


def test_printable_bounds_the_length() -> None:
    assert printable("a" * 1000) == "a" * 256 + "..."
