"""Strikes and escalation, and running the outbox's jobs: what a deletion, a strike and a
restriction mean for the group, decided here on plain values; the platform only makes the
calls (``StepMaker``).

A job's steps run in order and each is recorded as made right after the platform confirms
it (``bot.outbox``). The ``record`` step of a matched upload is database work: it audits the
match, adds the strike and decides the restriction and the warning that follow, in one
transaction that also marks the step made, so after a crash the match is recorded with its
decision, or not at all, and never twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bot.jobs import (
    DeleteMessages,
    JobOutcome,
    Passing,
    RecordMatch,
    Restrict,
    Step,
    UnknownStep,
    Warn,
    step_from_dict,
)
from bot.moderation import ModerationService, Person
from bot.outbox import Outbox
from bot.settings import GroupSettings
from hashdb.store import Job, StoreError

log = logging.getLogger(__name__)


class StepMaker(Protocol):
    """The platform's side of a job: its actions, and the facts only it can tell."""

    async def make(self, chat_id: int, step: Step, results: Mapping[str, Any]) -> str:
        """Make one step: "ok" (made, or the wanted state already holds), or "refused: why"
        (retrying cannot help); raises ``Passing`` for a failure worth retrying later.
        ``results`` holds the results of the job's steps made before it."""
        ...

    async def exempt(self, chat_id: int, person: Person) -> bool:
        """Whether ``person`` cannot be restricted in the chat (its admins, the chat itself)."""
        ...

    async def rights_failed(self, chat_id: int, why: str) -> None:
        """An action was refused: check the bot's rights in the chat (and tell the admins)."""
        ...


@dataclass(frozen=True, slots=True)
class StrikeOutcome:
    """What a strike led to: the count it reached, and the restriction due at it."""

    strikes: int
    limit: int
    #: "ban", "kick" or "mute" at the warn limit (None below it, or for an exempt member).
    escalation: str | None
    minutes: int
    #: When a mute ends (a Unix time).
    until: float | None = None

    def results(self) -> dict[str, Any]:
        """The job results that carry this decision to the restrict and warn steps."""
        restrict: dict[str, Any] = {"action": self.escalation, "minutes": self.minutes}
        if self.escalation == "mute":
            restrict["until"] = self.until
        return {
            "restrict_with": restrict,
            "warn_with": {
                "strikes": self.strikes,
                "limit": self.limit,
                "escalation": self.escalation,
            },
        }

    @classmethod
    def from_results(cls, results: Mapping[str, Any]) -> StrikeOutcome | None:
        """The decision a job's ``record`` step saved, if it added a strike."""
        restrict, warn = results.get("restrict_with"), results.get("warn_with")
        if not restrict or not warn:
            return None
        until = restrict.get("until")
        return cls(
            int(warn["strikes"]),
            int(warn["limit"]),
            warn.get("escalation"),
            int(restrict["minutes"]),
            float(until) if until is not None else None,
        )


def decide(
    moderation: ModerationService,
    settings: GroupSettings,
    strikes: int,
    *,
    exempt: bool,
    now: float,
) -> StrikeOutcome:
    """The restriction and warning due at ``strikes``: an exempt member (who cannot be
    restricted) is warned only."""
    action = None if exempt else moderation.escalation(settings, strikes)
    until = now + settings.mute_minutes * 60 if action == "mute" else None
    return StrikeOutcome(strikes, settings.warn_limit, action, settings.mute_minutes, until)


def restrict_step(target: Person, action: str, mute_minutes: int) -> Restrict:
    """Ban, kick or mute ``target`` (a channel posting in the group can only be banned)."""
    until = time.time() + mute_minutes * 60 if action == "mute" else None
    return Restrict(target, action, until, mute_minutes)


class Enforcer:
    """Runs the outbox's jobs and decides what strikes lead to."""

    def __init__(self, moderation: ModerationService, outbox: Outbox) -> None:
        self._moderation = moderation
        self._outbox = outbox

    async def warning_steps(
        self, chat_id: int, sender: Person, strikes: int, maker: StepMaker
    ) -> list[Step]:
        """Warn the sender in the group, and escalate at the warn limit (a strike added
        outside an upload's job, e.g. by a report's Block)."""
        moderation = self._moderation
        settings = await moderation.settings(chat_id)
        action = moderation.escalation(settings, strikes)
        if action is not None and await maker.exempt(chat_id, sender):
            action = None
        steps: list[Step] = [restrict_step(sender, action, settings.mute_minutes)] if action else []
        steps.append(Warn(sender, strikes, settings.warn_limit, action))
        return steps

    async def submit(self, chat_id: int, steps: list[Step], maker: StepMaker) -> JobOutcome:
        """Persist a job and make its first attempt now; what fails for a passing reason is
        left to the worker."""
        job = await self._outbox.submit(chat_id, steps)
        return await self.run(job, maker)

    async def run(self, job: Job, maker: StepMaker) -> JobOutcome:
        """Make a job's remaining steps, recording each as it is made."""
        outbox = self._outbox
        results = dict(job.results)
        done = job.done
        try:
            while done < len(job.steps):
                step = step_from_dict(job.steps[done])
                try:
                    if isinstance(step, RecordMatch):
                        result = await self._record(job, done, step, results, maker)
                    else:
                        result = await self._make(job.chat_id, step, results, maker)
                except (Passing, StoreError) as exc:
                    failure = exc if isinstance(exc, Passing) else Passing(f"database: {exc}")
                    if outbox.expired(job):
                        attempts = job.attempts + 1
                        result = f"refused: gave up after {attempts} attempts ({failure.error})"
                        log.warning(
                            "job_given_up job=%d chat=%d step=%s", job.id, job.chat_id, step.do
                        )
                    else:
                        delay = await outbox.retry(
                            job, done, results, error=failure.error, after=failure.after
                        )
                        log.info(
                            "job_retry job=%d chat=%d step=%s error=%s in=%.1fs",
                            job.id,
                            job.chat_id,
                            step.do,
                            failure.error,
                            delay,
                        )
                        return JobOutcome(results, pending=failure.error)
                results[step.do] = result
                try:
                    await self._after(
                        job.chat_id, step, result, results, deferred=job.attempts > 0, maker=maker
                    )
                except StoreError as exc:
                    # The action is made; only its audit row is lost.
                    log.error("job_audit_failed job=%d step=%s error=%s", job.id, step.do, exc)
                done += 1
                # A skipped step changed nothing: repeating it after a crash is harmless. A
                # record step saved its progress in its own transaction.
                if (
                    done < len(job.steps)
                    and result != "skipped"
                    and not isinstance(step, RecordMatch)
                ):
                    await outbox.progress(job, done, results)
            await outbox.finish(job)
        except BaseException:
            # Anything else (the store failing, cancellation at shutdown): the job stays in
            # the store and its claim lapses; the worker takes it up again.
            outbox.forget(job)
            raise
        return JobOutcome(results)

    async def _make(
        self, chat_id: int, step: Step, results: dict[str, Any], maker: StepMaker
    ) -> str:
        if isinstance(step, UnknownStep):
            return f"refused: unknown step {step.do!r}"
        if isinstance(step, Restrict):
            step = step.resolved(results)
            if not step.action:
                return "skipped"
        if isinstance(step, Warn):
            step = step.resolved(results)
            if step.strikes is None:
                return "skipped"
        return await maker.make(chat_id, step, results)

    async def _record(
        self, job: Job, done: int, step: RecordMatch, results: dict[str, Any], maker: StepMaker
    ) -> str:
        """Audit a match once its deletion is made or refused, add the strike and decide its
        effects: one transaction, which also marks this step made (its own progress)."""
        chat_id = job.chat_id
        moderation = self._moderation
        deleted = results.get("delete") == "ok"
        notes = list(step.notes)
        if not deleted:
            notes.append(str(results.get("delete", "")).removeprefix("refused: "))
        sender = step.sender
        striking = deleted and step.strike
        settings = await moderation.settings(chat_id)
        # The platform is asked before the transaction, which is pure database work: a kill
        # after it commits leaves the decision saved with the strike. Asked only when this
        # strike can reach the limit; should another process's strike get there first, an
        # admin meets one refused restriction, which is harmless.
        exempt = False
        if striking and settings.warn_limit:
            before = await moderation.strikes(chat_id, sender.id)
            if moderation.escalation(settings, before + 1) is not None:
                exempt = await maker.exempt(chat_id, sender)

        def decided(strikes: int | None) -> dict[str, Any]:
            saved = {**results, "record": "ok"}
            if strikes is not None:
                outcome = decide(moderation, settings, strikes, exempt=exempt, now=time.time())
                saved.update(outcome.results())
            return saved

        recorded = await moderation.record_match(
            chat_id,
            step.match,
            sender=sender,
            message_id=step.message_id,
            deleted=deleted,
            detail="; ".join(note for note in notes if note),
            strike=step.strike,
            job=self._outbox.step(job, done, decided),
        )
        if recorded.recorded:
            saved = recorded.results if recorded.results is not None else decided(recorded.strikes)
        else:
            # A run of this job (another worker's, whose claim this one took over) recorded
            # it already: its saved decision stands, so the ban it called for is still made.
            log.info("match_already_recorded job=%d chat=%d", job.id, chat_id)
            saved = recorded.results if recorded.results is not None else results
        results.clear()
        results.update(saved)
        if not deleted:
            await maker.rights_failed(chat_id, str(results.get("delete")))
        return "ok"

    async def _after(
        self,
        chat_id: int,
        step: Step,
        result: str,
        results: dict[str, Any],
        *,
        deferred: bool,
        maker: StepMaker,
    ) -> None:
        """Audit what a step's result means for the group. A deletion refused on a retry
        (the handler that queued it has moved on) is audited here and the bot's rights
        re-checked."""
        moderation = self._moderation
        if isinstance(step, DeleteMessages) and deferred and not step.audited_by_record:
            refused = result.startswith("refused: ")
            await moderation.record_deferred_delete(
                chat_id, list(step.messages), refused=result if refused else ""
            )
            if refused:
                await maker.rights_failed(chat_id, result)
        if isinstance(step, Restrict) and result != "skipped":
            step = step.resolved(results)
            person = step.target
            action = str(step.action)
            done = result == "ok"
            detail = ""
            if person.id < 0:
                detail = "posting as this channel is banned"
            elif action == "mute":
                detail = f"muted for {step.minutes} minutes"
            await moderation.record_escalation(
                chat_id, person, action, done=done, detail=detail if done else result
            )
