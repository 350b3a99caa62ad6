"""The bot's own membership and rights: checked when added, promoted, and at start-up.

Without "Delete messages" the bot cannot remove anything, and without "Ban users" it cannot
act on repeat offenders. Rather than fail silently, it tells the group's admins once, and
again only after the rights were restored and lost anew.
"""

from __future__ import annotations

import logging

from telegram import Chat, ChatMember, ChatMemberAdministrator, Update
from telegram.error import Forbidden, TelegramError

from handlers.common import chat_title
from handlers.context import HashguardApp, HashguardContext

log = logging.getLogger(__name__)

RIGHTS_TEXT = (
    "Hashguard needs to be an administrator of this group with the "
    "<b>Delete messages</b> and <b>Ban users</b> rights to remove blocked media. "
    "Missing now: {missing}. Admins: open the group's admin list and grant them."
)


def missing_rights(member: ChatMember) -> list[str]:
    """The rights the bot lacks in a chat, by their names in Telegram's admin screen."""
    if member.status == ChatMember.OWNER:
        return []
    if isinstance(member, ChatMemberAdministrator):
        missing = []
        if not member.can_delete_messages:
            missing.append("Delete messages")
        if not member.can_restrict_members:
            missing.append("Ban users")
        return missing
    return ["administrator status", "Delete messages", "Ban users"]


async def apply_rights(
    bot_app_context: HashguardContext | HashguardApp, chat_id: int, title: str, member: ChatMember
) -> None:
    """Record the bot's rights in a chat and tell the admins once when some are missing."""
    services = bot_app_context.bot_data.services
    if services is None:
        return
    missing = missing_rights(member)
    decision = await services.core.chats.note_rights(
        chat_id, title, rights_ok=not missing, missing=", ".join(missing)
    )
    if decision.notify_admins:
        log.warning("rights_missing chat=%d missing=%s", chat_id, ",".join(missing))
        try:
            await bot_app_context.bot.send_message(
                chat_id, RIGHTS_TEXT.format(missing=", ".join(missing)), parse_mode="HTML"
            )
        except TelegramError as exc:
            log.warning("rights_notice_failed chat=%d error=%s", chat_id, type(exc).__name__)


async def report_missing_rights(context: HashguardContext, chat: Chat, *, why: str) -> None:
    """After a failed action, re-check the bot's rights (and tell the admins once)."""
    await recheck_rights(context, chat.id, why=why, title=chat_title(chat))


async def recheck_rights(
    context: HashguardContext, chat_id: int, *, why: str, title: str | None = None
) -> None:
    """``report_missing_rights`` for a chat known by id (the title is the stored one)."""
    try:
        member = await context.bot.get_chat_member(chat_id, context.bot.id)
    except TelegramError as exc:
        log.warning("rights_check_failed chat=%d why=%s error=%s", chat_id, why, exc)
        return
    if title is None:
        record = await context.services.core.chats.chat(chat_id)
        title = record.title if record is not None else str(chat_id)
    await apply_rights(context, chat_id, title, member)


async def on_my_chat_member(update: Update, context: HashguardContext) -> None:
    """The bot was added, promoted, restricted or removed in a chat."""
    change = update.my_chat_member
    if change is None or change.chat.type not in (Chat.GROUP, Chat.SUPERGROUP):
        return
    member = change.new_chat_member
    core = context.services.core
    if member.status in (ChatMember.LEFT, ChatMember.BANNED):
        log.info("bot_removed chat=%d", change.chat.id)
        context.services.admins.forget(change.chat.id)
        await core.chats.forget_chat(change.chat.id)
        return
    log.info("bot_membership chat=%d status=%s", change.chat.id, member.status)
    await apply_rights(context, change.chat.id, chat_title(change.chat), member)


async def check_all_chats(application: HashguardApp) -> None:
    """At start-up: check the bot's rights in every group it knows."""
    services = application.bot_data.services
    if services is None:
        return
    bot = application.bot
    for record in await services.core.chats.chats():
        try:
            member = await bot.get_chat_member(record.chat_id, bot.id)
        except Forbidden:
            log.info("bot_no_longer_in_chat chat=%d", record.chat_id)
            await services.core.chats.forget_chat(record.chat_id)
            continue
        except TelegramError as exc:
            log.warning("startup_rights_check_failed chat=%d error=%s", record.chat_id, exc)
            continue
        if member.status in (ChatMember.LEFT, ChatMember.BANNED):
            await services.core.chats.forget_chat(record.chat_id)
            continue
        await apply_rights(application, record.chat_id, record.title, member)
