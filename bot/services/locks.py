"""Locks by key, shared by the services that serialise work per chat, person or bank."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


class KeyedLocks:
    """One ``asyncio.Lock`` per (kind, chat, item), the most recent 10,000 kept."""

    def __init__(self) -> None:
        self._reporter_locks: dict[tuple[str, int, int], asyncio.Lock] = {}

    def lock(self, kind: str, chat_id: int, item: int) -> asyncio.Lock:
        """A lock for one (kind, chat, item), kept for the most recent 10,000 keys."""
        key = (kind, chat_id, item)
        lock = self._reporter_locks.pop(key, None) or asyncio.Lock()
        self._reporter_locks[key] = lock  # most recently used last
        while len(self._reporter_locks) > 10_000:
            oldest = next(iter(self._reporter_locks))
            if self._reporter_locks[oldest].locked():
                break
            del self._reporter_locks[oldest]
        return lock
