"""The fixtures of the end-to-end tests: a real browser and the running demo (``tests/support``)."""

from tests.support.browser import browser, quiet_webdriver_log
from tests.support.demo import demo

__all__ = ["browser", "demo", "quiet_webdriver_log"]
