"""The one error handler: log what failed, keep the bot running.

A database the operator has to fix (locked, read-only, full disk) is logged as one line
with its cause, and the sender of a command is told that it could not be saved, so an admin
does not take a block for done when it is not.

When Telegram cannot say who a group's admins are (``AdminsUnknown``), an admin-only action
is not done and its sender is asked to try again.
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import TelegramError

from handlers.context import HashguardContext
from handlers.permissions import AdminsUnknown
from hashdb.store import StoreUnavailableError

log = logging.getLogger(__name__)

#: What a command's sender is told, by ``StoreUnavailableError.reason``: what went wrong
#: and what to do, never the server's paths.
NOT_SAVED = {
    "locked": "the bot's database is busy with another program. Try again in a minute.",
    "read-only": "the bot's database is read-only. Please tell the bot's operator.",
    "full": "the bot's disk is full. Please tell the bot's operator.",
    "io-error": "the bot's disk is failing. Please tell the bot's operator.",
    "unreachable": "the bot's database server cannot be reached. Please tell the bot's operator.",
}


async def on_error(update: object, context: HashguardContext) -> None:
    where = ""
    if isinstance(update, Update):
        chat = update.effective_chat
        where = f" update={update.update_id} chat={chat.id if chat else None}"
    error = context.error
    if isinstance(error, AdminsUnknown):
        await _try_again(update, where)
        return
    if not isinstance(error, StoreUnavailableError):
        log.error("handler_failed%s", where, exc_info=error)
        return
    # The message says what failed and why; a traceback per update would bury that while a
    # full disk fails every write.
    log.error(
        "storage_failed%s reason=%s cause=%s error=%s",
        where,
        error.reason,
        error.__cause__,
        error,
    )
    message = update.message if isinstance(update, Update) else None
    if message is None or not (message.text or message.caption or "").startswith("/"):
        return
    try:
        why = NOT_SAVED.get(error.reason, "the bot's database failed. Please tell its operator.")
        await message.reply_text(f"That could not be saved: {why}")
    except TelegramError as exc:
        log.warning("storage_failed_reply_failed%s error=%s", where, type(exc).__name__)


#: The answer to an admin-only action while Telegram cannot say who the admins are.
TRY_AGAIN = (
    "I could not check with Telegram who this group's admins are, so nothing was done. "
    "Please try again in a minute."
)


async def _try_again(update: object, where: str) -> None:
    log.warning("admin_check_unavailable%s", where)
    if not isinstance(update, Update):
        return
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(TRY_AGAIN, show_alert=True)
        elif update.effective_message is not None:
            await update.effective_message.reply_text(TRY_AGAIN)
    except TelegramError as exc:
        log.warning("admin_check_reply_failed%s error=%s", where, type(exc).__name__)
