"""One person cannot keep the bot busy: commands, button presses and private messages are
rate limited per user (``moderation.actions_per_minute``), before any handler runs. One
bot process counts in memory; workers sharing a PostgreSQL database count in it, so the
limit holds over all of them.

Media posted in groups is never limited: every upload is checked against the blocklist,
however fast it comes. Reports and self-submissions have their own, slower limits on top
(``moderation.report_rate_per_hour``, ``self_submission.per_day``).
"""

from __future__ import annotations

import logging
import time

from telegram import Update
from telegram.ext import ApplicationHandlerStop

from handlers.context import HashguardContext
from hashdb.store import Store, StoreError

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

    async def allow_across(self, store: Store, user_id: int) -> bool:
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


def limited_action(update: Update) -> bool:
    """Whether the update is something a person asks of the bot (and so is limited)."""
    if update.callback_query is not None:
        return True
    message = update.message
    if message is None:
        # Edits, membership changes: commands ignore edits, and edited media is checked.
        return False
    if message.chat.type == "private":
        return True
    has_media = bool(
        message.photo
        or message.video
        or message.animation
        or message.video_note
        or message.sticker
        or message.document
    )
    # A group message with media is checked whatever its caption says.
    return not has_media and bool(message.text and message.text.startswith("/"))


def _actor_id(update: Update) -> int | None:
    """Whose budget an action uses. A message posted as a chat (an anonymous admin, a
    channel) comes from one shared Telegram account, so it counts against that chat."""
    message = update.message
    if message is not None and message.sender_chat is not None:
        return message.sender_chat.id
    user = update.effective_user
    return user.id if user is not None else None


async def gate(update: object, context: HashguardContext) -> None:
    """First handler of every update: stops a person's actions past their limit."""
    if not isinstance(update, Update) or not limited_action(update):
        return
    if await spend(update, context):
        return
    raise ApplicationHandlerStop


async def spend(update: Update, context: HashguardContext) -> bool:
    """Count one action of the update's sender; False (after telling them, where that is
    no flood itself) when it is past their limit. The gate calls it for commands; a command
    the gate cannot stop (``/import`` as a file's caption: the file is media, which is
    always checked) calls it itself."""
    who = _actor_id(update)
    if who is None:
        return True
    limiter = context.services.limiter
    store = context.services.core.store
    # One process: counted in memory. Workers sharing a database: counted there.
    allowed = limiter.allow(who) if store.single_process else await limiter.allow_across(store, who)
    if allowed:
        return True
    log.info("rate_limited actor=%d", who)
    if update.callback_query is not None:
        # A pressed button must be answered, or the client keeps spinning.
        await update.callback_query.answer("Too many requests; please wait a minute.")
    elif (
        update.message is not None
        and update.message.chat.type == "private"
        and limiter.first_refusal(who)
    ):
        await update.message.reply_text(
            "You are sending me messages faster than I answer; please wait a minute."
        )
    # In a group the bot stays silent: replying would be the flood the limit prevents.
    return False
