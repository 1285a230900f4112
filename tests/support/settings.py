"""Settings for the test suite.

SQLite and the local-memory cache by default, so the suite needs nothing but Python.
``DATABASE_URL`` (e.g. ``postgres://postgres@127.0.0.1:5432/test``) and ``REDIS_URL``
(e.g. ``redis://127.0.0.1:6379/15``; the suite empties it) switch to real servers; CI sets both.
"""

from __future__ import annotations

import os
from typing import Any

import dj_database_url
import django

# The suite builds several NinjaAPIs and TestClients; django-ninja < 1.6 refuses that unless
# told it runs under tests.
os.environ.setdefault("NINJA_SKIP_REGISTRY", "yes")

SECRET_KEY = "tests-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.support.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_api_key",
    "async_api_key",
    "tests.support.testapp",
    "tests.support.command_app",
    "tests.support.admin_custom_app",
    "tests.support.upstream_project",
    "tests.support.default_model_project",
    "tests.support.selfservice_app",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

STATIC_URL = "/static/"

DATABASES: dict[str, Any] = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", "sqlite:///:memory:"), conn_max_age=0
    )
}
# A second database on the same server, for the tests of where a key's bookkeeping writes go
# (tests/unit/test_verification_routing.py); only tests that ask for it set it up.
DATABASES["second"] = {
    **DATABASES["default"],
    "TEST": {"NAME": None if DATABASES["default"]["NAME"] == ":memory:" else "test_second"},
}

REDIS_URL = os.environ.get("REDIS_URL")
CACHES: dict[str, Any] = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Fast password hashing for the legacy-hash tests that need Django's hashers.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.MD5PasswordHasher",
]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"async_api_key": {"level": "DEBUG", "propagate": True}},
}

if django.VERSION < (5, 0):
    # Django 4.2's error reports show the Authorization header; system check
    # async_api_key.W001 asks projects for the library's filter, as here.
    DEFAULT_EXCEPTION_REPORTER_FILTER = "async_api_key.reporting.APIKeyExceptionReporterFilter"
