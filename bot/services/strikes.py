"""Strikes and what they lead to: matched uploads, skips, retries and escalations audited."""

from __future__ import annotations

import time

from bot.config import ModerationConfig
from bot.matcher import Match
from bot.services.audit import AuditLog
from bot.services.settings import SettingsService
from bot.values import Person
from hashdb.fingerprint import SkipReason
from hashdb.store import (
    GROUP_BANK,
    AuditEvent,
    BankStore,
    Entry,
    JobStep,
    MatchRecord,
    RecordedMatch,
    Report,
    StrikeStore,
)


class StrikeService:
    """Members' strikes per chat, through a ``StrikeStore``; matches are audited with them."""

    def __init__(
        self,
        strike_store: StrikeStore,
        bank_store: BankStore,
        audit: AuditLog,
        settings: SettingsService,
        config: ModerationConfig,
    ) -> None:
        self._strike_store = strike_store
        self._bank_store = bank_store
        self._audit = audit
        self._settings = settings
        self._config = config

    async def record_match(
        self,
        chat_id: int,
        match: Match,
        *,
        sender: Person,
        message_id: int,
        deleted: bool,
        detail: str = "",
        strike: bool = True,
        event: str | None = None,
        job: JobStep | None = None,
    ) -> RecordedMatch:
        """Audit a matched upload and, if it was deleted, add a strike (``strikes`` is the
        count then). ``strike=False`` audits without one (further items of an album already
        struck).

        One transaction, which (with ``job``) also marks the outbox job's step made with the
        results it decided from the strike count: after a crash the match is recorded with
        its decision, or not at all, and never twice."""
        now = time.time()
        bank = await self._bank_note(match.bank_id)
        striking = deleted and strike
        audit = AuditEvent(
            chat_id=chat_id,
            event=event or ("match_deleted" if deleted else "match_not_deleted"),
            target_id=sender.id,
            target_name=sender.name,
            message_id=message_id,
            entry_id=match.entry_id,
            signal=match.signal,
            distance=match.distance,
            detail="; ".join(part for part in (match.describe(), bank, detail) if part)[:200],
            at=now,
        )
        recorded = await self._strike_store.record_match(
            MatchRecord(
                audit=audit,
                strike=striking,
                strikes_since=self.since(now) if striking else None,
                reset_at=await self.warn_limit(chat_id) if striking else None,
                job=job,
            )
        )
        if recorded.audit_id is not None:
            self._audit.announce(audit, recorded.audit_id)
        return recorded

    async def warn_limit(self, chat_id: int) -> int | None:
        """The strike count that escalates, if any: reaching it starts the count again (in
        the same transaction), so the escalation happens once however many processes add
        strikes at the same moment."""
        return (await self._settings.get(chat_id)).warn_limit or None

    async def record_deferred_delete(
        self, chat_id: int, message_ids: list[int], *, refused: str
    ) -> None:
        """Audit a deletion made (or refused) on a retry, after its match was audited."""
        await self._audit.add(
            AuditEvent(
                chat_id=chat_id,
                event="delete_failed" if refused else "delete_retried",
                message_id=message_ids[0] if message_ids else None,
                detail=(refused or f"{len(message_ids)} message(s) deleted on a retry")[:200],
                at=time.time(),
            )
        )

    async def record_skip(
        self, chat_id: int, *, message_id: int | None, sender: Person | None, reason: SkipReason
    ) -> None:
        """Audit media that could not be checked (corrupt, too large, too slow).

        Only the reason's code and plain text are kept: the decoder's own words can quote a
        file path holding the bot token, and the audit is shown in /logs and the log chat.
        """
        await self._audit.add(
            AuditEvent(
                chat_id=chat_id,
                event="media_skipped",
                target_id=sender.id if sender else None,
                target_name=sender.name if sender else "",
                message_id=message_id,
                detail=f"{reason.value}: {reason.text}",
                at=time.time(),
            )
        )

    async def record_crop_check_skipped(
        self, chat_id: int, *, message_id: int | None, sender: Person | None, reason: str
    ) -> None:
        """Audit an upload whose hashes matched nothing and whose local features (crops)
        were not searched (``reason``: the bot was overloaded or stopping); it was sent to
        the admins' review instead."""
        await self._audit.add(
            AuditEvent(
                chat_id=chat_id,
                event="crop_check_skipped",
                target_id=sender.id if sender else None,
                target_name=sender.name if sender else "",
                message_id=message_id,
                detail=f"not checked for crops: {reason}; sent to review",
                at=time.time(),
            )
        )

    async def _bank_note(self, bank_id: int) -> str:
        """ "bank NAME" for an audit row, unless it is a group's own bank."""
        if not bank_id:
            return ""
        bank = await self._bank_store.get_bank(bank_id)
        if bank is None or bank.kind == GROUP_BANK:
            return ""
        return f"bank {bank.name}"

    async def strike_for_report(self, report: Report, entry: Entry | None) -> int | None:
        """A strike for the sender of a message removed by a report decision."""
        if report.sender_id is None:
            return None
        now = time.time()
        return await self._strike_store.add_strike(
            report.chat_id,
            report.sender_id,
            at=now,
            entry_id=entry.id if entry else None,
            since=self.since(now),
            reset_at=await self.warn_limit(report.chat_id),
        )

    def since(self, now: float) -> float | None:
        """From when strikes count (``strike_expiry_days``); None: all of them."""
        days = self._config.strike_expiry_days
        return now - days * 86400 if days else None

    async def count(self, chat_id: int, user_id: int) -> int:
        """The member's strikes in the chat that still count."""
        return await self._strike_store.strike_count(
            chat_id, user_id, since=self.since(time.time())
        )

    async def record_escalation(
        self, chat_id: int, target: Person, action: str, *, done: bool, detail: str = ""
    ) -> None:
        """Audit an escalation (the member's strikes started again at zero when the strike
        that reached the limit was added)."""
        await self._audit.add(
            AuditEvent(
                chat_id=chat_id,
                event=action if done else f"{action}_failed",
                target_id=target.id,
                target_name=target.name,
                detail=detail[:200],
                at=time.time(),
            )
        )

    async def reset_strikes(self, chat_id: int, target: Person, *, actor: Person) -> int:
        """An admin clears a member's strikes (``/resetwarns``); returns how many."""
        cleared = await self._strike_store.clear_strikes(chat_id, target.id)
        await self._audit.add(
            AuditEvent(
                chat_id=chat_id,
                event="resetwarns",
                actor_id=actor.id,
                actor_name=actor.name,
                target_id=target.id,
                target_name=target.name,
                detail=f"{cleared} strike(s) cleared",
                at=time.time(),
            )
        )
        return cleared
