"""Runs the slow work of checking uploads (download, hash, match) with chats taking turns.

Telegram's update handlers hand their media work to this queue and return, so an update of
one group is never stuck behind another group's backlog in python-telegram-bot's update
slots. The queue runs at most ``concurrency`` jobs at once and picks the next job round
robin over the chats that have work waiting, so a chat with 100 queued videos gets one turn
like a chat with one photo.

Two limits per chat keep one chat from taking everything:

- ``per_chat``: jobs queued plus running. A job past it is refused (``submit`` returns
  False); the caller audits it as skipped, so nothing is dropped silently.
- ``running_per_chat``: jobs of one chat running at once. Hashing is CPU-bound and cannot
  be interrupted, so a job that has started holds its worker until done; keeping a chat
  below the number of hashing workers leaves one free for the other chats, and their
  uploads start at once instead of after the busy chat's current hash.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class FairQueue:
    """Per-chat queues served round robin by at most ``concurrency`` running jobs."""

    def __init__(self, *, concurrency: int, per_chat: int, running_per_chat: int) -> None:
        if concurrency < 1 or per_chat < 1 or running_per_chat < 1:
            raise ValueError(
                f"queue limits must be at least 1; got concurrency={concurrency}, "
                f"per_chat={per_chat}, running_per_chat={running_per_chat}"
            )
        self._concurrency = concurrency
        self._per_chat = per_chat
        self._running_per_chat = running_per_chat
        #: Chats with jobs waiting, in turn order (the next turn is the first chat).
        self._waiting: collections.OrderedDict[int, collections.deque[Job]] = (
            collections.OrderedDict()
        )
        self._queued: collections.Counter[int] = collections.Counter()
        self._running: collections.Counter[int] = collections.Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False

    @property
    def per_chat(self) -> int:
        return self._per_chat

    def load(self, chat_id: int) -> int:
        """Jobs of the chat queued or running."""
        return self._queued[chat_id] + self._running[chat_id]

    @property
    def busy(self) -> bool:
        """Whether any job is queued or running."""
        return not self._idle.is_set()

    def submit(self, chat_id: int, job: Job) -> bool:
        """Queue a job of the chat; False (and nothing queued) when the chat already has
        ``per_chat`` jobs queued or running, or the queue is closed."""
        if self._closed or self.load(chat_id) >= self._per_chat:
            return False
        self._waiting.setdefault(chat_id, collections.deque()).append(job)
        self._queued[chat_id] += 1
        self._idle.clear()
        self._pump()
        return True

    async def wait_idle(self) -> None:
        """Return once nothing is queued or running."""
        await self._idle.wait()

    async def close(self, grace: float = 10.0) -> None:
        """Take no more jobs, give the queued and running ones ``grace`` seconds to finish,
        then drop the rest (at shutdown: what was decided is in the outbox; a check cut
        short is like one the update never reached, and is logged)."""
        self._closed = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace)
        dropped = sum(self._queued.values()) + len(self._tasks)
        self._waiting.clear()
        self._queued.clear()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if dropped:
            log.warning("queue_closed unfinished=%d", dropped)
        self._idle.set()

    def _pump(self) -> None:
        """Start jobs while there is room, one per chat per turn."""
        while len(self._tasks) < self._concurrency:
            chat_id = self._next_chat()
            if chat_id is None:
                break
            jobs = self._waiting[chat_id]
            job = jobs.popleft()
            # This chat's turn is over: it goes to the back of the line.
            if jobs:
                self._waiting.move_to_end(chat_id)
            else:
                del self._waiting[chat_id]
            self._queued[chat_id] -= 1
            self._running[chat_id] += 1
            task = asyncio.get_running_loop().create_task(self._run(chat_id, job))
            self._tasks.add(task)
        if not self._tasks and not self._waiting:
            self._idle.set()

    def _next_chat(self) -> int | None:
        """The first chat in turn order that may start another job."""
        for chat_id in self._waiting:
            if self._running[chat_id] < self._running_per_chat:
                return chat_id
        return None

    async def _run(self, chat_id: int, job: Job) -> None:
        try:
            await job()
        except Exception:
            # Jobs report their own failures; this only keeps one bug from stopping the queue.
            log.exception("queue_job_failed chat=%d", chat_id)
        finally:
            self._running[chat_id] -= 1
            if not self._running[chat_id]:
                del self._running[chat_id]
            if not self._queued[chat_id]:
                del self._queued[chat_id]
            task = asyncio.current_task()
            if task is not None:
                self._tasks.discard(task)
            self._pump()
