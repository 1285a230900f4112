"""A real browser in the admin: create a key, use it, revoke it, watch it stop working; rotate
a key and use both keys within the grace period; reload and go back to the page that showed a
key; fit the key list in a 1300 px window.

Headless Chromium from Debian's packages (``apt-get install chromium chromium-driver``),
driven by Selenium against pytest-django's live server.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.utils import timezone
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from async_api_key.models import APIKey
from tests.support.browser import needs_chromium, wait_for

PASSWORD = "browser-test-password"

pytestmark = [
    pytest.mark.urls("tests.support.admin_urls"),
    needs_chromium,
]


def call_protected_endpoint(base_url: str, raw_key: str) -> int:
    with httpx.Client(base_url=base_url, trust_env=False, timeout=15) as client:
        response = client.get("/protected/", headers={"Authorization": f"Api-Key {raw_key}"})
    return response.status_code


def log_in(browser: WebDriver, base_url: str, username: str) -> None:
    browser.get(f"{base_url}/admin/login/?next=/admin/")
    browser.find_element(By.NAME, "username").send_keys(username)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait_for(browser, "#user-tools")


def create_key_in_admin(browser: WebDriver, base_url: str, name: str) -> str:
    browser.get(f"{base_url}/admin/async_api_key/apikey/add/")
    browser.find_element(By.NAME, "name").send_keys(name)
    browser.find_element(By.NAME, "scopes").send_keys("orders:read, orders:write")
    browser.find_element(By.NAME, "_save").click()
    raw_key: str = wait_for(browser, "#api-key-value").get_attribute("value")
    return raw_key


def revoke_in_admin(browser: WebDriver, base_url: str, api_key: APIKey) -> None:
    browser.get(f"{base_url}/admin/async_api_key/apikey/")
    browser.find_element(By.CSS_SELECTOR, f"input.action-select[value='{api_key.pk}']").click()
    Select(browser.find_element(By.NAME, "action")).select_by_value("revoke_selected")
    browser.find_element(By.NAME, "index").click()
    wait_for(browser, "#confirm-revoke").click()
    wait_for(browser, ".messagelist .success")


def test_key_created_in_the_admin_works_until_revoked_in_the_admin(
    browser: WebDriver, live_server: Any, django_user_model: Any
) -> None:
    admin_user = django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    log_in(browser, live_server.url, admin_user.username)

    raw_key = create_key_in_admin(browser, live_server.url, "browser")
    assert "shown only on this page" in browser.page_source
    assert all(raw_key not in cookie["value"] for cookie in browser.get_cookies())
    assert call_protected_endpoint(live_server.url, raw_key) == 200

    api_key = APIKey.objects.get(name="browser")
    assert api_key.scopes == ["orders:read", "orders:write"]
    revoke_in_admin(browser, live_server.url, api_key)

    assert call_protected_endpoint(live_server.url, raw_key) == 401
    browser.get(f"{live_server.url}/admin/async_api_key/apikey/{api_key.pk}/change/")
    assert raw_key not in browser.page_source
    assert "revoked" in browser.page_source


def rotate_in_admin(browser: WebDriver, base_url: str, api_key: APIKey, grace: str) -> str:
    browser.get(f"{base_url}/admin/async_api_key/apikey/{api_key.pk}/change/")
    wait_for(browser, "#api-key-rotate").click()
    grace_field = wait_for(browser, "input[name=grace_period]")
    grace_field.clear()
    grace_field.send_keys(grace)
    browser.find_element(By.ID, "confirm-rotate").click()
    wait_for(browser, "#api-key-predecessor")
    raw_key: str = wait_for(browser, "#api-key-value").get_attribute("value")
    return raw_key


def test_key_rotated_in_the_admin_works_alongside_the_old_one_during_the_grace(
    browser: WebDriver, live_server: Any, django_user_model: Any
) -> None:
    admin_user = django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    log_in(browser, live_server.url, admin_user.username)
    old_key = create_key_in_admin(browser, live_server.url, "rotating")
    old = APIKey.objects.get(name="rotating")

    new_key = rotate_in_admin(browser, live_server.url, old, "1h")

    assert new_key != old_key
    assert "shown only on this page" in browser.page_source
    assert all(new_key not in cookie["value"] for cookie in browser.get_cookies())
    assert call_protected_endpoint(live_server.url, new_key) == 200
    assert call_protected_endpoint(live_server.url, old_key) == 200
    successor = APIKey.objects.get(rotated_from=old)
    assert successor.scopes == ["orders:read", "orders:write"]
    browser.get(f"{live_server.url}/admin/async_api_key/apikey/{old.pk}/change/")
    assert new_key not in browser.page_source
    assert successor.prefix in browser.page_source


def test_copy_button_reports_what_it_did(
    browser: WebDriver, live_server: Any, django_user_model: Any
) -> None:
    admin_user = django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    log_in(browser, live_server.url, admin_user.username)
    create_key_in_admin(browser, live_server.url, "copy")

    browser.find_element(By.ID, "api-key-copy").click()

    WebDriverWait(browser, 15).until(
        lambda driver: driver.find_element(By.ID, "api-key-copy-status").text != ""
    )


def wait_for_page_change(browser: WebDriver, old_page: Any) -> None:
    """Wait until ``old_page`` (an element of the previous page) is gone."""
    WebDriverWait(browser, 15).until(expected_conditions.staleness_of(old_page))


def test_reloading_the_created_key_page_says_already_shown_and_creates_no_second_key(
    browser: WebDriver, live_server: Any, django_user_model: Any
) -> None:
    admin_user = django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    log_in(browser, live_server.url, admin_user.username)
    raw_key = create_key_in_admin(browser, live_server.url, "reloaded")
    assert raw_key not in browser.current_url
    shown = browser.find_element(By.ID, "api-key-value")

    browser.refresh()

    wait_for_page_change(browser, shown)
    assert "already been shown" in wait_for(browser, "#api-key-already-shown").text
    assert raw_key not in browser.page_source
    assert browser.find_elements(By.ID, "api-key-value") == []
    assert APIKey.objects.filter(name="reloaded").count() == 1
    assert all(raw_key not in cookie["value"] for cookie in browser.get_cookies())


def test_going_back_to_the_created_key_page_shows_no_key_and_creates_nothing(
    browser: WebDriver, live_server: Any, django_user_model: Any
) -> None:
    admin_user = django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    log_in(browser, live_server.url, admin_user.username)
    raw_key = create_key_in_admin(browser, live_server.url, "went-back")
    wait_for(browser, "#api-key-done").click()
    wait_for(browser, "#result_list")

    browser.back()

    assert "already been shown" in wait_for(browser, "#api-key-already-shown").text
    assert raw_key not in browser.page_source
    browser.back()  # to the add form, which Post/Redirect/Get left as a plain page
    wait_for(browser, "input[name=_save]")
    assert raw_key not in browser.page_source
    assert APIKey.objects.filter(name="went-back").count() == 1


def test_key_list_fits_a_1300_px_window_without_squeezing_the_name(
    browser: WebDriver, live_server: Any, django_user_model: Any
) -> None:
    admin_user = django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    api_key, _ = APIKey.objects.create_key(
        name="partner billing production",
        scopes=["orders:read", "orders:write"],
        rate_limit="100/min",
        expiry_date=timezone.now() + timedelta(days=30),
    )
    APIKey.objects.filter(pk=api_key.pk).update(last_used_at=timezone.now())
    browser.set_window_size(1300, 900)
    log_in(browser, live_server.url, admin_user.username)

    browser.get(f"{live_server.url}/admin/async_api_key/apikey/")
    wait_for(browser, "#result_list .field-name")

    page, results = browser.execute_script(
        """
        const results = document.querySelector("#changelist .results");
        return [
            [document.documentElement.scrollWidth, document.documentElement.clientWidth],
            [results.scrollWidth, results.clientWidth],
        ];
        """
    )
    assert page[0] <= page[1], "the page scrolls sideways"
    assert results[0] <= results[1], "the key list scrolls sideways"
    lines = browser.execute_script(
        """
        const cell = document.querySelector("#result_list .field-name");
        const text = document.createRange();
        text.selectNodeContents(cell);
        return text.getBoundingClientRect().height / parseFloat(getComputedStyle(cell).lineHeight);
        """
    )
    assert lines <= 2.1, f"the name takes {lines:.1f} lines"
