"""Shared Telegram helpers: which media a message holds, who sent it, fetching and hashing.

Media is fetched into memory only (``download_as_bytearray``), hashed in the worker pool and
dropped; nothing but fingerprints ever leaves this module.
"""

from __future__ import annotations

import asyncio
import functools
import html
import logging
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from telegram import Chat, Message, User
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError
from telegram.helpers import mention_html

from bot.moderation import Person
from handlers.context import HashguardContext
from hashdb.fingerprint import MediaDecodeError, MediaFingerprints

log = logging.getLogger(__name__)

#: Image types Pillow (with pillow-heif) decodes; SVG is vector art with no raster to hash.
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".3gp")
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
class FileRef:
    file_id: str
    file_unique_id: str
    file_size: int | None


@dataclass(frozen=True, slots=True)
class MediaRef:
    """The file of a message that gets fingerprinted, and how."""

    #: What Telegram calls it: photo, document, sticker, video, animation, video_note.
    kind: str
    #: "photo" (still image) or "video" (vPDQ frames).
    hasher: str
    file: FileRef
    #: Telegram's thumbnail, checked instead when the file is too large to download.
    thumbnail: FileRef | None = None

    @property
    def file_unique_id(self) -> str:
        return self.file.file_unique_id


@dataclass(frozen=True, slots=True)
class Fetched:
    fingerprints: MediaFingerprints
    #: The file was over the download cap, so only its thumbnail was checked.
    thumbnail_only: bool = False


def _file(item: Any) -> FileRef:
    return FileRef(item.file_id, item.file_unique_id, item.file_size)


def _thumbnail(item: Any) -> FileRef | None:
    thumbnail = getattr(item, "thumbnail", None)
    return _file(thumbnail) if thumbnail is not None else None


def media_ref(message: Message) -> MediaRef | None:
    """The media in a message that gets fingerprinted, if it has any."""
    if message.photo:
        # The largest size is what the sender uploaded, re-encoded by Telegram.
        return MediaRef("photo", "photo", _file(message.photo[-1]))
    # Animations also carry a `document`; they are videos (MP4) or animated GIFs.
    for kind, item in (
        ("animation", message.animation),
        ("video", message.video),
        ("video_note", message.video_note),
    ):
        if item is not None:
            return MediaRef(kind, "video", _file(item), _thumbnail(item))
    sticker = message.sticker
    if sticker is not None:
        if sticker.is_video:
            return MediaRef("sticker", "video", _file(sticker), _thumbnail(sticker))
        if sticker.is_animated:
            # TGS stickers are vector animations with no decoder here: their thumbnail is
            # what gets fingerprinted.
            thumbnail = _thumbnail(sticker)
            return MediaRef("sticker", "photo", thumbnail) if thumbnail is not None else None
        return MediaRef("sticker", "photo", _file(sticker), _thumbnail(sticker))
    document = message.document
    if document is not None:
        hasher = _document_hasher(document.mime_type, document.file_name)
        if hasher is not None:
            return MediaRef("document", hasher, _file(document), _thumbnail(document))
    return None


def _document_hasher(mime_type: str | None, file_name: str | None) -> str | None:
    mime = (mime_type or "").lower()
    name = (file_name or "").lower()
    # GIFs may be animated: the video decoder reads them, frame by frame.
    if mime == "image/gif" or (mime in ("", "application/octet-stream") and name.endswith(".gif")):
        return "video"
    if mime.startswith("video/") or (
        mime in ("", "application/octet-stream") and name.endswith(VIDEO_EXTENSIONS)
    ):
        return "video"
    if mime.startswith("image/"):
        return "photo" if mime != "image/svg+xml" else None
    if mime in ("", "application/octet-stream") and name.endswith(IMAGE_EXTENSIONS):
        return "photo"
    return None


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


async def fetch_and_hash(
    context: HashguardContext,
    ref: MediaRef,
    *,
    for_block: bool = False,
    local_features: bool = True,
) -> Fetched:
    """Download a file into memory and fingerprint it; raises ``MediaSkipped``.

    ``local_features`` False skips a photo's local features (no bank the check uses has any).

    A file over the download cap (``media.max_file_bytes``; the Bot API's own cap is 20 MB)
    is judged by its Telegram thumbnail instead, when it has one.
    """
    limit = context.services.config.media.max_file_bytes
    # Bounds how many files sit in memory at once, downloads included.
    async with context.services.fingerprinter.admission:
        try:
            return Fetched(
                await _fetch_and_hash(
                    context,
                    ref.file,
                    ref.hasher,
                    limit,
                    for_block=for_block,
                    local_features=local_features,
                )
            )
        except _TooLarge as too_large:
            if ref.thumbnail is None:
                raise MediaSkipped(str(too_large)) from None
            log.info("thumbnail_only kind=%s reason=%s", ref.kind, too_large)
            fingerprints = await _fetch_and_hash(
                context,
                ref.thumbnail,
                "photo",
                limit,
                for_block=for_block,
                local_features=local_features,
            )
            return Fetched(fingerprints, thumbnail_only=True)


class _TooLarge(MediaSkipped):
    pass


async def _fetch_and_hash(
    context: HashguardContext,
    file: FileRef,
    hasher: str,
    limit: int,
    *,
    for_block: bool = False,
    local_features: bool = True,
) -> MediaFingerprints:
    # Check the size Telegram reports before downloading anything.
    if file.file_size is not None and file.file_size > limit:
        raise _TooLarge(f"file is {file.file_size} bytes; limit is {limit} (media.max_file_bytes)")
    try:
        telegram_file = await context.bot.get_file(file.file_id)
    except BadRequest as exc:
        if "too big" in exc.message.lower():
            raise _TooLarge(f"Telegram refused the download: {exc.message}") from None
        raise MediaSkipped(f"Telegram refused the download: {exc.message}") from None
    except TelegramError as exc:
        raise MediaSkipped(f"download failed: {type(exc).__name__}") from None
    size = telegram_file.file_size
    if size is not None and size > limit:
        raise _TooLarge(f"file is {size} bytes; limit is {limit} (media.max_file_bytes)")
    local = _local_path(context, telegram_file.file_path)
    if local is not None and hasher == "video":
        # A local Bot API server keeps the file on this machine: the worker reads it in
        # place instead of this process copying a video of up to 2 GB into memory.
        try:
            return await context.services.fingerprinter.hash_video(local, for_block=for_block)
        except MediaDecodeError as exc:
            raise MediaSkipped(str(exc)) from None
    try:
        data = bytes(await telegram_file.download_as_bytearray())
    except TelegramError as exc:
        raise MediaSkipped(f"download failed: {type(exc).__name__}") from None
    if len(data) > limit:
        raise _TooLarge(f"file is {len(data)} bytes; limit is {limit} (media.max_file_bytes)")
    fingerprinter = context.services.fingerprinter
    try:
        if hasher == "video":
            return await fingerprinter.hash_video(data, for_block=for_block)
        return await fingerprinter.hash_photo(data, for_block=for_block, local=local_features)
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


def _local_path(context: HashguardContext, file_path: str | None) -> str | None:
    """The file's path on this machine when a local Bot API server (local mode) serves it."""
    if not context.services.config.telegram.local_mode or not file_path:
        return None
    path = Path(file_path)
    return str(path) if path.is_absolute() and path.is_file() else None


async def delete_message(context: HashguardContext, chat_id: int, message_id: int) -> DeleteOutcome:
    """Delete a message, retrying flood-control and network failures.

    "Message to delete not found" (already deleted, or too old) counts as success: the
    message is gone either way.
    """
    return await _delete(
        lambda: context.bot.delete_message(chat_id, message_id), chat_id, [message_id]
    )


async def delete_messages(
    context: HashguardContext, chat_id: int, message_ids: list[int]
) -> DeleteOutcome:
    """Delete several messages in one call (deleteMessages takes up to 100), with retries."""
    outcome = DeleteOutcome()
    for start in range(0, len(message_ids), 100):
        batch = message_ids[start : start + 100]
        result = await _delete(
            functools.partial(context.bot.delete_messages, chat_id, batch), chat_id, batch
        )
        if not result.deleted:
            outcome = result
    return outcome


async def _delete(
    call: Callable[[], Awaitable[bool]], chat_id: int, message_ids: list[int]
) -> DeleteOutcome:
    failure = "not attempted"
    for attempt in range(DELETE_ATTEMPTS):
        try:
            await call()
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
                "delete_refused chat=%d messages=%s error=%s", chat_id, message_ids, exc.message
            )
            return DeleteOutcome(failure=exc.message, refused=True)
        except Forbidden as exc:
            return DeleteOutcome(failure=exc.message, refused=True)
        except TelegramError as exc:
            # Timeouts and network errors pass; back off 0.5, 1, 2 s between attempts.
            failure = type(exc).__name__
            await asyncio.sleep(0.5 * 2**attempt)
    log.warning("delete_failed chat=%d messages=%s error=%s", chat_id, message_ids, failure)
    return DeleteOutcome(failure=failure)


def _seconds(exc: RetryAfter) -> float:
    # PTB 22 warns that retry_after turns from int into timedelta; accept both.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        delay = exc.retry_after
    return delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
