"""Quoting operator input back without ever echoing what could be most of a key.

A key's secret and checksum are 38 letters and digits: a run of 17 or more could be most of a
secret, and a single typo that is not a letter or a digit still leaves one that long. Every
message that quotes input back (the commands' errors, the field rules' messages) hides such
runs, so a key pasted where something else belongs is never echoed into a terminal, a CI log
or a form.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["quoted", "redact"]

_SECRET_LIKE_RUN_RE: Final = re.compile(r"[0-9A-Za-z]{17,}")


def redact(text: str) -> str:
    """Return ``text`` with every run of 17 or more letters and digits hidden."""
    return _SECRET_LIKE_RUN_RE.sub(lambda run: f"[{len(run[0])} characters hidden]", text)


def quoted(text: str) -> str:
    """Quote input back in a message, redacted."""
    return repr(redact(text))
