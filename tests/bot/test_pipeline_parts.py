"""The fair queue (chats take turns, limits per chat) and the fingerprint cache (bounded,
keyed by how the file was hashed, one hash in flight per file)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable

import pytest
from PIL import ImageOps

from bot.fair_queue import FairQueue
from bot.fingerprint_cache import BLOCK_MODE, FingerprintCache, HashMode, footprint
from handlers.common import MediaSkipped, remembered_failure
from hashdb.fingerprint import SkipReason
from hashdb.photo import hash_photo
from tests.media import encode, photo

CHECK = HashMode.of(for_block=False, local=False)
CHECK_LOCAL = HashMode.of(for_block=False, local=True)
BLOCK = HashMode.of(for_block=True, local=False)


async def test_chats_take_turns_and_one_chat_never_takes_every_slot() -> None:
    queue = FairQueue(concurrency=2, per_chat=10, running_per_chat=1)
    order: list[str] = []
    gate = asyncio.Event()

    def job(name: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            order.append(name)
            await gate.wait()

        return run

    for n in range(4):
        assert queue.submit(1, job(f"a{n}"))
    assert queue.submit(2, job("b0"))
    assert queue.submit(2, job("b1"))
    await asyncio.sleep(0)
    # Chat 1 runs one job and leaves the other slot to chat 2, though it queued first.
    assert order == ["a0", "b0"]
    gate.set()
    await queue.wait_idle()
    assert order == ["a0", "b0", "a1", "b1", "a2", "a3"]


async def test_a_chat_past_its_limit_is_refused_and_others_are_not() -> None:
    queue = FairQueue(concurrency=1, per_chat=2, running_per_chat=1)
    gate = asyncio.Event()

    async def wait() -> None:
        await gate.wait()

    assert queue.submit(1, wait) and queue.submit(1, wait)
    assert not queue.submit(1, wait)
    assert queue.load(1) == 2
    assert queue.submit(2, wait)
    gate.set()
    await queue.wait_idle()
    assert queue.load(1) == 0 and not queue.busy
    assert queue.submit(1, wait)
    await queue.wait_idle()
    await queue.close()
    assert not queue.submit(1, wait)


async def test_a_failing_job_does_not_stop_the_queue() -> None:
    queue = FairQueue(concurrency=1, per_chat=5, running_per_chat=1)
    done: list[int] = []

    async def fail() -> None:
        raise RuntimeError("bug")

    async def ok() -> None:
        done.append(1)

    queue.submit(1, fail)
    queue.submit(1, ok)
    await queue.wait_idle()
    assert done == [1]


async def test_cache_keys_include_how_the_file_was_hashed() -> None:
    cache: FingerprintCache[str] = FingerprintCache(10, 10_000, len)
    calls: list[HashMode] = []

    async def produce(mode: HashMode) -> str:
        calls.append(mode)
        return f"fingerprints {mode}"

    await cache.get("F", CHECK_LOCAL, lambda: produce(CHECK_LOCAL))
    # A check without local features may use one that has them; a block never uses a check.
    assert await cache.get("F", CHECK, lambda: produce(CHECK)) == f"fingerprints {CHECK_LOCAL}"
    await cache.get("F", BLOCK, lambda: produce(BLOCK))
    assert calls == [CHECK_LOCAL, BLOCK]
    assert cache.peek("G", CHECK) is None
    await cache.get("G", CHECK, lambda: produce(CHECK))
    # A check needing local features never gets an entry without them.
    assert cache.peek("G", CHECK_LOCAL) is None


async def test_one_hash_in_flight_per_file_and_failures_are_not_cached() -> None:
    cache: FingerprintCache[str] = FingerprintCache(10, 10_000, len)
    started = asyncio.Event()
    release = asyncio.Event()
    runs = 0

    async def slow() -> str:
        nonlocal runs
        runs += 1
        started.set()
        await release.wait()
        if runs == 1:
            raise ValueError("download failed")
        return "fingerprints"

    waiting = [asyncio.create_task(cache.get("F", CHECK, slow)) for _ in range(5)]
    await started.wait()
    release.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert runs == 1 and all(isinstance(r, ValueError) for r in results)
    assert await cache.get("F", CHECK, slow) == "fingerprints"
    assert runs == 2


async def test_cache_is_bounded_in_entries_and_bytes() -> None:
    cache: FingerprintCache[str] = FingerprintCache(3, 100, len)

    async def value(text: str) -> str:
        return text

    for name in "ABCD":
        await cache.get(name, CHECK, functools.partial(value, name * 10))
    assert len(cache) == 3 and cache.peek("A", CHECK) is None
    await cache.get("E", CHECK, lambda: value("e" * 90))
    assert cache.bytes <= 100 and cache.peek("E", CHECK) is not None
    await cache.get("F", CHECK, lambda: value("f" * 101))  # over the whole budget: not kept
    assert cache.peek("F", CHECK) is None and cache.peek("E", CHECK) is not None
    off: FingerprintCache[str] = FingerprintCache(0, 100, len)
    await off.get("A", CHECK, lambda: value("a"))
    assert len(off) == 0


class FailingProducer:
    """Fails with ``reason`` each time it is called, and counts the calls."""

    def __init__(self, reason: SkipReason) -> None:
        self.reason = reason
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        raise MediaSkipped(self.reason, "decoder said no")


async def test_a_failure_that_would_repeat_is_remembered_for_its_mode_only() -> None:
    cache: FingerprintCache[str] = FingerprintCache(10, 10_000, len, remember=remembered_failure)
    for reason in (
        SkipReason.TIMEOUT,
        SkipReason.DECODER_CRASHED,
        SkipReason.UNDECODABLE,
        SkipReason.UNSUPPORTED,
        SkipReason.EMPTY,
        SkipReason.TOO_LARGE,
    ):
        bad = FailingProducer(reason)
        for _ in range(3):
            with pytest.raises(MediaSkipped) as raised:
                await cache.get(f"bad-{reason}", CHECK, bad)
            assert raised.value.reason is reason
        assert bad.calls == 1, reason
        assert cache.known(f"bad-{reason}", CHECK)
        assert "remembered" in raised.value.detail
    # A check's failure says nothing of a block (which decodes at full scale) nor of a
    # check with local features (more work in the same time budget).
    timeout = FailingProducer(SkipReason.TIMEOUT)
    with pytest.raises(MediaSkipped):
        await cache.get("slow", CHECK, timeout)
    assert not cache.known("slow", BLOCK) and not cache.known("slow", CHECK_LOCAL)
    assert await cache.get("slow", BLOCK, functools.partial(asyncio.sleep, 0, "block")) == "block"


async def test_a_passing_failure_is_not_remembered() -> None:
    cache: FingerprintCache[str] = FingerprintCache(10, 10_000, len, remember=remembered_failure)
    for reason in (SkipReason.DOWNLOAD_FAILED, SkipReason.QUEUE_FULL):
        passing = FailingProducer(reason)
        for _ in range(2):
            with pytest.raises(MediaSkipped):
                await cache.get("F", CHECK, passing)
        assert passing.calls == 2 and not cache.known("F", CHECK)

    async def broken() -> str:
        raise ValueError("a bug, not the file")

    with pytest.raises(ValueError):
        await cache.get("G", CHECK, broken)
    assert not cache.known("G", CHECK)
    # With caching off, failures are not remembered either.
    off: FingerprintCache[str] = FingerprintCache(0, 100, len, remember=remembered_failure)
    bad = FailingProducer(SkipReason.UNDECODABLE)
    for _ in range(2):
        with pytest.raises(MediaSkipped):
            await off.get("F", CHECK, bad)
    assert bad.calls == 2


async def test_a_remembered_failure_expires_and_the_memory_is_bounded() -> None:
    now = 1000.0
    cache: FingerprintCache[str] = FingerprintCache(
        10,
        10_000,
        len,
        remember=remembered_failure,
        failure_seconds=60,
        max_failures=2,
        clock=lambda: now,
    )
    bad = FailingProducer(SkipReason.TIMEOUT)
    with pytest.raises(MediaSkipped):
        await cache.get("F", CHECK, bad)
    now += 59
    with pytest.raises(MediaSkipped):
        await cache.get("F", CHECK, bad)
    assert bad.calls == 1
    now += 1
    assert not cache.known("F", CHECK)
    with pytest.raises(MediaSkipped):
        await cache.get("F", CHECK, bad)
    assert bad.calls == 2
    # Tried again later and hashed this time (the machine was busy): the result is kept.
    now += 60
    assert await cache.get("F", CHECK, functools.partial(asyncio.sleep, 0, "ok")) == "ok"
    assert cache.peek("F", CHECK) == "ok"
    for name in "GHI":
        with pytest.raises(MediaSkipped):
            await cache.get(name, CHECK, FailingProducer(SkipReason.EMPTY))
    # Two failures at most: the oldest went first.
    assert not cache.known("G", CHECK)
    assert cache.known("H", CHECK) and cache.known("I", CHECK)


async def test_a_check_needing_regions_never_gets_a_result_hashed_without_them() -> None:
    cache: FingerprintCache[str] = FingerprintCache(10, 10_000, len)
    regions = HashMode.of(for_block=False, local=False, regions=True)
    everything = HashMode.of(for_block=False, local=True, regions=True)
    calls: list[HashMode] = []

    async def produce(mode: HashMode) -> str:
        calls.append(mode)
        return f"fingerprints {mode}"

    await cache.get("F", CHECK_LOCAL, lambda: produce(CHECK_LOCAL))
    # A chat checking hash-only entries needs the photo's regions: hashed again.
    await cache.get("F", regions, lambda: produce(regions))
    assert calls == [CHECK_LOCAL, regions]
    # A chat that needs less takes what was hashed with more.
    served = await cache.get("F", CHECK, lambda: produce(CHECK))
    assert served in (f"fingerprints {CHECK_LOCAL}", f"fingerprints {regions}")
    assert calls == [CHECK_LOCAL, regions]
    await cache.get("G", everything, lambda: produce(everything))
    for mode in (CHECK, CHECK_LOCAL, regions):
        assert cache.peek("G", mode) == f"fingerprints {everything}"
    assert cache.peek("F", everything) is None
    # A block never hashes regions: what is stored is the whole photo.
    assert HashMode.of(for_block=True, local=True, regions=True) == BLOCK_MODE


def test_footprint_counts_local_features() -> None:
    data = encode(photo(1601, (1280, 960)))
    plain = footprint(hash_photo(data, quick=True, local=False))
    with_local = footprint(hash_photo(data, quick=True, local=True))
    assert 1_000 < plain < 5_000
    assert with_local > plain + 10_000
    framed = encode(ImageOps.expand(photo(1601, (1280, 960)), border=80, fill=(0, 0, 0)))
    with_regions = hash_photo(framed, quick=True, local=False, regions=True)
    assert with_regions.regions
    assert footprint(with_regions) > footprint(hash_photo(framed, quick=True, local=False)) + 1_000


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        FairQueue(concurrency=0, per_chat=1, running_per_chat=1)
    with pytest.raises(ValueError, match="0 or more"):
        FingerprintCache(-1, 0, len)


async def test_close_lets_jobs_finish_within_the_grace_then_drops_the_rest() -> None:
    queue = FairQueue(concurrency=1, per_chat=5, running_per_chat=1)
    done: list[str] = []
    forever = asyncio.Event()

    async def quick() -> None:
        await asyncio.sleep(0)
        done.append("quick")

    async def stuck() -> None:
        await forever.wait()
        done.append("stuck")

    queue.submit(1, quick)
    queue.submit(1, quick)
    await queue.close(grace=5.0)
    assert done == ["quick", "quick"]

    stalled = FairQueue(concurrency=1, per_chat=5, running_per_chat=1)
    stalled.submit(1, stuck)
    stalled.submit(1, quick)
    await stalled.close(grace=0.05)
    assert done == ["quick", "quick"] and not stalled.busy
