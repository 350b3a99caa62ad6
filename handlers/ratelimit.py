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

from telegram import Update
from telegram.ext import ApplicationHandlerStop

from handlers.context import HashguardContext

log = logging.getLogger(__name__)


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
    store = context.services.moderation.store
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
