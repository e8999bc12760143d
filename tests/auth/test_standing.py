"""Authenticated sender domains (auth/standing.py): which domains a message proved, their
reputation records, and ``seawall reputation DOMAIN``."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from seawall.auth.dkim import DkimResult, DkimStatus
from seawall.auth.spf import Result, SpfResult
from seawall.auth.standing import DomainStanding, authenticated_domains
from seawall.cli import main
from seawall.config import ReputationSettings, load_config
from seawall.reputation import domain_key
from seawall.store import open_store
from seawall.store.memory import MemoryStore


def dkim(domain: str, status: DkimStatus = DkimStatus.PASS, partial: bool = False) -> DkimResult:
    return DkimResult(status, domain, "s1", partial=partial)


def test_dkim_passes_over_the_whole_body_count() -> None:
    found = authenticated_domains(
        None,
        "shop.example",
        [
            dkim("Mailer.Example.NET."),
            dkim("shop.example", DkimStatus.FAIL),
            dkim("lists.example.org", partial=True),
        ],
    )
    assert found == ("mailer.example.net",)


def test_spf_counts_only_when_aligned_with_from() -> None:
    aligned = SpfResult(Result.PASS, "bounce.shop.example.com")
    assert authenticated_domains(aligned, "shop.example.com", []) == ("bounce.shop.example.com",)
    other = SpfResult(Result.PASS, "esp.example.net")
    assert authenticated_domains(other, "shop.example.com", []) == ()
    failed = SpfResult(Result.FAIL, "shop.example.com")
    assert authenticated_domains(failed, "shop.example.com", []) == ()
    # Under no known public suffix, a name aligns only with itself.
    assert authenticated_domains(SpfResult(Result.PASS, "shop.test"), "shop.test", []) == (
        "shop.test",
    )
    assert authenticated_domains(SpfResult(Result.PASS, "a.shop.test"), "shop.test", []) == ()


def test_domain_key_refuses_what_is_no_host_name() -> None:
    assert domain_key("Example.COM.") == "rep:dom:example.com"
    for bad in ("localhost", "", "exa mple.com", "a" * 250 + ".com", "ex/ample.com"):
        assert domain_key(bad) is None


async def test_a_domain_is_learned_from_its_own_mail() -> None:
    settings = ReputationSettings()
    store = MemoryStore()
    standing = DomainStanding(lambda: store, settings)
    now = time.time()
    assert await standing.judge(("spam.example",), now) == []
    for _ in range(12):
        await standing.record(("spam.example",), spam=True, ham=False, now=now)
    for _ in range(40):
        await standing.record(("news.example",), spam=False, ham=True, now=now)
    await standing.flush()
    fresh = DomainStanding(lambda: store, settings)  # another worker reads the store
    spam = await fresh.judge(("spam.example",), now + 1)
    assert [h.symbol for h in spam] == ["REP_DOMAIN_SPAM"]
    ham = await fresh.judge(("news.example",), now + 1)
    assert [h.symbol for h in ham] == ["REP_DOMAIN_HAM"]
    # A good name signed beside a spamming one does not protect it.
    both = await fresh.judge(("news.example", "spam.example"), now + 1)
    assert [h.symbol for h in both] == ["REP_DOMAIN_SPAM"]
    # A domain with no history beside the good one takes nothing from it.
    beside = await fresh.judge(("news.example", "new.example"), now + 1)
    assert [h.symbol for h in beside] == ["REP_DOMAIN_HAM"]


def test_cli_shows_a_domain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = load_config(state_dir=str(tmp_path))

    async def feed() -> None:
        store = open_store(config)
        try:
            standing = DomainStanding(lambda: store, config.detectors.reputation)
            for _ in range(5):
                await standing.record(("news.example",), spam=False, ham=True, now=time.time())
            await standing.flush()
        finally:
            await store.close()

    asyncio.run(feed())
    assert main(["reputation", "--state", str(tmp_path), "--json", "News.Example"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["query"] == "news.example"
    assert shown["domain"]["ham"] == pytest.approx(5.0, abs=0.1)
    assert main(["reputation", "--state", str(tmp_path), "unknown.example"]) == 0
    assert "no recent history" in capsys.readouterr().out
