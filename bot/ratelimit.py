"""Per-person rate limiting of commands, button presses and private messages: a token
bucket per user in one process, or a count kept in the database that several worker
processes share (``moderation.actions_per_minute``). The Telegram adapter decides what is
an action (``handlers.ratelimit``); this decides whether it may go ahead."""

from __future__ import annotations

import logging
import time

from hashdb.store import ChatStore, StoreError

log = logging.getLogger(__name__)

#: Users remembered at most; idle ones (bucket full again) are dropped past this.
MAX_TRACKED = 50_000


class RateLimiter:
    """A token bucket per user: ``per_minute`` actions in a burst, refilled evenly."""

    def __init__(self, per_minute: int) -> None:
        self._capacity = float(per_minute)
        self._refill = per_minute / 60.0
        self._buckets: dict[int, tuple[float, float]] = {}
        #: Users told they are limited, so each hears it once per burst.
        self._told: set[int] = set()

    def allow(self, user_id: int, now: float | None = None) -> bool:
        if self._capacity <= 0:
            return True
        now = time.monotonic() if now is None else now
        tokens, at = self._buckets.get(user_id, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - at) * self._refill)
        if tokens < 1.0:
            self._buckets[user_id] = (tokens, now)
            return False
        self._buckets[user_id] = (tokens - 1.0, now)
        self._told.discard(user_id)
        if len(self._buckets) > MAX_TRACKED:
            self._forget_idle(now)
        return True

    async def allow_across(self, store: ChatStore, user_id: int) -> bool:
        """``allow`` for a database several worker processes share: the count is kept
        there (the last minute's actions), so the limit holds over all of them."""
        if self._capacity <= 0:
            return True
        try:
            count = await store.count_action(user_id, at=time.time(), window=60.0)
        except StoreError as exc:
            # The database is failing: let the action through rather than lock everyone
            # out; the action's own work reports the failure.
            log.warning("rate_limit_unavailable error=%s", exc)
            return True
        return count <= self._capacity

    def first_refusal(self, user_id: int) -> bool:
        """True the first time a limited user is refused (to tell them once)."""
        if user_id in self._told:
            return False
        self._told.add(user_id)
        return True

    def _forget_idle(self, now: float) -> None:
        full = [
            user
            for user, (tokens, at) in self._buckets.items()
            if tokens + (now - at) * self._refill >= self._capacity
        ]
        for user in full:
            del self._buckets[user]
        if len(self._buckets) > MAX_TRACKED:
            # Everyone is active (a flood of new accounts): start over rather than grow.
            self._buckets.clear()
        self._told.intersection_update(self._buckets)
