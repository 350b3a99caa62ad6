"""Strikes (``StrikeStore``) on either database, and a match recorded whole (audit, hit,
strike, job step) in one transaction."""

from __future__ import annotations

import json

from hashdb.records import MatchRecord, RecordedMatch
from hashdb.sql.audit import insert_audit
from hashdb.sql.db import Db, SQLBase
from hashdb.store_rows import checked_match_record

#: The lock class that serialises one user's strikes in one chat (see ``_serialize``).
STRIKES_LOCK_CLASS = 0x6867


class SQLStrikes(SQLBase):
    """``StrikeStore``, the same on both databases."""

    async def add_strike(
        self,
        chat_id: int,
        user_id: int,
        *,
        at: float,
        entry_id: int | None = None,
        since: float | None = None,
        reset_at: int | None = None,
    ) -> int:
        """Add one strike and return the user's strike count in the chat after it."""
        # Insert and count in one transaction, so the count returned includes this strike
        # and no other writer's strike lands in between.
        async with self._writing("add a strike") as db:
            return await self._add_strike(db, chat_id, user_id, at, entry_id, since, reset_at)

    async def record_match(self, record: MatchRecord) -> RecordedMatch:
        record = checked_match_record(record)
        audit, job = record.audit, record.job
        async with self._writing("record a match") as db:
            if job is not None:
                # Taken first (the row stays locked until commit): a step already made (by
                # a run of the job that got here before a crash, or another worker, which
                # the second waits for) writes nothing.
                taken = await db.execute(
                    "UPDATE jobs SET done = ?, claimed_until = ? WHERE id = ? AND done <= ?",
                    job.step + 1,
                    job.claim_until,
                    job.job_id,
                    job.step,
                )
                if taken != 1:
                    text = await db.fetchval("SELECT results FROM jobs WHERE id = ?", job.job_id)
                    stored = json.loads(text) if text is not None else None
                    return RecordedMatch(recorded=False, results=stored)
            audit_id = await insert_audit(db, audit)
            strikes = None
            if audit.entry_id is not None:
                await db.execute(
                    "UPDATE entries SET hits = hits + 1, last_hit_at = ? WHERE id = ?",
                    audit.at,
                    audit.entry_id,
                )
            if record.strike:
                assert audit.target_id is not None  # checked_match_record
                strikes = await self._add_strike(
                    db,
                    audit.chat_id,
                    audit.target_id,
                    audit.at,
                    audit.entry_id,
                    record.strikes_since,
                    record.reset_at,
                )
            results = None
            if job is not None:
                results = job.results(strikes)
                await db.execute(
                    "UPDATE jobs SET results = ? WHERE id = ?",
                    json.dumps(results, separators=(",", ":")),
                    job.job_id,
                )
        return RecordedMatch(recorded=True, strikes=strikes, results=results, audit_id=audit_id)

    async def strike_count(self, chat_id: int, user_id: int, *, since: float | None = None) -> int:
        async with self._reading("count strikes") as db:
            return await _strike_count(db, chat_id, user_id, since)

    async def clear_strikes(self, chat_id: int, user_id: int) -> int:
        async with self._reading("clear strikes") as db:
            return await db.execute(
                "DELETE FROM strikes WHERE chat_id = ? AND user_id = ?", chat_id, user_id
            )

    async def _add_strike(
        self,
        db: Db,
        chat_id: int,
        user_id: int,
        at: float,
        entry_id: int | None,
        since: float | None,
        reset_at: int | None,
    ) -> int:
        """Add a strike inside the caller's transaction; the count after it (see add_strike)."""
        # One user's strikes in one chat are added one transaction at a time, so each count
        # returned includes every strike committed before it and is never the same as
        # another's: warn/escalate levels are reached exactly once even when bot processes
        # strike the same user at once.
        await self._serialize(db, STRIKES_LOCK_CLASS, chat_id, user_id)
        await db.execute(
            "INSERT INTO strikes (chat_id, user_id, at, entry_id) VALUES (?, ?, ?, ?)",
            chat_id,
            user_id,
            at,
            entry_id,
        )
        count = await _strike_count(db, chat_id, user_id, since)
        if reset_at and count >= reset_at:
            await db.execute(
                "DELETE FROM strikes WHERE chat_id = ? AND user_id = ?", chat_id, user_id
            )
        return count


async def _strike_count(db: Db, chat_id: int, user_id: int, since: float | None) -> int:
    return int(
        await db.fetchval(
            "SELECT count(*) FROM strikes WHERE chat_id = ? AND user_id = ? AND at >= ?",
            chat_id,
            user_id,
            since if since is not None else float("-inf"),
        )
    )
