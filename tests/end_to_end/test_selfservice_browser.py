"""A real browser on the demo's "My API keys" page: a customer signs in, creates a key (shown
once), the key calls ``/api/``, the customer revokes it on the page, and the key is refused
within the revocation bound; a rotation shows the successor once and both keys work during the
grace period.

The demo runs as ``make demo`` runs it (``demo/run.py``, uvicorn, its own SQLite file; see
``tests/end_to_end/test_demo.py``); headless Chromium drives it (see
``tests/end_to_end/test_admin_browser.py``).
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from async_api_key.conf import DEFAULTS
from tests.support.browser import needs_chromium, wait_for
from tests.support.demo import RunningDemo

pytestmark = needs_chromium

_PAGE_LINE_RE = re.compile(
    r"My API keys: (?P<url>\S+)\s+user '(?P<user>[^']+)', password '(?P<pw>[^']+)'"
)

#: The demo leaves MAX_STALENESS at its default: every process refuses a revoked key within it.
REVOCATION_BOUND = float(DEFAULTS["MAX_STALENESS"])


def sign_in(browser: WebDriver, demo: RunningDemo) -> str:
    """Open "My API keys" as the demo's customer; return the site's base URL."""
    page = _PAGE_LINE_RE.search(demo.output)
    assert page is not None, demo.output
    browser.get(page["url"])  # not signed in: the sign-in page, then back here
    wait_for(browser, "#id_username").send_keys(page["user"])
    browser.find_element(By.ID, "id_password").send_keys(page["pw"])
    browser.find_element(By.ID, "sign-in").click()
    wait_for(browser, "#create-key")
    assert browser.find_element(By.TAG_NAME, "h1").text == "My API keys"
    return str(page["url"]).removesuffix("/account/keys/")


def create_key(browser: WebDriver, name: str, scope: str) -> str:
    browser.find_element(By.ID, "key-name").send_keys(name)
    browser.find_element(By.CSS_SELECTOR, f"input[name=scope][value='{scope}']").click()
    browser.find_element(By.ID, "create").click()
    return shown_key(browser)


def shown_key(browser: WebDriver) -> str:
    box = browser.find_element(By.ID, "new-key-value")
    WebDriverWait(browser, 15).until(lambda _: box.get_attribute("value"))
    raw_key: str = box.get_attribute("value") or ""
    assert "shown only once" in browser.find_element(By.ID, "new-key").text
    return raw_key


def wait_until(browser: WebDriver, condition: Any) -> None:
    """Wait for ``condition``; the page redraws its key list after every change."""
    WebDriverWait(browser, 15, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda _: condition()
    )


def row_status(browser: WebDriver, name: str) -> str:
    for row in browser.find_elements(By.CSS_SELECTOR, "#keys tr"):
        if row.find_elements(By.TAG_NAME, "td")[0].text == name:
            return str(row.find_element(By.CSS_SELECTOR, ".status").text)
    return ""


def click_in_row(browser: WebDriver, name: str, button: str) -> None:
    for row in browser.find_elements(By.CSS_SELECTOR, "#keys tr"):
        if (
            row.find_elements(By.TAG_NAME, "td")[0].text == name
            and row.get_attribute("class") == "active"
        ):
            row.find_element(By.CSS_SELECTOR, f"button.{button}").click()
            return
    raise AssertionError(f"no active key {name!r} on the page")


def call_api(base_url: str, raw_key: str, path: str = "/api/me") -> httpx.Response:
    with httpx.Client(base_url=base_url, trust_env=False, timeout=15) as client:
        return client.get(path, headers={"Authorization": f"Api-Key {raw_key}"})


def test_a_key_made_on_the_page_works_until_revoked_on_the_page(
    browser: WebDriver,
    demo: RunningDemo,
) -> None:
    base_url = sign_in(browser, demo)
    raw_key = create_key(browser, "browser", "orders:read")
    wait_until(browser, lambda: row_status(browser, "browser") == "active")

    me = call_api(base_url, raw_key)
    assert me.status_code == 200
    assert me.json()["name"] == "browser"
    assert call_api(base_url, raw_key, "/api/orders").status_code == 200
    assert call_api(base_url, raw_key, "/api/products").status_code == 200

    # Shown once: not in a cookie, not in storage, gone after a reload.
    assert all(raw_key not in cookie["value"] for cookie in browser.get_cookies())
    assert browser.execute_script("return window.localStorage.length") == 0
    browser.refresh()
    wait_for(browser, "#keys tr")
    assert raw_key not in browser.page_source

    click_in_row(browser, "browser", "revoke")
    wait_until(browser, lambda: row_status(browser, "browser") == "revoked")
    revoked_at = time.monotonic()
    while (status := call_api(base_url, raw_key).status_code) != 401:
        assert status == 200
        assert time.monotonic() - revoked_at <= REVOCATION_BOUND, "still accepted"
        time.sleep(0.05)
    assert time.monotonic() - revoked_at <= REVOCATION_BOUND
    assert raw_key not in demo.output  # the demo's log never held it


def test_a_rotation_on_the_page_shows_the_successor_once_and_keeps_the_old_key_for_the_grace(
    browser: WebDriver,
    demo: RunningDemo,
) -> None:
    base_url = sign_in(browser, demo)
    old_key = create_key(browser, "rotating", "orders:read")
    wait_until(browser, lambda: row_status(browser, "rotating") == "active")

    click_in_row(browser, "rotating", "rotate")
    WebDriverWait(browser, 15).until(
        lambda _: browser.find_element(By.ID, "new-key-value").get_attribute("value") != old_key
    )
    new_key = shown_key(browser)
    assert new_key != old_key
    assert call_api(base_url, new_key).status_code == 200
    assert call_api(base_url, old_key).status_code == 200  # within its grace period
    rows: list[Any] = browser.find_elements(By.CSS_SELECTOR, "#keys tr")
    assert [row.find_elements(By.TAG_NAME, "td")[0].text for row in rows].count("rotating") == 2
