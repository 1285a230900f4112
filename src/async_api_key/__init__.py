"""Async-first API keys for Django: one key store, one verifier, Ninja and DRF adapters."""

from __future__ import annotations

__all__ = [
    "__version__",
]

__version__ = "0.1.0.dev0"
