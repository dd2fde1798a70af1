"""Waiting for an eventually consistent outcome without fixed sleeps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(
    probe: Callable[[], Awaitable[Any]],
    accept: Callable[[Any], bool],
    timeout: float = 30.0,
) -> Any:
    """Call ``probe`` until ``accept`` holds for its result; returns that result."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if accept(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout}s; last result: {result!r}")
        await asyncio.sleep(0.2)
