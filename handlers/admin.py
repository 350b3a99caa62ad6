"""Admin commands: /block, /unblock, /addhash and /logs.

Each works in a group only, for that group's administrators (anonymous admins included);
anyone else gets a short refusal and nothing changes.
"""

from __future__ import annotations

import html
import logging
import re
import time
from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ParseMode
from telegram.error import Forbidden

from bot.blocking import BlockRequest
from bot.uploads import Fetched, MediaFacts, Unchecked
from bot.values import Person
from handlers.common import (
    MediaRef,
    MediaSkipped,
    chat_title,
    fetch_and_hash,
    media_ref,
    person_of_user,
    sender_of,
)
from handlers.context import HashguardContext
from handlers.outbox import TelegramSteps, delete_message
from handlers.permissions import AdminsUnknown
from hashdb.signals import SIGNAL_TYPES, HashFormatError
from hashdb.store import AuditEvent, Bank, Entry

log = logging.getLogger(__name__)

LOGS_DEFAULT = 10
LOGS_MAX = 50
#: Entry ids are SQLite integers.
MAX_ID = 2**63 - 1
#: Telegram refuses messages over 4096 characters; stay below with room for markup.
MESSAGE_BUDGET = 3800

Handler = Callable[[Update, HashguardContext], Coroutine[Any, Any, None]]


def admin_command(handler: Handler) -> Handler:
    """Run ``handler`` only for admins of the group the command was sent in."""

    @wraps(handler)
    async def guarded(update: Update, context: HashguardContext) -> None:
        if await group_admin_allowed(update, context, handler.__name__):
            await handler(update, context)

    return guarded


async def group_admin_allowed(update: Update, context: HashguardContext, command: str) -> bool:
    """Whether the command's sender administers the group it was sent in (refusing if not)."""
    message = update.effective_message
    if message is None:
        return False
    return await admin_allowed(message, context, command)


async def admin_allowed(message: Message, context: HashguardContext, command: str) -> bool:
    """Whether ``message``'s sender administers the group it was sent in (refusing if not)."""
    if message.chat.type not in ("group", "supergroup"):
        await message.reply_text("This command works in a group where I am an admin.")
        return False
    if not await context.services.admins.is_admin(context.bot, message):
        log.info(
            "admin_command_refused chat=%d user=%s command=%s",
            message.chat.id,
            message.from_user.id if message.from_user else None,
            command,
        )
        await message.reply_text("Only this group's admins can use that command.")
        return False
    await context.services.core.chats.ensure_chat(message.chat.id, chat_title(message.chat))
    return True


def actor_of(message: Message) -> Person:
    """The admin behind a command (the group itself for an anonymous admin)."""
    if message.sender_chat is not None or message.from_user is None:
        return sender_of(message)
    return person_of_user(message.from_user)


def _rest(message: Message, skip: int) -> str:
    """The command text after the command word and ``skip`` more words, stripped."""
    parts = (message.text or "").split(maxsplit=skip + 1)
    return parts[skip + 1].strip() if len(parts) > skip + 1 else ""


def parse_number(text: str, low: int, high: int) -> int | None:
    """A whole number in [low, high] written with ASCII digits, else None."""
    digits = text.lstrip("#")
    if not digits.isascii() or not digits.isdecimal() or len(digits) > 19:
        return None
    value = int(digits)
    return value if low <= value <= high else None


async def _drop_command(context: HashguardContext, message: Message) -> None:
    # The command may carry a reason that describes the content or the person in it; the
    # audit row keeps it for admins, the group does not need to see it.
    await delete_message(context, message.chat.id, message.message_id)


@admin_command
async def block(update: Update, context: HashguardContext) -> None:
    message = update.effective_message
    assert message is not None
    target = message.reply_to_message
    args = context.args or []
    if target is None and len(args) == 1 and parse_number(args[0], 1, MAX_ID) is not None:
        await _lift_exemption(message, context, parse_number(args[0], 1, MAX_ID) or 0)
        return
    ref = media_ref(target) if target is not None else None
    if target is None or ref is None:
        await message.reply_text(
            "Reply to the photo, video, animation, image or sticker you want to block with "
            "/block [reason], or give the id of an entry this group exempted (/block 12)."
        )
        return
    request = BlockRequest(
        message.chat.id,
        target.message_id,
        sender_of(target),
        actor_of(message),
        _rest(message, 0)[:200],
        MediaFacts(ref.kind, ref.hasher, ref.file_unique_id),
    )
    blocked = await context.services.blocker.block(request, _TelegramBlock(context, ref))
    if isinstance(blocked, Unchecked):
        await message.reply_text(
            f"I could not read that file, so nothing was blocked: {blocked.reason.text}."
        )
        return
    fetched, result = blocked.fetched, blocked.result
    entry = result.entry
    lines = [
        f"Blocked as entry #{entry.id}. Copies posted here will be removed."
        if result.created
        else f"Already blocked as entry #{entry.id}.",
        f"Undo with /unblock {entry.id} (or reply /unblock to this message).",
    ]
    if fetched.thumbnail_only:
        lines.insert(
            1,
            "The file is over the download cap, so only its thumbnail was fingerprinted; "
            "exact re-sends of the file are still recognised. A local Bot API server lifts "
            "the cap.",
        )
    if fetched.fingerprints.truncated:
        last = max((f.seconds or 0.0 for f in fetched.fingerprints.stored), default=0.0)
        lines.insert(
            1,
            f"The video is long: only its first {last:.0f} s could be fingerprinted within "
            "the time budget (video.budget_seconds).",
        )
    if result.low_quality:
        lines.insert(
            1,
            "This media has too little detail for reliable matching: only exact "
            "re-sends of the same file will be removed.",
        )
    elif result.low_detail:
        lines.insert(
            1,
            "This photo has little detail (dark, blurred or smooth): re-encoded and "
            "resized copies will be removed, edited ones (crops, captions) may not be.",
        )
    if blocked.not_deleted is not None:
        lines.append(f"I could not delete the message: {blocked.not_deleted}")
    await message.reply_text("\n".join(lines))
    await _drop_command(context, message)


class _TelegramBlock(TelegramSteps):
    """The Telegram side of /block by reply (``bot.blocking.BlockPort``)."""

    def __init__(self, context: HashguardContext, ref: MediaRef) -> None:
        super().__init__(context)
        self.ref = ref

    async def fetch(self) -> Fetched | Unchecked:
        try:
            return await fetch_and_hash(self.context, self.ref, for_block=True)
        except MediaSkipped as exc:
            return Unchecked(exc.reason, exc.detail)


async def _lift_exemption(message: Message, context: HashguardContext, entry_id: int) -> None:
    """/block <entry id>: an entry this group exempted applies here again."""
    lifted = await context.services.core.blocklist.lift_exemption(
        message.chat.id, entry_id, actor=actor_of(message)
    )
    await message.reply_text(
        f"Entry #{entry_id} applies in this group again: copies posted here will be removed."
        if lifted
        else f"Entry #{entry_id} is not exempted in this group, so nothing changed. To block "
        "media, reply to it with /block [reason]."
    )


#: How the bot names entries in its own messages ("Blocked as entry #12").
_ENTRY_MENTION = re.compile(r"entry #(\d{1,19})")


@admin_command
async def unblock(update: Update, context: HashguardContext) -> None:
    message = update.effective_message
    assert message is not None
    core = context.services.core
    actor = actor_of(message)
    args = context.args or []
    target = message.reply_to_message
    if args:
        entry_id = parse_number(args[0], 1, MAX_ID)
        if entry_id is None:
            await message.reply_text(
                f"Entry id {args[0]!r} is not valid; expected a number like 12 "
                "(as shown by /block and /logs), or reply to the media with /unblock."
            )
            return
        ids = [entry_id]
    elif (
        target is not None
        and target.from_user is not None
        and target.from_user.id == context.bot.id
    ):
        # A reply to the bot's own "Blocked as entry #12" message, or to its deletion notice
        # (which names no entry: the store remembers it): the blocked copy itself is gone,
        # and re-posting it to reply to would get it deleted again.
        noticed = await core.blocklist.notice_entry(message.chat.id, target.message_id)
        ids = (
            [noticed]
            if noticed is not None
            else [int(found) for found in _ENTRY_MENTION.findall(target.text or "")]
        )
        if not ids:
            await message.reply_text("That message of mine names no blocklist entry.")
            return
    else:
        ref = media_ref(target) if target is not None else None
        if ref is None:
            await message.reply_text(
                "Give the entry id (/unblock 12), or reply /unblock to my “Blocked as "
                "entry” message or to a copy of the blocked media."
            )
            return
        try:
            fingerprints = (await fetch_and_hash(context, ref)).fingerprints
        except MediaSkipped:
            fingerprints = None
        removed = await core.blocklist.unblock_matching(
            message.chat.id, fingerprints, actor=actor, file_unique_id=ref.file_unique_id
        )
        await _report_unblocked(message, removed, "That media matches no blocklist entry here.")
        return
    removed = []
    exempted: list[str] = []
    for entry_id in ids:
        done = await core.blocklist.unblock_or_exempt(message.chat.id, entry_id, actor=actor)
        if done.outcome == "removed" and done.entry is not None:
            removed.append(done.entry)
        elif done.bank is not None and done.outcome in ("exempted", "already_exempt"):
            exempted.append(_exemption_text(entry_id, done.bank, again=done.outcome != "exempted"))
    if exempted:
        if removed:
            gone = ", ".join(f"#{e.id}" for e in removed)
            exempted.insert(0, f"Removed from the blocklist: {gone}.")
        await message.reply_text("\n".join(exempted))
        return
    missing = ", ".join(f"#{i}" for i in ids)
    await _report_unblocked(message, removed, f"No active blocklist entry {missing} in this group.")


def _exemption_text(entry_id: int, bank: Bank, *, again: bool) -> str:
    """What an exemption means, where the entry comes from and how to undo it."""
    if bank.kind == "shared":
        source = (
            f"comes from bank {bank.name!r}, which this group uses; its curators can remove it "
            f"for everyone (/bank remove {bank.name} {entry_id})"
        )
    elif bank.kind == "operator":
        source = f"comes from the bot operator's list {bank.name!r}"
    else:
        source = "was submitted by the person it shows"
    state = "was already exempted" if again else "is now exempted"
    return (
        f"Entry #{entry_id} {source}. It {state} in this group only: it no longer removes "
        f"anything here and stays in force everywhere else. Undo with /block {entry_id}."
    )


async def _report_unblocked(message: Message, removed: list[Entry], nothing: str) -> None:
    if not removed:
        await message.reply_text(nothing)
        return
    ids = ", ".join(f"#{e.id}" for e in removed)
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
        entry = await context.services.core.blocklist.add_hash(
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
    await _drop_command(context, message)


async def logs(update: Update, context: HashguardContext) -> None:
    """/logs [N]: in a group, its audit log (privately, unless the group opted into in-group
    logs); in a private chat, buttons to pick one of the groups the asker administers."""
    message = update.effective_message
    if message is None:
        return
    args = context.args or []
    limit = LOGS_DEFAULT
    if args:
        parsed = parse_number(args[0], 1, LOGS_MAX)
        if parsed is None:
            await message.reply_text(
                f"Number of events {args[0]!r} is not valid; expected a whole number "
                f"from 1 to {LOGS_MAX}, e.g. /logs 20"
            )
            return
        limit = parsed
    if message.chat.type == "private":
        await _pick_group(context, message, limit)
        return
    await _group_logs(update, context, limit)


async def _group_logs(update: Update, context: HashguardContext, limit: int) -> None:
    message = update.effective_message
    if message is None or not await group_admin_allowed(update, context, "logs"):
        return
    in_group = context.services.config.moderation.logs_in_group
    chunks, more = await _page(
        context, message.chat.id, chat_title(message.chat), limit, None, hide_reporters=in_group
    )
    if in_group:
        for chunk in chunks:
            await message.reply_text(chunk, parse_mode=ParseMode.HTML, reply_markup=None)
        if more is not None:
            await message.reply_text("Older events:", reply_markup=more)
        return
    if message.sender_chat is not None or message.from_user is None:
        await message.reply_text(
            "Audit logs are sent privately, and an anonymous admin has no private chat. "
            "Turn off “Remain anonymous” for a moment, or set moderation.logs_in_group."
        )
        return
    try:
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            await context.bot.send_message(
                message.from_user.id,
                chunk,
                parse_mode=ParseMode.HTML,
                reply_markup=more if last else None,
            )
    except Forbidden:
        await message.reply_text(
            f"I can't message you privately yet: open a chat with @{context.bot.username}, "
            "press Start, then send /logs here again."
        )
        return
    await message.reply_text("Sent you the audit log privately.")


#: Callback data of the /logs buttons: "logs:<chat id>:<older than event id>:<count>".
LOGS_CALLBACK = r"^logs:(-?\d{1,19}):(\d{1,19}):(\d{1,3})$"
_LOGS = re.compile(LOGS_CALLBACK)


async def _page(
    context: HashguardContext,
    chat_id: int,
    title: str,
    limit: int,
    before_id: int | None,
    *,
    hide_reporters: bool = False,
) -> tuple[list[str], InlineKeyboardMarkup | None]:
    """One page of a group's audit log, newest first, and an "Older" button if there is more."""
    events = await context.services.core.audit.recent(chat_id, limit + 1, before_id=before_id)
    shown, rest = events[:limit], events[limit:]
    if shown:
        older = "older " if before_id else ""
        lines = [f"Last {len(shown)} {older}audit events of {html.escape(title)} (newest first):"]
        lines.extend(format_event(e, hide_reporters=hide_reporters) for e in shown)
    else:
        lines = [f"No {'older ' if before_id else ''}audit events for {html.escape(title)}."]
    more = None
    if rest and shown[-1].id is not None:
        more = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(
                        "Older", callback_data=f"logs:{chat_id}:{shown[-1].id}:{limit}"
                    )
                ]
            ]
        )
    return _chunks(lines), more


async def _pick_group(context: HashguardContext, message: Message, limit: int) -> None:
    user = message.from_user
    if user is None:
        return
    buttons = []
    unknown = 0
    for record in (await context.services.core.chats.chats())[:50]:
        try:
            admin = await context.services.admins.is_user_admin(
                context.bot, record.chat_id, user.id
            )
        except AdminsUnknown:
            # One group Telegram cannot answer for now leaves the others listed.
            unknown += 1
            continue
        if admin:
            buttons.append(
                [
                    InlineKeyboardButton(
                        record.title[:40], callback_data=f"logs:{record.chat_id}:0:{limit}"
                    )
                ]
            )
    if not buttons:
        if unknown:
            raise AdminsUnknown(0)
        await message.reply_text("You administer no group I work in.")
        return
    await message.reply_text("Which group's audit log?", reply_markup=InlineKeyboardMarkup(buttons))


async def on_logs_button(update: Update, context: HashguardContext) -> None:
    """A group picked, or "Older" pressed: the page goes to the presser's chat."""
    query = update.callback_query
    if query is None:
        return
    found = _LOGS.match(query.data or "")
    message = query.message
    # Nineteen digits can still exceed SQLite's integer range: bounded like typed ids.
    before = parse_number(found.group(2), 0, MAX_ID) if found else None
    if found is None or before is None or not isinstance(message, Message):
        await query.answer("This button is not valid.", show_alert=True)
        return
    chat_id, limit = int(found.group(1)), int(found.group(3))
    # The chat id comes from the button, so the presser's rights are checked in that chat.
    if not 1 <= limit <= LOGS_MAX or not await context.services.admins.is_user_admin(
        context.bot, chat_id, query.from_user.id
    ):
        await query.answer("Only that group's admins can read its audit log.", show_alert=True)
        return
    record = await context.services.core.chats.chat(chat_id)
    title = record.title if record is not None else str(chat_id)
    # The page goes to the presser privately; into the group itself only when the group
    # asked for in-group logs. Never into the chat a (possibly forged) button sits in.
    in_group = context.services.config.moderation.logs_in_group and message.chat.id == chat_id
    destination = chat_id if in_group else query.from_user.id
    chunks, more = await _page(
        context, chat_id, title, limit, before or None, hide_reporters=in_group
    )
    try:
        for index, chunk in enumerate(chunks):
            await context.bot.send_message(
                destination,
                chunk,
                parse_mode=ParseMode.HTML,
                reply_markup=more if index == len(chunks) - 1 else None,
            )
    except Forbidden:
        await query.answer(
            "Start a private chat with me first: audit logs are sent privately.", show_alert=True
        )
        return
    await query.answer()


def format_event(event: AuditEvent, *, hide_reporters: bool = False) -> str:
    """One audit row as a line of text; ``hide_reporters`` leaves out who filed a report
    (for logs shown in the group, where reporters stay anonymous)."""
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(event.at))
    parts = [f"#{event.id} {when} UTC", f"<b>{html.escape(event.event)}</b>"]
    if event.actor_id is not None and not (hide_reporters and event.event == "report"):
        parts.append(f"by {html.escape(event.actor_name)} ({event.actor_id})")
    elif event.event.startswith(("match", "media", "report_autohid", "ban", "kick", "mute")):
        parts.append("by the bot")
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
