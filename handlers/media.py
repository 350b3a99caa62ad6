"""Checks every photo, video, animation and sticker posted in a group; deletes blocklist
matches (with the rest of their album) and warns the sender.

The handler answers what it can at once (the file an admin blocked, fingerprints already in
the cache) and hands downloading and hashing to the fair queue, so it never holds an update
slot while a file waits its turn."""

from __future__ import annotations

import functools
import logging

from telegram import Message, Update

from bot.fingerprint_cache import HashMode
from bot.matcher import Match
from handlers import outbox
from handlers.common import (
    Fetched,
    MediaRef,
    MediaSkipped,
    chat_title,
    delete_messages,
    fetch_and_hash,
    media_ref,
    sender_of,
)
from handlers.context import HashguardContext
from handlers.membership import report_missing_rights
from handlers.reports import flag_for_review
from hashdb.fingerprint import SkipReason

log = logging.getLogger(__name__)


async def on_media(update: Update, context: HashguardContext) -> None:
    """A new or edited message with media; swapping the media of a sent message is checked
    like a new upload."""
    message = update.effective_message
    if message is None:
        return
    ref = media_ref(message)
    if ref is None:
        return
    services = context.services
    core = services.core
    chat = message.chat
    await core.chats.ensure_chat(chat.id, chat_title(chat))
    album = message.media_group_id if services.config.media.album_action == "album" else None
    if album is not None:
        services.albums.add(chat.id, album, message.message_id)
        if services.albums.blocked_entry(chat.id, album) is not None:
            # Another item of this album already matched: this one goes with it.
            await _remove_album(context, message, album)
            return

    match = await core.matching.known_match(chat.id, ref.file_unique_id)
    if match is not None:
        await _act(context, message, match, ref, album=album)
        return
    local = await core.matching.uses_local_features(chat.id)
    # Only a photo is searched for rectangles inside it (a video reads its own re-framings).
    regions = ref.hasher == "photo" and await core.matching.uses_regions(chat.id)
    check = functools.partial(
        _check, context, update, message, ref, local=local, regions=regions, album=album
    )
    mode = HashMode.of(for_block=False, local=local, regions=regions)
    if services.hashes.known(ref.file_unique_id, mode):
        # Seen before (a forward): only this group's rules are left to apply, or the file's
        # remembered failure to audit, which is quick.
        await check()
        return
    # The download and hash wait their chat's turn in the queue, not in an update slot: a
    # flood of slow files in one group must not hold up the updates of every other group.
    if not services.queue.submit(chat.id, check):
        log.warning(
            "media_skipped chat=%d message=%d kind=%s reason=queue_full limit=%d",
            chat.id,
            message.message_id,
            ref.kind,
            services.queue.per_chat,
        )
        await core.strikes.record_skip(
            chat.id,
            message_id=message.message_id,
            sender=sender_of(message),
            reason=SkipReason.QUEUE_FULL,
        )


async def _check(
    context: HashguardContext,
    update: Update,
    message: Message,
    ref: MediaRef,
    *,
    local: bool,
    regions: bool,
    album: str | None,
) -> None:
    """Fetch and hash an upload (or take its cached fingerprints), apply the chat's rules
    and act on a match; run by the queue, so failures go to the error handler here."""
    try:
        await _check_upload(context, message, ref, local=local, regions=regions, album=album)
    except Exception as exc:
        await context.application.process_error(update, exc)


async def _check_upload(
    context: HashguardContext,
    message: Message,
    ref: MediaRef,
    *,
    local: bool,
    regions: bool,
    album: str | None,
) -> None:
    core = context.services.core
    chat = message.chat
    try:
        fetched = await _hashed_without_regions(context, chat.id, ref, local) if regions else None
        if fetched is None:
            fetched = await fetch_and_hash(context, ref, local_features=local, regions=regions)
    except MediaSkipped as exc:
        log.warning(
            "media_skipped chat=%d message=%d kind=%s reason=%s detail=%s",
            chat.id,
            message.message_id,
            ref.kind,
            exc.reason,
            exc.detail,
        )
        await core.strikes.record_skip(
            chat.id, message_id=message.message_id, sender=sender_of(message), reason=exc.reason
        )
        return
    thumbnail_only = fetched.thumbnail_only
    match = await core.matching.find_match(chat.id, fetched.fingerprints)
    if (
        match is not None
        and await core.matching.held_for_review(chat.id, match)
        and not core.blocklist.blocked_by_admin(chat.id, message.message_id)
    ):
        await _review(context, message, match)
        return
    if thumbnail_only and match is None:
        await core.strikes.record_skip(
            chat.id,
            message_id=message.message_id,
            sender=sender_of(message),
            reason=SkipReason.THUMBNAIL_ONLY,
        )
    await _act(context, message, match, ref, thumbnail_only=thumbnail_only, album=album)


async def _hashed_without_regions(
    context: HashguardContext, chat_id: int, ref: MediaRef, local: bool
) -> Fetched | None:
    """A file hashed before without the rectangles inside it (seen before this chat's banks
    held hash-only entries), if its whole-photo hashes already match here: regions only
    add readings, so the file is fetched again for them only when these do not match."""
    cached = context.services.hashes.peek(
        ref.file_unique_id, HashMode.of(for_block=False, local=local)
    )
    if cached is None or cached.thumbnail_only:
        return None
    found = await context.services.core.matching.find_match(chat_id, cached.fingerprints)
    return cached if found is not None else None


async def _act(
    context: HashguardContext,
    message: Message,
    match: Match | None,
    ref: MediaRef,
    *,
    thumbnail_only: bool = False,
    album: str | None,
) -> None:
    """Enforce a match, unless an admin just blocked this very message; an item of an album
    that matched meanwhile goes with it."""
    core = context.services.core
    chat_id = message.chat.id
    if match is None or core.blocklist.blocked_by_admin(chat_id, message.message_id):
        albums = context.services.albums
        if album is not None and albums.blocked_entry(chat_id, album) is not None:
            await _remove_album(context, message, album)
        return
    await enforce(context, message, match, thumbnail_only=thumbnail_only, album=album)


async def enforce(
    context: HashguardContext,
    message: Message,
    match: Match,
    *,
    thumbnail_only: bool = False,
    album: str | None = None,
) -> None:
    """Delete a matching message (or its album), audit it, add a strike and warn the sender."""
    chat_id = message.chat.id
    sender = sender_of(message)
    core = context.services.core
    if (await core.settings.get(chat_id)).dry_run:
        # Trying the bot out: the match is logged for the admins and nothing else happens.
        await core.strikes.record_match(
            chat_id,
            match,
            sender=sender,
            message_id=message.message_id,
            deleted=False,
            detail="dry run: not deleted",
            event="match_dry_run",
        )
        return
    first_in_album = True
    ids = [message.message_id]
    if album is not None:
        first_in_album = context.services.albums.block(chat_id, album, match.entry_id)
        ids = context.services.albums.take_undeleted(chat_id, album) or ids
    notes = (
        ["only the thumbnail was checked (file over the download cap)"] if thumbnail_only else []
    )
    if album is not None:
        notes.append("album item; album removed with it")
    log.info(
        "match chat=%d message=%d entry=%d signal=%s distance=%d",
        chat_id,
        message.message_id,
        match.entry_id,
        match.signal,
        match.distance,
    )
    # One job: delete, audit and strike, then restrict and warn as the strikes call for.
    # It is persisted first, so flood control, an outage or a restart delays it, never
    # drops it.
    steps = outbox.match_steps(
        ids,
        batch=album is not None,
        match=match,
        sender=sender,
        message_id=message.message_id,
        notes=notes,
        strike=first_in_album,
    )
    await outbox.submit(context, chat_id, steps)


async def _review(context: HashguardContext, message: Message, match: Match) -> None:
    """A match held for review (a local-feature match in a group that reviews them, one
    against a self-submission's local features or video frame): audited and posted for the
    admins, not deleted (Block on the review deletes it and warns the sender)."""
    local = match.points is not None
    await context.services.core.strikes.record_match(
        message.chat.id,
        match,
        sender=sender_of(message),
        message_id=message.message_id,
        deleted=False,
        detail="held for review (local_match review)"
        if local
        else "held for review (a frame of a self-submitted video)",
        strike=False,
        event="match_review",
    )
    points = (
        f"{match.points} matching points"
        if local
        else f"a video frame, {match.signal} distance {match.distance}"
    )
    await flag_for_review(context, message, f"entry #{match.entry_id}, {points}")


async def _remove_album(context: HashguardContext, message: Message, album: str) -> None:
    """Delete album items that arrived after (or raced with) the item that matched."""
    chat_id = message.chat.id
    albums = context.services.albums
    ids = albums.take_undeleted(chat_id, album)
    entry_id = albums.blocked_entry(chat_id, album)
    if not ids or entry_id is None:
        return
    outcome = await delete_messages(context, chat_id, ids)
    # Audited without a strike: the album's first matching item already counted.
    await context.services.core.strikes.record_match(
        chat_id,
        Match(entry_id=entry_id, signal="album", distance=0),
        sender=sender_of(message),
        message_id=message.message_id,
        deleted=outcome.deleted,
        detail=f"removed with its album ({len(ids)} item(s))",
        strike=False,
    )
    log.info("album_items_removed chat=%d count=%d entry=%s", chat_id, len(ids), entry_id)
    if outcome.refused:
        await report_missing_rights(
            context, message.chat, why=f"deleting failed: {outcome.failure}"
        )


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
