"""The dashboard in a real browser (Debian's headless Chromium, Selenium) against a real
``seawall serve`` with two workers, after a seeded simulated wave over /checkv2.

The test logs in, sees the wave's ramp on the overview chart and the chart updating live,
opens a campaign and marks it, searches the history and opens a verdict, opens a zombie
case and walls it (confirmed), logs out; it checks that a hostile message's script ran on
no page, that a form without its CSRF token is refused, that failed logins are limited,
and the Content-Security-Policy header.  A screenshot of every page is saved in the
folder it prints (``$SEAWALL_SCREENSHOTS``, else a temporary one).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.remote.webdriver import WebDriver
from tests.dashboard.browser import assert_inert, chart, chromium, need_chromium, wait_for
from tests.dashboard.mail import HOSTILE_SUBJECT, hostile
from tests.integration.seawall_proc import Seawall

from seawall.users import hash_password

ADMIN = ("desk", "desk-password-1")
VIEWER = ("noc", "noc-password-1")
SPAM_ACTIONS = ("reject", "soft reject", "add header", "rewrite subject", "greylist")
WAVE = ("--seed", "7", "--campaigns", "2", "--zombies", "80", "--hours", "1")
WAVE_RATE = ("--peak-per-hour", "1500", "--ham-per-hour", "600", "--newsletters", "1")
WAVE_SPEED = "60"  # the simulated hour in one real minute
# The chart counts by wall-clock minute, so the wave starts when a minute's boundary will fall
# 8-40 s into it (the simulator takes a second or two to begin): the first minute holds the
# campaigns' ramp, the second their plateau, whatever the second the suite came here at. By
# the generator's truth, spam is 0.16-0.70 of the mail up to simulated minute 8-40 and 0.84
# after it.
WAVE_START_S = (20.0, 50.0)


def wait_for_second(lo: float, hi: float) -> None:
    """Sleep until the wall clock's second within its minute is in [lo, hi)."""
    second = time.time() % 60
    if not lo <= second < hi:
        time.sleep((lo - second) % 60)


@pytest.fixture(scope="module")
def shots() -> Path:
    # Not under pytest's own temporary folders, which later runs remove.
    where = os.environ.get("SEAWALL_SCREENSHOTS")
    folder = Path(where) if where else Path(tempfile.mkdtemp(prefix="seawall-screenshots-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\ndashboard screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, sa_learned: Path) -> Iterator[Seawall]:
    """seawall serve (two workers) after the wave and a few hostile messages."""
    need_chromium()
    root = tmp_path_factory.mktemp("served")
    state = root / "state"
    shutil.copytree(sa_learned, state)
    users = "".join(
        f'[users.{name}]\npassword = "{hash_password(password)}"\nroles = ["{role}"]\n'
        for (name, password), role in ((ADMIN, "admin"), (VIEWER, "view"))
    )
    sw = Seawall(
        root,
        state,
        workers=2,
        extra=(
            "[isp]\n"
            'networks = ["198.18.0.0/15"]\n'
            'dynamic = ["198.18.0.0/16", "198.19.0.0/17"]\n'
            'relays = ["198.19.255.0/28"]\n'
            "[serve.history]\nkeep_messages = true\n"
            "[dashboard]\nrefresh_s = 2\n" + users
        ),
    )
    sw.write_config(policy={"allow_hosts": [".esp.example.com"]})
    sw.start()
    try:
        wait_for_second(*WAVE_START_S)
        wave = subprocess.run(
            [sys.executable, "-m", "seawall", "simulate", *WAVE, *WAVE_RATE]
            + ["--to", sw.url(), "--speed", WAVE_SPEED, "--workers", "8"],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert wave.returncode == 0, wave.stderr
        for i in range(6):
            raw, envelope = hostile(i)
            ip = f"198.18.9.{10 + i}" if i % 2 else f"192.0.2.{66 + i}"
            request = urllib.request.Request(
                sw.url("/checkv2"),
                data=raw,
                headers={
                    "IP": ip,
                    "From": envelope.mail_from or "",
                    "Rcpt": envelope.rcpts[0],
                    "Queue-Id": f"QX{i}",
                },
            )
            with urllib.request.urlopen(request, timeout=30) as answer:
                assert answer.status == 200
        time.sleep(3)  # the workers write their verdicts every second
        yield sw
    finally:
        sw.stop()


def shoot(driver: WebDriver, shots: Path, name: str) -> None:
    driver.save_screenshot(str(shots / f"{name}.png"))


def login(driver: WebDriver, sw: Seawall, name: str, password: str) -> None:
    driver.get(sw.url("/ui/login"))
    driver.find_element("id", "username").send_keys(name)
    driver.find_element("id", "password").send_keys(password)
    driver.find_element("id", "login").click()


def message(driver: WebDriver) -> str:
    """The login form's message, once the answer to the form is shown."""
    text: str = wait_for(
        lambda: driver.find_element("id", "login-message").text, what="the login's answer"
    )
    return text


def spam_share(minute: dict[str, int]) -> float:
    total = sum(minute.values())
    return sum(minute.get(a, 0) for a in SPAM_ACTIONS) / total if total else 0.0


def minutes_of(data: dict[str, Any]) -> list[dict[str, int]]:
    series = {label: values for label, values in data["series"]}
    return [{a: int(v[i] or 0) for a, v in series.items()} for i in range(len(data["x"]))]


def metrics_total(sw: Seawall) -> int:
    with urllib.request.urlopen(sw.url("/metrics"), timeout=30) as answer:
        text = answer.read().decode()
    return round(
        sum(float(m) for m in re.findall(r"^seawall_messages_total\{[^}]*\} (\S+)$", text, re.M))
    )


def test_the_desk_in_a_browser(served: Seawall, shots: Path, tmp_path: Path) -> None:
    sw = served
    with chromium(tmp_path / "profile") as driver:
        driver.get(sw.url("/ui/"))
        wait_for(lambda: "/ui/login" in driver.current_url, what="the login form")
        shoot(driver, shots, "login")
        login(driver, sw, *ADMIN)
        wait_for(lambda: driver.find_elements("id", "actions-chart"), what="the overview")

        # The overview: every worker's verdicts, the wave's ramp, live updates.
        data = chart(driver, "actions-chart")
        minutes = [m for m in minutes_of(data) if sum(m.values()) >= 30]
        assert len(minutes) >= 2, data
        assert spam_share(minutes[-1]) > spam_share(minutes[0]) + 0.1, minutes
        counted = sum(sum(m.values()) for m in minutes_of(data))
        assert counted == metrics_total(sw)  # the history and the metrics agree: both workers
        wait_for(
            lambda: (
                int(driver.find_element("tag name", "body").get_attribute("data-updates") or 0) >= 2
            ),
            what="two live updates",
        )
        assert "updated" in driver.find_element("id", "updated").text
        assert_inert(driver)
        shoot(driver, shots, "overview")

        # A campaign: the busiest, opened from the list, marked spam.
        driver.get(sw.url("/ui/campaigns"))
        rows = driver.find_elements("css selector", "table.campaigns tbody tr td:first-child a")
        assert rows
        assert_inert(driver)
        shoot(driver, shots, "campaigns")
        rows[0].click()
        wait_for(lambda: driver.find_elements("id", "mark-spam"), what="the campaign page")
        assert "Spread" in driver.page_source
        assert driver.find_elements("id", "message")  # its sample message, as text
        assert_inert(driver)
        shoot(driver, shots, "campaign")
        campaign_url = driver.current_url
        driver.find_element("id", "mark-spam").click()
        wait_for(lambda: driver.find_elements("id", "marked"), what="the mark")
        assert "Marked spam" in driver.find_element("id", "marked").text

        # A form whose CSRF token was taken out is refused.
        driver.get(campaign_url)
        driver.execute_script(
            "document.querySelectorAll('input[name=csrf]').forEach(e => e.value = 'forged')"
        )
        driver.find_element("id", "mark-ham").click()
        wait_for(lambda: driver.find_elements("id", "error-message"), what="the refusal")
        assert "security token" in driver.find_element("id", "error-message").text

        # Sources and domains.
        driver.get(sw.url("/ui/sources"))
        wait_for(lambda: driver.find_elements("id", "own-ips"), what="the sources")
        assert "own dynamic" in driver.find_element("id", "own-ips").text
        assert_inert(driver)
        shoot(driver, shots, "sources")
        driver.get(sw.url("/ui/domains"))
        assert "example" in driver.find_element("id", "recipient-domains").text
        assert_inert(driver)
        shoot(driver, shots, "domains")

        # The history: the hostile rows, shown as text, and one explained.
        driver.get(sw.url("/ui/history"))
        driver.find_element("name", "subject").send_keys("Invoice")
        driver.find_element("id", "hide").click()
        driver.find_element("id", "search").click()
        wait_for(lambda: "Invoice" in driver.find_element("id", "history-rows").text)
        assert "<script>window.__xss" in driver.find_element("id", "history-rows").text
        assert_inert(driver)
        shoot(driver, shots, "history")
        driver.find_element("css selector", "#history-rows tbody tr td a").click()
        wait_for(lambda: driver.find_elements("id", "symbols"), what="the verdict")
        assert HOSTILE_SUBJECT[:20] in driver.page_source.replace("&lt;", "<").replace(
            "&gt;", ">"
        ).replace("&quot;", '"')
        assert_inert(driver)
        shoot(driver, shots, "verdict")

        # The campaigns of the hostile copies render inert too.
        driver.get(sw.url("/ui/campaigns?q=invoice"))
        for link in [
            a.get_attribute("href")
            for a in driver.find_elements("css selector", "table.campaigns tbody a")
        ]:
            driver.get(str(link))
            assert_inert(driver)

        # A zombie case: opened, walled after a confirmation, and the change seen.
        driver.get(sw.url("/ui/cases"))
        cases = wait_for(
            lambda: driver.find_elements("css selector", "#cases tbody td.mono a"),
            timeout=120,
            what="a zombie case",
        )
        assert_inert(driver)
        shoot(driver, shots, "cases")
        cases[0].click()
        wait_for(lambda: driver.find_elements("id", "timeline"), what="the case")
        assert_inert(driver)
        shoot(driver, shots, "case")
        before = driver.find_element("id", "case-state").text
        assert before in ("open", "notified")
        driver.find_element("id", "action-wall").click()
        wait_for(lambda: driver.find_elements("id", "confirm"), what="the confirmation")
        shoot(driver, shots, "case-confirm")
        driver.find_element("id", "why").send_keys("worm mail from the customer's PC")
        driver.find_element("id", "confirm").click()
        wait_for(lambda: driver.find_elements("id", "done"), what="the case after the action")
        assert driver.find_element("id", "case-state").text == "walled"
        assert "worm mail from the customer" in driver.find_element("id", "timeline").text

        driver.get(sw.url("/ui/users"))
        shoot(driver, shots, "users")

        # Logging out ends the session.
        driver.find_element("id", "logout").click()
        wait_for(lambda: "/ui/login" in driver.current_url, what="the logout")
        driver.get(sw.url("/ui/cases"))
        wait_for(lambda: "/ui/login" in driver.current_url, what="the login form again")

        # Five failed logins from this address, then even the right password waits.
        for _ in range(5):
            login(driver, sw, ADMIN[0], "not-the-password")
            assert "Wrong name or password" in message(driver)
        login(driver, sw, *ADMIN)
        assert "Too many failed logins" in message(driver)

    with urllib.request.urlopen(sw.url("/ui/login"), timeout=30) as answer:
        csp = answer.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "default-src 'none'" in csp
