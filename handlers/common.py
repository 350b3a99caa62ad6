"""Shared Telegram helpers: which media a message holds, who sent it, fetching and hashing.

Media is fetched into memory only (``download_as_bytearray``), hashed in the worker pool and
dropped; nothing but fingerprints ever leaves this module.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass

from telegram import Chat, Message, User
from telegram.error import BadRequest, TelegramError
from telegram.helpers import mention_html

from bot.moderation import Person
from handlers.context import HashguardContext
from hashdb.fingerprint import MediaDecodeError, MediaFingerprints

log = logging.getLogger(__name__)

#: Image types Pillow (with pillow-heif) decodes; SVG is vector art with no raster to hash.
IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".webp",
    ".gif",
    ".bmp",
    ".tif",
    ".tiff",
    ".heic",
    ".heif",
    ".avif",
)


class MediaSkipped(Exception):
    """The media could not be checked; the message says why (for logs and the audit)."""


@dataclass(frozen=True, slots=True)
class MediaRef:
    """The one file of a message that gets fingerprinted."""

    kind: str
    file_id: str
    file_unique_id: str
    file_size: int | None


def media_ref(message: Message) -> MediaRef | None:
    """The image in a message (photo, image document, static sticker), if it has one."""
    if message.photo:
        # The largest size is what the sender uploaded, re-encoded by Telegram.
        size = message.photo[-1]
        return MediaRef("photo", size.file_id, size.file_unique_id, size.file_size)
    document = message.document
    if document is not None and _is_image_document(document.mime_type, document.file_name):
        return MediaRef("document", document.file_id, document.file_unique_id, document.file_size)
    sticker = message.sticker
    if sticker is not None and not sticker.is_animated and not sticker.is_video:
        return MediaRef("sticker", sticker.file_id, sticker.file_unique_id, sticker.file_size)
    return None


def _is_image_document(mime_type: str | None, file_name: str | None) -> bool:
    if mime_type:
        mime = mime_type.lower()
        if mime.startswith("image/"):
            return mime != "image/svg+xml"
        if mime != "application/octet-stream":
            return False
    return bool(file_name) and str(file_name).lower().endswith(IMAGE_EXTENSIONS)


def person_of_user(user: User) -> Person:
    return Person(user.id, user.full_name)


def sender_of(message: Message) -> Person:
    """Who posted a message: the user, or the chat/channel it was posted as."""
    if message.sender_chat is not None:
        chat = message.sender_chat
        return Person(chat.id, chat.title or chat.username or str(chat.id))
    if message.from_user is not None:
        return person_of_user(message.from_user)
    return Person(0, "unknown")


def mention(person: Person) -> str:
    """An HTML mention of a person (a chat posting as itself gets its bold name)."""
    if person.id > 0:
        return mention_html(person.id, person.name)
    return f"<b>{html.escape(person.name)}</b>"


def chat_title(chat: Chat) -> str:
    return chat.title or chat.username or str(chat.id)


async def fetch_and_hash(context: HashguardContext, ref: MediaRef) -> MediaFingerprints:
    """Download a file into memory and fingerprint it; raises ``MediaSkipped``."""
    limit = context.services.config.media.max_file_bytes
    # Check the size Telegram reports before downloading anything.
    if ref.file_size is not None and ref.file_size > limit:
        raise MediaSkipped(
            f"file is {ref.file_size} bytes; limit is {limit} (media.max_file_bytes)"
        )
    try:
        telegram_file = await context.bot.get_file(ref.file_id)
        if telegram_file.file_size is not None and telegram_file.file_size > limit:
            raise MediaSkipped(
                f"file is {telegram_file.file_size} bytes; limit is {limit} (media.max_file_bytes)"
            )
        data = bytes(await telegram_file.download_as_bytearray())
    except BadRequest as exc:
        raise MediaSkipped(f"Telegram refused the download: {exc.message}") from None
    except TelegramError as exc:
        raise MediaSkipped(f"download failed: {type(exc).__name__}") from None
    if len(data) > limit:
        raise MediaSkipped(f"file is {len(data)} bytes; limit is {limit} (media.max_file_bytes)")
    try:
        return await context.services.fingerprinter.hash_photo(data)
    except MediaDecodeError as exc:
        raise MediaSkipped(str(exc)) from None
    finally:
        del data


async def delete_quietly(context: HashguardContext, chat_id: int, message_id: int) -> str | None:
    """Delete a message; returns None on success or why it failed.

    "Message to delete not found" (already deleted, or too old) counts as success: the
    message is gone either way.
    """
    try:
        await context.bot.delete_message(chat_id, message_id)
    except BadRequest as exc:
        if "not found" in exc.message.lower():
            return None
        log.warning("delete_failed chat=%d message=%d error=%s", chat_id, message_id, exc.message)
        return exc.message
    except TelegramError as exc:
        log.warning("delete_failed chat=%d message=%d error=%s", chat_id, message_id, exc)
        return type(exc).__name__
    return None
