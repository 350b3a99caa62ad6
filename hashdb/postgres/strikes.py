"""The PostgreSQL store's strikes, and a match recorded whole (audit, hit, strike, job step)
in one transaction.
"""

from __future__ import annotations

import json

import asyncpg

from hashdb.postgres.audit import _insert_audit
from hashdb.postgres.base import PostgresBase, _rowcount
from hashdb.records import (
    MatchRecord,
    RecordedMatch,
)
from hashdb.store_rows import (
    checked_match_record,
)

#: The first of the two int keys that serialise one user's strikes in one chat (the two-key
#: space is apart from the one-bigint space above).
_STRIKES_LOCK_CLASS = 0x6867


class PostgresStrikes(PostgresBase):
    """``StrikeStore`` on PostgreSQL."""

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
        async with self._transaction("add a strike") as conn:
            return await _add_strike(conn, chat_id, user_id, at, entry_id, since, reset_at)

    async def record_match(self, record: MatchRecord) -> RecordedMatch:
        record = checked_match_record(record)
        audit, job = record.audit, record.job
        async with self._transaction("record a match") as conn:
            if job is not None:
                # Taken first (the row stays locked until commit): of two workers running
                # one job, the second waits here and then finds the step made, so it
                # writes nothing.
                status = await conn.execute(
                    "UPDATE jobs SET done = $1, claimed_until = $2 WHERE id = $3 AND done <= $4",
                    job.step + 1,
                    job.claim_until,
                    job.job_id,
                    job.step,
                )
                if _rowcount(status) != 1:
                    text = await conn.fetchval("SELECT results FROM jobs WHERE id = $1", job.job_id)
                    stored = json.loads(text) if text is not None else None
                    return RecordedMatch(recorded=False, results=stored)
            audit_id = await _insert_audit(conn, audit)
            strikes = None
            if audit.entry_id is not None:
                await conn.execute(
                    "UPDATE entries SET hits = hits + 1, last_hit_at = $1 WHERE id = $2",
                    audit.at,
                    audit.entry_id,
                )
            if record.strike:
                assert audit.target_id is not None  # checked_match_record
                strikes = await _add_strike(
                    conn,
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
                await conn.execute(
                    "UPDATE jobs SET results = $1 WHERE id = $2",
                    json.dumps(results, separators=(",", ":")),
                    job.job_id,
                )
        return RecordedMatch(recorded=True, strikes=strikes, results=results, audit_id=audit_id)

    async def strike_count(self, chat_id: int, user_id: int, *, since: float | None = None) -> int:
        async with self._session("count strikes") as conn:
            return await _strike_count(conn, chat_id, user_id, since)

    async def clear_strikes(self, chat_id: int, user_id: int) -> int:
        async with self._session("clear strikes") as conn:
            status = await conn.execute(
                "DELETE FROM strikes WHERE chat_id = $1 AND user_id = $2", chat_id, user_id
            )
        return _rowcount(status)


async def _add_strike(
    conn: asyncpg.Connection,
    chat_id: int,
    user_id: int,
    at: float,
    entry_id: int | None,
    since: float | None,
    reset_at: int | None,
) -> int:
    """Add a strike inside the caller's transaction; the count after it (see add_strike)."""
    # One user's strikes in one chat are added one transaction at a time (the lock is held
    # until commit), so each count returned includes every strike committed before it and
    # is never the same as another's: warn/escalate levels are reached exactly once even
    # when bot processes strike the same user at once.
    await conn.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2::bigint::text || ':' || $3::bigint::text))",
        _STRIKES_LOCK_CLASS,
        chat_id,
        user_id,
    )
    await conn.execute(
        "INSERT INTO strikes (chat_id, user_id, at, entry_id) VALUES ($1, $2, $3, $4)",
        chat_id,
        user_id,
        at,
        entry_id,
    )
    count = await _strike_count(conn, chat_id, user_id, since)
    if reset_at and count >= reset_at:
        await conn.execute(
            "DELETE FROM strikes WHERE chat_id = $1 AND user_id = $2", chat_id, user_id
        )
    return count


async def _strike_count(
    conn: asyncpg.Connection, chat_id: int, user_id: int, since: float | None
) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM strikes WHERE chat_id = $1 AND user_id = $2 AND at >= $3",
            chat_id,
            user_id,
            since if since is not None else float("-inf"),
        )
    )
