"""The outbox: Telegram actions the bot decided on, persisted before they are made.

A deletion, restriction or warning is written to the store as a *job* (ordered steps)
before the first Bot API call. The handler that decided it makes the first attempt at once;
what fails for a passing reason (flood control, 5xx, a timeout, a dropped connection) waits
in the store and a background worker retries it with backoff, also after a restart. A step
is recorded as made right after Telegram confirms it, so a job resumes at the step that was
in flight, and deletions, bans and restrictions are safe to repeat.

Claims keep two tasks (or processes) from running one job at once. One bot process serves
one SQLite database, so the claims a killed process left behind are released at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

from hashdb.store import Job, Store

#: How long a claim on a job lasts; every step made renews it.
CLAIM_SECONDS = 60.0
#: Backoff between attempts after a passing failure: 1, 2, 4 ... seconds, at most this.
MAX_BACKOFF = 300.0
#: A job still failing after this long is given up (Telegram lets bots delete messages
#: for 48 hours; a warning days late helps nobody).
GIVE_UP_SECONDS = 48 * 3600.0
#: Jobs claimed per round of the worker.
BATCH = 50


class Outbox:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._wake = asyncio.Event()
        #: Jobs this process is running now (the worker skips them).
        self._running: set[int] = set()

    async def submit(self, chat_id: int, steps: Sequence[dict[str, Any]]) -> Job:
        """Persist a job, claimed by the caller, who makes the first attempt at once."""
        now = time.time()
        job = await self._store.add_job(chat_id, steps, at=now, claim_until=now + CLAIM_SECONDS)
        self._running.add(job.id)
        return job

    async def recover(self) -> int:
        """At start-up: jobs a stopped or killed process held become due again."""
        released = await self._store.release_jobs()
        self._wake.set()
        return released

    async def claim_due(self) -> list[Job]:
        now = time.time()
        claimed = []
        for job in await self._store.due_jobs(now, BATCH):
            if job.id in self._running:
                continue
            taken = await self._store.claim_job(job.id, now=now, until=now + CLAIM_SECONDS)
            if taken is not None:
                self._running.add(taken.id)
                claimed.append(taken)
        return claimed

    async def progress(self, job: Job, done: int, results: dict[str, Any]) -> None:
        """Record that the first ``done`` steps are made (the claim is renewed)."""
        await self._store.update_job(
            job.id,
            done=done,
            results=results,
            attempts=job.attempts,
            next_at=job.next_at,
            last_error=job.last_error,
            claim_until=time.time() + CLAIM_SECONDS,
        )

    async def retry(
        self,
        job: Job,
        done: int,
        results: dict[str, Any],
        *,
        error: str,
        after: float | None = None,
    ) -> float:
        """Leave the job for a later attempt; returns the delay. ``after`` is Telegram's
        own retry_after, honoured when given."""
        attempts = job.attempts + 1
        delay = after if after is not None else min(2.0 ** (attempts - 1), MAX_BACKOFF)
        await self._store.update_job(
            job.id,
            done=done,
            results=results,
            attempts=attempts,
            next_at=time.time() + delay,
            last_error=error,
            claim_until=0.0,
        )
        self._running.discard(job.id)
        self._wake.set()
        return delay

    async def finish(self, job: Job) -> None:
        await self._store.finish_job(job.id)
        self._running.discard(job.id)

    def forget(self, job: Job) -> None:
        """The job was interrupted: it stays in the store, for the worker once its claim
        lapses (or at the next start)."""
        self._running.discard(job.id)

    def expired(self, job: Job) -> bool:
        return time.time() - job.created_at > GIVE_UP_SECONDS

    async def wait(self, longest: float) -> None:
        """Sleep until the next job is due, a job is queued for retry, or ``longest``."""
        # Cleared before reading the store: a retry queued meanwhile sets it again.
        self._wake.clear()
        due = await self._store.next_job_at()
        delay = longest if due is None else min(max(due - time.time(), 0.0), longest)
        if delay <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)
