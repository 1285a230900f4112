"""Running test steps concurrently, each in a thread with its own database connection."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connections

THREAD_TIMEOUT = 30.0


def run_concurrently(*steps: Callable[[], object]) -> list[BaseException]:
    """Start ``steps`` together, each in a thread of its own; wait for them all; return what
    they raised (the threads' connections are closed, so the test database can be dropped)."""
    barrier = threading.Barrier(len(steps))
    errors: list[BaseException] = []

    def run(step: Callable[[], object]) -> None:
        try:
            barrier.wait(THREAD_TIMEOUT)
            step()
        except BaseException as exc:  # handed to the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(step,)) for step in steps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(THREAD_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return errors
