"""Checks every photo, video, animation and sticker posted in a group: turns the message
into an ``Upload`` for the core (``bot.uploads``), which decides what it means, and gives the
core its Telegram side (downloading and hashing the file, posting a review, reporting missing
rights, the outbox's Bot API calls)."""

from __future__ import annotations

from telegram import Message, Update

from bot.uploads import Fetched, MediaFacts, Unchecked, Upload
from handlers.common import MediaRef, MediaSkipped, chat_title, fetch_and_hash, media_ref, sender_of
from handlers.context import HashguardContext
from handlers.membership import report_missing_rights
from handlers.outbox import TelegramSteps
from handlers.reports import flag_for_review


async def on_media(update: Update, context: HashguardContext) -> None:
    """A new or edited message with media; swapping the media of a sent message is checked
    like a new upload."""
    message = update.effective_message
    if message is None:
        return
    ref = media_ref(message)
    if ref is None:
        return
    chat = message.chat
    upload = Upload(
        chat.id,
        chat_title(chat),
        message.message_id,
        sender_of(message),
        MediaFacts(ref.kind, ref.hasher, ref.file_unique_id),
        album=message.media_group_id,
    )
    await context.services.uploads.check(upload, _TelegramUpload(context, update, message, ref))


class _TelegramUpload(TelegramSteps):
    """The Telegram side of checking one message (``bot.uploads.UploadPort``)."""

    def __init__(
        self, context: HashguardContext, update: Update, message: Message, ref: MediaRef
    ) -> None:
        super().__init__(context)
        self.update = update
        self.message = message
        self.ref = ref

    async def fetch(self, *, local: bool, regions: bool) -> Fetched | Unchecked:
        try:
            return await fetch_and_hash(
                self.context, self.ref, local_features=local, regions=regions
            )
        except MediaSkipped as exc:
            return Unchecked(exc.reason, exc.detail)

    async def flag_for_review(self, note: str) -> None:
        await flag_for_review(self.context, self.message, note)

    async def missing_rights(self, why: str) -> None:
        await report_missing_rights(self.context, self.message.chat, why=why)

    async def failed(self, error: Exception) -> None:
        await self.context.application.process_error(self.update, error)


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
    await context.services.core.chats.migrate_chat(old, new)
