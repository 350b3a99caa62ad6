"""Shared Telegram helpers: which media a message holds, who sent it, fetching and hashing.

Media is fetched into memory only (``download_as_bytearray``), hashed in the worker pool and
dropped; nothing but fingerprints ever leaves this module.
"""

from __future__ import annotations

import functools
import html
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from telegram import Chat, Message, User
from telegram.error import BadRequest, TelegramError
from telegram.helpers import mention_html

from bot.fingerprint_cache import HashMode, footprint
from bot.jobs import DeleteMessages
from bot.moderation import Person
from bot.redact import redact
from bot.uploads import Fetched
from handlers.context import HashguardContext
from hashdb.fingerprint import MediaDecodeError, MediaFingerprints, SkipReason

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
    """The media could not be checked.

    ``reason`` is all that users and the audit are told (``str()`` of the exception is its
    plain text, so an echo cannot leak more); ``detail`` is the raw cause, for operational
    logs only, with the bot token already cut out.
    """

    def __init__(self, reason: SkipReason, detail: str = "") -> None:
        super().__init__(reason.text)
        self.reason = reason
        self.detail = detail or reason.text


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
    regions: bool = False,
) -> Fetched:
    """Download a file into memory and fingerprint it; raises ``MediaSkipped``.

    ``local_features`` False skips local features, a photo's or a video's moments' (no bank
    the check uses has any); ``regions`` hashes the rectangles found inside a photo too (a
    bank the check uses has entries without local features).

    A file over the download cap (``media.max_file_bytes``; the Bot API's own cap is 20 MB)
    is judged by its Telegram thumbnail instead, when it has one.
    """
    mode = HashMode.of(for_block=for_block, local=local_features, regions=regions)
    # Recently seen files (forwards keep their file_unique_id) are answered from the cache,
    # and uploads of one file at the same moment share one download and hash.
    return await context.services.hashes.get(
        ref.file_unique_id,
        mode,
        functools.partial(_fetch_and_hash_ref, context, ref, mode),
    )


def fetched_size(fetched: Fetched) -> int:
    """Estimated bytes of a cached result (the fingerprint cache's budget counts them)."""
    return footprint(fetched.fingerprints)


#: Failures that come from the file itself, so trying it again gives them again (for a while:
#: see ``bot.fingerprint_cache.FAILURE_SECONDS``). TOO_LARGE gets this far only when there is
#: no thumbnail to check instead, or it is over the cap too (a forward keeps the file's
#: thumbnail, or its lack). Never DOWNLOAD_FAILED (Telegram or the network: passing) nor a
#: full queue (the chat's load, and not raised here).
REPEATING_FAILURES = frozenset(
    {
        SkipReason.TIMEOUT,
        SkipReason.DECODER_CRASHED,
        SkipReason.UNDECODABLE,
        SkipReason.UNSUPPORTED,
        SkipReason.EMPTY,
        SkipReason.TOO_LARGE,
    }
)


def remembered_failure(error: Exception) -> Exception | None:
    """What later fetches of the same file raise instead of trying again, if ``error``
    would repeat (the fingerprint cache's ``remember``)."""
    if isinstance(error, MediaSkipped) and error.reason in REPEATING_FAILURES:
        return MediaSkipped(error.reason, f"{error.detail} (remembered from an earlier try)")
    return None


async def _fetch_and_hash_ref(context: HashguardContext, ref: MediaRef, mode: HashMode) -> Fetched:
    for_block, local_features, regions = mode.for_block, mode.local, mode.regions
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
                    regions=regions,
                )
            )
        except _TooLarge as too_large:
            if ref.thumbnail is None:
                raise MediaSkipped(SkipReason.TOO_LARGE, too_large.detail) from None
            log.info("thumbnail_only kind=%s reason=%s", ref.kind, too_large.detail)
            fingerprints = await _fetch_and_hash(
                context,
                ref.thumbnail,
                "photo",
                limit,
                for_block=for_block,
                local_features=local_features,
                regions=regions,
            )
            return Fetched(fingerprints, thumbnail_only=True)


class _TooLarge(MediaSkipped):
    def __init__(self, detail: str) -> None:
        super().__init__(SkipReason.TOO_LARGE, detail)


def _decode_failed(context: HashguardContext, error: MediaDecodeError) -> MediaSkipped:
    # The decoder's words can quote the file's path, which a local Bot API server names
    # after the bot token: cut before the text goes anywhere, logs included.
    return MediaSkipped(error.reason, redact(str(error), context.bot.token))


async def _fetch_and_hash(
    context: HashguardContext,
    file: FileRef,
    hasher: str,
    limit: int,
    *,
    for_block: bool = False,
    local_features: bool = True,
    regions: bool = False,
) -> MediaFingerprints:
    # Check the size Telegram reports before downloading anything.
    if file.file_size is not None and file.file_size > limit:
        raise _TooLarge(f"file is {file.file_size} bytes; limit is {limit} (media.max_file_bytes)")
    try:
        telegram_file = await context.bot.get_file(file.file_id)
    except BadRequest as exc:
        detail = redact(f"Telegram refused the download: {exc.message}", context.bot.token)
        if "too big" in exc.message.lower():
            raise _TooLarge(detail) from None
        raise MediaSkipped(SkipReason.DOWNLOAD_FAILED, detail) from None
    except TelegramError as exc:
        raise MediaSkipped(
            SkipReason.DOWNLOAD_FAILED, f"download failed: {type(exc).__name__}"
        ) from None
    size = telegram_file.file_size
    if size is not None and size > limit:
        raise _TooLarge(f"file is {size} bytes; limit is {limit} (media.max_file_bytes)")
    local = _local_path(context, telegram_file.file_path)
    if local is not None and hasher == "video":
        # A local Bot API server keeps the file on this machine: the worker reads it in
        # place instead of this process copying a video of up to 2 GB into memory.
        try:
            return await context.services.fingerprinter.hash_video(
                local, for_block=for_block, local=local_features
            )
        except MediaDecodeError as exc:
            raise _decode_failed(context, exc) from None
    try:
        data = bytes(await telegram_file.download_as_bytearray())
    except (TelegramError, OSError) as exc:
        # OSError: in local mode the file is read from the server's directory.
        raise MediaSkipped(
            SkipReason.DOWNLOAD_FAILED, f"download failed: {type(exc).__name__}"
        ) from None
    if len(data) > limit:
        raise _TooLarge(f"file is {len(data)} bytes; limit is {limit} (media.max_file_bytes)")
    fingerprinter = context.services.fingerprinter
    try:
        if hasher == "video":
            return await fingerprinter.hash_video(data, for_block=for_block, local=local_features)
        return await fingerprinter.hash_photo(
            data, for_block=for_block, local=local_features, regions=regions
        )
    except MediaDecodeError as exc:
        raise _decode_failed(context, exc) from None
    finally:
        del data


def _local_path(context: HashguardContext, file_path: str | None) -> str | None:
    """The file's path on this machine when a local Bot API server (local mode) serves it."""
    if not context.services.config.telegram.local_mode or not file_path:
        return None
    path = Path(file_path)
    return str(path) if path.is_absolute() and path.is_file() else None


@dataclass(frozen=True, slots=True)
class DeleteOutcome:
    #: None when the message is gone, or will be; otherwise why not.
    failure: str | None = None
    #: Telegram refused outright (e.g. "message can't be deleted"): check the bot's rights.
    refused: bool = False
    #: The deletion failed for a passing reason (why) and waits in the outbox for a retry.
    pending: str | None = None

    @property
    def deleted(self) -> bool:
        """Deleted now, already gone, or queued to be deleted."""
        return self.failure is None

    @property
    def note(self) -> str:
        """A short note for the audit row ("" when the message is simply gone)."""
        if self.pending is not None:
            return f"deletion queued for retry ({self.pending})"
        return self.failure or ""


async def delete_message(context: HashguardContext, chat_id: int, message_id: int) -> DeleteOutcome:
    """Delete a message through the outbox: tried at once, retried after flood control or
    network failures until made (also after a restart).

    "Message to delete not found" (already deleted, or too old) counts as success: the
    message is gone either way.
    """
    return await _delete(context, chat_id, [message_id], batch=False)


async def delete_messages(
    context: HashguardContext, chat_id: int, message_ids: list[int]
) -> DeleteOutcome:
    """Delete several messages (deleteMessages takes up to 100 a call) through the outbox."""
    return await _delete(context, chat_id, message_ids, batch=True)


async def _delete(
    context: HashguardContext, chat_id: int, message_ids: list[int], *, batch: bool
) -> DeleteOutcome:
    from handlers import outbox

    step = DeleteMessages(tuple(message_ids), batch=batch)
    done = await outbox.submit(context, chat_id, [step])
    if done.pending is not None:
        return DeleteOutcome(pending=done.pending)
    result = str(done.results.get("delete", ""))
    if result.startswith("refused: "):
        return DeleteOutcome(failure=result.removeprefix("refused: "), refused=True)
    return DeleteOutcome()
