"""The tests' one poll loop: call a check until it holds or the deadline passes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def poll(check: Callable[[], Any], timeout: float = 5.0, every: float = 0.05) -> Any:
    """Return the first truthy result of ``check()``, or its last (falsy) one at the deadline.

    For callers that assert themselves (``assert poll(...), message``).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


def wait_for(check: Callable[[], Any], timeout: float = 5.0, every: float = 0.05, *,
             what: str = "condition", alive: Callable[[], bool] | None = None,
             detail: Callable[[], str] | None = None) -> Any:
    """Return the first truthy result of ``check()``; raise AssertionError at the deadline.

    ``alive`` (a process's liveness) stops the wait early when it turns false; ``detail``
    (a log tail, say) is appended to the failure message.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if alive is not None and not alive():
            raise AssertionError(_message(f"died while waiting for {what}", detail))
        if time.monotonic() > deadline:
            raise AssertionError(_message(f"{what} not met within {timeout} s", detail))
        time.sleep(every)


def _message(text: str, detail: Callable[[], str] | None) -> str:
    return text if detail is None else f"{text}:\n{detail()}"
