"""The second stage of an upload's check: the search of its local features (crops, tilts,
screenshots of blocked photos), after its hashes found nothing.

The first stage (the hashes: copies, re-encodes, resizes, mirrors) decides at once; an
upload it lets through in a group whose banks hold local features waits here for the slower
search, which runs on a thread of its own (``MatchingService.find_local_match``). So the
first stage promises a quick answer for copies, and this one an answer for crops that may
take longer but never holds up the first.

The queue is bounded. When it is full the bot is overloaded, and it says so: the oldest
waiting upload is taken out unchecked and its ``skipped`` job runs (the upload checker sends
it to the admins' review and audits ``crop_check_skipped``), then the new one enters. The
oldest goes first because it has waited longest: its sender has had the most time to be
seen, and the newest upload is the likeliest to be checked in time. Closing the stage does
the same for what is still waiting once the grace time is over, so nothing is dropped
unseen.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: Why a waiting upload was taken out unchecked (the note the admins and the audit get).
OVERLOADED = "the bot was overloaded"
STOPPING = "the bot was stopping"


@dataclass(frozen=True, slots=True)
class Pending:
    """An upload waiting for its local-feature search."""

    #: Search and act on the result; reports its own failures.
    run: Callable[[], Awaitable[None]]
    #: Taken out unchecked: tell the admins and audit why (the reason's words).
    skipped: Callable[[str], Awaitable[None]]
    #: For logs.
    chat_id: int = 0
    message_id: int = 0


class SecondStage:
    """A bounded queue of local-feature searches, ``concurrency`` at once."""

    def __init__(self, *, size: int, concurrency: int = 1) -> None:
        if size < 1 or concurrency < 1:
            raise ValueError(
                f"second stage limits must be at least 1; got size={size}, "
                f"concurrency={concurrency}"
            )
        self._size = size
        self._concurrency = concurrency
        self._waiting: collections.deque[Pending] = collections.deque()
        #: Searches running (at most ``concurrency``).
        self._running: set[asyncio.Task[None]] = set()
        #: Uploads taken out unchecked, being sent to review.
        self._skipping: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        #: Uploads taken out unchecked since the start (for logs and benchmarks).
        self.skipped = 0

    @property
    def size(self) -> int:
        return self._size

    @property
    def waiting(self) -> int:
        """Uploads waiting for their search (not yet running)."""
        return len(self._waiting)

    @property
    def busy(self) -> bool:
        """Whether any upload waits, is searched or is being sent to review."""
        return not self._idle.is_set()

    def submit(self, pending: Pending) -> bool:
        """Queue an upload's search; when the queue is full, the oldest waiting upload is
        taken out and sent to review first. False (nothing queued) once closed: the caller
        then sends this one to review itself."""
        if self._closed:
            return False
        if len(self._waiting) >= self._size:
            oldest = self._waiting.popleft()
            log.warning(
                "crop_check_skipped chat=%d message=%d reason=overloaded size=%d",
                oldest.chat_id,
                oldest.message_id,
                self._size,
            )
            self._skip(oldest, OVERLOADED)
        self._waiting.append(pending)
        self._idle.clear()
        self._pump()
        return True

    async def wait_idle(self) -> None:
        """Return once nothing waits or runs."""
        await self._idle.wait()

    async def close(self, grace: float = 10.0) -> None:
        """Take no more uploads and give the waiting and running ones ``grace`` seconds;
        then what still waits is sent to review (``STOPPING``) and what runs is cancelled."""
        self._closed = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace)
        left = list(self._waiting)
        self._waiting.clear()
        for pending in left:
            self._skip(pending, STOPPING)
        for task in self._running:
            task.cancel()
        # The reviews of what was left are quick (an audit row and one Bot API call).
        await asyncio.gather(*self._running, *self._skipping, return_exceptions=True)
        if left or self._running:
            log.warning("second_stage_closed sent_to_review=%d", len(left))
        self._idle.set()

    def skip_now(self, pending: Pending) -> None:
        """Send an upload the closed stage refused to review (``STOPPING``)."""
        log.warning(
            "crop_check_skipped chat=%d message=%d reason=stopping",
            pending.chat_id,
            pending.message_id,
        )
        self._skip(pending, STOPPING)

    def _skip(self, pending: Pending, reason: str) -> None:
        self.skipped += 1
        self._idle.clear()
        task = asyncio.get_running_loop().create_task(self._guarded(pending.skipped(reason)))
        self._skipping.add(task)
        task.add_done_callback(self._done)

    def _pump(self) -> None:
        while len(self._running) < self._concurrency and self._waiting:
            pending = self._waiting.popleft()
            task = asyncio.get_running_loop().create_task(self._guarded(pending.run()))
            self._running.add(task)
            task.add_done_callback(self._done)
        if not self._running and not self._skipping and not self._waiting:
            self._idle.set()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._skipping.discard(task)
        self._pump()

    @staticmethod
    async def _guarded(job: Awaitable[None]) -> None:
        try:
            await job
        except Exception:
            # Jobs report their own failures; this only keeps one bug from stopping the stage.
            log.exception("second_stage_job_failed")
