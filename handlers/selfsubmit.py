"""Self-submission: a person privately sends the bot media of themselves that they fear
will be shared; the bot keeps its fingerprints only, so groups that opted in delete copies.

The media is hashed in memory and the person's message is deleted from the private chat;
nothing is stored or forwarded. Downloading and hashing wait the private chat's turn in the
fair queue, like a group's uploads, and an item counts toward the daily limit from the
moment it is taken. Each item gets a case code the person can list
(/mycases) and withdraw (/withdraw CODE). Nothing is hashed before the person has read
what happens and pressed the button that says they understand.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update

from bot.fingerprint_cache import BLOCK_MODE
from bot.services.selfsubmit import SubmissionClaim
from bot.values import BankError
from handlers.common import (
    MediaRef,
    MediaSkipped,
    fetch_and_hash,
    media_ref,
    sender_of,
)
from handlers.context import HashguardContext
from handlers.outbox import delete_message

log = logging.getLogger(__name__)

ACCEPT_CALLBACK = "ss:accept"
ACCEPT_PATTERN = r"^ss:accept$"
ACCEPT_LABEL = "I understand, continue"

EXPLANATION = (
    "How protecting your own photos and videos works:\n"
    "• You send me a photo or video of yourself that you fear someone will share. I compute "
    "its fingerprints (hashes) in memory, then delete your message from this chat. I never "
    "store, forward or show the media to anyone, and no person looks at it.\n"
    "• The fingerprints go into a list that groups running this bot can choose to use. In "
    "those groups, copies (also resized, re-encoded or mirrored ones) are deleted when "
    "posted. Groups that do not run this bot, or did not opt in, are not covered.\n"
    "• For the wider web (Facebook, Instagram, TikTok, Reddit and others), use "
    "StopNCII.org. If you are under 18, or the images were taken when you were, use "
    "Take It Down: takeitdown.ncmec.org.\n"
    "• Each item gets a case code. /mycases lists yours; /withdraw CODE stops the "
    "matching at any time."
)


def _private(message: Message) -> bool:
    return message.chat.type == "private"


async def submit_command(update: Update, context: HashguardContext) -> None:
    """/submit in a private chat: explain, and ask for consent once."""
    message = update.effective_message
    if message is None or message.from_user is None:
        return
    if not _private(message):
        await message.reply_text(
            "To protect your own photos or videos, write to me privately and send /submit "
            "there. Never post them in a group."
        )
        return
    if not context.services.config.self_submission.enabled:
        await message.reply_text("Self-submission is not enabled on this bot.")
        return
    core = context.services.core
    if await core.selfsubmit.self_submission_accepted(message.from_user.id):
        await message.reply_text(
            f"{EXPLANATION}\n\nSend the photos or videos now, one message each or as an album."
        )
        return
    await _ask_consent(message)


async def _ask_consent(message: Message) -> None:
    await message.reply_text(
        EXPLANATION,
        reply_markup=InlineKeyboardMarkup(
            [[InlineKeyboardButton(ACCEPT_LABEL, callback_data=ACCEPT_CALLBACK)]]
        ),
    )


async def on_accept(update: Update, context: HashguardContext) -> None:
    query = update.callback_query
    if query is None or query.message is None:
        return
    if query.message.chat.type != "private":
        await query.answer("This button works in a private chat with me.")
        return
    if not context.services.config.self_submission.enabled:
        await query.answer("Self-submission is not enabled on this bot.", show_alert=True)
        return
    await context.services.core.selfsubmit.accept_self_submission(query.from_user.id)
    await query.answer()
    await context.bot.send_message(
        query.message.chat.id,
        "Thank you. Send the photos or videos now; I will answer each with its case code.",
    )


async def on_private_media(update: Update, context: HashguardContext) -> None:
    """Media sent to the bot privately: a self-submission, once consent was given."""
    message = update.effective_message
    if message is None or message.from_user is None:
        return
    ref = media_ref(message)
    if ref is None:
        await message.reply_text(
            "I can only fingerprint photos and videos (also sent as files). To import a hash "
            "list, send it with /import NAME as the caption."
        )
        return
    services = context.services
    if not services.config.self_submission.enabled:
        await message.reply_text("Self-submission is not enabled on this bot.")
        return
    core = services.core
    person = sender_of(message)
    if not await core.selfsubmit.self_submission_accepted(person.id):
        # Not hashed: consent comes first. The person can delete the message themselves.
        await _ask_consent(message)
        return
    per_day = services.config.self_submission.per_day
    # Counted before anything is downloaded, and held while the item waits for hashing: a
    # burst of media is refused past the limit at once, not after all of it was hashed.
    claim = await core.selfsubmit.claim_self_submission(person.id, per_day)
    if claim is None:
        await _over_limit(message, per_day)
        return
    submit = functools.partial(_submit, context, update, message, ref, claim)
    # What is stored is hashed as for a block (``fetch_and_hash`` with ``for_block``).
    if services.hashes.known(ref.file_unique_id, BLOCK_MODE):
        await submit()  # cached (or a remembered failure): nothing slow is left
        return
    # The download and hash wait this private chat's turn in the queue, like a group's
    # uploads: a burst of submissions must not hold the update slots and hashing workers
    # that groups need to delete re-uploads.
    if not services.queue.submit(message.chat.id, submit):
        core.selfsubmit.release_self_submission(claim)
        log.warning(
            "self_submission_skipped kind=%s reason=queue_full limit=%d",
            ref.kind,
            services.queue.per_chat,
        )
        await message.reply_text(
            "I am busy with the files you sent before, so nothing was kept of this one. "
            "Please send it again in a few minutes."
        )


async def _submit(
    context: HashguardContext,
    update: Update,
    message: Message,
    ref: MediaRef,
    claim: SubmissionClaim,
) -> None:
    """Fetch, hash and store a self-submission; run by the queue, so failures go to the
    error handler here, and the claim on the daily limit is released whatever happens."""
    try:
        await _store_submission(context, message, ref, claim)
    except Exception as exc:
        await context.application.process_error(update, exc)
    finally:
        context.services.core.selfsubmit.release_self_submission(claim)


async def _store_submission(
    context: HashguardContext, message: Message, ref: MediaRef, claim: SubmissionClaim
) -> None:
    core = context.services.core
    per_day = context.services.config.self_submission.per_day
    try:
        fetched = await fetch_and_hash(context, ref, for_block=True)
    except MediaSkipped as exc:
        log.info("self_submission_skipped reason=%s detail=%s", exc.reason, exc.detail)
        await message.reply_text(
            f"I could not read that file, so nothing was kept: {exc.reason.text}."
        )
        return
    case = await core.selfsubmit.self_submit(
        sender_of(message), fetched.fingerprints, per_day=per_day, claim=claim
    )
    if case is None:
        await _over_limit(message, per_day)
        return
    # The person's copy leaves this chat too; Telegram keeps no second copy on our side.
    await delete_message(context, message.chat.id, message.message_id)
    stored = fetched.fingerprints.stored
    low_detail = not any(core.matching.matcher.usable(f) for f in stored)
    only_copies = core.matching.matcher.only_low_detail(stored)
    lines = [
        f"Case {case.code}: the {case.kind}'s fingerprints are saved and your message was "
        "deleted. Groups that opted in will now remove copies.",
        f"Keep the code: /withdraw {case.code} stops the matching.",
    ]
    if only_copies:
        lines.insert(
            1,
            "This one has little detail (dark, blurred or smooth): re-encoded and resized "
            "copies can be recognised, edited ones may not be.",
        )
    elif low_detail:
        lines.insert(
            1,
            "This one has very little detail, so only exact copies of the same file can be "
            "recognised.",
        )
    await context.bot.send_message(message.chat.id, "\n".join(lines))


async def _over_limit(message: Message, per_day: int) -> None:
    await message.reply_text(
        f"You have submitted {per_day} items in the last 24 hours, the most I take in a "
        "day. Please send the rest tomorrow."
    )


async def mycases_command(update: Update, context: HashguardContext) -> None:
    message = update.effective_message
    if message is None or message.from_user is None:
        return
    if not _private(message):
        await message.reply_text("Ask me privately: /mycases works in a private chat with me.")
        return
    cases = await context.services.core.selfsubmit.user_cases(message.from_user.id)
    if not cases:
        await message.reply_text("You have no cases. /submit explains how to protect media.")
        return
    lines = ["Your cases (newest first):"]
    for case in cases[:50]:
        day = dt.datetime.fromtimestamp(case.created_at, dt.UTC).strftime("%Y-%m-%d")
        lines.append(f"• {case.code}: {case.kind}, {day}, {case.status}")
    if len(cases) > 50:
        lines.append(f"… and {len(cases) - 50} older.")
    await message.reply_text("\n".join(lines))


async def withdraw_command(update: Update, context: HashguardContext) -> None:
    message = update.effective_message
    if message is None or message.from_user is None:
        return
    if not _private(message):
        # The command may carry the person's case code: it should not stay in the group.
        await delete_message(context, message.chat.id, message.message_id)
        await context.bot.send_message(
            message.chat.id, "Ask me privately: /withdraw works in a private chat with me."
        )
        return
    args = context.args or []
    if len(args) != 1:
        await message.reply_text("Give one case code: /withdraw HG-XXXX-XXXX (see /mycases).")
        return
    try:
        case = await context.services.core.selfsubmit.set_case_status(
            args[0], "withdrawn", actor_id=message.from_user.id, user_id=message.from_user.id
        )
    except BankError as exc:
        await message.reply_text(f"{exc}.")
        return
    await message.reply_text(
        f"Case {case.code} is withdrawn: its fingerprints no longer match anywhere."
    )
