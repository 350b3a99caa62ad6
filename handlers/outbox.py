"""Makes the outbox's jobs (``bot.outbox``): deletions, restrictions, warnings and report
review messages.

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
import dataclasses
import datetime as dt
import logging
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from telegram import ChatPermissions
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from bot.matcher import Match
from bot.outbox import Outbox
from bot.settings import GroupSettings
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


#: Steps that are not one Bot API call, by name: made by the feature that owns them
#: (registered when its module is imported).
StepMaker = Callable[[HashguardContext, int, dict[str, Any]], Awaitable[str]]
FEATURE_STEPS: dict[str, StepMaker] = {}


@dataclass(frozen=True, slots=True)
class Passing(Exception):
    """A failure worth retrying later; ``after`` is Telegram's retry_after, if it gave one."""

    error: str
    after: float | None = None


@dataclass(frozen=True, slots=True)
class JobOutcome:
    #: Each step's result by its name: "ok", "refused: ..." or (not yet made) absent.
    results: dict[str, Any]
    #: Steps are left for a later attempt (why, if so).
    pending: str | None = None


def delete_step(message_ids: list[int], *, batch: bool = False) -> dict[str, Any]:
    """Delete messages: one with deleteMessage, or (``batch``) with deleteMessages, which
    skips messages already gone."""
    return {"do": "delete", "messages": message_ids, "batch": batch}


def restrict_step(target: Person, action: str, mute_minutes: int) -> dict[str, Any]:
    """Ban, kick or mute ``target`` (a channel posting in the group can only be banned)."""
    until = None
    if action == "mute":
        until = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=mute_minutes)).timestamp()
    return {
        "do": "restrict",
        "action": action,
        "user": target.id,
        "name": target.name,
        "until": until,
        "minutes": mute_minutes,
    }


def warn_step(target: Person, strikes: int, limit: int, escalation: str | None) -> dict[str, Any]:
    """The warning in the group; it says so when the restriction before it was made."""
    return {
        "do": "warn",
        "user": target.id,
        "name": target.name,
        "strikes": strikes,
        "limit": limit,
        "escalation": escalation,
    }


def match_steps(
    message_ids: list[int],
    *,
    batch: bool,
    match: Match,
    sender: Person,
    message_id: int,
    notes: list[str],
    strike: bool,
) -> list[dict[str, Any]]:
    """The job of a matched upload: delete it, audit the match (and add the strike), then
    restrict and warn the sender as the strike count calls for. Each step waits for the one
    before it, so the warning never comes before the deletion it announces."""
    delete = delete_step(message_ids, batch=batch)
    delete["audited_by_record"] = True
    record = {
        "do": "record",
        "match": dataclasses.asdict(match),
        "user": sender.id,
        "name": sender.name,
        "message_id": message_id,
        "notes": notes,
        "strike": strike,
    }
    # Filled in by the record step: whether, and how, the sender is restricted and warned.
    restrict = {"do": "restrict", "user": sender.id, "name": sender.name, "action": None}
    # The entry is not in the warning's text: the store remembers it, so an admin replying
    # /unblock to the warning reaches the entry without the group learning anything.
    warn = {
        "do": "warn",
        "user": sender.id,
        "name": sender.name,
        "strikes": None,
        "entry": match.entry_id,
    }
    return [delete, record, restrict, warn]


async def escalation_for(
    context: HashguardContext, chat_id: int, sender: Person, strikes: int
) -> tuple[str | None, GroupSettings]:
    """The restriction due at ``strikes`` (None for none), with the group's settings."""
    core = context.services.core
    settings = await core.settings.get(chat_id)
    action = core.settings.escalation(settings, strikes)
    if action is not None and await _exempt(context, chat_id, sender):
        action = None
    return action, settings


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


async def submit(
    context: HashguardContext, chat_id: int, steps: list[dict[str, Any]]
) -> JobOutcome:
    """Persist a job and make its first attempt now; what fails for a passing reason is
    left to the worker."""
    outbox = context.services.outbox
    job = await outbox.submit(chat_id, steps)
    return await run(context, outbox, job)


async def run(context: HashguardContext, outbox: Outbox, job: Job) -> JobOutcome:
    """Make a job's remaining steps, recording each as it is made."""
    results = dict(job.results)
    done = job.done
    try:
        while done < len(job.steps):
            step = job.steps[done]
            try:
                if step["do"] == "record":
                    result = await _record(context, outbox, job, done, results)
                else:
                    result = await _make(context, job.chat_id, step, results)
            except (Passing, StoreError) as exc:
                failure = exc if isinstance(exc, Passing) else Passing(f"database: {exc}")
                if outbox.expired(job):
                    attempts = job.attempts + 1
                    result = f"refused: gave up after {attempts} attempts ({failure.error})"
                    log.warning(
                        "job_given_up job=%d chat=%d step=%s", job.id, job.chat_id, step["do"]
                    )
                else:
                    delay = await outbox.retry(
                        job, done, results, error=failure.error, after=failure.after
                    )
                    log.info(
                        "job_retry job=%d chat=%d step=%s error=%s in=%.1fs",
                        job.id,
                        job.chat_id,
                        step["do"],
                        failure.error,
                        delay,
                    )
                    return JobOutcome(results, pending=failure.error)
            results[step["do"]] = result
            try:
                await _after(context, job.chat_id, step, result, results, deferred=job.attempts > 0)
            except StoreError as exc:
                # The action is made; only its audit row is lost.
                log.error("job_audit_failed job=%d step=%s error=%s", job.id, step["do"], exc)
            done += 1
            # A skipped step changed nothing: repeating it after a crash is harmless. A
            # record step saved its progress in its own transaction.
            if done < len(job.steps) and result != "skipped" and step["do"] != "record":
                await outbox.progress(job, done, results)
        await outbox.finish(job)
    except BaseException:
        # Anything else (the store failing, cancellation at shutdown): the job stays in the
        # store and its claim lapses; the worker takes it up again.
        outbox.forget(job)
        raise
    return JobOutcome(results)


async def _make(
    context: HashguardContext, chat_id: int, step: dict[str, Any], results: dict[str, Any]
) -> str:
    bot = context.bot
    kind = step["do"]
    feature = FEATURE_STEPS.get(kind)
    if feature is not None:
        return await feature(context, chat_id, step)
    if kind == "restrict":
        step = {**step, **results.get("restrict_with", {})}
        if not step.get("action"):
            return "skipped"
    if kind == "warn":
        step = {**step, **results.get("warn_with", {})}
        if step.get("strikes") is None:
            return "skipped"
    try:
        if kind == "delete":
            ids = [int(i) for i in step["messages"]]
            if not step.get("batch"):
                for message_id in ids:
                    await bot.delete_message(chat_id, message_id)
            else:
                for start in range(0, len(ids), 100):
                    await bot.delete_messages(chat_id, ids[start : start + 100])
        elif kind == "restrict":
            await _restrict(context, chat_id, step)
        elif kind == "warn":
            try:
                sent = await bot.send_message(
                    chat_id, _warning(step, results), parse_mode=ParseMode.HTML
                )
            except TelegramError as exc:
                if isinstance(exc.__cause__, _ANSWER_LOST):
                    log.warning("warn_unconfirmed chat=%d error=%s", chat_id, type(exc).__name__)
                    return "ok (unconfirmed)"
                raise
            if step.get("entry") is not None:
                await _remember_notice(context, chat_id, sent.message_id, int(step["entry"]))
        else:
            return f"refused: unknown step {kind!r}"
    except BadRequest as exc:
        if kind == "delete" and "not found" in exc.message.lower():
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


async def _restrict(context: HashguardContext, chat_id: int, step: dict[str, Any]) -> None:
    bot = context.bot
    user_id = int(step["user"])
    action = step["action"]
    if user_id < 0:
        # A channel posting in the group cannot be muted or kicked, only banned from
        # posting here (every user posting as it is then blocked).
        await bot.ban_chat_sender_chat(chat_id, user_id)
    elif action == "mute":
        until = dt.datetime.fromtimestamp(float(step["until"]), dt.UTC)
        await bot.restrict_chat_member(
            chat_id, user_id, ChatPermissions.no_permissions(), until_date=until
        )
    else:
        await bot.ban_chat_member(chat_id, user_id)
        if action == "kick":
            # A kick is a ban lifted at once: the member is out but may rejoin.
            await bot.unban_chat_member(chat_id, user_id, only_if_banned=True)


async def _record(
    context: HashguardContext, outbox: Outbox, job: Job, done: int, results: dict[str, Any]
) -> str:
    """Audit a match once its deletion is made or refused, add the strike and decide its
    effects: one transaction, which also marks this step made (its own progress)."""
    step = job.steps[done]
    chat_id = job.chat_id
    core = context.services.core
    deleted = results.get("delete") == "ok"
    notes = list(step["notes"])
    if not deleted:
        notes.append(str(results.get("delete", "")).removeprefix("refused: "))
    sender = Person(int(step["user"]), str(step["name"]))
    striking = deleted and bool(step["strike"])
    settings = await core.settings.get(chat_id)
    # Telegram is asked before the transaction, which is pure database work: a kill after
    # it commits leaves the decision saved with the strike. Asked only when this strike
    # can reach the limit; should another process's strike get there first, an admin
    # meets one refused restriction, which is harmless.
    exempt = False
    if striking and settings.warn_limit:
        before = await core.strikes.count(chat_id, sender.id)
        if core.settings.escalation(settings, before + 1) is not None:
            exempt = await _exempt(context, chat_id, sender)

    def decided(strikes: int | None) -> dict[str, Any]:
        saved = {**results, "record": "ok"}
        if strikes is not None:
            action = None if exempt else core.settings.escalation(settings, strikes)
            saved["restrict_with"] = {"action": action, "minutes": settings.mute_minutes}
            if action == "mute":
                saved["restrict_with"]["until"] = time.time() + settings.mute_minutes * 60
            saved["warn_with"] = {
                "strikes": strikes,
                "limit": settings.warn_limit,
                "escalation": action,
            }
        return saved

    recorded = await core.strikes.record_match(
        chat_id,
        Match(**step["match"]),
        sender=sender,
        message_id=int(step["message_id"]),
        deleted=deleted,
        detail="; ".join(note for note in notes if note),
        strike=bool(step["strike"]),
        job=outbox.step(job, done, decided),
    )
    if recorded.recorded:
        saved = recorded.results if recorded.results is not None else decided(recorded.strikes)
    else:
        # A run of this job (another worker's, whose claim this one took over) recorded it
        # already: its saved decision stands, so the ban it called for is still made.
        log.info("match_already_recorded job=%d chat=%d", job.id, chat_id)
        saved = recorded.results if recorded.results is not None else results
    results.clear()
    results.update(saved)
    if not deleted:
        await recheck_rights(context, chat_id, why=str(results.get("delete")))
    return "ok"


def _warning(step: dict[str, Any], results: dict[str, Any]) -> str:
    person = Person(int(step["user"]), str(step["name"]))
    strikes, limit = int(step["strikes"]), int(step["limit"])
    count = f"Warning {strikes} of {limit}." if limit else f"Warning {strikes}."
    # The warning names the sender and the count only: no hint of what the content was.
    text = (
        f"⚠️ {mention(person)}, your message was removed because it matches content "
        f"blocked in this group. {count}"
    )
    if step.get("escalation") and results.get("restrict") == "ok":
        text += f" {mention(person)} has been {_DONE[step['escalation']]}."
    return text


async def _after(
    context: HashguardContext,
    chat_id: int,
    step: dict[str, Any],
    result: str,
    results: dict[str, Any],
    *,
    deferred: bool,
) -> None:
    """Audit what a step's result means for the group. A deletion refused on a retry (the
    handler that queued it has moved on) is audited here and the bot's rights re-checked."""
    if step["do"] == "delete" and deferred and not step.get("audited_by_record"):
        refused = result.startswith("refused: ")
        await context.services.core.strikes.record_deferred_delete(
            chat_id, [int(i) for i in step["messages"]], refused=result if refused else ""
        )
        if refused:
            await recheck_rights(context, chat_id, why=result)
    if step["do"] == "restrict" and result != "skipped":
        step = {**step, **results.get("restrict_with", {})}
        person = Person(int(step["user"]), str(step["name"]))
        action = str(step["action"])
        done = result == "ok"
        detail = ""
        if int(step["user"]) < 0:
            detail = "posting as this channel is banned"
        elif action == "mute":
            detail = f"muted for {step['minutes']} minutes"
        await context.services.core.strikes.record_escalation(
            chat_id, person, action, done=done, detail=detail if done else result
        )


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
    recovered = await outbox.recover()
    if recovered:
        log.info("outbox_recovered jobs=%d", recovered)
    limit = asyncio.Semaphore(WORKER_CONCURRENCY)

    async def one(job: Job) -> None:
        async with limit:
            try:
                await run(context, outbox, job)
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
