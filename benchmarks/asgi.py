"""ASGI entry point of the benchmark project (served by uvicorn, one worker)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
application = get_asgi_application()
