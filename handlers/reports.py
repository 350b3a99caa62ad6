"""Member reports and admin review: /report, and the review message's Block / Dismiss buttons.

Each turns its update into plain values for the core (``bot.reporting``), which decides what
the report or the decision means, and gives the core its Telegram side: fetching and hashing
the reported media, private messages, whether an admin posted a message, the outbox's Bot API
calls. The review message itself (where it goes, its text and buttons) is made here, as the
outbox's ``review`` step.

The reporter stays anonymous to the group: the /report command message is deleted at once.
The review message names the report and links to the reported message; it never contains or
re-sends the media. The button labels "Block" and "Dismiss" are relied on by users' scripts.
"""

from __future__ import annotations

import contextlib
import html
import logging
import re

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError

from bot.jobs import Review, Step
from bot.reporting import Reported
from bot.uploads import Fetched, MediaFacts, Unchecked
from bot.values import Person
from handlers import outbox
from handlers.admin import MAX_ID, actor_of, admin_command, parse_number
from handlers.common import (
    MediaRef,
    MediaSkipped,
    chat_title,
    fetch_and_hash,
    media_ref,
    mention,
    person_of_user,
    sender_of,
)
from handlers.context import HashguardContext
from handlers.outbox import TelegramSteps
from handlers.permissions import AdminsUnknown
from handlers.strikes import member_target
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
    ref = media_ref(target)
    reported = Reported(
        message.chat.id,
        chat_title(message.chat),
        target.message_id,
        sender_of(target),
        sender_of(message),
        _reason(message),
        MediaFacts(ref.kind, ref.hasher, ref.file_unique_id) if ref is not None else None,
        target.link,
        command_message_id=message.message_id,
    )
    await context.services.reporting.report(reported, _TelegramReport(context, update, target, ref))


class _TelegramReport(TelegramSteps):
    """The Telegram side of one report (``bot.reporting.ReportPort``)."""

    def __init__(
        self, context: HashguardContext, update: Update, target: Message, ref: MediaRef | None
    ) -> None:
        super().__init__(context)
        self.update = update
        self.target = target
        self.ref = ref

    async def fetch(self) -> Fetched | Unchecked:
        assert self.ref is not None, "asked only for a message with media"
        try:
            return await fetch_and_hash(self.context, self.ref, for_block=True)
        except MediaSkipped as exc:
            return Unchecked(exc.reason, exc.detail)

    async def tell_privately(self, person: Person, text: str) -> None:
        await _tell_privately(self.context, person, text)

    async def sender_is_admin(self) -> bool:
        return await _posted_by_admin(self.context, self.target)

    async def failed(self, error: Exception) -> None:
        await self.context.application.process_error(self.update, error)


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
    """Post a match the group wants to review (not delete) as a report filed by the bot."""
    ref = media_ref(target)
    await context.services.reporting.flag(
        target.chat.id,
        target.message_id,
        sender=sender_of(target),
        note=note,
        file_unique_id=ref.file_unique_id if ref else None,
        link=target.link,
        port=TelegramSteps(context),
    )


async def _review_step(context: HashguardContext, chat_id: int, step: Step) -> str:
    """Post the review message where the group wants it, or update the one posted."""
    assert isinstance(step, Review), step
    core = context.services.core
    recorded = await core.reports.get_report(step.report)
    if recorded is None:
        return "refused: report not found"
    link = step.link
    # Reports of one message arriving together must end up with one review message.
    async with core.locks.lock("review", recorded.chat_id, recorded.message_id):
        current = await core.reports.get_report(recorded.id)
        if current is None or current.status != "open":
            return "ok"
        return await _post_or_update_locked(context, current, link)


outbox.FEATURE_STEPS[Review.kind] = _review_step


async def _post_or_update_locked(
    context: HashguardContext, recorded: Report, link: str | None
) -> str:
    settings = await context.services.core.settings.get(recorded.chat_id)
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
    await context.services.core.reports.set_review_message(
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
    core = context.services.core
    # Nineteen digits can still exceed SQLite's integer range: bounded like typed ids.
    report_id = parse_number(found.group(2), 1, MAX_ID) if found else None
    recorded = await core.reports.get_report(report_id) if report_id is not None else None
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
    decision = await context.services.reporting.decide(
        recorded, block=block, actor=actor, port=TelegramSteps(context)
    )
    if not decision.decided:
        await query.answer("This report was already decided.")
        return
    verdict = "blocked" if block else "dismissed"
    entry = decision.entry
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
    changed = await context.services.core.reports.ban_reporter(
        message.chat.id, target, actor=actor_of(message), banned=banned
    )
    state = "can no longer report" if banned else "can report again"
    note = "" if changed else " (no change)"
    await message.reply_text(
        f"{mention(target)} {state} in this group{note}.", parse_mode=ParseMode.HTML
    )
