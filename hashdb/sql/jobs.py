"""The outbox (``JobStore``) on either database: queued Telegram actions, claimed by one
worker at a time."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from hashdb.records import Job
from hashdb.sql.db import SQLBase
from hashdb.store_rows import job_from_row

JOB_COLUMNS = (
    "SELECT id, chat_id, steps, done, results, created_at, attempts, next_at, last_error FROM jobs"
)


class SQLJobs(SQLBase):
    """``JobStore``, the same on both databases."""

    async def add_job(
        self, chat_id: int, steps: Sequence[dict[str, Any]], *, at: float, claim_until: float
    ) -> Job:
        text = json.dumps(list(steps), separators=(",", ":"))
        async with self._reading("queue a Telegram action") as db:
            job_id = await db.insert(
                "INSERT INTO jobs (chat_id, steps, created_at, next_at, claimed_until) "
                "VALUES (?, ?, ?, ?, ?)",
                chat_id,
                text,
                at,
                at,
                claim_until,
            )
        return Job(job_id, chat_id, tuple(steps), 0, {}, at, 0, at)

    async def due_jobs(self, now: float, limit: int) -> list[Job]:
        # A plain read: several workers may see the same job, and claim_job picks one.
        async with self._reading("read queued Telegram actions") as db:
            rows = await db.fetch(
                JOB_COLUMNS + " WHERE next_at <= ?1 AND claimed_until <= ?1 "
                "ORDER BY next_at, id LIMIT ?2",
                now,
                limit,
            )
        return [job_from_row(row) for row in rows]

    async def claim_job(self, job_id: int, *, now: float, until: float) -> Job | None:
        async with self._writing("claim a queued Telegram action") as db:
            # One conditional UPDATE: of two workers (in any processes) the second waits
            # for the first's lock, then finds the job claimed and gets nothing.
            if (
                await db.execute(
                    "UPDATE jobs SET claimed_until = ? WHERE id = ? AND claimed_until <= ?",
                    until,
                    job_id,
                    now,
                )
                != 1
            ):
                return None
            rows = await db.fetch(JOB_COLUMNS + " WHERE id = ?", job_id)
        return job_from_row(rows[0])

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
        async with self._reading("update a queued Telegram action") as db:
            await db.execute(
                "UPDATE jobs SET done = ?, results = ?, attempts = ?, next_at = ?, "
                "last_error = ?, claimed_until = ? WHERE id = ?",
                done,
                json.dumps(results, separators=(",", ":")),
                attempts,
                next_at,
                last_error[:200],
                claim_until,
                job_id,
            )

    async def finish_job(self, job_id: int) -> None:
        async with self._reading("remove a finished Telegram action") as db:
            await db.execute("DELETE FROM jobs WHERE id = ?", job_id)

    async def next_job_at(self) -> float | None:
        async with self._reading("read queued Telegram actions") as db:
            # The later of the two per job (SQLite's two-argument max, PostgreSQL's greatest).
            value = await db.fetchval(
                "SELECT min(CASE WHEN next_at > claimed_until THEN next_at "
                "ELSE claimed_until END) FROM jobs"
            )
        return float(value) if value is not None else None

    async def release_jobs(self) -> int:
        async with self._reading("release queued Telegram actions") as db:
            return await db.execute("UPDATE jobs SET claimed_until = 0 WHERE claimed_until > 0")
