"""The SQLite store's outbox: queued Telegram actions, claimed by one worker at a time."""

from __future__ import annotations

import json
from collections.abc import (
    Sequence,
)
from typing import Any

from hashdb.records import (
    Job,
)
from hashdb.sqlite.base import SQLiteBase
from hashdb.store_rows import (
    job_from_row,
)

_JOB_COLUMNS = (
    "SELECT id, chat_id, steps, done, results, created_at, attempts, next_at, last_error FROM jobs"
)


class SQLiteJobs(SQLiteBase):
    """``JobStore`` on SQLite."""

    async def add_job(
        self, chat_id: int, steps: Sequence[dict[str, Any]], *, at: float, claim_until: float
    ) -> Job:
        text = json.dumps(list(steps), separators=(",", ":"))
        async with self._session("queue a Telegram action") as db:
            cursor = await db.execute(
                "INSERT INTO jobs (chat_id, steps, created_at, next_at, claimed_until) "
                "VALUES (?, ?, ?, ?, ?)",
                (chat_id, text, at, at, claim_until),
            )
            job_id = cursor.lastrowid
        assert job_id is not None
        return Job(job_id, chat_id, tuple(steps), 0, {}, at, 0, at)

    async def due_jobs(self, now: float, limit: int) -> list[Job]:
        async with self._session("read queued Telegram actions") as db:
            rows = await db.execute_fetchall(
                _JOB_COLUMNS + " WHERE next_at <= ? AND claimed_until <= ? ORDER BY next_at, id "
                "LIMIT ?",
                (now, now, limit),
            )
        return [job_from_row(row) for row in rows]

    async def claim_job(self, job_id: int, *, now: float, until: float) -> Job | None:
        async with self._transaction("claim a queued Telegram action") as db:
            cursor = await db.execute(
                "UPDATE jobs SET claimed_until = ? WHERE id = ? AND claimed_until <= ?",
                (until, job_id, now),
            )
            if cursor.rowcount != 1:
                return None
            rows = await db.execute_fetchall(_JOB_COLUMNS + " WHERE id = ?", (job_id,))
        return job_from_row(next(iter(rows)))

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
        async with self._session("update a queued Telegram action") as db:
            await db.execute(
                "UPDATE jobs SET done = ?, results = ?, attempts = ?, next_at = ?, "
                "last_error = ?, claimed_until = ? WHERE id = ?",
                (
                    done,
                    json.dumps(results, separators=(",", ":")),
                    attempts,
                    next_at,
                    last_error[:200],
                    claim_until,
                    job_id,
                ),
            )

    async def finish_job(self, job_id: int) -> None:
        async with self._session("remove a finished Telegram action") as db:
            await db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    async def next_job_at(self) -> float | None:
        async with self._session("read queued Telegram actions") as db:
            rows = list(
                await db.execute_fetchall("SELECT min(max(next_at, claimed_until)) FROM jobs")
            )
        value = rows[0][0] if rows else None
        return float(value) if value is not None else None

    async def release_jobs(self) -> int:
        async with self._session("release queued Telegram actions") as db:
            cursor = await db.execute("UPDATE jobs SET claimed_until = 0 WHERE claimed_until > 0")
            return cursor.rowcount
