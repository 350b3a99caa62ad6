"""The outbox: Telegram actions the bot decided on, persisted before they are made.

A deletion, restriction or warning is written to the store as a *job* (ordered steps)
before the first Bot API call. The handler that decided it makes the first attempt at once;
what fails for a passing reason (flood control, 5xx, a timeout, a dropped connection) waits
in the store and a background worker retries it with backoff, also after a restart. A step
is recorded as made right after Telegram confirms it, so a job resumes at the step that was
in flight, and deletions, bans and restrictions are safe to repeat. A step that is database
work (recording a match) marks itself made in its own transaction (``step``).

Claims keep two tasks (or processes) from running one job at once. One bot process serves
one SQLite database, so the claims a killed process left behind are released at start-up;
on PostgreSQL, which several workers share, they lapse after ``CLAIM_SECONDS`` and another
worker takes the job up.

When the database cannot take a job (locked by another process past the busy timeout, a
full disk), the job is kept in this process's memory instead and retried from there: the
actions are still made, they only lose their protection against a crash meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from bot.jobs import Step
from hashdb.store import Job, JobStep, JobStore, StoreError

log = logging.getLogger(__name__)

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
    def __init__(self, store: JobStore) -> None:
        self._store = store
        self._wake = asyncio.Event()
        #: Jobs this process is running now (the worker skips them).
        self._running: set[int] = set()
        #: Jobs the database could not take, by their (negative) ids, waiting for a retry.
        self._unsaved: dict[int, Job] = {}
        self._unsaved_ids = itertools.count(-1, -1)
        #: Jobs made whose removal from the database failed.
        self._unfinished: set[int] = set()
        #: Set at shutdown: the worker finishes the jobs it holds and claims no more.
        self.stopping = False

    async def submit(self, chat_id: int, steps: Sequence[Step]) -> Job:
        """Persist a job, claimed by the caller, who makes the first attempt at once."""
        now = time.time()
        # The store keeps each step as the JSON dict it has always held (``bot.jobs``).
        stored = [step.to_dict() for step in steps]
        try:
            job = await self._store.add_job(
                chat_id, stored, at=now, claim_until=now + CLAIM_SECONDS
            )
        except StoreError as exc:
            job = Job(next(self._unsaved_ids), chat_id, tuple(stored), 0, {}, now, 0, now)
            log.error("outbox_unsaved chat=%d error=%s", chat_id, exc)
        self._running.add(job.id)
        return job

    @staticmethod
    def saved(job: Job) -> bool:
        return job.id > 0

    async def recover(self) -> int:
        """At start-up: jobs a stopped or killed process held become due again. On a
        database other workers share, their claims are left to lapse (``CLAIM_SECONDS``):
        the holder may be running."""
        released = await self._store.release_jobs() if self._store.single_process else 0
        self._wake.set()
        return released

    async def claim_due(self) -> list[Job]:
        now = time.time()
        claimed = [job for job in self._unsaved.values() if job.next_at <= now]
        for job in claimed:
            del self._unsaved[job.id]
            self._running.add(job.id)
        for job_id in list(self._unfinished):
            await self._store.finish_job(job_id)
            self._unfinished.discard(job_id)
        for job in await self._store.due_jobs(now, BATCH):
            if job.id in self._running:
                continue
            taken = await self._store.claim_job(job.id, now=now, until=now + CLAIM_SECONDS)
            if taken is not None:
                self._running.add(taken.id)
                claimed.append(taken)
        return claimed

    async def progress(self, job: Job, done: int, results: dict[str, Any]) -> None:
        """Record that the first ``done`` steps are made (the claim is renewed). When the
        database cannot take it the job goes on; after a crash meanwhile it would resume
        from its last recorded step."""
        if not self.saved(job):
            return
        try:
            await self._store.update_job(
                job.id,
                done=done,
                results=results,
                attempts=job.attempts,
                next_at=job.next_at,
                last_error=job.last_error,
                claim_until=time.time() + CLAIM_SECONDS,
            )
        except StoreError as exc:
            log.error("outbox_update_failed job=%d error=%s", job.id, exc)

    def step(
        self, job: Job, done: int, results: Callable[[int | None], dict[str, Any]]
    ) -> JobStep | None:
        """The step at index ``done`` for a store write that marks it made in the same
        transaction (``Store.record_match``); None for a job the database does not hold,
        which has no transaction to join (as ``progress`` does nothing for it)."""
        if not self.saved(job):
            return None
        return JobStep(job.id, done, results, time.time() + CLAIM_SECONDS)

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
        later = dataclasses.replace(
            job,
            done=done,
            results=dict(results),
            attempts=attempts,
            next_at=time.time() + delay,
            last_error=error,
        )
        if self.saved(job):
            try:
                await self._store.update_job(
                    job.id,
                    done=done,
                    results=results,
                    attempts=attempts,
                    next_at=later.next_at,
                    last_error=error,
                    claim_until=0.0,
                )
            except StoreError as exc:
                # The database holds the job as it was: it stays claimed there (and is
                # made again from its last saved step after a restart); this process
                # retries it from memory meanwhile.
                log.error("outbox_update_failed job=%d error=%s", job.id, exc)
                self._unsaved[job.id] = later
        else:
            self._unsaved[job.id] = later
        self._running.discard(job.id)
        self._wake.set()
        return delay

    async def finish(self, job: Job) -> None:
        self._running.discard(job.id)
        if self.saved(job):
            try:
                await self._store.finish_job(job.id)
            except StoreError as exc:
                # Made, but still in the database: removed later, never made again.
                log.error("outbox_finish_failed job=%d error=%s", job.id, exc)
                self._unfinished.add(job.id)

    def forget(self, job: Job) -> None:
        """The job was interrupted: it stays in the store, for the worker once its claim
        lapses (or at the next start)."""
        self._running.discard(job.id)

    def expired(self, job: Job) -> bool:
        return time.time() - job.created_at > GIVE_UP_SECONDS

    def stop(self) -> None:
        """Let the worker finish the jobs it is making, then end (at shutdown): a job cut
        off between a warning and its last record would post that warning again later."""
        self.stopping = True
        self._wake.set()

    async def wait(self, longest: float) -> None:
        """Sleep until the next job is due, a job is queued for retry, or ``longest``."""
        if self.stopping:
            return
        # Cleared before reading the store: a retry queued meanwhile sets it again.
        self._wake.clear()
        try:
            due = await self._store.next_job_at()
        except StoreError:
            due = None
        if self._unsaved:
            earliest = min(job.next_at for job in self._unsaved.values())
            due = earliest if due is None else min(due, earliest)
        delay = longest if due is None else min(max(due - time.time(), 0.0), longest)
        if delay <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)
