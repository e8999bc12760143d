"""The verdict history on each backend: SQLite, and real Redis (one server and a Cluster)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from seawall.config import HistorySettings
from seawall.message import Envelope
from seawall.policy.model import Action, SymbolResult, Verdict
from seawall.store.redis import RedisStore
from seawall.store.verdicts import (
    Search,
    SymbolRow,
    VerdictRecord,
    Verdicts,
    header_summary,
)
from seawall.store.verdicts_redis import RedisVerdicts
from seawall.store.verdicts_sqlite import SqliteVerdicts

BACKENDS = ["sqlite", "redis", "redis-cluster"]
T0 = 1_800_000_000.0  # a whole hour


def _open(
    name: str, request: pytest.FixtureRequest, tmp_path: Path, **settings: object
) -> Verdicts:
    config = HistorySettings(**settings)  # type: ignore[arg-type]
    if name == "sqlite":
        return SqliteVerdicts.open(tmp_path / "verdicts.sqlite", config)
    url = request.getfixturevalue("redis_url" if name == "redis" else "redis_cluster_url")
    return RedisVerdicts(RedisStore.from_url(url), config)


@pytest.fixture(params=BACKENDS)
async def history(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Verdicts]:
    verdicts = _open(request.param, request, tmp_path)
    yield verdicts
    await verdicts.close()


def rec(
    t: float,
    action: str = "no action",
    *,
    symbols: tuple[tuple[str, float], ...] = (),
    sender: str = "alice@sender.example",
    rcpts: tuple[str, ...] = ("bob@customer.example",),
    subject: str = "Hello",
    queue_id: str = "",
    client_ip: str = "192.0.2.1",
    message_id: str = "<m@x>",
) -> VerdictRecord:
    return VerdictRecord(
        time=t,
        action=action,
        score=sum(s for _, s in symbols),
        required=15.0,
        symbols=tuple(SymbolRow(n, s, ("opt",), f"about {n}") for n, s in symbols),
        sender=sender,
        recipients=rcpts,
        subject=subject,
        queue_id=queue_id,
        client_ip=client_ip,
        message_id=message_id,
    )


async def test_record_get_and_explain(history: Verdicts) -> None:
    record = rec(T0 + 5, "reject", symbols=(("BAYES_SPAM", 9.5), ("CLAMAV_VIRUS", 15.0)))
    record_id = await history.record(record)
    got = await history.get(record_id)
    assert got is not None
    assert got.id == record_id
    assert got.action == "reject"
    assert [(s.name, s.score, s.options, s.description) for s in got.symbols] == [
        ("BAYES_SPAM", 9.5, ("opt",), "about BAYES_SPAM"),
        ("CLAMAV_VIRUS", 15.0, ("opt",), "about CLAMAV_VIRUS"),
    ]
    assert got.infected
    assert await history.get(record_id + 1000) is None
    assert await history.kept_message(record_id) is None  # keeping is off by default


async def test_per_minute_counts_and_infected(history: Verdicts) -> None:
    items = [
        (rec(T0 + 1, "no action"), None),
        (rec(T0 + 2, "reject", symbols=(("CLAMAV_VIRUS", 15.0),)), None),
        (rec(T0 + 61, "reject"), None),
        (rec(T0 + 62, "add header", symbols=(("ATTACH_EXECUTABLE", 6.0),)), None),
        (rec(T0 + 3 * 3600, "reject"), None),  # outside the range asked below
    ]
    ids = await history.record_many(items)
    assert len(set(ids)) == 5
    minutes = await history.minutes(T0, T0 + 179)
    assert minutes == [
        (int(T0), {"no action": 1, "reject": 1}),
        (int(T0) + 60, {"reject": 1, "add header": 1}),
        (int(T0) + 120, {}),
    ]
    assert await history.infected(T0, T0 + 179) == [
        (int(T0), 1),
        (int(T0) + 60, 1),
        (int(T0) + 120, 0),
    ]


@pytest.mark.parametrize("name", ["redis", "redis-cluster"])
async def test_a_batch_written_again_with_its_ids_is_written_once(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """As after a write whose answer was lost: the same records, with the ids they were
    given, sent again (and with a new one beside them) add no row, count or kept byte."""
    history = _open(name, request, tmp_path, keep_messages=True)
    try:
        raw = b"Subject: kept\r\n\r\nbody\r\n"
        first = await history.assign_ids(
            [rec(T0 + 1, "reject", symbols=(("A", 1.0),)), rec(T0 + 2, "no action")]
        )
        assert [r.id for r in first] == [r.id for r in await history.assign_ids(first)]
        items = [(first[0], raw), (first[1], None)]
        assert await history.record_many(items) == [r.id for r in first]
        newer = rec(T0 + 3, "reject", symbols=(("A", 1.0),))
        ids = await history.record_many([*items, (newer, None)])
        assert ids[:2] == [r.id for r in first]
        assert len(await history.search(Search(), limit=100)) == 3
        assert await history.minutes(T0, T0 + 59) == [(int(T0), {"reject": 2, "no action": 1})]
        assert await history.top_symbols(T0, T0 + 60) == [("A", 2)]
        assert await history.kept_message(first[0].id) == raw
        assert isinstance(history, RedisVerdicts)
        async with history.store.session("test") as client:
            kept_bytes = int(await client.get(history._key("keptbytes")))
        assert kept_bytes == len(raw)
    finally:
        await history.close()


async def test_top_symbols_and_domains(history: Verdicts) -> None:
    await history.record_many(
        [
            (
                rec(T0 + 1, "reject", symbols=(("A", 1.0), ("B", 1.0)), sender="x@Spam.example"),
                None,
            ),
            (
                rec(T0 + 2, "reject", symbols=(("A", 1.0),), rcpts=("c@a.example", "d@a.example")),
                None,
            ),
            (rec(T0 + 3, "no action", symbols=(("C", 0.0),)), None),
        ]
    )
    assert await history.top_symbols(T0, T0 + 60, limit=2) == [("A", 2), ("B", 1)]
    recipients = await history.domains(T0, T0 + 60, "recipient")
    assert [(d.domain, d.total, d.actions) for d in recipients] == [
        ("customer.example", 2, {"reject": 1, "no action": 1}),
        ("a.example", 1, {"reject": 1}),  # two recipients of one domain count once
    ]
    senders = await history.domains(T0, T0 + 60, "sender")
    assert [(d.domain, d.total) for d in senders] == [("sender.example", 2), ("spam.example", 1)]


async def test_search(history: Verdicts) -> None:
    await history.record_many(
        [
            (rec(T0 + 1, queue_id="Q1", subject="Cheap Pills NOW", client_ip="203.0.113.9"), None),
            (
                rec(T0 + 2, "reject", symbols=(("BAYES_SPAM", 9.0),), sender="Eve@Evil.example"),
                None,
            ),
            (
                rec(T0 + 3, "add header", rcpts=("Carol@Hosted.example",), message_id="<id-3@x>"),
                None,
            ),
            (rec(T0 + 4, "no action", subject="Grüße aus Köln"), None),
        ]
    )

    async def subjects(**query: object) -> list[str]:
        found = await history.search(Search(**query))  # type: ignore[arg-type]
        return [r.subject or r.sender for r in found]

    everything = await history.search(Search())
    assert [r.time for r in everything] == [T0 + 4, T0 + 3, T0 + 2, T0 + 1]  # newest first
    assert await subjects(queue_id="Q1") == ["Cheap Pills NOW"]
    assert await subjects(subject="pills") == ["Cheap Pills NOW"]
    assert await subjects(subject="GRÜSSE") == ["Grüße aus Köln"]  # case-folded: ß is ss
    assert await subjects(subject="köln") == ["Grüße aus Köln"]
    assert await subjects(client_ip="203.0.113.9") == ["Cheap Pills NOW"]
    assert len(await history.search(Search(sender="evil.EXAMPLE"))) == 1
    assert len(await history.search(Search(recipient="carol@hosted"))) == 1
    assert len(await history.search(Search(message_id="id-3@x"))) == 1
    assert len(await history.search(Search(message_id="<id-3@x>"))) == 1
    assert len(await history.search(Search(symbol="BAYES_SPAM"))) == 1
    assert len(await history.search(Search(symbol="BAYES"))) == 0  # a symbol is exact
    assert len(await history.search(Search(action="reject"))) == 1
    assert len(await history.search(Search(hide_no_action=True))) == 2
    assert [r.time for r in await history.search(Search(start=T0 + 2, end=T0 + 3))] == [
        T0 + 3,
        T0 + 2,
    ]
    page = await history.search(Search(), limit=3)
    last = page[-1]
    rest = await history.search(Search(older_than=(last.time, last.id)))
    assert [r.time for r in page + rest] == [T0 + 4, T0 + 3, T0 + 2, T0 + 1]


@pytest.mark.parametrize("name", BACKENDS)
async def test_bounded_records_and_kept_messages(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    import time

    history = _open(
        name,
        request,
        tmp_path,
        max_verdicts=5,
        keep_messages=True,
        keep_messages_max_bytes=2500,
        keep_message_max_bytes=1500,
    )
    try:
        now = time.time()
        raw = b"Subject: x\r\n\r\n" + b"a" * 986  # 1000 bytes
        ids = await history.record_many([(rec(now + i), raw) for i in range(8)])
        big = await history.record(rec(now + 9), b"b" * 2000)  # over keep_message_max_bytes
        # SQLite trims kept messages every 30 s, Redis with each batch: force it.
        if name == "sqlite":
            assert isinstance(history, SqliteVerdicts)
            history._next_trim = 0.0
        await history.record(rec(now + 10), None)
        found = await history.search(Search(), limit=100)
        assert len(found) == 5
        assert [r.time for r in found] == [now + 10, now + 9, now + 7, now + 6, now + 5]
        assert await history.get(ids[0]) is None
        kept = [await history.kept_message(i) for i in ids]
        assert kept[-2:] == [raw, raw]  # the newest two fit in 2,500 bytes
        assert kept[:-2] == [None] * 6
        assert await history.kept_message(big) is None
        got = await history.get(ids[-1])
        assert got is not None
        assert got.kept
    finally:
        await history.close()


@pytest.mark.parametrize("name", BACKENDS)
async def test_kept_messages_expire(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    import time

    history = _open(name, request, tmp_path, keep_messages=True, keep_messages_s=60.0)
    try:
        old = await history.record(rec(time.time() - 120), b"Subject: old\r\n\r\nbody")
        new = await history.record(rec(time.time()), b"Subject: new\r\n\r\nbody")
        assert await history.kept_message(old) is None
        assert await history.kept_message(new) == b"Subject: new\r\n\r\nbody"
    finally:
        await history.close()


def test_record_of_a_verdict() -> None:
    raw = (
        b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.de>\r\n"
        b"Subject: =?utf-8?b?R3LDvMOfZQ==?= und mehr\r\n"
        b"Message-ID: <abc@example.de>\r\n\r\nbody"
    )
    verdict = Verdict(
        score=16.0,
        required=15.0,
        action=Action.REJECT,
        symbols={
            "A": SymbolResult("A", 1.0, (), "small"),
            "B": SymbolResult("B", 15.0, ("x",), "big"),
        },
        language="de",
        elapsed_ms=3.5,
        campaign="c1",
    )
    envelope = Envelope(
        client_ip="198.51.100.7", mail_from="j@example.de", rcpts=("a@b.example",), queue_id="Q9"
    )
    record = VerdictRecord.of(envelope, raw, verdict, frontend="milter", now=T0)
    assert record.subject == "Grüße und mehr"
    assert record.from_header == "Jürgen <j@example.de>"
    assert record.message_id == "<abc@example.de>"
    assert [s.name for s in record.symbols] == ["B", "A"]  # the biggest score first
    assert (record.queue_id, record.client_ip, record.frontend, record.size) == (
        "Q9",
        "198.51.100.7",
        "milter",
        len(raw),
    )
    assert header_summary(b"\xff\xfe not mail at all") == ("", "", "")


def test_worm_payloads_and_viruses_are_infected_findings() -> None:
    for symbol in ("CLAMAV_VIRUS", "ARCHIVE_DOUBLE_EXT", "ARCHIVE_EXECUTABLE", "ATTACH_DOUBLE_EXT"):
        assert rec(T0, "reject", symbols=((symbol, 10.0),)).infected
    assert not rec(T0, "reject", symbols=(("ATTACH_TYPE_MISMATCH", 3.0),)).infected
