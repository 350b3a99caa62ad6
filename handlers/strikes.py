"""Members' strikes: /warns and /resetwarns show and clear them. (The warning itself, and
the mute, kick or ban at the warn limit, are the outbox's steps: decided in
``bot.enforcement``, made in ``handlers.outbox``.)"""

from __future__ import annotations

import logging

from telegram import Message, Update
from telegram.constants import ParseMode

from bot.values import Person
from handlers.admin import actor_of, admin_command, parse_number
from handlers.common import mention, sender_of
from handlers.context import HashguardContext

log = logging.getLogger(__name__)

#: Telegram user ids are positive and below 2**52.
MAX_USER_ID = 2**52


def member_target(message: Message, args: list[str]) -> Person | str | None:
    """Whose strikes a command is about: the replied-to sender, a user id, or None (self)."""
    if args:
        user_id = parse_number(args[0], 1, MAX_USER_ID)
        if user_id is None:
            return (
                f"User id {args[0]!r} is not valid; expected a number like 123456789, or "
                "reply to one of the member's messages."
            )
        return Person(user_id, f"user {user_id}")
    if message.reply_to_message is not None:
        return sender_of(message.reply_to_message)
    return None


async def warns(update: Update, context: HashguardContext) -> None:
    """/warns: your own strikes; admins may ask about anyone (reply or user id)."""
    message = update.effective_message
    if message is None or message.chat.type not in ("group", "supergroup"):
        return
    target = member_target(message, list(context.args or []))
    if isinstance(target, str):
        await message.reply_text(target)
        return
    asker = actor_of(message)
    if (
        target is not None
        and target.id != asker.id
        and not await context.services.admins.is_admin(context.bot, message)
    ):
        await message.reply_text("Only this group's admins can look at other members' warnings.")
        return
    person = target or asker
    core = context.services.core
    count = await core.strikes.count(message.chat.id, person.id)
    warn_limit = (await core.settings.get(message.chat.id)).warn_limit
    limit = f" (limit {warn_limit})" if warn_limit else ""
    await message.reply_text(
        f"{mention(person)} has {count} warning(s) in this group{limit}.",
        parse_mode=ParseMode.HTML,
    )


@admin_command
async def resetwarns(update: Update, context: HashguardContext) -> None:
    message = update.effective_message
    assert message is not None
    target = member_target(message, list(context.args or []))
    if isinstance(target, str):
        await message.reply_text(target)
        return
    if target is None:
        await message.reply_text(
            "Reply to one of the member's messages with /resetwarns, or give their user id."
        )
        return
    cleared = await context.services.core.strikes.reset_strikes(
        message.chat.id, target, actor=actor_of(message)
    )
    await message.reply_text(
        f"Cleared {cleared} warning(s) of {mention(target)}.", parse_mode=ParseMode.HTML
    )
