"""The hashing pool: a job over its time budget is reported, and its worker is killed."""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import time

from bot.config import load_config
from bot.hashing import Fingerprinter
from hashdb.fingerprint import MediaDecodeError
from tests.media import encode, photo


def _hang(seconds: float) -> None:
    time.sleep(seconds)


async def test_a_runaway_job_is_cut_off_and_its_worker_killed_others_finish() -> None:
    config = load_config(
        None,
        environ={
            "HASHGUARD_TELEGRAM_TOKEN": "1:x",
            "HASHGUARD_MEDIA_WORKERS": "2",
            "HASHGUARD_MEDIA_HASH_TIMEOUT_SECONDS": "2",
            "HASHGUARD_VIDEO_BUDGET_SECONDS": "1",
        },
    )
    fingerprinter = Fingerprinter(config.media, config.video)
    try:
        fingerprinter.warm_up()
        before = {p.pid for p in multiprocessing.active_children()}
        runaway = fingerprinter._run(functools.partial(_hang, 3600))  # type: ignore[arg-type]
        # A photo hashed beside the runaway, in the same pool, is not a casualty.
        slow_but_fine = fingerprinter._run(functools.partial(_hang, 3))  # type: ignore[arg-type]
        results = await asyncio.gather(runaway, slow_but_fine, return_exceptions=True)
        assert isinstance(results[0], MediaDecodeError)
        assert "media.hash_timeout_seconds" in str(results[0])
        assert isinstance(results[1], MediaDecodeError)  # 3 s is over the 2 s budget too
        # The old pool's workers are killed (the runaway would otherwise sleep an hour).
        deadline = time.monotonic() + 10
        while {p.pid for p in multiprocessing.active_children()} & before:
            assert time.monotonic() < deadline, "the runaway's worker is still alive"
            await asyncio.sleep(0.1)
        # The bot goes on hashing with a fresh pool.
        fingerprints = await fingerprinter.hash_photo(encode(photo(5)))
        assert fingerprints.stored
    finally:
        fingerprinter.close()


async def test_jobs_within_the_budget_share_the_pool_untouched() -> None:
    config = load_config(
        None,
        environ={"HASHGUARD_TELEGRAM_TOKEN": "1:x", "HASHGUARD_MEDIA_WORKERS": "2"},
    )
    fingerprinter = Fingerprinter(config.media, config.video)
    try:
        fingerprinter.warm_up()
        before = {p.pid for p in multiprocessing.active_children()}
        await asyncio.gather(
            *(fingerprinter._run(functools.partial(_hang, 0.5)) for _ in range(4))  # type: ignore[arg-type]
        )
        assert {p.pid for p in multiprocessing.active_children()} >= before
    finally:
        fingerprinter.close()


def test_a_decode_error_keeps_its_reason_across_processes() -> None:
    """Workers are processes: the reason users are told must survive pickling."""
    import pickle

    from hashdb.fingerprint import SkipReason
    from hashdb.photo import hash_photo

    error = MediaDecodeError("cannot decode '/srv/123:secret/x.mp4'", SkipReason.TIMEOUT)
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.reason) == (str(error), SkipReason.TIMEOUT)
    for data, reason in (
        (b"", SkipReason.EMPTY),
        (b"plain text, not an image" * 4, SkipReason.UNSUPPORTED),
        (encode(photo(1))[:300], SkipReason.UNDECODABLE),
    ):
        try:
            hash_photo(data)
        except MediaDecodeError as exc:
            assert exc.reason is reason, (exc, exc.reason)
        else:
            raise AssertionError(f"{reason}: no error")
