"""Runs media decoding and hashing off the event loop, in a bounded process pool.

Decoding a hostile or huge file is CPU-bound and may take long; doing it on the event loop
would stall every group the bot serves. Work goes to a pool of processes (one per core by
default), one job per worker at a time, and each job has a wall-clock budget. A job over
budget, or a worker that crashes (a decoder segfault on a hostile file), gets the pool
replaced, and the file is reported as undecodable.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.process import BaseProcess

from bot.config import MediaConfig, VideoConfig
from hashdb import pdq
from hashdb.fingerprint import MediaDecodeError, MediaFingerprints, SkipReason
from hashdb.photo import hash_photo
from hashdb.video import VideoBudget, hash_animation

log = logging.getLogger(__name__)


class Fingerprinter:
    """Hashes media bytes in worker processes; ``hash_photo`` is awaited from handlers."""

    def __init__(
        self,
        media: MediaConfig,
        video: VideoConfig,
        *,
        min_quality: int = 50,
        use_threads: bool = False,
    ) -> None:
        self._media = media
        self._video_budget, self._block_budget = video_budgets(media, video, min_quality)
        self._workers = media.workers or os.cpu_count() or 1
        self._use_threads = use_threads
        self._executor: Executor | None = None
        #: Jobs running in each pool, so a retired pool's workers are killed only once the
        #: jobs of other files sharing it have finished.
        self._running: dict[Executor, set[asyncio.Future[MediaFingerprints]]] = {}
        self._reapers: set[asyncio.Task[None]] = set()
        #: Workers of pools given up on, killed at the latest by ``close``.
        self._retired: list[BaseProcess] = []
        # One job per worker, so the time budget measures hashing, not queueing.
        self._slots = asyncio.Semaphore(self._workers)
        #: Held by callers around download + hash: bounds the files held in memory at once.
        self.admission = asyncio.Semaphore(4 * self._workers)

    @property
    def workers(self) -> int:
        """Files hashed at once."""
        return self._workers

    def _pool(self) -> Executor:
        if self._executor is None:
            if self._use_threads:
                self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="hash")
            else:
                # "spawn" because forking a process that runs an event loop and HTTP
                # connections copies their state into the child.
                self._executor = ProcessPoolExecutor(
                    self._workers, mp_context=multiprocessing.get_context("spawn")
                )
        return self._executor

    def warm_up(self) -> list[Future[None]]:
        """Start the workers now and load the compiled PDQ kernel in each (from numba's disk
        cache, or compiled once), so the first photo waits for neither."""
        pool = self._pool()
        # Threads share one compiled kernel; each process loads its own.
        count = self._workers if isinstance(pool, ProcessPoolExecutor) else 1
        return [pool.submit(pdq.warm_up) for _ in range(count)]

    async def start(self) -> None:
        """``warm_up``, waited for: the bot takes no update before its workers can hash. On
        a fresh install the kernel is compiled (seconds, once; then it is read from numba's
        disk cache). A photo queued behind that compile would run out of its time limit,
        and the timeout would replace the worker in the middle of compiling, again and
        again, so nothing could be hashed."""
        began = time.monotonic()
        await asyncio.gather(*(asyncio.wrap_future(f) for f in self.warm_up()))
        log.info("hashing_ready workers=%d seconds=%.1f", self._workers, time.monotonic() - began)

    async def hash_photo(
        self, data: bytes, *, for_block: bool = False, local: bool = True, regions: bool = False
    ) -> MediaFingerprints:
        """Fingerprint an image; raises ``MediaDecodeError`` saying why it could not.

        A check (not ``for_block``) decodes large JPEGs at reduced scale, skips local
        features unless ``local``, and hashes the rectangles found inside the photo when
        ``regions``; what is blocked is hashed from the exact pixels.
        """
        return await self._run(
            functools.partial(
                hash_photo,
                data,
                max_pixels=self._media.max_image_pixels,
                max_bytes=self._media.max_file_bytes,
                for_block=for_block,
                quick=not for_block,
                local=local or for_block,
                regions=regions and not for_block,
            )
        )

    async def hash_video(
        self, data: bytes | str, *, for_block: bool = False, local: bool = True
    ) -> MediaFingerprints:
        """Fingerprint a video or animation (vPDQ frames) within the video budget.

        ``data`` is the file's bytes or, with a local Bot API server, its path.
        ``for_block`` samples densely, for a video an admin is adding to the blocklist, and
        keeps local features of its moments; a check (not ``for_block``) reads each frame
        mirrored and re-framed too, and takes local features only when ``local``.
        """
        budget = self._block_budget if for_block else self._video_budget
        # The in-worker budget stops decoding in time; the timeout only catches a worker
        # stuck inside one decoder call, so it allows the budget plus the usual margin.
        extra = max(0.0, budget.max_seconds - self._video_budget.max_seconds)
        timeout = self._media.hash_timeout_seconds + extra
        job = functools.partial(
            hash_animation, data, budget, check=not for_block, local=local or for_block
        )
        return await self._run(job, timeout)

    async def _run(
        self, job: Callable[[], MediaFingerprints], timeout: float | None = None
    ) -> MediaFingerprints:
        timeout = timeout or self._media.hash_timeout_seconds
        async with self._slots:
            loop = asyncio.get_running_loop()
            pool = self._pool()
            future = loop.run_in_executor(pool, job)
            running = self._running.setdefault(pool, set())
            running.add(future)
            try:
                return await asyncio.wait_for(future, timeout)
            except TimeoutError:
                # The runaway job keeps its worker busy: new jobs get a fresh pool, and the
                # old one's workers are killed once the other jobs in it are done.
                log.warning("hash_timeout seconds=%.0f", timeout)
                # Shutting a pool down forgets its workers: note them first.
                workers = _workers(pool)
                self._replace_pool(pool)
                self._reap(pool, workers, timeout)
                raise MediaDecodeError(
                    f"hashing took longer than {timeout:.0f} s (media.hash_timeout_seconds)",
                    SkipReason.TIMEOUT,
                ) from None
            except BrokenProcessPool:
                log.error("hash_worker_crashed")
                self._replace_pool(pool)
                raise MediaDecodeError(
                    "the decoder crashed on this file", SkipReason.DECODER_CRASHED
                ) from None
            finally:
                running.discard(future)
                if not running and pool is not self._executor:
                    self._running.pop(pool, None)

    def _replace_pool(self, broken: Executor) -> None:
        # Only the pool that failed is dropped: a concurrent failure of the same pool must
        # not shut down the replacement another job is already using.
        if self._executor is broken:
            self._executor = None
            broken.shutdown(wait=False, cancel_futures=True)
            # Started now, the new workers import and load their kernels while the old
            # ones are reaped, not inside the next photo's time limit.
            self.warm_up()

    def _reap(self, pool: Executor, workers: list[BaseProcess], timeout: float) -> None:
        """Kill a retired process pool's workers (a decoder stuck in a loop would hold its
        CPU and memory for good) after the other files' jobs in it had their time."""
        if not workers:
            return  # threads cannot be killed; a stuck one ends with the process
        self._retired = [p for p in self._retired if p.is_alive()] + workers

        async def reap() -> None:
            others = [f for f in self._running.get(pool, ()) if not f.done()]
            if others:
                await asyncio.wait(others, timeout=timeout)
            self._running.pop(pool, None)
            log.warning("hash_workers_killed count=%d", _kill(workers))

        task = asyncio.get_running_loop().create_task(reap(), name="hash-reaper")
        self._reapers.add(task)
        task.add_done_callback(self._reapers.discard)

    def close(self) -> None:
        for task in self._reapers:
            task.cancel()
        _kill(self._retired)
        self._retired.clear()
        self._running.clear()
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


def video_budgets(
    media: MediaConfig, video: VideoConfig, min_quality: int
) -> tuple[VideoBudget, VideoBudget]:
    """The limits of hashing a video to check an upload, and to block it (the bot's, and
    ``hashguard``'s, which hashes as the bot does)."""
    check = VideoBudget(
        seconds_per_sample=video.seconds_per_sample,
        max_frames=video.max_frames,
        max_seconds=video.budget_seconds,
        max_pixels=media.max_image_pixels,
        min_quality=min_quality,
    )
    # A blocked video keeps every frame, even dark or flat ones: they never act (the index
    # skips them), but an all-dark video still becomes an entry whose exact re-sends are
    # caught by file id, like a low-quality photo.
    block = dataclasses.replace(
        check,
        seconds_per_sample=video.block_seconds_per_sample,
        max_frames=video.block_max_frames,
        max_seconds=video.block_budget_seconds,
        min_quality=0,
    )
    return check, block


def _workers(pool: Executor) -> list[BaseProcess]:
    """A process pool's worker processes (none for a thread pool)."""
    # ProcessPoolExecutor keeps them in _processes and has no public way to kill them.
    return list((getattr(pool, "_processes", None) or {}).values())


def _kill(workers: list[BaseProcess]) -> int:
    """Kill the workers still running; returns how many were."""
    alive = [p for p in workers if p.is_alive()]
    for process in alive:
        process.kill()
    return len(alive)
