"""Sampling and budgets of hashdb.video (one frame per second from the first, the frame and
time budgets, frames scaled or refused by size) and refusal of broken or hostile video files:
each hashes what is there or raises ``MediaDecodeError``."""

from __future__ import annotations

import functools
import io
import math

import av
import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashdb.fingerprint import Fingerprint, MediaDecodeError
from hashdb.signals import VPDQ
from hashdb.video import FrameHash, VideoBudget, hash_video, scan_video
from tests import media
from tests.hashdb.vpdq_reference import EVERY_FRAME, reference_pdq

# --- sampling ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fps", "seconds"), [(30, 6), (25, 7), (24, 5.5), (15, 3), (10, 4.2), (60, 2)]
)
def test_one_frame_per_second_from_the_first_frame(fps: int, seconds: float) -> None:
    data = media.video(7, seconds=seconds, fps=fps, size=(128, 72))
    first, _ = media.decode_video(data)

    scan = scan_video(data, VideoBudget())

    assert len(scan.frames) == math.ceil(seconds)
    assert scan.duration == pytest.approx(seconds, abs=1 / fps)
    assert (scan.frames[0].index, scan.frames[0].seconds) == (0, 0.0)
    assert (scan.frames[0].value, scan.frames[0].quality) == reference_pdq(first[0])
    for k, frame in enumerate(scan.frames):
        # The first frame at or after each whole second.
        assert k <= frame.seconds < k + 1 / fps + 1e-6, [f.seconds for f in scan.frames]
    assert hash_video(data).frame_count == len(scan.frames)


def test_first_frame_sampled_when_the_stream_starts_late() -> None:
    # MPEG-TS streams start at a non-zero timestamp (1.4 s here); sampling is relative to it.
    data = media.video(8, seconds=3, size=(128, 72), fmt="mpegts")
    first, _ = media.decode_video(data)

    scan = scan_video(data, VideoBudget())

    assert [f.seconds for f in scan.frames] == [0.0, 1.0, 2.0]
    assert scan.frames[0].value == reference_pdq(first[0])[0]


def test_long_interval_still_samples_the_first_frame() -> None:
    scan = scan_video(media.video(9, seconds=3, size=(128, 72)), VideoBudget(seconds_per_sample=10))

    assert [f.seconds for f in scan.frames] == [0.0]
    assert not scan.truncated


@functools.cache
def _ten_minutes() -> bytes:
    """A 10-minute video at 2 fps and 64x36 (keyframe every 2 s): long, but cheap to make."""
    return media.video(3, seconds=600, fps=2, size=(64, 36), gop=4)


def test_ten_minute_video_fits_the_default_frame_budget() -> None:
    scan = scan_video(_ten_minutes(), VideoBudget())

    assert len(scan.frames) == 600
    assert scan.frames[-1].seconds == 599.0
    assert not scan.truncated


def test_long_video_is_sampled_sparsely_across_its_whole_length() -> None:
    data = _ten_minutes()
    everything = scan_video(data, EVERY_FRAME, every_frame=True)

    sparse = scan_video(data, VideoBudget(max_frames=20))

    # 600 s in 20 samples: one every 30 s, over the whole video rather than its first 20 s.
    assert [f.seconds for f in sparse.frames] == [30.0 * k for k in range(20)]
    assert not sparse.truncated
    # Samples reached by seeking are the very frames decoding straight through gives.
    at = {f.seconds: f.value for f in everything.frames}
    assert [f.value for f in sparse.frames] == [at[f.seconds] for f in sparse.frames]


def test_frame_budget_truncates_when_the_duration_is_unknown_in_advance() -> None:
    scan = scan_video(_ten_minutes(), VideoBudget(max_frames=10), every_frame=True)

    assert len(scan.frames) == 10
    assert scan.truncated


def test_time_budget_truncates_and_keeps_what_was_hashed() -> None:
    data = _ten_minutes()
    full = scan_video(data, EVERY_FRAME, every_frame=True)

    # Out of time at once: the first frame is still hashed, so there is a fingerprint.
    instant = scan_video(data, VideoBudget(max_seconds=1e-9))
    assert instant.truncated
    assert instant.frames == full.frames[:1]
    # Out of time part way (decoding all 1200 frames takes ~0.5 s here).
    partial = scan_video(data, VideoBudget(max_frames=10**6, max_seconds=0.02), every_frame=True)
    assert partial.truncated
    assert 1 <= len(partial.frames) < len(full.frames)
    assert partial.frames == full.frames[: len(partial.frames)]
    assert hash_video(data, VideoBudget(max_seconds=1e-9)).truncated


def test_frames_above_1080p_are_scaled_down_before_hashing() -> None:
    small = media.video_frames(12, seconds=1, fps=1, size=(320, 180))[0]
    big = cv2.resize(small, (3840, 2160), interpolation=cv2.INTER_CUBIC)
    data = media.encode_video([big], fps=1, options={"preset": "ultrafast"})

    scan = scan_video(data, VideoBudget())

    assert (scan.width, scan.height) == (3840, 2160)
    assert VPDQ.distance(scan.frames[0].value, reference_pdq(small)[0]) <= 16


# --- refusal ----------------------------------------------------------------------------------


def _flat_video(width: int, height: int) -> bytes:
    """One grey H.264 frame at any size, made from YUV directly so it costs ~0.5 s at 8K."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=1)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        frame = av.VideoFrame.from_ndarray(
            np.full((height * 3 // 2, width), 128, dtype=np.uint8), format="yuv420p"
        )
        frame.pts = 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return buffer.getvalue()


def test_frames_over_the_pixel_limit_are_refused_before_decoding() -> None:
    data = _flat_video(8192, 5120)  # 41.9 Mpx, over the default 40 Mpx
    # The MP4 muxer writes the header (moov) last: blank every coded frame before it, so any
    # attempt to decode would fail differently from the size check.
    start, end = data.index(b"mdat") + 4, data.index(b"moov") - 4
    blanked = data[:start] + bytes(end - start) + data[end:]

    for video in (data, blanked):
        with pytest.raises(
            MediaDecodeError, match=r"8192x5120 = 41943040 pixels; limit is 40000000"
        ):
            hash_video(video)


def test_pixel_limit_is_inclusive() -> None:
    data = media.video(13, seconds=1, size=(320, 180))

    assert hash_video(data, VideoBudget(max_pixels=320 * 180)).frame_count == 1
    with pytest.raises(MediaDecodeError, match="limit is 57599"):
        hash_video(data, VideoBudget(max_pixels=320 * 180 - 1))


@functools.cache
def _small_mp4() -> bytes:
    return media.video(14, seconds=2, size=(128, 72))


@functools.cache
def _small_webm() -> bytes:
    return media.webm(14, seconds=2, size=(128, 128))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x00", id="one_byte"),
        pytest.param(np.random.default_rng(0).bytes(20_000), id="random_bytes"),
        pytest.param(b"GIF89a this is not really a gif" * 10, id="text_with_gif_magic"),
        pytest.param(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom", id="mp4_header_only"),
    ],
)
def test_garbage_is_refused(data: bytes) -> None:
    with pytest.raises(MediaDecodeError):
        hash_video(data)


def _broken(name: str) -> bytes:
    data = _small_mp4()
    start, end = data.index(b"mdat") + 4, data.index(b"moov") - 4
    if name == "truncated_mp4":
        # The MP4 header (moov) is at the end: half a file has no index of its frames.
        return data[: len(data) // 2]
    if name == "frames_zeroed":
        return data[:start] + bytes(end - start) + data[end:]
    if name == "unknown_codec":
        # An unknown codec id gives PyAV no decoder context at all.
        return data.replace(b"avc1", b"zzzz")
    assert name == "no_video_stream"
    return _audio_only()


@pytest.mark.parametrize(
    "name", ["truncated_mp4", "frames_zeroed", "unknown_codec", "no_video_stream"]
)
def test_broken_videos_are_refused(name: str) -> None:
    with pytest.raises(MediaDecodeError):
        hash_video(_broken(name))


def test_truncated_webm_hashes_what_is_there() -> None:
    # WebM is written front to back, so a cut-off download still yields its first frames.
    whole = hash_video(_small_webm())

    cut = hash_video(_small_webm()[: len(_small_webm()) // 2])

    assert 1 <= cut.frame_count <= whole.frame_count
    assert cut.stored[0] == whole.stored[0]


def _audio_only() -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 800), dtype=np.int16), format="s16", layout="mono"
        )
        frame.sample_rate, frame.pts = 8000, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return buffer.getvalue()


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(
    which=st.sampled_from(["mp4", "webm"]),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=20),
    keep=st.floats(0.05, 1.0),
)
def test_mutated_videos_hash_or_raise_media_decode_error(
    which: str, edits: list[tuple[float, int]], keep: float
) -> None:
    data = bytearray(_small_mp4() if which == "mp4" else _small_webm())
    for where, value in edits:
        data[int(where * len(data))] = value
    data = data[: max(1, int(keep * len(data)))]

    try:
        result = hash_video(bytes(data))
    except MediaDecodeError:
        return
    assert result.kind == "video"
    assert all(isinstance(f, Fingerprint) for f in result.stored)


def test_budget_values_are_checked() -> None:
    with pytest.raises(ValueError, match="seconds_per_sample is 0; expected"):
        VideoBudget(seconds_per_sample=0)
    with pytest.raises(ValueError, match="max_frames is 0; expected"):
        VideoBudget(max_frames=0)


def test_frame_hash_fields() -> None:
    scan = scan_video(media.video(15, seconds=2, size=(128, 72)), VideoBudget())

    assert all(isinstance(f, FrameHash) for f in scan.frames)
    assert [f.index for f in scan.frames] == [0, 1]
    assert all(0 <= f.value < 1 << 256 and 0 <= f.quality <= 100 for f in scan.frames)


def test_distinct_frames_drops_near_duplicates_and_spreads_the_rest() -> None:
    from hashdb.fingerprint import Fingerprint
    from hashdb.signals import PDQ, VPDQ
    from hashdb.video import distinct_frames

    # Frames 0..99, each far from the others, each followed by a near copy (3 bits off).
    frames = []
    for n in range(100):
        value = (n * 0x9E3779B97F4A7C15_9E3779B97F4A7C15) % 2**256
        frames.append(Fingerprint(VPDQ.name, value, 90, float(2 * n)))
        frames.append(Fingerprint(VPDQ.name, value ^ 0b111, 90, float(2 * n + 1)))
    photo = Fingerprint(PDQ.name, 12345, 90)

    kept = distinct_frames((photo, *frames), within=16, at_most=25)

    assert kept[0] == photo
    seconds = [f.seconds for f in kept[1:]]
    assert len(seconds) == 25 and seconds[0] == 0.0 and seconds[-1] == 198.0
    assert all(int(s or 0) % 2 == 0 for s in seconds)
    assert len(distinct_frames(tuple(frames), within=16, at_most=1000)) == 100
    with pytest.raises(ValueError, match="at_most is 0"):
        distinct_frames(tuple(frames), within=16, at_most=0)


def test_distinct_frames_of_a_long_dense_video_are_thinned_first_and_still_spread() -> None:
    from hashdb.fingerprint import Fingerprint
    from hashdb.signals import VPDQ
    from hashdb.video import distinct_frames

    # 20,000 distinct frames: compared all with all, that is 200M comparisons in Python.
    frames = tuple(
        Fingerprint(VPDQ.name, (n * 0x9E3779B97F4A7C15_9E3779B97F4A7C15) % 2**256, 90, float(n))
        for n in range(20_000)
    )
    kept = distinct_frames(frames, within=16, at_most=64)
    seconds = [f.seconds for f in kept]
    assert len(seconds) == 64 and seconds[0] == 0.0 and seconds[-1] == 19_999.0
    assert seconds == sorted(seconds)
