"""Debian's Chromium under Selenium for the dashboard tests (and the dashboard benchmarks): one headless browser per
test module, with helpers to wait for what the page shows and to read its console.

Without Chromium the tests skip with the reason, except where they must run: under CI (``CI`` set) or with
``HEALTHPIPE_REQUIRE_BROWSER=1``, a missing browser fails them loudly (``.ci/run`` installs it)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM_NAMES = ("chromium", "chromium-browser")
DRIVER_NAME = "chromedriver"
INSTALL_HINT = "apt-get install -y chromium chromium-driver"
DESKTOP, PHONE = (1280, 900), (390, 844)


def browser_required() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("HEALTHPIPE_REQUIRE_BROWSER") == "1"


def chromium_binaries() -> tuple[str, str] | None:
    browser = next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)
    driver = shutil.which(DRIVER_NAME)
    return (browser, driver) if browser and driver else None


def start_chromium(size: tuple[int, int] = DESKTOP) -> webdriver.Chrome:
    """A headless Chromium; raises when it is not installed."""
    binaries = chromium_binaries()
    if binaries is None:
        raise RuntimeError(f"Chromium and chromedriver are not installed ({INSTALL_HINT})")
    options = webdriver.ChromeOptions()
    options.binary_location = binaries[0]
    for argument in (
        "--headless=new",
        "--disable-dev-shm-usage",
        "--lang=en-US",
        "--disable-gpu",
        f"--window-size={size[0]},{size[1]}",
        "--no-first-run",
        "--disable-extensions",
    ):
        options.add_argument(argument)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses to start its sandbox as root
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=binaries[1]))
    driver.set_window_size(*size)
    return driver


@contextmanager
def chromium_or_skip(size: tuple[int, int] = DESKTOP) -> Iterator[webdriver.Chrome]:
    """A browser for a test module: skipped with the reason when Chromium is missing, failed when it is required."""
    if chromium_binaries() is None:
        if browser_required():
            pytest.fail(f"Chromium is required here (CI or HEALTHPIPE_REQUIRE_BROWSER=1) but missing: {INSTALL_HINT}")
        pytest.skip(f"Chromium and chromedriver are not installed ({INSTALL_HINT})")
    driver = start_chromium(size)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: webdriver.Chrome, condition: Callable[[webdriver.Chrome], Any], timeout: float = 15) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)


def shown(driver: webdriver.Chrome, css: str, timeout: float = 15) -> WebElement:
    """The first element matching ``css`` once it is displayed."""

    def find(d: webdriver.Chrome) -> WebElement | bool:
        found = d.find_elements(By.CSS_SELECTOR, css)
        return found[0] if found and found[0].is_displayed() else False

    return wait_for(driver, find, timeout)  # type: ignore[no-any-return]


def console_errors(driver: webdriver.Chrome) -> list[str]:
    """The browser console's errors since the last call (reading the log empties it)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def sign_in(driver: webdriver.Chrome, base: str, key: str) -> None:
    """Signs in through the page's form, as a person does."""
    driver.get(base + "/#/signin")
    field = shown(driver, "#api-key")
    field.send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "form.signin button[type=submit]").click()
    shown(driver, "section.metric, p.card.wide")
