"""Debian's headless Chromium driven by Selenium, for the dashboard's browser tests.

Nothing is downloaded: the browser and its driver are the Debian packages' (``chromium``,
``chromium-driver``), started with a fresh profile and without any of the browser's own
network traffic (updates, sync, QUIC).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)
# Every way a hostile message could have run script: none of these may exist in a page.
NO_SCRIPT_RAN = """
return {
  xss: window.__xss === undefined ? null : String(window.__xss),
  inline: document.querySelectorAll('script:not([src])').length,
  handlers: Array.from(document.querySelectorAll('*')).filter(
      el => Array.from(el.attributes).some(a => a.name.startsWith('on'))).length,
  js_links: document.querySelectorAll('a[href^="javascript:" i], [src^="javascript:" i]').length,
  foreign: Array.from(document.querySelectorAll('svg, iframe, object, embed')).length,
};
"""


def need_chromium() -> None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            pytest.skip(f"{path} is missing: apt-get install chromium chromium-driver")


@contextmanager
def chromium(profile: Path) -> Iterator[WebDriver]:
    """A headless Chromium with a fresh profile in ``profile``."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=ChromeService(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(
    check: Callable[[], Any], timeout: float = 60.0, what: str = "the page", every: float = 0.2
) -> Any:
    """``check()`` once it is truthy; fails after ``timeout`` s (a guard against hangs)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = check()
        except Exception:  # noqa: BLE001 -- an element not there yet
            got = None
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def assert_inert(driver: WebDriver) -> None:
    """No script of a message ran on the page shown, and none could have."""
    found = driver.execute_script(NO_SCRIPT_RAN)
    assert found == {"xss": None, "inline": 0, "handlers": 0, "js_links": 0, "foreign": 0}, (
        driver.current_url,
        found,
    )


def chart(driver: WebDriver, element_id: str) -> dict[str, Any]:
    """The data a chart was drawn from (its data-chart attribute), once uPlot drew it."""
    wait_for(
        lambda: driver.find_element("css selector", f"#{element_id}[data-drawn] canvas"),
        what=f"the chart {element_id}",
    )
    raw = driver.find_element("id", element_id).get_attribute("data-chart")
    assert raw
    data: dict[str, Any] = json.loads(raw)
    return data
