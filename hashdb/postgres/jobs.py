"""The PostgreSQL store's outbox: queued Telegram actions, claimed by one worker at a time."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from hashdb.postgres.base import PostgresBase, _rowcount
from hashdb.records import (
    Job,
)
from hashdb.store_rows import (
    job_from_row,
)

_JOB_COLUMNS = "id, chat_id, steps, done, results, created_at, attempts, next_at, last_error"


class PostgresJobs(PostgresBase):
    """``JobStore`` on PostgreSQL."""

    async def add_job(
        self, chat_id: int, steps: Sequence[dict[str, Any]], *, at: float, claim_until: float
    ) -> Job:
        text = json.dumps(list(steps), separators=(",", ":"))
        async with self._session("queue a Telegram action") as conn:
            job_id = await conn.fetchval(
                "INSERT INTO jobs (chat_id, steps, created_at, next_at, claimed_until) "
                "VALUES ($1, $2, $3, $4, $5) RETURNING id",
                chat_id,
                text,
                at,
                at,
                claim_until,
            )
        return Job(job_id, chat_id, tuple(steps), 0, {}, at, 0, at)

    async def due_jobs(self, now: float, limit: int) -> list[Job]:
        # A plain read: several workers may see the same job, and claim_job picks one.
        async with self._session("read queued Telegram actions") as conn:
            rows = await conn.fetch(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE next_at <= $1 AND claimed_until <= $1 "
                "ORDER BY next_at, id LIMIT $2",
                now,
                limit,
            )
        return [job_from_row(row) for row in rows]

    async def claim_job(self, job_id: int, *, now: float, until: float) -> Job | None:
        async with self._session("claim a queued Telegram action") as conn:
            # One conditional UPDATE: of two workers (in any processes) the second waits
            # for the first's row lock, then finds the job claimed and gets nothing.
            row = await conn.fetchrow(
                "UPDATE jobs SET claimed_until = $1 WHERE id = $2 AND claimed_until <= $3 "
                f"RETURNING {_JOB_COLUMNS}",
                until,
                job_id,
                now,
            )
        return job_from_row(row) if row is not None else None

    async def update_job(
        self,
        job_id: int,
        *,
        done: int,
        results: dict[str, Any],
        attempts: int,
        next_at: float,
        last_error: str,
        claim_until: float,
    ) -> None:
        async with self._session("update a queued Telegram action") as conn:
            await conn.execute(
                "UPDATE jobs SET done = $1, results = $2, attempts = $3, next_at = $4, "
                "last_error = $5, claimed_until = $6 WHERE id = $7",
                done,
                json.dumps(results, separators=(",", ":")),
                attempts,
                next_at,
                last_error[:200],
                claim_until,
                job_id,
            )

    async def finish_job(self, job_id: int) -> None:
        async with self._session("remove a finished Telegram action") as conn:
            await conn.execute("DELETE FROM jobs WHERE id = $1", job_id)

    async def next_job_at(self) -> float | None:
        async with self._session("read queued Telegram actions") as conn:
            value = await conn.fetchval("SELECT min(greatest(next_at, claimed_until)) FROM jobs")
        return float(value) if value is not None else None

    async def release_jobs(self) -> int:
        async with self._session("release queued Telegram actions") as conn:
            status = await conn.execute("UPDATE jobs SET claimed_until = 0 WHERE claimed_until > 0")
        return _rowcount(status)
