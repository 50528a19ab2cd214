"""Deadlines instead of sleeps: wait until a condition holds, or fail saying what never happened.

A test that must show something did *not* happen waits for a later event that
proves the earlier one would have been seen by then (a positive barrier)
rather than sleeping and hoping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def until(
    cond: Callable[[], T], timeout_s: float = 3.0, interval_s: float = 0.002, what: str = ""
) -> T:
    """Poll ``cond`` on the running loop until it returns something truthy; return that."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not (value := cond()):
        if asyncio.get_running_loop().time() >= deadline:
            raise AssertionError(
                f"not within {timeout_s}s: {what or 'condition'} (last: {value!r})"
            )
        await asyncio.sleep(interval_s)
    return value


async def until_async(
    probe: Callable[[], Awaitable[T]],
    timeout_s: float = 5.0,
    interval_s: float = 0.02,
    what: str = "",
) -> T:
    """``until`` for a probe that must await (an HTTP request, a Redis call)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not (value := await probe()):
        if asyncio.get_running_loop().time() >= deadline:
            raise AssertionError(
                f"not within {timeout_s}s: {what or 'condition'} (last: {value!r})"
            )
        await asyncio.sleep(interval_s)
    return value


def wait_for(
    probe: Callable[[], T], timeout_s: float = 10.0, interval_s: float = 0.05, what: str = ""
) -> T:
    """Poll ``probe`` until it returns something truthy; return that, or fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s}s: {what or probe!r} (last: {value!r})")
        time.sleep(interval_s)
