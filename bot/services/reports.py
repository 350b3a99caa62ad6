"""Members' reports: who may report, autohide, review messages and decisions."""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import Awaitable, Callable

from bot.config import ModerationConfig
from bot.services.audit import AuditLog
from bot.services.blocklist import BlocklistService
from bot.services.locks import KeyedLocks
from bot.services.settings import SettingsService
from bot.values import Person
from hashdb.fingerprint import MediaFingerprints
from hashdb.signals import VPDQ
from hashdb.store import AuditEvent, ChatStore, Entry, Report, ReportStore
from hashdb.video import VIDEO_KIND


class ReportService:
    """Reports through a ``ReportStore``; a report decided with a block goes to the blocklist."""

    def __init__(
        self,
        report_store: ReportStore,
        chat_store: ChatStore,
        audit: AuditLog,
        settings: SettingsService,
        blocklist: BlocklistService,
        locks: KeyedLocks,
        config: ModerationConfig,
    ) -> None:
        self._report_store = report_store
        self._chat_store = chat_store
        self._audit = audit
        self._settings = settings
        self._blocklist = blocklist
        self._locks = locks
        self._config = config
        #: Reports (chat, message, reporter) claimed and not yet recorded (being hashed).
        self._pending_reports: set[tuple[int, int, int]] = set()
        #: Per (chat, reporter), when in the last hour they sent a report that was not
        #: stored (a repeat, or one refused for a full queue): each counts toward the hourly
        #: limit all the same (in this process).
        self._attempts: dict[tuple[int, int], collections.deque[float]] = {}

    async def report(
        self,
        chat_id: int,
        message_id: int,
        *,
        sender: Person | None,
        reporter: Person,
        reason: str,
        fingerprints: MediaFingerprints | None,
        file_unique_id: str | None,
    ) -> tuple[Report, bool]:
        """Record a member's report; returns it and whether this member is a new reporter."""
        now = time.time()
        report, new = await self._report_store.add_report(
            chat_id=chat_id,
            message_id=message_id,
            sender_id=sender.id if sender else None,
            sender_name=sender.name if sender else "",
            reporter_id=reporter.id,
            reason=reason[:200],
            fingerprints=fingerprints.stored if fingerprints else (),
            file_unique_id=file_unique_id,
            at=now,
        )
        if new:
            await self._audit.add(
                AuditEvent(
                    chat_id=chat_id,
                    event="report",
                    actor_id=reporter.id,
                    actor_name=reporter.name,
                    target_id=sender.id if sender else None,
                    target_name=sender.name if sender else "",
                    message_id=message_id,
                    detail=f"report #{report.id}; {reason}"[:200],
                    at=now,
                )
            )
        return report, new

    def reporter_lock(self, chat_id: int, reporter_id: int) -> asyncio.Lock:
        """Held while one member's report is checked and recorded, so a burst of reports
        from one member is counted against the hourly limit one by one."""
        return self._locks.lock("reporter", chat_id, reporter_id)

    async def claim_report(self, chat_id: int, message_id: int, reporter_id: int) -> str | None:
        """Whether a member's report of a message goes ahead, decided before its media is
        fetched: "banned", "rate" (over ``report_rate_per_hour``), "repeat" (this member
        reported this message already; counted toward the limit all the same) or None.

        None claims the report until ``release_report``: reports being hashed count toward
        the limit, so a burst of reports cannot all pass the check before one is recorded.
        """
        async with self.reporter_lock(chat_id, reporter_id):
            refusal = await self.report_refusal(chat_id, reporter_id)
            if refusal is not None:
                return refusal
            key = (chat_id, message_id, reporter_id)
            if key in self._pending_reports or await self._report_store.has_reported(*key):
                self._count_attempt(chat_id, reporter_id)
                return "repeat"
            self._pending_reports.add(key)
            return None

    def release_report(
        self, chat_id: int, message_id: int, reporter_id: int, *, count: bool = False
    ) -> None:
        """A claimed report was recorded (the store counts it from now on), or given up;
        ``count`` counts one given up (the chat's queue was full) toward the limit all the
        same, so a flood of reports bounced off a full queue is not free."""
        self._pending_reports.discard((chat_id, message_id, reporter_id))
        if count:
            self._count_attempt(chat_id, reporter_id)

    def _count_attempt(self, chat_id: int, reporter_id: int) -> None:
        if not self._config.report_rate_per_hour:
            return  # no limit to count toward
        key = (chat_id, reporter_id)
        self._attempts.setdefault(key, collections.deque()).append(time.time())
        if len(self._attempts) > 10_000:
            del self._attempts[next(iter(self._attempts))]  # the longest known

    def _recent_attempts(self, chat_id: int, reporter_id: int, since: float) -> int:
        attempts = self._attempts.get((chat_id, reporter_id))
        if attempts is None:
            return 0
        while attempts and attempts[0] < since:
            attempts.popleft()
        if not attempts:
            del self._attempts[(chat_id, reporter_id)]
        return len(attempts)

    async def report_refusal(self, chat_id: int, reporter_id: int) -> str | None:
        """Why a member may not report now ("banned", "rate"), or None if they may."""
        if await self._report_store.is_report_banned(chat_id, reporter_id):
            return "banned"
        per_hour = self._config.report_rate_per_hour
        if per_hour:
            since = time.time() - 3600
            recent = await self._report_store.count_reports_since(chat_id, reporter_id, since)
            pending = sum(
                1 for c, _, r in self._pending_reports if (c, r) == (chat_id, reporter_id)
            )
            recent += pending + self._recent_attempts(chat_id, reporter_id, since)
            if recent >= per_hour:
                return "rate"
        return None

    async def autohide_due(
        self, report: Report, *, sender_is_admin: Callable[[], Awaitable[bool]]
    ) -> bool:
        """Whether enough members reported this message to hide it now (claimed once).

        An admin's message, or one posted as the group itself, is never hidden: reports of
        it wait for review like any other. A reporter counts only if the bot had seen them
        post in the group before the reported message: otherwise a few accounts made for the
        purpose could delete anything (their reports still go to review).
        ``sender_is_admin`` is asked only when the reporters would hide the message.
        """
        threshold = (await self._settings.get(report.chat_id)).report_autohide
        if not threshold or report.status != "open" or report.hidden:
            return False
        if report.sender_id == report.chat_id or len(report.reporters) < threshold:
            return False
        first = await self._chat_store.first_posts(report.chat_id, report.reporters)
        established = [r for r in report.reporters if first.get(r, math.inf) < report.message_id]
        if len(established) < threshold or await sender_is_admin():
            return False
        return await self._report_store.mark_report_hidden(report.id)

    async def record_autohide(self, report: Report, *, deleted: bool) -> None:
        """Audit a hidden report's deletion (or its failure)."""
        await self._audit.add(
            AuditEvent(
                chat_id=report.chat_id,
                event="report_autohidden" if deleted else "report_autohide_failed",
                target_id=report.sender_id,
                target_name=report.sender_name,
                message_id=report.message_id,
                detail=f"report #{report.id}; {len(report.reporters)} reporters",
                at=time.time(),
            )
        )

    async def ban_reporter(
        self, chat_id: int, target: Person, *, actor: Person, banned: bool
    ) -> bool:
        """Stop (or let again) a member reporting in a chat; True if that changed."""
        changed = await self._report_store.set_report_ban(
            chat_id, target.id, banned=banned, by=actor.id, at=time.time()
        )
        if changed:
            await self._audit.add(
                AuditEvent(
                    chat_id=chat_id,
                    event="reportban" if banned else "reportunban",
                    actor_id=actor.id,
                    actor_name=actor.name,
                    target_id=target.id,
                    target_name=target.name,
                    at=time.time(),
                )
            )
        return changed

    async def set_review_message(self, report_id: int, chat_id: int, message_id: int) -> None:
        """Remember the message a report's review was posted as."""
        await self._report_store.set_report_review(
            report_id, review_chat_id=chat_id, review_message_id=message_id
        )

    async def get_report(self, report_id: int) -> Report | None:
        """A report by id."""
        return await self._report_store.get_report(report_id)

    async def decide_report(
        self, report: Report, *, block: bool, actor: Person, add_entry: bool = True
    ) -> tuple[bool, Entry | None]:
        """Close a report; with ``block``, its fingerprints join the blocklist.

        Returns whether this call decided it (False: someone already had) and the entry.
        """
        status = "blocked" if block else "dismissed"
        if not await self._report_store.decide_report(
            report.id, status=status, decided_by=actor.id, at=time.time()
        ):
            return False, None
        entry: Entry | None = None
        sender = Person(report.sender_id, report.sender_name) if report.sender_id else None
        if block and add_entry and report.fingerprints:
            kind = (
                VIDEO_KIND if any(f.signal == VPDQ.name for f in report.fingerprints) else "photo"
            )
            result = await self._blocklist.block(
                report.chat_id,
                MediaFingerprints(kind, report.fingerprints, report.fingerprints, 0, 0),
                actor=actor,
                reason=f"report #{report.id}",
                message_id=report.message_id,
                sender=sender,
                file_unique_id=report.file_unique_id,
            )
            entry = result.entry
        await self._audit.add(
            AuditEvent(
                chat_id=report.chat_id,
                event=f"report_{status}",
                actor_id=actor.id,
                actor_name=actor.name,
                target_id=report.sender_id,
                target_name=report.sender_name,
                message_id=report.message_id,
                entry_id=entry.id if entry else None,
                detail=f"report #{report.id}",
                at=time.time(),
            )
        )
        return True, entry
