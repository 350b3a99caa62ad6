"""Matching of videos (hashdb.video_match): edited copies, a clip inside a longer video and
other formats of the same footage match the blocked video; unrelated videos do not. Every
container the bot receives (animations, stickers, video notes, GIFs, a still image) hashes."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from hashdb.fingerprint import Fingerprint, MediaFingerprints
from hashdb.photo import hash_photo
from hashdb.signals import VPDQ
from hashdb.video import hash_video
from hashdb.video_match import VideoComparison, VideoMatchRule, compare_videos
from tests import media

MATCH = VPDQ.default_max_distance  # 31, PDQ's confident-match radius, used per frame by vPDQ


def _compare(query: bytes | MediaFingerprints, blocked: Sequence[Fingerprint]) -> VideoComparison:
    probes = (hash_video(query) if isinstance(query, bytes) else query).probes
    return compare_videos(probes, blocked, MATCH)


def _describe(comparison: VideoComparison) -> str:
    return (
        f"query {comparison.matched_query}/{comparison.query_frames} frames "
        f"({comparison.query_pct:.0f}%), blocked {comparison.matched_compared}/"
        f"{comparison.compared_frames} ({comparison.compared_pct:.0f}%), "
        f"best distance {comparison.best_distance}"
    )


# --- matching edited copies -----------------------------------------------------------------


@pytest.fixture(scope="module")
def blocked() -> bytes:
    return media.video(11, seconds=8)


@pytest.fixture(scope="module")
def blocked_hashes(blocked: bytes) -> tuple[Fingerprint, ...]:
    return hash_video(blocked).stored


EDITS = {
    # Half-second offsets are the worst case for 1 frame/s sampling: every sample of the copy
    # falls between two samples of the original.
    "trim_middle": lambda v: media.trim(v, 1.5, 6.5),
    "trim_start": lambda v: media.trim(v, 0.5),
    "reencode_crf40": lambda v: media.reencode(v, crf=40),
    "reencode_150kbps": lambda v: media.reencode(v, bit_rate=150_000),
    "reencode_15fps": lambda v: media.reencode(v, fps=15),
    "resize_half": lambda v: media.resize(v, (160, 90)),
    "resize_double": lambda v: media.resize(v, (640, 360)),
    "mpeg4_avi": lambda v: media.reencode(v, codec="mpeg4", fmt="avi", bit_rate=300_000),
    "vp9_webm": lambda v: media.reencode(v, codec="libvpx-vp9", fmt="webm"),
    "gif": lambda v: media.reencode(v, codec="gif", fmt="gif", fps=10),
}


@pytest.mark.parametrize("edit", EDITS)
def test_edited_copy_matches_blocked_video(
    edit: str, blocked: bytes, blocked_hashes: tuple[Fingerprint, ...]
) -> None:
    comparison = _compare(EDITS[edit](blocked), blocked_hashes)

    assert VideoMatchRule().accepts(comparison), f"{edit}: {_describe(comparison)}"


def test_blocked_clip_embedded_in_longer_video_matches(
    blocked: bytes, blocked_hashes: tuple[Fingerprint, ...]
) -> None:
    # 4.5 s before it: every sample of the query falls half-way between two of the original's.
    query = media.embed(blocked, media.video(21, seconds=4.5), media.video(22, seconds=6))

    comparison = _compare(query, blocked_hashes)

    # Most of the query is other footage; what gives it away is that the whole blocked video
    # is found inside it (the compared direction).
    assert comparison.query_pct < 50, _describe(comparison)
    assert comparison.compared_pct >= 90, _describe(comparison)
    assert VideoMatchRule().accepts(comparison), _describe(comparison)


@pytest.mark.parametrize("seed", range(30, 36))
def test_unrelated_video_does_not_match(seed: int, blocked_hashes: tuple[Fingerprint, ...]) -> None:
    comparison = _compare(media.video(seed, seconds=8), blocked_hashes)

    assert comparison.matched_query == 0, _describe(comparison)
    assert not VideoMatchRule().accepts(comparison)


def test_unrelated_videos_in_other_formats_do_not_match(
    blocked_hashes: tuple[Fingerprint, ...],
) -> None:
    for query in (media.gif(40), media.webm(41), media.video_note(42)):
        comparison = _compare(query, blocked_hashes)
        assert not VideoMatchRule().accepts(comparison), _describe(comparison)


# --- formats ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("maker", "size", "seconds"),
    [
        (lambda: media.gif(5), (240, 136), 4),
        (lambda: media.webm(5), (256, 256), 3),
        (lambda: media.video_note(5), (384, 384), 4),
        (lambda: media.video(5, seconds=3, codec="mpeg4", fmt="avi"), (320, 180), 3),
        (lambda: media.video(5, seconds=3, fmt="matroska"), (320, 180), 3),
    ],
    ids=["gif", "webm_vp9", "video_note", "mpeg4_avi", "h264_mkv"],
)
def test_animation_sticker_and_video_note_formats_hash(
    maker: object, size: tuple[int, int], seconds: int
) -> None:
    assert callable(maker)
    result = hash_video(maker())

    assert (result.kind, (result.width, result.height)) == ("video", size)
    assert result.frame_count == seconds
    # Distinct, photo-like frames: nothing dropped for quality or as a duplicate.
    assert len(result.stored) == seconds
    assert all(f.signal == "vpdq" and (f.quality or 0) >= 50 for f in result.stored)
    assert result.probes == result.stored
    assert not result.truncated


def test_gif_of_a_video_matches_the_video() -> None:
    # Telegram turns GIFs into MP4 animations, but GIFs also arrive as documents.
    frames = media.video_frames(6, seconds=4, fps=10, size=(240, 136))
    as_mp4 = hash_video(media.encode_video(frames, fps=10)).stored
    comparison = _compare(media.encode_video(frames, fps=10, codec="gif", fmt="gif"), as_mp4)

    assert comparison.query_pct == comparison.compared_pct == 100, _describe(comparison)


def test_still_image_hashes_as_a_one_frame_video() -> None:
    """Documented behaviour: FFmpeg reads a still JPEG/PNG/WebP as a one-frame video, so
    ``hash_video`` on a photo works and gives one frame, the same PDQ as ``hash_photo``'s
    whole-image hash for an image of at most 512 px (no 512 px step either way)."""
    image = media.photo(4, (320, 240))
    photo_hash = hash_photo(media.encode(image, "PNG")).stored[0]
    for fmt in ("JPEG", "PNG", "WEBP"):
        result = hash_video(media.encode(image, fmt))
        assert (result.frame_count, len(result.stored)) == (1, 1), fmt
        if fmt != "JPEG":  # lossless formats decode to the same pixels as Pillow does
            assert result.stored[0].value == photo_hash.value, fmt
