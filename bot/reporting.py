"""Members' reports and the admins' review: the core calls a platform makes per /report
(``Reporting.report``), per Block / Dismiss pressed on a review (``Reporting.decide``) and per
match the group wants to review rather than delete (``Reporting.flag``).

The reporter stays anonymous to the group: their command message is deleted first, and
refusals are told to them privately. A report waits for its media to be fingerprinted in the
chat's turn of the fair queue, like an upload; it is recorded, the message hidden once enough
established members reported it, and the review posted through the outbox. What only the
platform does (fetching and hashing the file, a private message, whether the sender is an
admin, the outbox's Bot API calls) is the ``ReportPort`` it passes in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal, Protocol

from bot.blocking import BlockPort, delete_message
from bot.core import Core
from bot.enforcement import Enforcer, StepMaker
from bot.fair_queue import FairQueue
from bot.fingerprint_cache import BLOCK_MODE, FingerprintCache
from bot.jobs import Review
from bot.uploads import Fetched, MediaFacts, Unchecked
from bot.values import Person
from hashdb.fingerprint import SkipReason
from hashdb.store import Entry, Report

log = logging.getLogger(__name__)

#: What a reporter is told privately when their report is refused or could not be filed.
BANNED_TEXT = "The admins of this group have turned off reports from you."
RATE_TEXT = "You have sent many reports in the last hour; please wait a while."
BUSY_TEXT = "The bot is busy checking this group's media; try again later."


class ReportPort(BlockPort, Protocol):
    """What the platform does for one report (besides fetching its media and a job's steps)."""

    async def tell_privately(self, person: Person, text: str) -> None:
        """Message ``person`` privately, if the platform can (a failure is no error)."""
        ...

    async def sender_is_admin(self) -> bool:
        """Whether an admin posted the reported message (as themselves, or as the group);
        when the platform cannot say, True: hiding is not undone."""
        ...

    async def failed(self, error: Exception) -> None:
        """Filing the report failed: hand the error to the platform's error path."""
        ...


@dataclass(frozen=True, slots=True)
class Reported:
    """A member's report of a message in a group."""

    chat_id: int
    chat_title: str
    #: The reported message.
    message_id: int
    sender: Person
    reporter: Person
    reason: str
    #: The reported message's media (None: a message without any).
    media: MediaFacts | None
    #: A link to the reported message, for the review (None: the platform has none).
    link: str | None
    #: The command message that filed the report, deleted at once (None: there is none).
    command_message_id: int | None = None


#: repeat: this member reported this message already; banned, rate: refused (told
#: privately); skip: the chat's queue was full (told privately); queued: waits for its media
#: in the fair queue, filed later; filed: recorded (``report`` says how it stands); failed:
#: filing raised (the platform was told).
ReportOutcome = Literal["repeat", "banned", "rate", "skip", "queued", "filed", "failed"]


@dataclass(frozen=True, slots=True)
class ReportVerdict:
    """What became of a report."""

    outcome: ReportOutcome
    report: Report | None = None
    #: This member's report was new (not one the report already had).
    new_reporter: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """What Block or Dismiss on a review did."""

    #: False: someone had decided the report already, and nothing changed.
    decided: bool
    #: The blocklist entry Block added (None: Dismiss, or nothing to add).
    entry: Entry | None = None


class Reporting:
    """Files reports and carries out the admins' decisions (see the module's docstring)."""

    def __init__(
        self,
        core: Core,
        enforcer: Enforcer,
        *,
        queue: FairQueue,
        hashes: FingerprintCache[Fetched],
        bot: Person,
    ) -> None:
        self._core = core
        self._enforcer = enforcer
        self._queue = queue
        self._hashes = hashes
        #: The bot itself, as the reporter of matches it flags for review.
        self._bot = bot

    async def report(self, reported: Reported, port: ReportPort) -> ReportVerdict:
        """File a member's report; one whose media needs fingerprinting is filed later, in
        the queue."""
        core = self._core
        chat_id = reported.chat_id
        reporter = reported.reporter
        if reported.command_message_id is not None:
            # Deleted first, so the group does not see who reported.
            await delete_message(self._enforcer, chat_id, reported.command_message_id, port)
        await core.chats.ensure_chat(chat_id, reported.chat_title)
        # Decided before anything is downloaded: a member repeating a report costs no hashing.
        refusal = await core.reports.claim_report(chat_id, reported.message_id, reporter.id)
        if refusal == "repeat":
            log.info("report_repeated chat=%d message=%d", chat_id, reported.message_id)
            return ReportVerdict("repeat")
        if refusal is not None:
            # Told privately where possible: a reply in the group would name the reporter.
            await port.tell_privately(reporter, BANNED_TEXT if refusal == "banned" else RATE_TEXT)
            log.info("report_refused chat=%d reason=%s", chat_id, refusal)
            return ReportVerdict("banned" if refusal == "banned" else "rate")
        media = reported.media
        if media is None or self._hashes.known(media.file_unique_id, BLOCK_MODE):
            return await self._file(reported, port)

        async def queued() -> None:
            await self._file(reported, port)

        # The media waits its chat's turn for hashing, like an upload, outside the update slots.
        if not self._queue.submit(chat_id, queued):
            core.reports.release_report(chat_id, reported.message_id, reporter.id, count=True)
            log.warning(
                "report_skipped chat=%d message=%d reason=queue_full",
                chat_id,
                reported.message_id,
            )
            await core.strikes.record_skip(
                chat_id,
                message_id=reported.message_id,
                sender=reported.sender,
                reason=SkipReason.REPORT_QUEUE_FULL,
            )
            await port.tell_privately(reporter, BUSY_TEXT)
            return ReportVerdict("skip")
        return ReportVerdict("queued")

    async def _file(self, reported: Reported, port: ReportPort) -> ReportVerdict:
        """Hash the reported media, record the report (claimed by ``claim_report``), hide the
        message if enough members reported it, and post it for review."""
        core = self._core
        chat_id = reported.chat_id
        try:
            fingerprints = None
            if reported.media is not None:
                fetched = await port.fetch()
                if isinstance(fetched, Unchecked):
                    log.info(
                        "report_media_skipped chat=%d reason=%s detail=%s",
                        chat_id,
                        fetched.reason,
                        fetched.detail,
                    )
                else:
                    fingerprints = fetched.fingerprints
            recorded, new_reporter = await core.reports.report(
                chat_id,
                reported.message_id,
                sender=reported.sender,
                reporter=reported.reporter,
                reason=reported.reason,
                fingerprints=fingerprints,
                file_unique_id=reported.media.file_unique_id if reported.media else None,
            )
        except Exception as exc:
            await port.failed(exc)
            return ReportVerdict("failed")
        finally:
            core.reports.release_report(chat_id, reported.message_id, reported.reporter.id)
        if not new_reporter or recorded.status != "open":
            return ReportVerdict("filed", recorded, new_reporter)
        dry_run = (await core.settings.get(recorded.chat_id)).dry_run
        if not dry_run and await core.reports.autohide_due(
            recorded, sender_is_admin=port.sender_is_admin
        ):
            refused = await delete_message(
                self._enforcer, recorded.chat_id, recorded.message_id, port
            )
            await core.reports.record_autohide(recorded, deleted=refused is None)
        await self._post_review(recorded, reported.link, port)
        return ReportVerdict("filed", recorded, new_reporter)

    async def flag(
        self,
        chat_id: int,
        message_id: int,
        *,
        sender: Person,
        note: str,
        file_unique_id: str | None,
        link: str | None,
        port: StepMaker,
    ) -> None:
        """Post a match the group wants to review (not delete) as a report filed by the bot.

        The report keeps no hashes: Block on a report the bot filed adds no entry, and the
        check's hashes come from the quick path, which is never stored."""
        recorded, new = await self._core.reports.report(
            chat_id,
            message_id,
            sender=sender,
            reporter=self._bot,
            reason=note,
            fingerprints=None,
            file_unique_id=file_unique_id,
        )
        if new and recorded.status == "open":
            await self._post_review(recorded, link, port)

    async def _post_review(self, recorded: Report, link: str | None, port: StepMaker) -> None:
        """Post (or update) the review message through the outbox: an outage or a restart
        delays it, never loses it."""
        await self._enforcer.submit(recorded.chat_id, [Review(recorded.id, link)], port)

    async def decide(
        self, recorded: Report, *, block: bool, actor: Person, port: StepMaker
    ) -> Decision:
        """Block or Dismiss pressed by an admin of the report's chat (the platform checked
        the button and the presser's rights): Block also deletes the message, and adds a
        strike and warns its sender."""
        core = self._core
        # A copy the bot flagged already matches a blocklist entry (by local features): Block
        # removes it without adding its hashes, so nothing outlives that entry (a withdrawn
        # self-submission, an unblock).
        decided, entry = await core.reports.decide_report(
            recorded, block=block, actor=actor, add_entry=self._bot.id not in recorded.reporters
        )
        if not decided:
            return Decision(False)
        dry_run = (await core.settings.get(recorded.chat_id)).dry_run
        if block:
            # An admin's decision acts even in dry run; only the automatic strike is left out.
            refused = await delete_message(
                self._enforcer, recorded.chat_id, recorded.message_id, port
            )
            if refused is None and recorded.sender_id is not None and not dry_run:
                strikes = await core.strikes.strike_for_report(recorded, entry)
                if strikes is not None:
                    sender = Person(recorded.sender_id, recorded.sender_name)
                    await self._warn(recorded.chat_id, sender, strikes, port)
        return Decision(True, entry)

    async def _warn(self, chat_id: int, sender: Person, strikes: int, port: StepMaker) -> None:
        """Warn the sender in the group, and escalate at the warn limit.

        Both go through the outbox: flood control or an outage delays them, never drops them.
        """
        steps = await self._enforcer.warning_steps(chat_id, sender, strikes, port)
        await self._enforcer.submit(chat_id, steps, port)
