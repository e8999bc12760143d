"""The engine with DNS lists: lookups overlap the CPU detectors, faults stay symbols."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import ClassVar

import msgspec
import pytest
from tests.dnslists.dnsserver import Behaviour, DnsServer

from seawall.config import DnsblSettings, Trusted
from seawall.detectors.base import Context, Hit
from seawall.detectors.dnsbl import STATUS_SYMBOLS, DnsblDetector
from seawall.engine import BudgetExceeded, Engine
from seawall.message import Envelope, Message, ParseLimits
from seawall.policy.scores import load_scores

RAW = b"From: a@sender.example\r\nSubject: hi\r\n\r\nhello\r\n"
CLIENT = "81.2.69.160"
NAME = "160.69.2.81.zen.test"
ZEN = msgspec.structs.replace(DnsblSettings().lists[0], zone="zen.test", timeout_s=0.8)


class Busy:
    """A CPU detector that holds the event loop for ``seconds``."""

    name: ClassVar[str] = "busy"
    symbols: ClassVar[dict[str, str]] = {}
    io: ClassVar[bool] = False

    def __init__(self, seconds: float, server: DnsServer | None = None) -> None:
        self.seconds = seconds
        self.server = server
        self.asked = 0  # the server's count of NAME when the CPU work ended

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]:
        end = time.perf_counter() + self.seconds
        spins = 0
        while time.perf_counter() < end:
            spins += 1
        if self.server is not None:
            self.asked = self.server.queries[NAME]
        return ()


class CheckOnly:
    """The DNS detector seen as a plain I/O detector, without ``start``."""

    name: ClassVar[str] = "dnsbl"
    symbols: ClassVar[dict[str, str]] = {}
    io: ClassVar[bool] = True

    def __init__(self, inner: DnsblDetector) -> None:
        self.inner = inner

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]:
        return await self.inner.check(msg, ctx)

    def close(self) -> None:
        self.inner.close()


class Inline(DnsblDetector):
    """The DNS detector run inline after the CPU work: the serial case, for contrast."""

    io: ClassVar[bool] = False


def dnsbl(
    server: DnsServer, cls: type[DnsblDetector] = DnsblDetector, **kw: object
) -> DnsblDetector:
    settings = DnsblSettings(enabled=True, nameservers=(server.address,), lists=(ZEN,))
    return cls(msgspec.structs.replace(settings, **kw), Trusted(), io_timeout_s=2.0)


async def timed_scan(detectors: list, envelope: Envelope) -> tuple[float, dict]:
    engine = Engine(
        scores=load_scores(), detectors=detectors, limits=ParseLimits(), io_timeout_s=2.0
    )
    try:
        t0 = time.perf_counter()
        verdict = await engine.scan(envelope, RAW)
        return time.perf_counter() - t0, dict(verdict.symbols)
    finally:
        engine.close()


async def test_lookups_overlap_cpu_work() -> None:
    """The query goes out before the CPU work, so its 0.3 s wait overlaps 0.3 s of CPU (both
    take about 0.3 s together, not 0.6; bench.dnsbl measures what the overlap is worth): the
    server has the query by the time the CPU work ends."""
    behaviour = Behaviour(listed={NAME: ["127.0.0.4"]}, delay_s=0.3)
    envelope = Envelope(client_ip=CLIENT)
    with DnsServer(behaviour) as server:
        busy = Busy(0.3, server)
        _, symbols = await timed_scan([busy, dnsbl(server)], envelope)
        assert "RBL_SPAMHAUS_XBL" in symbols
        assert busy.asked == 1  # start() sent it before the CPU detectors ran
        busy = Busy(0.3, server)
        _, symbols = await timed_scan([busy, CheckOnly(dnsbl(server))], envelope)
        assert "RBL_SPAMHAUS_XBL" in symbols
        assert busy.asked == 2  # one turn of the loop sends check()'s queries too
        busy = Busy(0.3, server)
        serial, symbols = await timed_scan([busy, dnsbl(server, Inline)], envelope)
        assert "RBL_SPAMHAUS_XBL" in symbols
        assert busy.asked == 2  # inline after the CPU work: not asked yet when it ended
    assert serial >= 0.6, serial  # what the same work costs when the wait comes after


# The list's own timeout is far beyond the budget in the next two: only the budget or the
# answer can end the lookup within the scan.
PATIENT = (msgspec.structs.replace(ZEN, timeout_s=30.0),)


async def test_silent_server_gives_dnsbl_timeout_within_the_budget() -> None:
    with DnsServer(Behaviour(silent=True)) as server:
        elapsed, symbols = await timed_scan(
            [dnsbl(server, budget_s=0.4, lists=PATIENT)], Envelope(client_ip=CLIENT)
        )
    assert set(symbols) == {"DNSBL_TIMEOUT"}, symbols
    assert symbols["DNSBL_TIMEOUT"].options == ("zen",)
    assert symbols["DNSBL_TIMEOUT"].score == 0.0
    assert elapsed >= 0.4 * 0.95  # the budget was waited for


async def test_servfail_gives_its_own_symbol() -> None:
    with DnsServer(Behaviour(rcode="SERVFAIL")) as server:
        _, symbols = await timed_scan([dnsbl(server, lists=PATIENT)], Envelope(client_ip=CLIENT))
    assert set(symbols) == {"DNSBL_SERVFAIL"}, symbols  # at once: no timeout ended it
    assert symbols["DNSBL_SERVFAIL"].options == ("zen",)


async def test_refusal_code_is_not_a_listing() -> None:
    with DnsServer(Behaviour(listed={NAME: ["127.255.255.254"]})) as server:
        _, symbols = await timed_scan([dnsbl(server)], Envelope(client_ip=CLIENT))
    assert set(symbols) == {"DNSBL_BLOCKED"}
    assert symbols["DNSBL_BLOCKED"].score == 0.0


async def test_a_spent_budget_cancels_the_lookups() -> None:
    with DnsServer(Behaviour(silent=True)) as server:
        detector = dnsbl(server)
        engine = Engine(
            scores=load_scores(), detectors=[Busy(0.05), detector], limits=ParseLimits()
        )
        try:
            with pytest.raises(BudgetExceeded):
                await engine.scan(Envelope(client_ip=CLIENT), RAW, deadline=time.perf_counter())
            await asyncio.sleep(0)
            others = asyncio.all_tasks() - {asyncio.current_task()}
            assert not others, others
        finally:
            engine.close()


def test_scan_sync_reopens_sockets_on_its_own_loop() -> None:
    """The CLI scans on the engine's private loop: the client follows the loop it runs on."""
    with DnsServer(Behaviour(listed={NAME: ["127.0.0.2"]})) as server:
        engine = Engine(scores=load_scores(), detectors=[dnsbl(server)], limits=ParseLimits())
        try:
            for _ in range(2):
                scan = engine.scan_sync(Envelope(client_ip=CLIENT), RAW)
                assert "RBL_SPAMHAUS_SBL" in scan.verdict.symbols
        finally:
            engine.close()
        assert server.queries[NAME] == 1  # the second scan came from the cache


def test_every_shipped_code_is_scored_and_grouped() -> None:
    scores = load_scores()
    groups = {"RBL_": "rbl", "URIBL_": "uribl", "DNSBL_": "dnsbl"}
    shipped = [
        s
        for spec in DnsblSettings().lists
        for s in [*spec.codes.values(), *spec.bits.values(), *spec.sender_codes.values()]
    ]
    assert len(shipped) == 31
    assert set(shipped) == set(DnsblDetector.symbols) - set(STATUS_SYMBOLS)
    for symbol in set(shipped) | set(DnsblDetector.symbols):
        definition = scores.symbols[symbol]
        assert definition.group == next(g for p, g in groups.items() if symbol.startswith(p))
        assert definition.description == DnsblDetector.symbols[symbol]
        if symbol.startswith("DNSBL_"):
            assert definition.score == 0.0  # a failing list says nothing about the message
        else:
            assert 0.0 < definition.score <= 8.0
    for group in ("rbl", "uribl"):
        cap = scores.groups[group].max_score
        assert cap is not None
        assert cap < scores.required  # no one family of lists rejects on its own
