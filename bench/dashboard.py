"""What the dashboard costs and how fast its pages are, on a served instance at scale.

    .venv/bin/python -m bench.dashboard [--campaigns 1000] [--cases 10000] [--loads 30]
        [--rounds 6] [--messages 1500] [--concurrency 16]

One ``seawall serve`` (2 workers) on a learned state (the SpamAssassin train half), with:

- **10,000 zombie cases** written into its case store before it starts (account cases on
  the simulated ISP's dial-up pool, two pieces of evidence each, as the desk records them);
- **1,000 live campaigns**: three mutated copies of each of 1,000 distinct messages sent
  through /checkv2 from three addresses, so the tracker holds them and the verdict history
  has their rows (and the ham of the corpus beside them).

1. **Page load time**: Debian's headless Chromium (tests/dashboard/browser.py, a fresh
   profile) logs in and loads each page ``--loads`` times: the overview, the campaign list
   and one campaign, sources, the case list and one case, the history (all, and a search),
   one verdict, the domains.  The time of each load is the browser's Navigation Timing
   ``duration`` (request to the end of the load event: the page, its script and styles, the
   charts drawn); the server's share (``responseEnd - requestStart``) beside it.  p50 and
   p95 per page, nearest rank.
2. **/checkv2 with the dashboard open**: bench/load.py's load (the corpus test half,
   ``--concurrency`` connections) in interleaved rounds (A B B A ...): A with the browser
   on about:blank, B with the browser showing the overview, which fetches itself again
   every ``[dashboard] refresh_s`` (5 s, the default) and redraws its charts.  The browser
   runs in both, so only the dashboard's work differs.  msg/s per round, the median of
   the per-round ratios B/A, and the server's CPU per message (its processes' user+system
   time), which other work on the machine disturbs less; and the browser's own CPU, which
   here shares the server's two cores (a desk's browser runs on the desk's machine).
3. **What one live update costs**: no load, ``--idle-s`` seconds with the overview open,
   then as long on about:blank: the server's CPU in each, over the updates the page made.

Prints a report and writes the JSON to .cache/bench/dashboard.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
from selenium.webdriver.remote.webdriver import WebDriver
from tests.dashboard.browser import chromium, need_chromium, wait_for
from tests.integration.seawall_proc import Seawall

from bench.history import server_cpu_s
from bench.load import Sample, corpus_samples, percentile, run_load
from bench.serve import train
from seawall.config import load_config
from seawall.sim import words
from seawall.users import hash_password
from seawall.zombies.model import Evidence, Kind, evidence_id
from seawall.zombies.store import open_case_store

ROOT = Path(__file__).resolve().parents[1]
USER = ("bench", "bench-password-1")
HEADERS = ("IP: 203.0.113.5", "From: sender@example.org", "Rcpt: user@example.net")
COPIES = 3
KINDS: tuple[tuple[Kind, float], ...] = (("botnet", 4.0), ("spam", 4.0))
NAVIGATION = """
const t = performance.getEntriesByType('navigation')[0];
return [t.duration, t.responseEnd - t.requestStart, t.transferSize];
"""


async def write_cases(config_path: Path, n: int) -> None:
    """``n`` account cases, each opened by a botnet and a spam verdict from its address."""
    book = open_case_store(load_config(config_path))
    now = time.time()
    try:
        for i in range(n):
            ip = f"198.18.{i // 250}.{i % 250 + 1}"
            account = f"sub{i:05d}"
            for k, (kind, weight) in enumerate(KINDS):
                await book.add_evidence(
                    Evidence(
                        id=evidence_id("bench", account, k),
                        source="verdict",
                        kind=kind,
                        at=now - 3600 + i % 3600 + k,
                        ip=ip,
                        account=account,
                        queue_id=f"B{i:05d}{k}",
                        campaign=f"c-bench{i % 1000:04d}",
                        symbols=("CAMPAIGN_BOTNET",) if kind == "botnet" else ("CAMPAIGN_SPAM",),
                        subject=f"offer {i}",
                        weight=weight,
                    )
                )
    finally:
        await book.close()


def campaign_samples(n: int, seed: int = 5) -> list[tuple[Sample, str]]:
    """``COPIES`` mutated copies of ``n`` distinct messages, each copy with its source."""
    rng = random.Random(seed)
    out: list[tuple[Sample, str]] = []
    for c in range(n):
        text = [rng.choice(words.WORDS) for _ in range(90)]
        subject = " ".join(rng.choice(words.WORDS) for _ in range(5))
        domain = f"{rng.choice(words.WORDS)}{c}.test"
        for k in range(COPIES):
            body = list(text)
            for _ in range(3):
                body[rng.randrange(len(body))] = rng.choice(words.WORDS)
            raw = (
                f"From: Offers <news{k}@{domain}>\r\nTo: user{k}@example.net\r\n"
                f"Subject: {subject} {k}\r\nMessage-ID: <b{c}-{k}@{domain}>\r\n\r\n"
                f"{' '.join(body)}\r\nhttp://{domain}/go?{rng.randrange(10**6)}\r\n"
            ).encode()
            ip = f"{rng.randrange(58, 96)}.{rng.randrange(256)}.{rng.randrange(256)}.{k + 1}"
            out.append((Sample(f"c{c}-{k}", "spam", raw), ip))
    return out


def send_campaigns(sw: Seawall, items: list[tuple[Sample, str]], threads: int = 8) -> None:
    """Each copy through /checkv2 with its own client address (``IP``), ``threads`` at once."""

    def send(part: list[tuple[Sample, str]]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", sw.ports["http"], timeout=60)
        try:
            for sample, ip in part:
                conn.request(
                    "POST",
                    "/checkv2",
                    body=sample.body,
                    headers={"IP": ip, "From": "news@example.test", "Rcpt": "user@example.net"},
                )
                answer = conn.getresponse()
                answer.read()
                assert answer.status == 200, answer.status
        finally:
            conn.close()

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(send, [items[i::threads] for i in range(threads)]))


def login(driver: WebDriver, sw: Seawall) -> None:
    driver.get(sw.url("/ui/login"))
    driver.find_element("id", "username").send_keys(USER[0])
    driver.find_element("id", "password").send_keys(USER[1])
    driver.find_element("id", "login").click()
    wait_for(lambda: driver.find_elements("id", "actions-chart"), what="the overview")


def first_link(driver: WebDriver, sw: Seawall, page: str, selector: str) -> str:
    driver.get(sw.url(page))
    href = driver.find_element("css selector", selector).get_attribute("href")
    assert href
    return href


def page_loads(driver: WebDriver, sw: Seawall, loads: int) -> dict[str, dict[str, float]]:
    pages = {
        "overview": sw.url("/ui/"),
        "campaigns": sw.url("/ui/campaigns"),
        "campaign": first_link(driver, sw, "/ui/campaigns", "table.campaigns tbody a"),
        "sources": sw.url("/ui/sources"),
        "cases": sw.url("/ui/cases"),
        "case": first_link(driver, sw, "/ui/cases", "#cases tbody td.mono a"),
        "history": sw.url("/ui/history"),
        "history search": sw.url("/ui/history?hide=1&subject=offer"),
        "verdict": first_link(driver, sw, "/ui/history", "#history-rows tbody a"),
        "domains": sw.url("/ui/domains"),
    }
    out: dict[str, dict[str, float]] = {}
    for name, url in pages.items():
        total: list[float] = []
        server: list[float] = []
        size = 0.0
        for _ in range(loads):
            driver.get(url)
            duration, served, size = driver.execute_script(NAVIGATION)
            total.append(float(duration))
            server.append(float(served))
        total.sort()
        server.sort()
        out[name] = {
            "p50_ms": round(percentile(total, 50), 1),
            "p95_ms": round(percentile(total, 95), 1),
            "server_p50_ms": round(percentile(server, 50), 1),
            "server_p95_ms": round(percentile(server, 95), 1),
            "bytes": float(size),
        }
        print(
            f"{name:<15} p50 {out[name]['p50_ms']:7.1f} ms  p95 {out[name]['p95_ms']:7.1f} ms"
            f"  (server p95 {out[name]['server_p95_ms']:6.1f} ms)",
            file=sys.stderr,
        )
    return out


def live_campaigns(sw: Seawall) -> int:
    with urllib.request.urlopen(sw.url("/metrics"), timeout=30) as answer:
        text = answer.read().decode()
    for line in text.splitlines():
        if line.startswith("seawall_campaigns_live"):
            return int(float(line.split()[-1]))
    return -1


def browser_cpu_s(driver: WebDriver) -> float:
    """CPU seconds of chromedriver and the browser's processes under it."""
    pid = driver.service.process.pid  # type: ignore[attr-defined]
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def updates(driver: WebDriver) -> int:
    return int(driver.find_element("tag name", "body").get_attribute("data-updates") or 0)


def idle_cost(driver: WebDriver, sw: Seawall, seconds: float) -> dict[str, float]:
    """Server CPU with the overview open and updating, and with no page, with no mail."""
    driver.get(sw.url("/ui/"))
    wait_for(lambda: driver.find_elements("css selector", "#actions-chart canvas"))
    n0, cpu0 = updates(driver), server_cpu_s(sw)
    time.sleep(seconds)
    n, open_cpu = updates(driver) - n0, server_cpu_s(sw) - cpu0
    driver.get("about:blank")
    cpu0 = server_cpu_s(sw)
    time.sleep(seconds)
    closed_cpu = server_cpu_s(sw) - cpu0
    return {
        "seconds": seconds,
        "updates": n,
        "server_cpu_s_open": round(open_cpu, 3),
        "server_cpu_s_closed": round(closed_cpu, 3),
        "server_cpu_ms_per_update": round(1000 * (open_cpu - closed_cpu) / max(1, n), 1),
    }


def throughput(
    driver: WebDriver,
    sw: Seawall,
    samples: Sequence[Sample],
    rounds: int,
    concurrency: int,
) -> dict[str, Any]:
    rates: dict[str, list[float]] = {"closed": [], "open": []}
    cpu_ms: dict[str, list[float]] = {"closed": [], "open": []}
    browser_ms: dict[str, list[float]] = {"closed": [], "open": []}
    for r in range(rounds):
        order = ("closed", "open") if r % 2 == 0 else ("open", "closed")
        for side in order:
            if side == "open":
                driver.get(sw.url("/ui/"))
                wait_for(lambda: driver.find_elements("css selector", "#actions-chart canvas"))
                updates0 = int(
                    driver.find_element("tag name", "body").get_attribute("data-updates") or 0
                )
            else:
                driver.get("about:blank")
            cpu0, browser0 = server_cpu_s(sw), browser_cpu_s(driver)
            result = run_load(sw.url("/checkv2"), samples, concurrency, headers=HEADERS).summary()
            time.sleep(1.5)
            spent = server_cpu_s(sw) - cpu0
            browser_ms[side].append(
                round(1000 * (browser_cpu_s(driver) - browser0) / len(samples), 3)
            )
            assert result["errors"] == 0, result
            if side == "open":
                updates = (
                    int(driver.find_element("tag name", "body").get_attribute("data-updates") or 0)
                    - updates0
                )
                assert updates >= 1, "the page did not update during the round"
            rates[side].append(result["msgs_per_s"])
            cpu_ms[side].append(round(1000 * spent / len(samples), 3))
            print(
                f"round {r + 1} dashboard {side:<6} {result['msgs_per_s']:8.1f} msg/s"
                f" {cpu_ms[side][-1]:6.2f} ms CPU/msg",
                file=sys.stderr,
            )
    ratios = [o / c for o, c in zip(rates["open"], rates["closed"], strict=True)]
    cpu = [o / c for o, c in zip(cpu_ms["open"], cpu_ms["closed"], strict=True)]
    return {
        "msgs_per_s": rates,
        "cpu_ms_per_msg": cpu_ms,
        "browser_cpu_ms_per_msg": browser_ms,
        "median_browser_cpu_ms_per_msg": {k: statistics.median(v) for k, v in browser_ms.items()},
        "median_msgs_per_s": {k: statistics.median(v) for k, v in rates.items()},
        "median_ratio_open_to_closed": round(statistics.median(ratios), 3),
        "median_cpu_ratio_open_to_closed": round(statistics.median(cpu), 3),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--campaigns", type=int, default=1000)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--loads", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--messages", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--idle-s", type=float, default=60.0)
    parser.add_argument("--skip-pages", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args(argv)
    need_chromium()
    samples = corpus_samples(train=False, limit=args.messages)
    report: dict[str, Any] = {"campaigns": args.campaigns, "cases": args.cases}
    with tempfile.TemporaryDirectory(prefix="seawall-bench-dashboard-") as tmp:
        root = Path(tmp)
        state = root / "state"
        train(state, root)
        users = f'[users.{USER[0]}]\npassword = "{hash_password(USER[1])}"\nroles = ["admin"]\n'
        sw = Seawall(
            root / "serve",
            state,
            workers=2,
            extra='[isp]\nnetworks = ["198.18.0.0/15"]\ndynamic = ["198.18.0.0/16"]\n' + users,
        )
        sw.write_config(log_messages=False)
        started = time.monotonic()
        asyncio.run(write_cases(sw.config_file, args.cases))
        print(f"{args.cases} cases written in {time.monotonic() - started:.0f} s", file=sys.stderr)
        sw.start()
        try:
            started = time.monotonic()
            send_campaigns(sw, campaign_samples(args.campaigns))
            report["live_campaigns"] = live_campaigns(sw)
            print(
                f"campaigns sent in {time.monotonic() - started:.0f} s;"
                f" {report['live_campaigns']} live",
                file=sys.stderr,
            )
            run_load(sw.url("/checkv2"), samples[:300], args.concurrency, headers=HEADERS)
            time.sleep(2)
            with chromium(root / "profile") as driver:
                login(driver, sw)
                if not args.skip_pages:
                    report["pages"] = page_loads(driver, sw, args.loads)
                if not args.skip_throughput:
                    report["idle"] = idle_cost(driver, sw, args.idle_s)
                    print(f"idle: {report['idle']}", file=sys.stderr)
                    report["throughput"] = throughput(
                        driver, sw, samples, args.rounds, args.concurrency
                    )
        finally:
            sw.stop()
            shutil.rmtree(root / "profile", ignore_errors=True)
    report.update(messages=len(samples), concurrency=args.concurrency, rounds=args.rounds)
    out = ROOT / ".cache" / "bench" / "dashboard.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
