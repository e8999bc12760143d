"""/metrics' live gauges: the campaigns counted by the tracker, the cases by state."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

from starlette.applications import Starlette
from starlette.testclient import TestClient

from seawall.campaigns.client import LocalTracker, TrackerClient
from seawall.campaigns.fingerprint import Fingerprint
from seawall.campaigns.registry import Judge, Observation
from seawall.campaigns.tracker import Tracker
from seawall.config import load_config
from seawall.metrics.routes import metrics_routes
from seawall.serve import tracker as campaign_tracker
from seawall.zombies.model import Evidence, evidence_id
from seawall.zombies.store import open_case_store

NOW = 1_795_000_000.0
TEXTS = (
    "your parcel is waiting at the depot, confirm the delivery fee to release it today now",
    "cheap watches and handbags of every famous maker, shipped to your door within days",
)


async def waves(client: TrackerClient, copies: tuple[int, int], now: float) -> None:
    """Two campaigns: the first from ``copies[0]`` addresses, the second from one."""
    for n, text in zip(copies, TEXTS, strict=True):
        fp = Fingerprint.from_text(text, "Hello")
        for i in range(n):
            ip = f"20.{i}.0.9" if text is TEXTS[0] else "30.0.0.9"
            reply = await client.observe(fp, Observation(ip=ip, subject="Hello"), now + i)
            await client.judge(Judge(reply.view.id, True, ("p.test",), now + i, b""))


def test_the_tracker_counts_live_outbreak_and_botnet_campaigns(tmp_path: Path) -> None:
    config = load_config(state_dir=str(tmp_path))
    local = LocalTracker(Tracker(config.detectors.campaigns))
    asyncio.run(waves(local, (6, 3), NOW))
    tracker = local.tracker
    assert tracker.tally(NOW + 10, min_count=1) == {"live": 2, "outbreaks": 2, "botnet": 2}
    counted = tracker.tally(NOW + 10, min_count=3, outbreak_per_hour=5, botnet_min_ips=5)
    assert counted == {"live": 2, "outbreaks": 1, "botnet": 1}
    assert tracker.tally(NOW + 10, min_count=4, botnet_min_ips=2)["live"] == 1
    # An hour later nothing is an outbreak, and the campaigns are still there.
    later = tracker.tally(NOW + 7200, min_count=3, outbreak_per_hour=1, botnet_min_ips=5)
    assert later == {"live": 2, "outbreaks": 0, "botnet": 1}
    # The same counts as the listing the gauges were once counted from.
    listing = tracker.listing(NOW + 10, min_count=3)
    assert len(listing) == counted["live"]
    assert sum(1 for c in listing if c["per_hour"] >= 5) == counted["outbreaks"]  # type: ignore[operator]


def test_a_live_tracker_answers_the_tally(tmp_path: Path) -> None:
    config = load_config(state_dir=str(tmp_path))
    with campaign_tracker.tracker_process(config), campaign_tracker.connect(config) as client:

        async def run() -> dict[str, int]:
            await waves(client, (6, 3), NOW)
            return await client.tally(3, outbreak_per_hour=1, botnet_min_ips=5)

        # The tracker's clock is the wall clock: a wave of NOW is not "now" for it.
        assert asyncio.run(run()) == {"live": 2, "outbreaks": 0, "botnet": 1}


def scrape(app: Starlette) -> dict[str, float]:
    with TestClient(app) as http:
        text = http.get("/metrics").text
    return {
        m.group(1): float(m.group(2))
        for m in re.finditer(r"^(seawall_\w+(?:\{[^}]*\})?) (\S+)$", text, re.M)
    }


def test_metrics_show_the_campaigns_and_the_cases_by_state(tmp_path: Path) -> None:
    config = load_config(state_dir=str(tmp_path))
    local = LocalTracker(Tracker(config.detectors.campaigns))
    now = time.time()
    asyncio.run(waves(local, (6, 3), now - 10))
    book = open_case_store(config)

    async def cases() -> None:
        for account in ("alice", "bob"):
            for n in range(3):
                await book.add_evidence(
                    Evidence(
                        id=evidence_id("test", n, f"10.1.0.{n}", account),
                        source="verdict",
                        kind="spam",
                        at=now + n,
                        ip=f"10.1.0.{n}",
                        account=account,
                        own=True,
                        weight=3.0,
                    )
                )
        bob = await book.find(account="bob")
        assert bob is not None
        await book.transition(bob.id, "notified", "desk", "test")

    asyncio.run(cases())
    prom = tmp_path / "prometheus"
    prom.mkdir()
    routes = metrics_routes(config, prom, tracker=local, cases=lambda: open_case_store(config))
    samples = scrape(Starlette(routes=routes))
    assert samples["seawall_campaigns_live"] == 2  # min_copies 3: both
    assert samples["seawall_campaigns_outbreaks"] == 0  # 9 an hour is no outbreak (500)
    assert samples["seawall_campaigns_botnet"] == 1  # 6 addresses (botnet_min_ips 5)
    assert samples['seawall_cases{state="open"}'] == 1
    assert samples['seawall_cases{state="notified"}'] == 1
    assert samples['seawall_cases{state="walled"}'] == 0
    assert samples['seawall_scrape_errors{source="campaigns"}'] == 0
    assert samples['seawall_scrape_errors{source="cases"}'] == 0
