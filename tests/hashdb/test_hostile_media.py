"""Hostile media, one table: every kind of file a member can send to hurt the bot.

Each case makes its bytes here, in memory (nothing binary is committed), and goes through
what the bot runs on an upload: ``bot.hashing.Fingerprinter`` with real worker processes,
with the hasher the bot picks for the MIME type the message claims. A case is either
refused with a ``MediaDecodeError`` that names the problem (the bot logs it, audits
``media_skipped`` and handles the next update) or hashed within its budgets, when refusing
would let anyone dodge the blocklist (garbage EXIF, an hours-long or 8K re-encode).

The whole table runs once, in a fresh Python process that starts its own workers, so one
run checks every outcome and measures the peak memory of the process and of its workers.
``python -m tests.hashdb.test_hostile_media`` prints that run's report.

``tests/e2e/test_hostile_media_e2e.py`` sends some of these through the running bot.
"""

from __future__ import annotations

import asyncio
import json
import resource
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from bot.hashing import Fingerprinter
from handlers.common import _document_hasher
from hashdb.fingerprint import MediaDecodeError
from hashdb.photo import hash_photo
from hashdb.video import hash_video
from tests import media
from tests.hostile_media import CASES, CONFIG, NEIGHBOUR, Case, h264, listing_frames

REPO = Path(__file__).resolve().parents[2]
#: What the issue asks of the whole bot; the worst case here is ~700 MB.
MEMORY_LIMIT = 1 << 30


# --- the table -------------------------------------------------------------------------------


def _run_case(fingerprinter: Fingerprinter, case: Case, folder: Path) -> dict[str, Any]:
    data = case.make()
    hasher = _document_hasher(case.mime, None)
    assert hasher is not None, case.mime
    source: bytes | str = data
    if case.local:
        (folder / case.name).write_bytes(data)
        source = str(folder / case.name)
    started = time.monotonic()
    result: dict[str, Any] = {"hasher": hasher, "bytes": len(data)}
    try:
        if hasher == "video":
            hashed = asyncio.run(fingerprinter.hash_video(source))
        else:
            hashed = asyncio.run(fingerprinter.hash_photo(data))
        result.update(
            hashed=True,
            size=[hashed.width, hashed.height],
            frames=hashed.frame_count,
            truncated=hashed.truncated,
            first=hashed.stored[0].hex if hashed.stored else None,
        )
    except MediaDecodeError as exc:
        result.update(hashed=False, message=str(exc))
    except Exception as exc:  # anything else escaping is the bug this table looks for
        result.update(hashed=False, error=f"{type(exc).__name__}: {exc}")
    result["seconds"] = round(time.monotonic() - started, 3)
    return result


def run_table() -> dict[str, Any]:
    """Run every case through one Fingerprinter; report outcomes and peak memory."""
    fingerprinter = Fingerprinter(CONFIG.media, CONFIG.video)
    fingerprinter.warm_up()
    results: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            (folder / NEIGHBOUR).write_bytes(media.video(34, seconds=2, size=(128, 72)))
            for case in CASES:
                results[case.name] = _run_case(fingerprinter, case, folder)
    finally:
        # Joins the workers, so RUSAGE_CHILDREN counts them.
        fingerprinter.close()
    return {
        "cases": results,
        # Linux reports ru_maxrss in KiB.
        "peak_rss": {
            "self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "workers": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
        },
    }


# --- tests -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    """The table run in a fresh process (its own workers, its own peak memory)."""
    run = subprocess.run(
        # -c rather than -m: spawned workers then skip re-importing this module.
        [sys.executable, "-c", "from tests.hashdb.test_hostile_media import main; main()"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    result: dict[str, Any] = json.loads(run.stdout.splitlines()[-1])
    return result


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_file_is_refused_naming_why_or_hashed_within_budget(
    case: Case, report: dict[str, Any]
) -> None:
    result = report["cases"][case.name]
    assert "error" not in result, result
    # No case may reach the per-file timeout: that would mean a decoder ran past its budget.
    assert result["seconds"] < CONFIG.media.hash_timeout_seconds, result
    if case.refused:
        assert not result["hashed"], result
        for words in case.refused:
            assert words in result["message"], (words, result)
        return
    assert result["hashed"], result
    if result["hasher"] == "video":
        assert result["frames"] <= CONFIG.video.max_frames
        # The time budget stops decoding between frames; a frame may overrun it a little.
        assert result["seconds"] < CONFIG.video.budget_seconds + 5, result


@pytest.mark.parametrize(
    "name",
    [
        "exif_absurd_dimensions_and_orientation",
        "exif_19mb_of_app1_segments",
        "exif_ifd_loop_claiming_4g_values",
    ],
)
def test_hostile_exif_hashes_like_the_clean_photo(name: str, report: dict[str, Any]) -> None:
    clean = hash_photo(media.encode(media.photo(31, (320, 240))), quick=True)
    assert report["cases"][name]["first"] == clean.stored[0].hex


def test_sample_tables_count_wherever_ffmpeg_would_read_them() -> None:
    listing = listing_frames(40_000_000)
    # Behind a top-level box of a type nobody knows (FFmpeg skips it and reads on).
    hidden = struct.pack(">I4s", 16, b"\x00\x01\x02\x03") + bytes(8) + listing
    for data in (listing, hidden):
        with pytest.raises(MediaDecodeError, match="list 40000000 frames"):
            hash_video(data)
    # Words in metadata are not tables.
    words = b"the elephant's trunk, stsz and stz2"
    clip = h264(64, 64) + struct.pack(">I4s", 8 + len(words), b"free") + words
    assert hash_video(clip).frame_count == 1
    # A listing under the limit is left to FFmpeg, which may find no data for the frames.
    try:
        hash_video(listing_frames(1_000_000))
    except MediaDecodeError as exc:
        assert "sample tables" not in str(exc)


def test_peak_memory_of_the_bot_and_its_workers_stays_under_1_gib(
    report: dict[str, Any],
) -> None:
    # "self" also holds what the test generated (an 8K and a 41 Mpx encode); "workers" is
    # the largest worker, which decoded every file.
    peak = report["peak_rss"]
    assert peak["workers"] < MEMORY_LIMIT, peak
    assert peak["self"] < MEMORY_LIMIT, peak


def test_the_table_covers_both_hashers_and_every_outcome() -> None:
    hashers = {_document_hasher(case.mime, None) for case in CASES}
    assert hashers == {"photo", "video"}
    assert any(case.refused for case in CASES) and any(not case.refused for case in CASES)
    assert len({case.name for case in CASES}) == len(CASES)


def main() -> None:
    print(json.dumps(run_table()))


if __name__ == "__main__":
    main()
