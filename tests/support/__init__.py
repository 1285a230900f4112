"""What the tests share: settings, URLconfs and views, key factories, outages, servers and apps.

Tests live by what they test (``unit/``, ``parity/``, ``reliability/``, ``migration/``,
``end_to_end/``); everything they build on lives here.
"""

from pathlib import Path

#: The checkout's root (README, docs, demo, pyproject.toml).
REPO_ROOT = Path(__file__).resolve().parents[2]
