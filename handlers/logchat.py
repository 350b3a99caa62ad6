"""The optional log chat: every audit event of a group is posted there as it happens, as
text with a link to the message concerned; never the media."""

from __future__ import annotations

import html
import logging

from telegram.constants import ParseMode
from telegram.error import TelegramError

from handlers.admin import format_event
from handlers.context import HashguardApp
from hashdb.store import AuditEvent

log = logging.getLogger(__name__)


def message_link(chat_id: int, message_id: int) -> str | None:
    """A t.me link to a message of a supergroup (basic groups have no message links)."""
    text = str(chat_id)
    if not text.startswith("-100"):
        return None
    return f"https://t.me/c/{text[4:]}/{message_id}"


async def post_audit(application: HashguardApp, event: AuditEvent) -> None:
    services = application.bot_data.services
    if services is None:
        return
    if event.chat_id >= 0:
        # Not a group's event: a private chat's (a person's banks, self-submissions) or the
        # operator's (chat 0). Those never go to a log chat.
        return
    settings = await services.core.settings.get(event.chat_id)
    if not settings.log_chat or settings.log_chat == event.chat_id:
        return
    record = await services.core.chats.chat(event.chat_id)
    title = record.title if record is not None else str(event.chat_id)
    text = f"{html.escape(title)} · {format_event(event)}"
    link = message_link(event.chat_id, event.message_id) if event.message_id else None
    if link is not None:
        text += f' · <a href="{link}">message</a>'
    try:
        await application.bot.send_message(
            settings.log_chat, text, parse_mode=ParseMode.HTML, disable_web_page_preview=True
        )
    except TelegramError as exc:
        log.warning("log_chat_post_failed chat=%d error=%s", event.chat_id, type(exc).__name__)
