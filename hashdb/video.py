"""Video decoding and fingerprinting: video bytes -> vPDQ frame hashes.

Plain synchronous functions; callers run them on a worker pool, never on the event loop.

The fingerprint follows vPDQ (Meta's video PDQ, python-threatexchange ``vpdq``): PDQ of
frames sampled every ``seconds_per_sample`` seconds, starting with the first frame, hashed
at the frame's own size (no 512 px step, as the vPDQ reference does). Frames with quality
below the threshold and exact duplicate hashes are dropped, as vPDQ's matcher does.

Decoding uses PyAV (FFmpeg, as the vPDQ reference does) rather than OpenCV because it reads
from memory, so the media never touches the disk; it reports a stream's size and duration
before any frame is decoded, so budgets are applied up front; and it seeks by timestamp.
Sampling seeks to the keyframe before each sample when samples are far apart, instead of
decoding every frame, and every file has a wall-clock and a frame budget: a two-hour or 8K
video costs a bounded amount of work, and yields the frames hashed within it.
"""

from __future__ import annotations

import io
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import av
import numpy as np
import numpy.typing as npt
import pdqhash

from hashdb.fingerprint import Fingerprint, MediaDecodeError, MediaFingerprints
from hashdb.photo import hash_photo
from hashdb.signals import VPDQ

log = logging.getLogger(__name__)

VIDEO_KIND: Final = "video"

#: Frames over this many pixels (above 1080p) are scaled down before hashing: PDQ works on
#: a 64x64 downsample, so a 4K or 8K frame only costs time, and scaling keeps it bounded.
MAX_HASH_PIXELS: Final = 1920 * 1088
#: A gap between samples longer than this is crossed by seeking, not by decoding.
SEEK_GAP_SECONDS: Final = 2.0


@dataclass(frozen=True, slots=True)
class VideoBudget:
    """Limits on the work one video may cost."""

    seconds_per_sample: float = 1.0
    #: Most frames hashed per video; long videos are sampled more sparsely to fit.
    max_frames: int = 600
    #: Wall-clock seconds spent decoding; what was hashed by then is kept.
    max_seconds: float = 20.0
    #: Larger frames are refused before decoding (decompression bombs in video form).
    max_pixels: int = 40_000_000
    min_quality: int = 50

    def __post_init__(self) -> None:
        # A zero interval would divide by zero deep in the scan; say what is accepted instead.
        for name in ("seconds_per_sample", "max_seconds"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"{name} is {value!r}; expected a number of seconds above 0")
        for name in ("max_frames", "max_pixels"):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"{name} is {value!r}; expected an integer of at least 1")


@dataclass(frozen=True, slots=True)
class FrameHash:
    """One hashed frame: its PDQ hash and quality, and where it sits in the video."""

    index: int
    seconds: float
    value: int
    quality: int


@dataclass(frozen=True, slots=True)
class VideoScan:
    """Everything a scan saw: every sampled frame, before quality filtering."""

    frames: tuple[FrameHash, ...]
    width: int
    height: int
    duration: float | None
    #: True when a budget stopped the scan before the end of the video.
    truncated: bool


def hash_video(data: bytes | str, budget: VideoBudget | None = None) -> MediaFingerprints:
    """Fingerprint a video (MP4, WebM, GIF, ...); raises ``MediaDecodeError`` naming why not.

    ``stored`` and ``probes`` are the vPDQ frame hashes (quality-filtered, duplicates
    dropped) in time order.
    """
    budget = budget or VideoBudget()
    scan = scan_video(data, budget)
    frames = fingerprints_of(scan.frames, budget.min_quality)
    return MediaFingerprints(
        kind=VIDEO_KIND,
        stored=frames,
        probes=frames,
        width=scan.width,
        height=scan.height,
        truncated=scan.truncated,
        frame_count=len(scan.frames),
    )


def hash_animation(source: bytes | str, budget: VideoBudget | None = None) -> MediaFingerprints:
    """Like ``hash_video``, but a file with one frame (a still GIF, a one-frame clip) is
    fingerprinted as the photo it is: PDQ with its orientations, and pHash.

    ``source`` is the file's bytes, or the path of a file a local Bot API server keeps (read
    in place, so a large video is never copied into memory).
    """
    fingerprints = hash_video(source, budget)
    if fingerprints.frame_count == 1 and not fingerprints.truncated:
        try:
            data = source if isinstance(source, bytes) else Path(source).read_bytes()
            return hash_photo(data, max_pixels=(budget or VideoBudget()).max_pixels)
        except (MediaDecodeError, OSError):
            pass  # a format Pillow does not read: the frame hash serves
    return fingerprints


def fingerprints_of(frames: tuple[FrameHash, ...], min_quality: int) -> tuple[Fingerprint, ...]:
    """vPDQ's matcher input: frames of enough quality, each distinct hash once, in order."""
    seen: set[int] = set()
    kept: list[Fingerprint] = []
    for frame in frames:
        if frame.quality < min_quality or frame.value in seen:
            continue
        seen.add(frame.value)
        kept.append(Fingerprint(VPDQ.name, frame.value, frame.quality, frame.seconds))
    return tuple(kept)


def scan_video(data: bytes | str, budget: VideoBudget, *, every_frame: bool = False) -> VideoScan:
    """Decode the sampled frames of a video (its bytes, or a file path) and hash each one.

    ``every_frame`` hashes every decoded frame (vPDQ's ``seconds_per_hash = 0``), for
    conformance checks against the reference's per-frame files.
    """
    if not data:
        raise MediaDecodeError("video data is empty (0 bytes)")
    started = time.monotonic()
    what = f"{len(data)} bytes" if isinstance(data, bytes) else "file"
    try:
        source = io.BytesIO(data) if isinstance(data, bytes) else data
        container = av.open(source, mode="r", metadata_errors="ignore")
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise MediaDecodeError(f"not a readable video ({what}): {exc}") from None
    try:
        return _scan(container, budget, every_frame, started)
    except MediaDecodeError:
        raise
    except (av.FFmpegError, ValueError, OSError, MemoryError, RuntimeError) as exc:
        raise MediaDecodeError(f"cannot decode video: {type(exc).__name__}: {exc}") from None
    finally:
        container.close()


def _scan(container: Any, budget: VideoBudget, every_frame: bool, started: float) -> VideoScan:
    if not container.streams.video:
        raise MediaDecodeError("the file has no video stream")
    stream = container.streams.video[0]
    if stream.codec_context is None:
        # PyAV gives no decoder context for a codec id FFmpeg cannot decode (unknown or
        # corrupted header); without this check the scan fails with an AttributeError.
        raise MediaDecodeError("the video stream's codec is unknown or has no decoder")
    stream.thread_type = "AUTO"
    width, height = int(stream.codec_context.width), int(stream.codec_context.height)
    if width <= 0 or height <= 0:
        raise MediaDecodeError(f"video frames are {width}x{height}; both sides must be at least 1")
    if width * height > budget.max_pixels:
        raise MediaDecodeError(
            f"video frames are {width}x{height} = {width * height} pixels; "
            f"limit is {budget.max_pixels}"
        )
    duration = _duration(container, stream)
    interval = budget.seconds_per_sample
    if duration is not None and duration / interval > budget.max_frames:
        # Cover the whole video with at most max_frames samples rather than its start only.
        interval = duration / budget.max_frames
    scale = _scale_for(width, height)

    frames: list[FrameHash] = []
    truncated = False
    # Shared with the frame reader, which seeks ahead to the next sample time.
    upcoming = _NextSample()
    for frame, seconds in _frames(container, stream, upcoming, every_frame):
        # The first frame is always hashed, whatever the clock says, so a scan that runs out
        # of time still yields a fingerprint (and the first frame is always sampled).
        if frames and time.monotonic() - started > budget.max_seconds:
            truncated = True
            break
        if not every_frame and seconds + 1e-6 < upcoming.seconds:
            continue
        # Counted only when a frame is due: frames decoded after the last sample of a video
        # that was fully covered do not make the scan "truncated".
        if len(frames) >= budget.max_frames:
            truncated = True
            break
        pixels = _rgb(frame, scale)
        vector, quality = pdqhash.compute(pixels)
        frames.append(FrameHash(len(frames), seconds, _bits_to_int(vector), int(quality)))
        if not every_frame:
            # The next sample is the first frame at or after the next multiple of the
            # interval, as vPDQ samples; a frame gap larger than the interval skips ahead.
            upcoming.seconds = (math.floor(seconds / interval + 1e-9) + 1) * interval
    if not frames and not truncated:
        raise MediaDecodeError("the video has no decodable frames")
    return VideoScan(tuple(frames), width, height, duration, truncated)


class _NextSample:
    """The time of the next frame to hash, updated by the scan as it goes."""

    def __init__(self) -> None:
        self.seconds = 0.0


def _frames(
    container: Any, stream: Any, upcoming: _NextSample, every_frame: bool
) -> Iterator[tuple[Any, float]]:
    """Decoded frames with their time in seconds, seeking across long gaps."""
    time_base = stream.time_base or Fraction(1, 1000)
    start = float(stream.start_time * time_base) if stream.start_time is not None else 0.0
    position = -math.inf
    seekable = not every_frame
    # Each sample time is sought at most once: a seek lands on the keyframe before it, and
    # from there decoding goes forward even when that keyframe is far before the sample.
    sought: float | None = None
    while True:
        target = upcoming.seconds
        if seekable and position > -math.inf and target - position > SEEK_GAP_SECONDS:
            try:
                container.seek(int((target + start) / time_base), stream=stream, backward=True)
                sought = target
            except av.FFmpegError:
                seekable = False
        for frame in container.decode(stream):
            position = _frame_seconds(frame, time_base, start, position)
            yield frame, position
            ahead = upcoming.seconds
            if seekable and ahead != sought and ahead - position > SEEK_GAP_SECONDS:
                break
        else:
            return


def _frame_seconds(frame: Any, time_base: Fraction, start: float, previous: float) -> float:
    if frame.pts is None:
        # No timestamp (some GIFs and raw streams): count on from the previous frame.
        return 0.0 if previous == -math.inf else previous + 1 / 30
    return max(0.0, float(frame.pts * time_base) - start)


def _duration(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration / av.time_base)
    return None


def _scale_for(width: int, height: int) -> tuple[int, int] | None:
    pixels = width * height
    if pixels <= MAX_HASH_PIXELS:
        return None
    factor = math.sqrt(MAX_HASH_PIXELS / pixels)
    return max(1, int(width * factor)), max(1, int(height * factor))


def _rgb(frame: Any, scale: tuple[int, int] | None) -> npt.NDArray[np.uint8]:
    if scale is None:
        array: npt.NDArray[np.uint8] = frame.to_ndarray(format="rgb24")
    else:
        array = frame.to_ndarray(
            format="rgb24", width=scale[0], height=scale[1], interpolation="AREA"
        )
    return array


def _bits_to_int(vector: Any) -> int:
    packed = np.packbits(np.asarray(vector, dtype=np.uint8))
    return int.from_bytes(packed.tobytes(), "big")
