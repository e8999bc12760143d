"""A case list answered from the store's indexes gives what a read of every case gives.

The case list (dashboard, API, ``seawall cases``, the remedies, every /metrics scrape) asks
the backend for a page and a count by state; SQLite answers from an index by state and time
and a table of what a case is found by (addresses, campaigns), Redis from a sorted set per
state and a set per address and campaign.  Each answer here is compared with a plain
filter-and-sort over ``case_rows()`` (every case, decoded) on a few hundred generated
cases with transitions, notes, reopened cases, ties in time and addresses and campaigns
that fell off a case's bounded lists.
"""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter
from collections.abc import Sequence

import pytest

from seawall.zombies.model import ALLOWED, STATES, Case, Evidence, State, evidence_id
from seawall.zombies.redis_book import RedisBook
from seawall.zombies.rules import MAX_CAMPAIGNS, MAX_IPS, Row, to_case
from seawall.zombies.sqlite_book import SqliteBook
from seawall.zombies.store import CaseBook, case_terms

T0 = 1_700_000_000.0
IPS = [f"10.9.{n // 250}.{n % 250}" for n in range(40)]
CAMPAIGNS = [f"camp{n}" for n in range(12)]


def ev(n: int, *, account: str | None, ip: str, campaign: str = "", own: bool = True) -> Evidence:
    """Evidence heavy enough to open a case alone."""
    return Evidence(
        id=evidence_id("idx", n, ip, account or ""),
        source="verdict",
        kind="spam",
        at=T0 + n,
        ip=ip,
        account=account,
        own=own,
        campaign=campaign,
        weight=50.0,
    )


async def generate(book: CaseBook, seed: int = 7, subjects: int = 240) -> None:
    """``subjects`` cases (two thirds accounts, the rest own addresses), external addresses
    beside them, transitions and notes at a few shared times (ties), reopenings, and one
    account with more addresses and campaigns than a case keeps."""
    rnd = random.Random(seed)
    n = 0
    for s in range(subjects):
        account = f"user{s:03d}" if s % 3 else None
        for _ in range(rnd.randint(1, 3)):
            n += 1
            ip = rnd.choice(IPS) if account else f"10.8.0.{s}"
            campaign = rnd.choice([*CAMPAIGNS, ""])
            await book.add_evidence(ev(n, account=account, ip=ip, campaign=campaign))
    for s in range(30):  # external addresses: never cases
        n += 1
        await book.add_evidence(ev(n, account=None, ip=f"192.0.2.{s}", own=False))
    many = "user-many"
    for i in range(MAX_IPS + 6):
        n += 1
        campaign = f"many{i}" if i < MAX_CAMPAIGNS + 6 else ""
        await book.add_evidence(ev(n, account=many, ip=f"10.7.0.{i}", campaign=campaign))
    cases = await book.list()
    times = [T0 + 10_000 + k for k in range(6)]  # few: many cases share a time
    for case in rnd.sample(cases, k=len(cases) * 2 // 3):
        state: State = case.state
        for _ in range(rnd.randint(1, 3)):
            choices: Sequence[State] = sorted(ALLOWED[state])  # type: ignore[arg-type]
            state = rnd.choice(choices)
            await book.transition(case.id, state, "desk", "test", at=rnd.choice(times))
        if rnd.random() < 0.3:
            await book.note(case.id, "desk", "a note", at=rnd.choice(times))
    for case in rnd.sample(cases, k=20):  # new evidence: reopens released and closed cases
        n += 1
        ip = rnd.choice(IPS) if case.account else str(case.ip)
        await book.add_evidence(ev(n, account=case.account, ip=ip, campaign="late"))


def reference(
    rows: list[Row],
    states: Sequence[str] = (),
    account: str | None = None,
    ip: str | None = None,
    campaign: str | None = None,
    since: float | None = None,
) -> list[Case]:
    """The case list as a read of every case answers it."""
    kept = [
        r
        for r in rows
        if r.state is not None
        and (not states or r.state in states)
        and (account is None or r.account == account)
        and (ip is None or ip in r.ips or r.ip == ip)
        and (campaign is None or campaign in r.campaigns)
        and (since is None or r.updated_at >= since)
    ]
    kept.sort(key=lambda r: (-r.updated_at, r.key))
    return [to_case(r) for r in kept]


async def every_row(book: CaseBook) -> list[Row]:
    return await book._run(book.backend.case_rows)


async def test_every_filter_gives_what_a_full_read_gives(book: CaseBook) -> None:
    await generate(book)
    rows = await every_row(book)
    assert len(rows) == 241
    assert len({r.updated_at for r in rows}) < len(rows)  # ties in time are exercised
    await check_filters(book, rows)


async def check_filters(book: CaseBook, rows: list[Row]) -> None:
    """Every filter and most combinations, as a list and as a page, against ``rows``."""
    times = sorted(r.updated_at for r in rows)
    somebody = next(r.account for r in rows if r.account and len(r.campaigns) > 1)
    an_ip = next(r.ip for r in rows if r.ip)
    filters = itertools.product(
        [(), ("open",), ("walled",), ("notified", "walled"), ("open", "released", "closed")],
        [None, somebody, "user-many", "nobody"],
        [None, IPS[3], an_ip, "10.7.0.0", "10.7.0.69", "192.0.2.1"],  # 10.7.0.0 fell off
        [None, CAMPAIGNS[1], "late", "many0", "many69"],  # many0 fell off user-many
        [None, times[len(times) // 2], T0 + 10_003],
    )
    checked = 0
    for states, account, ip, campaign, since in filters:
        if sum(x is not None for x in (account, ip, campaign)) > 1 and states:
            continue  # combinations of names: without a state filter only (fewer queries)
        want = reference(rows, states, account, ip, campaign, since)
        kw = dict(states=states, account=account, ip=ip, campaign=campaign, since=since)
        assert await book.list(**kw) == want, kw  # type: ignore[arg-type]
        page = await book.page(limit=7, **kw)  # type: ignore[arg-type]
        assert list(page.cases) == want[:7], kw
        assert page.total == len(want), kw
        assert page.by_state == dict(Counter(c.state for c in want)), kw
        checked += bool(want)
    assert checked > 50  # most filters find some cases
    assert [c.id for c in await book.list(ip="10.7.0.0")] == []
    assert [c.account for c in await book.list(ip="10.7.0.69")] == ["user-many"]
    assert await book.list(campaign="many0") == []


@pytest.mark.parametrize("limit", [0, 1, 5, 100, 400])
async def test_a_page_is_the_head_of_the_list(book: CaseBook, limit: int) -> None:
    await generate(book, seed=limit, subjects=90)
    want = reference(await every_row(book))
    assert await book.list(limit=limit) == want[:limit]
    page = await book.page(limit=limit)
    assert list(page.cases) == want[:limit]
    assert page.total == len(want)
    walled = reference(await every_row(book), ("walled",))
    assert await book.list(states=("walled",), limit=limit) == walled[:limit]


async def test_counts_by_state_follow_transitions(book: CaseBook) -> None:
    await generate(book, seed=3, subjects=60)
    for _ in range(3):
        rows = await every_row(book)
        assert (await book.page(limit=0)).by_state == dict(Counter(str(r.state) for r in rows))
        for case in (await book.list(states=("open", "notified")))[:10]:
            await book.transition(case.id, "walled", "desk", "abuse desk", at=T0 + 20_000)
    walled = await book.list(states=("walled",))
    assert walled == reference(await every_row(book), ("walled",))
    for case in walled[:5]:
        await book.transition(case.id, "closed", "desk", "fixed")
    counts = (await book.page(limit=0)).by_state
    assert counts == dict(Counter(str(r.state) for r in await every_row(book)))


async def test_a_note_brings_a_case_to_the_top(book: CaseBook) -> None:
    await generate(book, seed=5, subjects=30)
    last = (await book.list())[-1]
    noted = await book.note(last.id, "desk", "called the customer", at=time.time() + 60)
    assert (await book.list(limit=1)) == [noted]
    assert (await book.list(states=(noted.state,), limit=1)) == [noted]
    assert await book.list() == reference(await every_row(book))


async def test_the_count_decodes_no_row(book: CaseBook, monkeypatch: pytest.MonkeyPatch) -> None:
    await generate(book, seed=11, subjects=30)
    want = dict(Counter(str(r.state) for r in await every_row(book)))

    class NoDecode:
        def decode(self, blob: bytes) -> Row:
            raise AssertionError("a row was decoded")

    import seawall.zombies.redis_book as redis_book
    import seawall.zombies.sqlite_book as sqlite_book

    monkeypatch.setattr(sqlite_book, "ROW", NoDecode())
    monkeypatch.setattr(redis_book, "ROW", NoDecode())
    page = await book.page(limit=0)
    assert page.by_state == want
    assert page.total == sum(want.values())
    assert page.cases == ()
    since = await book.page(limit=0, since=T0 + 10_003, states=("walled", "closed"))
    assert since.total <= page.total


async def test_the_index_holds_what_the_rows_say(book: CaseBook) -> None:
    """Every case is under its state at its time, and found by exactly its addresses and
    campaigns (those fallen off its bounded lists no longer find it)."""
    await generate(book, seed=13, subjects=60)
    rows = await every_row(book)
    terms = {f"ip:{a}" for a in [*IPS, *(f"10.7.0.{i}" for i in range(MAX_IPS + 6))]}
    terms |= {f"ip:10.8.0.{s}" for s in range(60)} | {f"ip:192.0.2.{s}" for s in range(30)}
    terms |= {f"campaign:{c}" for c in [*CAMPAIGNS, "late"]}
    terms |= {f"campaign:many{i}" for i in range(MAX_CAMPAIGNS + 6)}
    want = {t: {r.key for r in rows if t in case_terms(r)} for t in terms}
    by_state = {s: {r.key: r.updated_at for r in rows if r.state == s} for s in STATES}
    backend = book.backend
    if isinstance(backend, RedisBook):
        r = backend.r
        got = {t: {bytes(m).decode() for m in r.smembers(backend.k(f"term:{t}"))} for t in terms}
        index = {
            s: {
                bytes(m).decode(): v
                for m, v in r.zrange(backend.k(f"st:{s}"), 0, -1, withscores=True)
            }
            for s in STATES
        }
    else:
        assert isinstance(backend, SqliteBook)
        db = backend._db()
        got = {t: set[str]() for t in terms}
        for term, key in db.execute("SELECT term, key FROM zombie_case_terms"):
            got.setdefault(term, set()).add(key)
        index = {s: dict[str, float]() for s in STATES}
        query = "SELECT state, key, updated_at FROM zombie_rows WHERE state IS NOT NULL"
        for state, key, updated_at in db.execute(query):
            index[state][key] = updated_at
    assert got == want
    assert index == by_state
    assert not want["ip:10.7.0.0"]
    assert want["ip:10.7.0.69"] == {"account:user-many"}
