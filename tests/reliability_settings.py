"""Settings of the uvicorn processes that ``tests/test_reliability_processes.py`` starts.

The test suite's settings, pointed at the test run's PostgreSQL database (whose name the
test passes in ``RELIABILITY_DATABASE_NAME``) and its Redis (``REDIS_URL``), with the shared
cache tier on and the local tier's lifetime from ``RELIABILITY_CACHE_TTL``.
"""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES

ROOT_URLCONF = "tests.reliability_urls"
DATABASES["default"]["NAME"] = os.environ["RELIABILITY_DATABASE_NAME"]
ASYNC_API_KEY = {
    "SHARED_CACHE_ALIAS": "default",
    "CACHE_TTL": float(os.environ["RELIABILITY_CACHE_TTL"]),
}
