"""Bounded in-memory caches of the pipeline (decoded states, due work, data keys)."""

from __future__ import annotations

from itertools import islice
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def remember(cache: dict[K, V], key: K, value: V, limit: int) -> None:
    """Put ``key``; when full, drop the oldest half first. Removing one entry at a time from
    the front of a dict makes each ``next(iter(...))`` walk past the holes earlier removals
    left (about 9 us per eviction with 10,000 entries)."""
    if key not in cache and len(cache) >= limit:
        for old in list(islice(cache, len(cache) // 2 + 1)):
            del cache[old]
    cache[key] = value
