"""Makes the outbox's jobs (``bot.outbox``) with Bot API calls: deletions, restrictions,
warnings and report review messages. The core (``bot.enforcement``) runs the jobs and decides
what strikes lead to; this module is its ``StepMaker`` for Telegram.

Each step is one Bot API action. Its answer is sorted three ways:

- made: Telegram did it, or the wanted state already holds ("message to delete not found"
  means the message is gone);
- refused: Telegram will not do it (no rights, the member is an admin); retrying cannot
  help, so it is recorded and the job goes on with its next step;
- passing: flood control, a 5xx, a timeout or a dropped connection; the job waits and is
  retried from this step, honouring ``retry_after``.

Deleting, banning and restricting are safe to repeat. Sending a warning is not: when the
connection dropped after the request went out, Telegram may have posted it, so that one
case counts as made (logged as unconfirmed) rather than risk a second warning in the group.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import warnings
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from telegram import ChatPermissions
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from bot.jobs import DeleteMessages, JobOutcome, Passing, Restrict, Step, Warn
from bot.values import Person
from handlers.common import mention
from handlers.context import HashguardApp, HashguardContext
from handlers.membership import recheck_rights
from handlers.permissions import AdminsUnknown
from hashdb.store import Job, StoreError

log = logging.getLogger(__name__)

#: Seconds the worker sleeps at most between looks at the store (jobs queued by another
#: path, e.g. a claim that lapsed).
WORKER_POLL = 5.0
#: Concurrent jobs of the worker.
WORKER_CONCURRENCY = 16

_DONE = {"ban": "banned", "kick": "removed from the group", "mute": "muted"}

#: Read-side failures: the request reached Telegram and only the answer was lost.
_ANSWER_LOST = (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError)


#: Steps that are not one Bot API call, by kind: made by the feature that owns them
#: (registered when its module is imported; its step class is registered in ``bot.jobs``).
FeatureStep = Callable[[HashguardContext, int, Step], Awaitable[str]]
FEATURE_STEPS: dict[str, FeatureStep] = {}


class TelegramSteps:
    """The outbox's steps made with Bot API calls (``bot.enforcement.StepMaker``)."""

    def __init__(self, context: HashguardContext) -> None:
        self.context = context

    async def make(self, chat_id: int, step: Step, results: Mapping[str, Any]) -> str:
        return await _make(self.context, chat_id, step, results)

    async def exempt(self, chat_id: int, person: Person) -> bool:
        return await _exempt(self.context, chat_id, person)

    async def rights_failed(self, chat_id: int, why: str) -> None:
        await recheck_rights(self.context, chat_id, why=why)


async def _exempt(context: HashguardContext, chat_id: int, sender: Person) -> bool:
    """Whether the sender cannot be restricted: Telegram does not let a bot restrict the
    group's admins (or the group itself, for an anonymous admin); they are warned only,
    without a failed attempt each time."""
    return sender.id == chat_id or (
        sender.id > 0 and await _known_admin(context, chat_id, sender.id)
    )


async def _known_admin(context: HashguardContext, chat_id: int, user_id: int) -> bool:
    try:
        return await context.services.admins.is_user_admin(context.bot, chat_id, user_id)
    except AdminsUnknown:
        # Telegram answers the restriction itself then: it refuses to restrict an admin.
        return False


async def submit(context: HashguardContext, chat_id: int, steps: list[Step]) -> JobOutcome:
    """Persist a job and make its first attempt now; what fails for a passing reason is
    left to the worker."""
    return await context.services.enforcer.submit(chat_id, steps, TelegramSteps(context))


async def _make(
    context: HashguardContext, chat_id: int, step: Step, results: Mapping[str, Any]
) -> str:
    bot = context.bot
    kind = step.do
    feature = FEATURE_STEPS.get(kind)
    if feature is not None:
        return await feature(context, chat_id, step)
    try:
        if isinstance(step, DeleteMessages):
            ids = list(step.messages)
            if not step.batch:
                for message_id in ids:
                    await bot.delete_message(chat_id, message_id)
            else:
                for start in range(0, len(ids), 100):
                    await bot.delete_messages(chat_id, ids[start : start + 100])
        elif isinstance(step, Restrict):
            await _restrict(context, chat_id, step)
        elif isinstance(step, Warn):
            try:
                sent = await bot.send_message(
                    chat_id, _warning(step, results), parse_mode=ParseMode.HTML
                )
            except TelegramError as exc:
                if isinstance(exc.__cause__, _ANSWER_LOST):
                    log.warning("warn_unconfirmed chat=%d error=%s", chat_id, type(exc).__name__)
                    return "ok (unconfirmed)"
                raise
            if step.entry is not None:
                await _remember_notice(context, chat_id, sent.message_id, step.entry)
        else:
            return f"refused: unknown step {kind!r}"
    except BadRequest as exc:
        if isinstance(step, DeleteMessages) and "not found" in exc.message.lower():
            return "ok"
        log.warning("action_refused chat=%d step=%s error=%s", chat_id, kind, exc.message)
        return f"refused: {exc.message}"
    except Forbidden as exc:
        log.warning("action_refused chat=%d step=%s error=%s", chat_id, kind, exc.message)
        return f"refused: {exc.message}"
    except TelegramError as exc:
        raise passing(exc) from None
    return "ok"


async def _remember_notice(
    context: HashguardContext, chat_id: int, message_id: int, entry_id: int
) -> None:
    try:
        await context.services.core.blocklist.remember_notice(chat_id, message_id, entry_id)
    except StoreError as exc:
        # The warning is posted: failing the step would post it again. Only /unblock by
        # reply to it is lost (the entry id still works).
        log.error("notice_unsaved chat=%d message=%d error=%s", chat_id, message_id, exc)


def passing(exc: TelegramError) -> Passing:
    """The retry for a failure that may pass (flood control honours retry_after)."""
    if isinstance(exc, RetryAfter):
        after = _seconds(exc)
        return Passing(f"flood control (retry after {after:.0f} s)", after)
    return Passing(type(exc).__name__)


def may_pass(exc: TelegramError) -> bool:
    """Whether retrying later can help (not a refusal such as no rights)."""
    return not isinstance(exc, BadRequest | Forbidden)


async def _restrict(context: HashguardContext, chat_id: int, step: Restrict) -> None:
    bot = context.bot
    user_id = step.target.id
    action = step.action
    if user_id < 0:
        # A channel posting in the group cannot be muted or kicked, only banned from
        # posting here (every user posting as it is then blocked).
        await bot.ban_chat_sender_chat(chat_id, user_id)
    elif action == "mute":
        # A mute always carries its end; should one lack it, it ends ``minutes`` from now
        # rather than at the epoch, which Telegram would read as "forever".
        end = step.until if step.until is not None else time.time() + (step.minutes or 0) * 60
        until = dt.datetime.fromtimestamp(float(end), dt.UTC)
        await bot.restrict_chat_member(
            chat_id, user_id, ChatPermissions.no_permissions(), until_date=until
        )
    else:
        await bot.ban_chat_member(chat_id, user_id)
        if action == "kick":
            # A kick is a ban lifted at once: the member is out but may rejoin.
            await bot.unban_chat_member(chat_id, user_id, only_if_banned=True)


def _warning(step: Warn, results: Mapping[str, Any]) -> str:
    person = step.target
    strikes, limit = int(step.strikes or 0), int(step.limit or 0)
    count = f"Warning {strikes} of {limit}." if limit else f"Warning {strikes}."
    # The warning names the sender and the count only: no hint of what the content was.
    text = (
        f"⚠️ {mention(person)}, your message was removed because it matches content "
        f"blocked in this group. {count}"
    )
    if step.escalation and results.get("restrict") == "ok":
        text += f" {mention(person)} has been {_DONE[step.escalation]}."
    return text


def _seconds(exc: RetryAfter) -> float:
    # PTB 22 warns that retry_after turns from int into timedelta; accept both.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        delay = exc.retry_after
    return delay.total_seconds() if isinstance(delay, timedelta) else float(delay)


async def worker(application: HashguardApp) -> None:
    """Background task: retries jobs that are due, including those of a previous run."""
    services = application.bot_data.services
    assert services is not None, "post_init made the services"
    outbox = services.outbox
    context = HashguardContext(application)
    runner = services.enforcer
    maker = TelegramSteps(context)
    recovered = await outbox.recover()
    if recovered:
        log.info("outbox_recovered jobs=%d", recovered)
    limit = asyncio.Semaphore(WORKER_CONCURRENCY)

    async def one(job: Job) -> None:
        async with limit:
            try:
                await runner.run(job, maker)
            except Exception:
                log.exception("job_failed job=%d chat=%d", job.id, job.chat_id)

    while not outbox.stopping:
        try:
            jobs = await outbox.claim_due()
        except Exception:
            log.exception("outbox_read_failed")
            jobs = []
        if jobs:
            await asyncio.gather(*(one(job) for job in jobs))
            continue
        await outbox.wait(WORKER_POLL)


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
    step = DeleteMessages(tuple(message_ids), batch=batch)
    done = await submit(context, chat_id, [step])
    if done.pending is not None:
        return DeleteOutcome(pending=done.pending)
    result = str(done.results.get("delete", ""))
    if result.startswith("refused: "):
        return DeleteOutcome(failure=result.removeprefix("refused: "), refused=True)
    return DeleteOutcome()
