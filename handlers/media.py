"""Checks every image posted in a group; deletes blocklist matches and warns the sender."""

from __future__ import annotations

import logging

from telegram import Message, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError

from bot.moderation import Match, Person
from handlers.common import (
    MediaRef,
    MediaSkipped,
    chat_title,
    delete_message,
    fetch_and_hash,
    media_ref,
    mention,
    sender_of,
)
from handlers.context import HashguardContext
from handlers.membership import report_missing_rights

log = logging.getLogger(__name__)


async def on_media(update: Update, context: HashguardContext) -> None:
    """A new or edited message with media: swapping the photo of a sent message is checked
    like a new upload."""
    message = update.effective_message
    if message is None:
        return
    ref = media_ref(message)
    if ref is None:
        return
    moderation = context.services.moderation
    chat = message.chat
    await moderation.ensure_chat(chat.id, chat_title(chat))

    match = await moderation.known_match(chat.id, ref.file_unique_id)
    if match is None:
        try:
            fingerprints = await fetch_and_hash(context, ref)
        except MediaSkipped as exc:
            log.warning(
                "media_skipped chat=%d message=%d kind=%s reason=%s",
                chat.id,
                message.message_id,
                ref.kind,
                exc,
            )
            await moderation.record_skip(
                chat.id, message_id=message.message_id, sender=sender_of(message), detail=str(exc)
            )
            return
        match = moderation.find_match(chat.id, fingerprints)
    if match is None or moderation.blocked_by_admin(chat.id, message.message_id):
        return
    await enforce(context, message, match, ref)


async def enforce(context: HashguardContext, message: Message, match: Match, ref: MediaRef) -> None:
    """Delete a matching message, audit it, add a strike and warn the sender in the group."""
    chat_id = message.chat.id
    sender = sender_of(message)
    outcome = await delete_message(context, chat_id, message.message_id)
    strikes = await context.services.moderation.record_match(
        chat_id,
        match,
        sender=sender,
        message_id=message.message_id,
        file_unique_id=ref.file_unique_id,
        deleted=outcome.deleted,
        detail=outcome.failure or "",
    )
    log.info(
        "match chat=%d message=%d entry=%d signal=%s distance=%d deleted=%s",
        chat_id,
        message.message_id,
        match.entry_id,
        match.signal,
        match.distance,
        outcome.deleted,
    )
    if outcome.refused:
        await report_missing_rights(
            context, message.chat, why=f"deleting failed: {outcome.failure}"
        )
    if strikes is not None:
        await warn(context, chat_id, sender, strikes)


async def warn(context: HashguardContext, chat_id: int, sender: Person, strikes: int) -> None:
    # The warning names the sender and the count only: no hint of what the content was.
    text = (
        f"⚠️ {mention(sender)}, your message was removed because it matches content "
        f"blocked in this group. Warning {strikes}."
    )
    try:
        await context.bot.send_message(chat_id, text, parse_mode=ParseMode.HTML)
    except TelegramError as exc:
        log.warning("warn_failed chat=%d error=%s", chat_id, type(exc).__name__)


async def on_migrate(update: Update, context: HashguardContext) -> None:
    """A group was upgraded to a supergroup and got a new id: move its blocklist along."""
    message = update.effective_message
    if message is None:
        return
    if message.migrate_to_chat_id is not None:
        old, new = message.chat.id, message.migrate_to_chat_id
    elif message.migrate_from_chat_id is not None:
        old, new = message.migrate_from_chat_id, message.chat.id
    else:
        return
    context.services.admins.forget(old)
    await context.services.moderation.migrate_chat(old, new)
