"""Locks by key, shared by the services that serialise work per chat, person or bank."""

from __future__ import annotations

import asyncio


class KeyedLocks:
    """One ``asyncio.Lock`` per (kind, chat, item), the most recent 10,000 kept."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, int, int], asyncio.Lock] = {}

    def lock(self, kind: str, chat_id: int, item: int) -> asyncio.Lock:
        """A lock for one (kind, chat, item), kept for the most recent 10,000 keys."""
        key = (kind, chat_id, item)
        lock = self._locks.pop(key, None) or asyncio.Lock()
        self._locks[key] = lock  # most recently used last
        while len(self._locks) > 10_000:
            oldest = next(iter(self._locks))
            if self._locks[oldest].locked():
                break
            del self._locks[oldest]
        return lock
