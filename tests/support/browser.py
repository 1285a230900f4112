"""A real browser for the end-to-end tests: headless Chromium from Debian's packages
(``apt-get install chromium chromium-driver``), driven by Selenium."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

#: Skips a test where this machine has no Chromium (a laptop without the Debian packages).
needs_chromium = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason=f"needs {CHROMIUM} and {CHROMEDRIVER}: apt-get install -y chromium chromium-driver",
)


@pytest.fixture
def quiet_webdriver_log() -> Iterator[None]:
    """Keep Selenium's wire transcript out of the log: it carries what the test reads from
    the page (the key itself), and the suite fails any test whose logs hold a raw key."""
    selenium_logger = logging.getLogger("selenium")
    previous = selenium_logger.level
    selenium_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        selenium_logger.setLevel(previous)


@pytest.fixture
def browser(tmp_path: Path, quiet_webdriver_log: None) -> Iterator[WebDriver]:
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(browser: WebDriver, css_selector: str) -> Any:
    return WebDriverWait(browser, 15).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css_selector))
    )
