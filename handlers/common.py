"""Shared Telegram helpers: which media a message holds, who sent it, fetching and hashing.

Media is fetched into memory only (``download_as_bytearray``), hashed in the worker pool and
dropped; nothing but fingerprints ever leaves this module.
"""

from __future__ import annotations

import asyncio
import html
import logging
import warnings
from dataclasses import dataclass
from datetime import timedelta

from telegram import Chat, Message, User
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError
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


@dataclass(frozen=True, slots=True)
class DeleteOutcome:
    #: None when the message is gone (deleted now, or already gone); otherwise why not.
    failure: str | None = None
    #: Telegram refused outright (e.g. "message can't be deleted"): check the bot's rights.
    refused: bool = False

    @property
    def deleted(self) -> bool:
        return self.failure is None


#: Attempts for a deletion that fails for passing reasons (flood control, timeouts).
DELETE_ATTEMPTS = 4
#: Longest flood-control wait honoured inline; longer ones are reported as failures.
MAX_RETRY_AFTER = 60.0


async def delete_message(context: HashguardContext, chat_id: int, message_id: int) -> DeleteOutcome:
    """Delete a message, retrying flood-control and network failures.

    "Message to delete not found" (already deleted, or too old) counts as success: the
    message is gone either way.
    """
    failure = "not attempted"
    for attempt in range(DELETE_ATTEMPTS):
        try:
            await context.bot.delete_message(chat_id, message_id)
            return DeleteOutcome()
        except RetryAfter as exc:
            delay = _seconds(exc)
            failure = f"flood control (retry after {delay:.0f} s)"
            if delay > MAX_RETRY_AFTER:
                break
            await asyncio.sleep(delay)
        except BadRequest as exc:
            if "not found" in exc.message.lower():
                return DeleteOutcome()
            log.warning(
                "delete_refused chat=%d message=%d error=%s", chat_id, message_id, exc.message
            )
            return DeleteOutcome(failure=exc.message, refused=True)
        except Forbidden as exc:
            return DeleteOutcome(failure=exc.message, refused=True)
        except TelegramError as exc:
            # Timeouts and network errors pass; back off 0.5, 1, 2 s between attempts.
            failure = type(exc).__name__
            await asyncio.sleep(0.5 * 2**attempt)
    log.warning("delete_failed chat=%d message=%d error=%s", chat_id, message_id, failure)
    return DeleteOutcome(failure=failure)


def _seconds(exc: RetryAfter) -> float:
    # PTB 22 warns that retry_after turns from int into timedelta; accept both.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        delay = exc.retry_after
    return delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
