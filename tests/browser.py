"""A real browser for the tests: the distribution's Chromium, headless, driven by Selenium through
the distribution's chromedriver (Debian packages `chromium` and `chromium-driver`; .ci/run installs
them). Nothing is downloaded: Selenium is given the driver's path, so its manager never runs.

`browser()` gives a driver at 1,280 x 800; `visit(driver, url)` opens a page; `shot(driver, name)`
saves a screenshot under SCREENSHOTS (tests/screenshots/, or $CAVEAT_SCREENSHOTS), where the README
says to look; `console_errors(driver)` is what the page logged at level SEVERE; `network(driver)`
the URLs the page asked for (from the browser's performance log), so a test can say that a page
loaded nothing from the network.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SCREENSHOTS = Path(os.environ.get("CAVEAT_SCREENSHOTS", REPO / "tests" / "screenshots"))
WIDTH, HEIGHT = 1280, 800


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError(
        f"none of {', '.join(names)} is installed: apt-get install chromium chromium-driver "
        "(.ci/run does)"
    )


@contextmanager
def browser() -> Iterator[Any]:
    """A headless Chromium under Selenium, closed at the end."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _binary("chromium", "chromium-browser", "google-chrome")
    profile = tempfile.mkdtemp(prefix="caveat-chromium-")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        f"--window-size={WIDTH},{HEIGHT}",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = Service(executable_path=_binary("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_window_size(WIDTH, HEIGHT)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def visit(driver: Any, url: str) -> None:
    """Open `url`, with the logs emptied first, so that they hold this page's only."""
    driver.get_log("browser")
    driver.get_log("performance")
    driver.get(url)


def shot(driver: Any, name: str, full: bool = False) -> Path:
    """Save what the browser shows (with `full`, the whole page's height) as NAME.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    if full:
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(WIDTH, min(int(height) + 100, 16_000))
    driver.save_screenshot(str(path))
    if full:
        driver.set_window_size(WIDTH, HEIGHT)
    return path


def console_errors(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def network(driver: Any) -> list[str]:
    """Every URL the page requested, from the performance log (file: and data: included)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def remote(urls: list[str], allowed: tuple[str, ...] = ()) -> list[str]:
    """The URLs that left the machine (not file:, data:, about:, or an allowed prefix)."""
    local = ("file:", "data:", "about:", "blob:", "chrome:", "chrome-extension:", *allowed)
    return [u for u in urls if not u.startswith(local)]
