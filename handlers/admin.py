"""Admin commands: /block, /unblock, /addhash and /logs.

Each works in a group only, for that group's administrators (anonymous admins included);
anyone else gets a short refusal and nothing changes.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any

from telegram import Message, Update
from telegram.constants import ParseMode

from bot.moderation import Person
from handlers.common import (
    MediaSkipped,
    chat_title,
    delete_quietly,
    fetch_and_hash,
    media_ref,
    person_of_user,
    sender_of,
)
from handlers.context import HashguardContext
from hashdb.signals import SIGNAL_TYPES, HashFormatError
from hashdb.store import AuditEvent

log = logging.getLogger(__name__)

LOGS_DEFAULT = 10
LOGS_MAX = 50
#: Telegram refuses messages over 4096 characters; stay below with room for markup.
MESSAGE_BUDGET = 3800

Handler = Callable[[Update, HashguardContext], Coroutine[Any, Any, None]]


def admin_command(handler: Handler) -> Handler:
    """Run ``handler`` only for admins of the group the command was sent in."""

    @wraps(handler)
    async def guarded(update: Update, context: HashguardContext) -> None:
        message = update.effective_message
        if message is None:
            return
        if message.chat.type not in ("group", "supergroup"):
            await message.reply_text("This command works in a group where I am an admin.")
            return
        if not await context.services.admins.is_admin(context.bot, message):
            log.info(
                "admin_command_refused chat=%d user=%s command=%s",
                message.chat.id,
                message.from_user.id if message.from_user else None,
                handler.__name__,
            )
            await message.reply_text("Only this group's admins can use that command.")
            return
        await context.services.moderation.ensure_chat(message.chat.id, chat_title(message.chat))
        await handler(update, context)

    return guarded


def actor_of(message: Message) -> Person:
    """The admin behind a command (the group itself for an anonymous admin)."""
    return sender_of(message) if message.sender_chat else person_of_user(message.from_user)  # type: ignore[arg-type]


def _rest(message: Message, skip: int) -> str:
    """The command text after the command word and ``skip`` more words, stripped."""
    parts = (message.text or "").split(maxsplit=skip + 1)
    return parts[skip + 1].strip() if len(parts) > skip + 1 else ""


@admin_command
async def block(update: Update, context: HashguardContext) -> None:
    message = update.effective_message
    assert message is not None
    target = message.reply_to_message
    ref = media_ref(target) if target is not None else None
    if target is None or ref is None:
        await message.reply_text(
            "Reply to the photo, image or sticker you want to block with /block [reason]."
        )
        return
    try:
        fingerprints = await fetch_and_hash(context, ref)
    except MediaSkipped as exc:
        await message.reply_text(f"I could not read that file, so nothing was blocked: {exc}")
        return
    result = await context.services.moderation.block(
        message.chat.id,
        fingerprints,
        actor=actor_of(message),
        reason=_rest(message, 0)[:200],
        message_id=target.message_id,
        sender=sender_of(target),
        file_unique_id=ref.file_unique_id,
    )
    failure = await delete_quietly(context, message.chat.id, target.message_id)
    entry = result.entry
    lines = [
        f"Blocked as entry #{entry.id}. Copies posted here will be removed."
        if result.created
        else f"Already blocked as entry #{entry.id}.",
        f"Undo with /unblock {entry.id}",
    ]
    if fingerprints.stored and (fingerprints.stored[0].quality or 0) < (
        context.services.config.matching.pdq_min_quality
    ):
        lines.insert(
            1,
            "This image has too little detail for reliable matching: only exact "
            "re-sends of the same file will be removed.",
        )
    if failure is not None:
        lines.append(f"I could not delete the message: {failure}")
    await message.reply_text("\n".join(lines))


@admin_command
async def unblock(update: Update, context: HashguardContext) -> None:
    message = update.effective_message
    assert message is not None
    moderation = context.services.moderation
    actor = actor_of(message)
    args = context.args or []
    if args:
        text = args[0].lstrip("#")
        if not text.isdigit():
            await message.reply_text(
                f"Entry id {args[0]!r} is not valid; expected a number like 12 "
                "(as shown by /block), or reply to the media with /unblock."
            )
            return
        removed = await moderation.unblock_entry(message.chat.id, int(text), actor=actor)
        if removed is None:
            await message.reply_text(f"No active blocklist entry #{text} in this group.")
        else:
            await message.reply_text(f"Entry #{removed.id} removed from the blocklist.")
        return
    target = message.reply_to_message
    ref = media_ref(target) if target is not None else None
    if ref is None:
        await message.reply_text(
            "Reply to a copy of the blocked media with /unblock, or give the entry id: /unblock 12"
        )
        return
    try:
        fingerprints = await fetch_and_hash(context, ref)
    except MediaSkipped:
        fingerprints = None
    entries = await moderation.unblock_matching(
        message.chat.id, fingerprints, actor=actor, file_unique_id=ref.file_unique_id
    )
    if not entries:
        await message.reply_text("That media matches no blocklist entry in this group.")
        return
    ids = ", ".join(f"#{e.id}" for e in entries)
    await message.reply_text(f"Removed from the blocklist: {ids}.")


@admin_command
async def addhash(update: Update, context: HashguardContext) -> None:
    message = update.effective_message
    assert message is not None
    args = context.args or []
    usage = "Usage: /addhash <algorithm> <hash> [reason]\n" + "\n".join(
        f"  {s.name}: {s.description}" for s in SIGNAL_TYPES.values()
    )
    if len(args) < 2:
        await message.reply_text(usage)
        return
    try:
        entry = await context.services.moderation.add_hash(
            message.chat.id,
            args[0],
            args[1],
            actor=actor_of(message),
            reason=_rest(message, 2)[:200],
        )
    except HashFormatError as exc:
        await message.reply_text(f"{exc}\n\n{usage}")
        return
    fingerprint = entry.fingerprints[0]
    await message.reply_text(
        f"Added {fingerprint.signal} hash as entry #{entry.id}. Undo with /unblock {entry.id}"
    )


@admin_command
async def logs(update: Update, context: HashguardContext) -> None:
    message = update.effective_message
    assert message is not None
    args = context.args or []
    limit = LOGS_DEFAULT
    if args:
        if not args[0].isdigit() or not 1 <= int(args[0]) <= LOGS_MAX:
            await message.reply_text(
                f"Number of events {args[0]!r} is not valid; expected a whole number "
                f"from 1 to {LOGS_MAX}, e.g. /logs 20"
            )
            return
        limit = int(args[0])
    events = await context.services.moderation.audit_log(message.chat.id, limit)
    if not events:
        await message.reply_text("No audit events for this group yet.")
        return
    lines = [f"Last {len(events)} audit events (newest first):"]
    lines.extend(format_event(e) for e in events)
    for chunk in _chunks(lines):
        await message.reply_text(chunk, parse_mode=ParseMode.HTML)


def format_event(event: AuditEvent) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(event.at))
    parts = [f"#{event.id} {when} UTC", f"<b>{html.escape(event.event)}</b>"]
    if event.actor_id is not None:
        parts.append(f"by {html.escape(event.actor_name)} ({event.actor_id})")
    if event.target_id is not None:
        parts.append(f"user {html.escape(event.target_name)} ({event.target_id})")
    if event.message_id is not None:
        parts.append(f"message {event.message_id}")
    if event.entry_id is not None:
        parts.append(f"entry #{event.entry_id}")
    if event.distance is not None:
        parts.append(f"{event.signal} distance {event.distance}")
    if event.detail:
        parts.append(html.escape(event.detail))
    return " · ".join(parts)


def _chunks(lines: list[str]) -> list[str]:
    chunks: list[str] = []
    current = ""
    for line in lines:
        if current and len(current) + len(line) + 1 > MESSAGE_BUDGET:
            chunks.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line
    if current:
        chunks.append(current)
    return chunks
