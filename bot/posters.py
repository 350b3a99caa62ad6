"""Who the bot has seen post in a group, and since when: the earliest message id per member.

Auto-hide by reports counts a reporter only if they had posted in the group before the
reported message, so a handful of accounts made for the purpose cannot delete whatever they
like. The store keeps one row per (chat, member), written the first time the member is seen;
a bounded in-memory cache spares a database write per message after that.
"""

from __future__ import annotations

import collections
from typing import Protocol


class FirstPostStore(Protocol):
    """The part of ``hashdb.store.Store`` this module uses."""

    async def record_first_post(self, chat_id: int, user_id: int, message_id: int) -> None: ...


class PosterMemory:
    """Records each member's first message in a chat, once per member (per process)."""

    #: Members remembered in memory; one forgotten is written again (harmlessly: the store
    #: keeps the earliest id) when next seen. 100,000 keys are a few megabytes.
    CAPACITY = 100_000

    def __init__(self, store: FirstPostStore, capacity: int = CAPACITY) -> None:
        self._store = store
        self._capacity = capacity
        self._seen: collections.OrderedDict[tuple[int, int], None] = collections.OrderedDict()

    async def saw(self, chat_id: int, member_id: int, message_id: int) -> None:
        """A message ``message_id`` from ``member_id`` in ``chat_id`` reached the bot."""
        key = (chat_id, member_id)
        if key in self._seen:
            self._seen.move_to_end(key)
            return
        await self._store.record_first_post(chat_id, member_id, message_id)
        # Cached only once stored: a failed write is tried again on the next message.
        self._seen[key] = None
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
