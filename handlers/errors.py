"""The one error handler: log what failed with its traceback, keep the bot running."""

from __future__ import annotations

import logging

from telegram import Update

from handlers.context import HashguardContext

log = logging.getLogger(__name__)


async def on_error(update: object, context: HashguardContext) -> None:
    where = ""
    if isinstance(update, Update):
        chat = update.effective_chat
        where = f" update={update.update_id} chat={chat.id if chat else None}"
    log.error("handler_failed%s", where, exc_info=context.error)
