"""Reputation learned from verdicts: decay, sharing between processes, the detector's symbols."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest

from seawall.config import Config, ReputationSettings
from seawall.detectors.base import Context
from seawall.detectors.reputation import ReputationDetector
from seawall.message import Envelope, parse_message
from seawall.policy.model import Action, SymbolResult, Verdict
from seawall.reputation import Reputation, keys_of
from seawall.store import FILENAME, MemoryStore, SqliteStore

T0 = 1_800_000_000.0
HALF = ReputationSettings().half_life_s
BOT = "198.51.100.23"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def verdict(score: float, **symbols: float) -> Verdict:
    return Verdict(
        score=score,
        required=15.0,
        action=Action.NO_ACTION,
        symbols={n: SymbolResult(n, s) for n, s in symbols.items()},
        language=None,
        elapsed_ms=0.0,
    )


def test_keys_of() -> None:
    assert keys_of("198.51.100.23") == ("rep:ip:198.51.100.23", "rep:net:198.51.100.0/24")
    assert keys_of("::ffff:198.51.100.23") == keys_of(BOT)
    assert keys_of("2001:db8::7") == ("rep:ip:2001:db8::7", "rep:net:2001:db8::/64")
    assert keys_of("unknown") is None


async def test_counts_decay_and_pending_counts_are_seen_before_the_flush() -> None:
    clock = Clock()
    rep = Reputation(MemoryStore(), ReputationSettings(), clock=clock)
    for _ in range(4):
        await rep.record(BOT, spam=True, ham=False, now=T0)
    await rep.record(BOT, spam=False, ham=True, now=T0)
    own, net = await rep.lookup(BOT, T0)
    assert own is not None
    assert net is not None
    assert (own.spam, own.ham, own.volume) == (4.0, 1.0, 5.0)
    assert own.spam_share == pytest.approx(0.8)
    assert net.key == "198.51.100.0/24"
    clock.now += 10  # past flush_s: the next record writes everything
    await rep.record("198.51.100.99", spam=True, ham=False, now=T0 + 10)
    own, net = await rep.lookup(BOT, T0 + 2 * HALF)
    assert own is not None
    assert net is not None
    assert own.spam == pytest.approx(1.0, rel=1e-3)  # two half-lives
    assert net.volume == pytest.approx(1.5, rel=1e-3)
    assert (await rep.lookup("203.0.113.1", T0)) == (None, None)


async def test_workers_share_one_picture_through_the_sqlite_store(tmp_path: Path) -> None:
    clocks = Clock(), Clock()
    stores = [SqliteStore.open(tmp_path / FILENAME) for _ in clocks]
    one, two = (
        Reputation(s, ReputationSettings(), clock=c) for s, c in zip(stores, clocks, strict=True)
    )
    for _ in range(3):
        await one.record(BOT, spam=True, ham=False, now=T0)
        await two.record(BOT, spam=True, ham=False, now=T0)
    for clock in clocks:
        clock.now = 5.0
    await one.flush(T0)
    await two.flush(T0)
    clocks[0].now = 10.0  # one's cache (cache_s) is stale: it reads the other's counts
    own, _ = await one.lookup(BOT, T0)
    assert own is not None
    assert own.spam == 6.0
    for store in stores:
        await store.close()


async def test_a_broken_store_costs_the_symbol_not_the_scan(tmp_path: Path) -> None:
    store = SqliteStore.open(tmp_path / FILENAME)
    await store.close()  # every call now raises StoreError
    rep = Reputation(store, ReputationSettings(flush_s=0))
    await rep.record(BOT, spam=True, ham=False, now=T0)
    assert await rep.lookup("203.0.113.9", T0) == (None, None)
    assert rep.store_errors == 2


def detector(tmp_path: Path, **settings: object) -> ReputationDetector:
    config = msgspec.convert(
        {"state_dir": str(tmp_path), "detectors": {"reputation": {"flush_s": 0, **settings}}},
        Config,
    )
    store = MemoryStore()
    return ReputationDetector(config, lambda: store, spam_threshold=6.0)


async def test_spam_history_gives_the_symbols_and_ham_history_the_good_one(
    tmp_path: Path,
) -> None:
    det = detector(tmp_path)
    ctx = Context(now=T0)
    spam = parse_message(b"Subject: x\n\nbuy\n", Envelope(client_ip=BOT))
    for _ in range(3):  # three spam and nothing else prove little (share 0.6)
        await det.after_verdict(spam, verdict(9.0), T0)
    assert not await det.check(spam, ctx)
    for i in range(10):
        if i < 7:
            await det.after_verdict(spam, verdict(9.0), T0)
        # A neighbour in the same /24, so the network's count grows faster.
        other = parse_message(b"Subject: x\n\nbuy\n", Envelope(client_ip=f"198.51.100.{40 + i}"))
        await det.after_verdict(other, verdict(20.0), T0)
    hits = {h.symbol: h for h in await det.check(spam, ctx)}
    assert set(hits) == {"REP_IP_SPAM", "REP_NET_SPAM"}
    assert hits["REP_IP_SPAM"].weight == 0.833  # 10 / (10 + the prior of 2)
    assert hits["REP_IP_SPAM"].options[0] == BOT
    # Two days later, with no more mail, the address has a clean slate.
    assert not await det.check(spam, Context(now=T0 + 8 * HALF))

    good = parse_message(b"Subject: hi\n\nlunch?\n", Envelope(client_ip="192.0.2.80"))
    for _ in range(30):  # 30 / 32 is still short of ham_share
        await det.after_verdict(good, verdict(1.0), T0)
    assert not await det.check(good, ctx)
    for _ in range(10):
        await det.after_verdict(good, verdict(1.0), T0)
    assert [h.symbol for h in await det.check(good, ctx)] == ["REP_IP_HAM"]


async def test_reputation_cannot_feed_on_itself(tmp_path: Path) -> None:
    det = detector(tmp_path)
    msg = parse_message(b"Subject: x\n\nhello\n", Envelope(client_ip=BOT))
    # The verdict's score is over the spam threshold only by the reputation's own points.
    for _ in range(5):
        await det.after_verdict(msg, verdict(7.0, REP_IP_SPAM=4.0, REP_NET_SPAM=2.0), T0)
    assert not await det.check(msg, Context(now=T0))
    rep = det.reputation
    assert rep is not None
    own, _ = await rep.lookup(BOT, T0)
    assert own is not None
    assert (own.spam, own.ham) == (0.0, 5.0)


@pytest.mark.parametrize(
    ("ip", "user"), [("127.0.0.1", None), ("10.1.2.3", None), (BOT, "alice"), (None, None)]
)
async def test_own_users_and_trusted_networks_are_not_counted(
    tmp_path: Path, ip: str | None, user: str | None
) -> None:
    det = detector(tmp_path, ip_min_spam=1.0)
    msg = parse_message(b"Subject: x\n\nbuy\n", Envelope(client_ip=ip, user=user))
    for _ in range(5):
        await det.after_verdict(msg, verdict(30.0), T0)
    rep = det.reputation
    assert rep is not None
    assert await rep.lookup(ip or BOT, T0) == (None, None)


async def test_start_answers_from_the_cache_without_waiting(tmp_path: Path) -> None:
    det = detector(tmp_path)
    msg = parse_message(b"Subject: x\n\nbuy\n", Envelope(client_ip=BOT))
    ctx = Context(now=T0)
    first = det.start(msg, ctx)
    assert not isinstance(first, asyncio.Future)  # nothing cached: a store read, awaited later
    assert await first == []
    for _ in range(10):
        await det.after_verdict(msg, verdict(9.0), T0)
    ready = det.start(msg, ctx)
    assert isinstance(ready, asyncio.Future)
    assert ready.done()
    assert [h.symbol for h in await ready] == ["REP_IP_SPAM"]  # no neighbour: no /24 symbol


async def test_a_mailing_list_post_is_counted_but_not_judged(tmp_path: Path) -> None:
    # A list server relays its members' ham and the spam that got through alike: on the
    # SpamAssassin corpus, spam relayed first put the list's later ham posts at add header.
    det = detector(tmp_path, ip_min_spam=1.0)
    post = b"List-Id: <garden.lists.example.org>\nSubject: x\n\nbuy\n"
    listed = parse_message(post, Envelope(client_ip=BOT))
    for _ in range(20):
        await det.after_verdict(listed, verdict(30.0), T0)
    assert not await det.check(listed, Context(now=T0))
    assert not await det.start(listed, Context(now=T0))
    # What the server relayed still counts for the mail it sends that is no list's.
    plain = parse_message(b"Subject: x\n\nbuy\n", Envelope(client_ip=BOT))
    # The /24 holds this address alone: its network symbol would count the same mail again.
    assert [h.symbol for h in await det.check(plain, Context(now=T0))] == ["REP_IP_SPAM"]
