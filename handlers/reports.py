"""Member reports and admin review: /report, and the review message's Block / Dismiss buttons.

The reporter stays anonymous to the group: the /report command message is deleted at once.
The review message names the report and links to the reported message; it never contains or
re-sends the media. The button labels "Block" and "Dismiss" are relied on by users' scripts.
"""

from __future__ import annotations

import contextlib
import functools
import html
import logging
import re

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError

from bot.fingerprint_cache import BLOCK_MODE
from bot.jobs import Review, Step
from bot.moderation import Person
from handlers import outbox
from handlers.admin import MAX_ID, actor_of, admin_command, parse_number
from handlers.common import (
    MediaRef,
    MediaSkipped,
    chat_title,
    delete_message,
    fetch_and_hash,
    media_ref,
    mention,
    person_of_user,
    sender_of,
)
from handlers.context import HashguardContext
from handlers.permissions import AdminsUnknown
from handlers.strikes import member_target, warn
from hashdb.fingerprint import SkipReason
from hashdb.store import Report, StoreError

log = logging.getLogger(__name__)

#: Callback data of the review buttons: user-controlled input, so parsed strictly.
CALLBACK_PATTERN = r"^report:(block|dismiss):(\d{1,19})$"
_CALLBACK = re.compile(CALLBACK_PATTERN)


async def report(update: Update, context: HashguardContext) -> None:
    """/report [reason], in reply to the message being reported."""
    message = update.effective_message
    if message is None or message.chat.type not in ("group", "supergroup"):
        if message is not None:
            await message.reply_text("/report works in groups: reply to the message to report.")
        return
    target = message.reply_to_message
    if target is None:
        await message.reply_text("Reply to the message you want to report with /report [reason].")
        return
    if target.from_user is not None and target.from_user.id == context.bot.id:
        await message.reply_text("Messages of mine cannot be reported.")
        return
    reporter = sender_of(message)
    reason = _reason(message)
    # Deleted first, so the group does not see who reported.
    await delete_message(context, message.chat.id, message.message_id)
    moderation = context.services.moderation
    chat_id = message.chat.id
    await moderation.ensure_chat(chat_id, chat_title(message.chat))
    # Decided before anything is downloaded: a member repeating a report costs no hashing.
    refusal = await moderation.claim_report(chat_id, target.message_id, reporter.id)
    if refusal == "repeat":
        log.info("report_repeated chat=%d message=%d", chat_id, target.message_id)
        return
    if refusal is not None:
        # Told privately where possible: a reply in the group would name the reporter.
        await _tell_privately(
            context,
            reporter,
            "The admins of this group have turned off reports from you."
            if refusal == "banned"
            else "You have sent many reports in the last hour; please wait a while.",
        )
        log.info("report_refused chat=%d reason=%s", chat_id, refusal)
        return
    ref = media_ref(target)
    file = functools.partial(_file_report, context, update, target, reporter, reason, ref)
    services = context.services
    if ref is None or services.hashes.known(ref.file_unique_id, BLOCK_MODE):
        await file()
        return
    # The media waits its chat's turn for hashing, like an upload, outside the update slots.
    if not services.queue.submit(chat_id, file):
        moderation.release_report(chat_id, target.message_id, reporter.id, count=True)
        log.warning(
            "report_skipped chat=%d message=%d reason=queue_full", chat_id, target.message_id
        )
        await moderation.record_skip(
            chat_id,
            message_id=target.message_id,
            sender=sender_of(target),
            reason=SkipReason.REPORT_QUEUE_FULL,
        )
        await _tell_privately(
            context, reporter, "The bot is busy checking this group's media; try again later."
        )


async def _file_report(
    context: HashguardContext,
    update: Update,
    target: Message,
    reporter: Person,
    reason: str,
    ref: MediaRef | None,
) -> None:
    """Hash the reported media, record the report (claimed by ``claim_report``), hide the
    message if enough members reported it, and post it for review."""
    moderation = context.services.moderation
    chat_id = target.chat.id
    try:
        fingerprints = None
        if ref is not None:
            try:
                fingerprints = (await fetch_and_hash(context, ref, for_block=True)).fingerprints
            except MediaSkipped as exc:
                log.info(
                    "report_media_skipped chat=%d reason=%s detail=%s",
                    chat_id,
                    exc.reason,
                    exc.detail,
                )
        recorded, new_reporter = await moderation.report(
            chat_id,
            target.message_id,
            sender=sender_of(target),
            reporter=reporter,
            reason=reason,
            fingerprints=fingerprints,
            file_unique_id=ref.file_unique_id if ref else None,
        )
    except Exception as exc:
        await context.application.process_error(update, exc)
        return
    finally:
        moderation.release_report(chat_id, target.message_id, reporter.id)
    if not new_reporter or recorded.status != "open":
        return
    dry_run = (await moderation.settings(recorded.chat_id)).dry_run
    if not dry_run and await moderation.autohide_due(
        recorded, sender_is_admin=functools.partial(_posted_by_admin, context, target)
    ):
        outcome = await delete_message(context, recorded.chat_id, recorded.message_id)
        await moderation.record_autohide(recorded, deleted=outcome.deleted)
    await post_review(context, recorded, target)


async def _posted_by_admin(context: HashguardContext, message: Message) -> bool:
    """Whether an admin posted ``message``: as themselves, anonymously as the group, or as
    the group's linked channel. When Telegram cannot say, assume so: hiding is not undone."""
    if message.sender_chat is not None:
        return message.sender_chat.id == message.chat.id or bool(message.is_automatic_forward)
    if message.from_user is None:
        return False
    try:
        return await context.services.admins.is_user_admin(
            context.bot, message.chat.id, message.from_user.id
        )
    except AdminsUnknown:
        return True


async def note_poster(update: Update, context: HashguardContext) -> None:
    """Every message posted in a group: remember when its sender was first seen posting
    (reports count toward auto-hide only from members who posted before the message)."""
    message = update.effective_message
    if message is None:
        return
    sender = sender_of(message)
    if sender.id == 0:
        return
    try:
        await context.services.posters.saw(message.chat.id, sender.id, message.message_id)
    except StoreError as exc:
        # Not worth failing the update for: the member is noted on their next message.
        log.warning("first_post_not_recorded chat=%d error=%s", message.chat.id, exc)


async def _tell_privately(context: HashguardContext, person: Person, text: str) -> None:
    if person.id <= 0:
        return
    # Fails when the member never started a private chat with the bot: nothing else to do.
    with contextlib.suppress(TelegramError):
        await context.bot.send_message(person.id, text)


def _reason(message: Message) -> str:
    parts = (message.text or "").split(maxsplit=1)
    return parts[1].strip()[:200] if len(parts) > 1 else ""


def review_text(
    report: Report,
    link: str | None,
    *,
    decided: str = "",
    show_reason: bool = False,
    bot_id: int | None = None,
) -> str:
    what = "media" if report.fingerprints else "a message"
    where = f'<a href="{html.escape(link)}">{what}</a>' if link else what
    members = [r for r in report.reporters if r != bot_id]
    count = len(members)
    if len(members) < len(report.reporters):
        # The bot itself flagged it: a likely crop or edit of blocked media, left for the
        # admins because the group reviews such matches (/set local_match review).
        flagged = f"🔎 Report #{report.id}: {where} (message {report.message_id}) looks like "
        flagged += "an edited copy (crop, tilt or screenshot) of blocked media"
        lines = [flagged + (f"; also reported by {count} member(s)." if count else ".")]
    else:
        lines = [
            f"🚩 Report #{report.id}: {where} (message {report.message_id}) reported by "
            f"{count} member{'s' if count != 1 else ''}."
        ]
    # A reason may describe the content or give away the reporter: it is shown only where
    # the group's members cannot read it (admins privately, or the log chat).
    if report.reason and show_reason and len(members) == len(report.reporters):
        lines.append(f"Reason given: {html.escape(report.reason)}")
    if report.hidden:
        lines.append("Hidden from the group after this many reports, pending your decision.")
    lines.append(
        decided or "Admins: Block adds it to the blocklist and removes it; Dismiss closes."
    )
    return "\n".join(lines)


def review_buttons(report_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Block", callback_data=f"report:block:{report_id}"),
                InlineKeyboardButton("Dismiss", callback_data=f"report:dismiss:{report_id}"),
            ]
        ]
    )


async def flag_for_review(context: HashguardContext, target: Message, note: str) -> None:
    """Post a match the group wants to review (not delete) as a report filed by the bot.

    The report keeps no hashes: Block on a report the bot filed adds no entry, and the
    check's hashes come from the quick path, which is never stored."""
    moderation = context.services.moderation
    ref = media_ref(target)
    me = Person(context.bot.id, context.bot.first_name or "Hashguard")
    recorded, new = await moderation.report(
        target.chat.id,
        target.message_id,
        sender=sender_of(target),
        reporter=me,
        reason=note,
        fingerprints=None,
        file_unique_id=ref.file_unique_id if ref else None,
    )
    if new and recorded.status == "open":
        await post_review(context, recorded, target)


async def post_review(context: HashguardContext, recorded: Report, target: Message) -> None:
    """Post (or update) the review message through the outbox: an outage or a restart
    delays it, never loses it."""
    await outbox.submit(context, recorded.chat_id, [Review(recorded.id, target.link)])


async def _review_step(context: HashguardContext, chat_id: int, step: Step) -> str:
    """Post the review message where the group wants it, or update the one posted."""
    assert isinstance(step, Review), step
    moderation = context.services.moderation
    recorded = await moderation.get_report(step.report)
    if recorded is None:
        return "refused: report not found"
    link = step.link
    # Reports of one message arriving together must end up with one review message.
    async with moderation.keyed_lock("review", recorded.chat_id, recorded.message_id):
        current = await moderation.get_report(recorded.id)
        if current is None or current.status != "open":
            return "ok"
        return await _post_or_update_locked(context, current, link)


outbox.FEATURE_STEPS[Review.kind] = _review_step


async def _post_or_update_locked(
    context: HashguardContext, recorded: Report, link: str | None
) -> str:
    settings = await context.services.moderation.settings(recorded.chat_id)
    private = settings.review_destination != "group"
    text = review_text(recorded, link, show_reason=private, bot_id=context.bot.id)
    bot = context.bot
    if recorded.review_message_id is not None and recorded.review_chat_id is not None:
        try:
            await bot.edit_message_text(
                text,
                chat_id=recorded.review_chat_id,
                message_id=recorded.review_message_id,
                parse_mode=ParseMode.HTML,
                reply_markup=review_buttons(recorded.id),
                disable_web_page_preview=True,
            )
        except TelegramError as exc:
            log.warning("review_edit_failed chat=%d error=%s", recorded.chat_id, exc)
            if outbox.may_pass(exc):
                raise outbox.passing(exc) from None
            return f"refused: {exc}"
        return "ok"
    destinations = [recorded.chat_id]
    if settings.review_destination == "log_chat" and settings.log_chat:
        destinations = [settings.log_chat]
    elif settings.review_destination == "admins":
        try:
            admins = await context.services.admins.admin_ids(bot, recorded.chat_id)
        except AdminsUnknown:
            admins = frozenset()  # the review goes to the group, as when no admin is reachable
        # Each admin who started a private chat with the bot; the group if none did.
        destinations = [a for a in sorted(admins) if a != bot.id] + [recorded.chat_id]
    first = None
    failure: TelegramError | None = None
    for destination in destinations:
        if first is not None and destination == recorded.chat_id:
            break
        try:
            sent = await bot.send_message(
                destination,
                text,
                parse_mode=ParseMode.HTML,
                reply_markup=review_buttons(recorded.id),
                disable_web_page_preview=True,
            )
        except TelegramError as exc:
            log.info("review_not_delivered report=%d error=%s", recorded.id, type(exc).__name__)
            if failure is None or outbox.may_pass(exc):
                failure = exc
            continue
        first = first or sent
    if first is None:
        log.warning("review_post_failed chat=%d", recorded.chat_id)
        if failure is not None and outbox.may_pass(failure):
            # Nobody got it for a passing reason (flood control, an outage): later.
            raise outbox.passing(failure)
        return f"refused: {failure}"
    await context.services.moderation.set_review_message(
        recorded.id, first.chat_id, first.message_id
    )
    return "ok"


async def on_review_button(update: Update, context: HashguardContext) -> None:
    """Block / Dismiss pressed on a review message."""
    query = update.callback_query
    if query is None:
        return
    found = _CALLBACK.match(query.data or "")
    message = query.message
    moderation = context.services.moderation
    # Nineteen digits can still exceed SQLite's integer range: bounded like typed ids.
    report_id = parse_number(found.group(2), 1, MAX_ID) if found else None
    recorded = await moderation.get_report(report_id) if report_id is not None else None
    # The data is user-controlled: it must name a report reviewed in this very message,
    # or (reviews sent to admins privately) a report pressed in the presser's own chat.
    if (
        found is None
        or recorded is None
        or not isinstance(message, Message)
        or not (
            (
                recorded.review_chat_id == message.chat.id
                and recorded.review_message_id == message.message_id
            )
            or (message.chat.type == "private" and message.chat.id == query.from_user.id)
        )
    ):
        await query.answer("This button is not valid.", show_alert=True)
        return
    if not await context.services.admins.is_user_admin(
        context.bot, recorded.chat_id, query.from_user.id
    ):
        await query.answer("Only this group's admins can decide reports.", show_alert=True)
        return
    actor = person_of_user(query.from_user)
    block = found.group(1) == "block"
    # A copy the bot flagged already matches a blocklist entry (by local features): Block
    # removes it without adding its hashes, so nothing outlives that entry (a withdrawn
    # self-submission, an unblock).
    decided, entry = await moderation.decide_report(
        recorded, block=block, actor=actor, add_entry=context.bot.id not in recorded.reporters
    )
    if not decided:
        await query.answer("This report was already decided.")
        return
    verdict = "blocked" if block else "dismissed"
    dry_run = (await moderation.settings(recorded.chat_id)).dry_run
    if block:
        # An admin's decision acts even in dry run; only the automatic strike is left out.
        outcome = await delete_message(context, recorded.chat_id, recorded.message_id)
        if outcome.deleted and recorded.sender_id is not None and not dry_run:
            strikes = await moderation.strike_for_report(recorded, entry)
            if strikes is not None:
                sender = Person(recorded.sender_id, recorded.sender_name)
                await warn(context, recorded.chat_id, sender, strikes)
    by = f"{verdict.capitalize()} by {html.escape(actor.name)}."
    if entry is not None:
        by += f" Blocklist entry #{entry.id}."
    try:
        await message.edit_text(
            review_text(
                recorded,
                None,
                decided=by,
                show_reason=message.chat.id != recorded.chat_id,
                bot_id=context.bot.id,
            ),
            parse_mode=ParseMode.HTML,
            reply_markup=None,
        )
    except TelegramError as exc:
        log.warning("review_edit_failed chat=%d error=%s", recorded.chat_id, exc)
    await query.answer(f"Report {verdict}.")


async def on_unknown_button(update: Update, context: HashguardContext) -> None:
    """Any other button data (forged, or from an older version): refuse, change nothing."""
    if update.callback_query is not None:
        await update.callback_query.answer("This button is not valid.", show_alert=True)


@admin_command
async def reportban(update: Update, context: HashguardContext) -> None:
    await _set_report_ban(update, context, banned=True)


@admin_command
async def reportunban(update: Update, context: HashguardContext) -> None:
    await _set_report_ban(update, context, banned=False)


async def _set_report_ban(update: Update, context: HashguardContext, *, banned: bool) -> None:
    message = update.effective_message
    assert message is not None
    target = member_target(message, list(context.args or []))
    if isinstance(target, str):
        await message.reply_text(target)
        return
    if target is None:
        await message.reply_text("Reply to one of the member's messages, or give their user id.")
        return
    changed = await context.services.moderation.ban_reporter(
        message.chat.id, target, actor=actor_of(message), banned=banned
    )
    state = "can no longer report" if banned else "can report again"
    note = "" if changed else " (no change)"
    await message.reply_text(
        f"{mention(target)} {state} in this group{note}.", parse_mode=ParseMode.HTML
    )
