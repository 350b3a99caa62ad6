"""Video fingerprinting: video bytes -> vPDQ frame hashes, read the ways a repost changes
them.

Plain synchronous functions; callers run them on a worker pool, never on the event loop.

What a blocked video stores follows vPDQ (Meta's video PDQ, python-threatexchange
``vpdq``): PDQ of frames sampled every ``seconds_per_sample`` seconds, starting with the
first frame, hashed at the frame's own size (no 512 px step, as the vPDQ reference does).
Frames with quality below the threshold and exact duplicate hashes are dropped, as vPDQ's
matcher does. Local features of up to ``BLOCK_MOMENTS`` moments are stored with it, a fixed
camera's background marked (``hashdb.local_format.mark_moving``).

An upload is checked (``check=True``) for speed and for the edits reposts make:

* sampling: at its keyframes only when they are at most ``KEYFRAME_GAP_SECONDS`` apart
  (nothing else is decoded), else every interval with frames no other frame refers to
  skipped; grey frames scaled to ``CHECK_SIDE``;
* views: each sample is hashed mirrored too, and the picture's own rectangle inside bars, a
  blurred fill, a caption bar or a round mask (``hashdb.video_regions``), found from the
  first ``REGION_FRAMES`` samples, is hashed in every sample with its mirror. The matcher
  applies its rule to each view on its own;
* moments: local features of up to ``CHECK_MOMENTS`` moments and their mirrors, for crops
  and picture-in-picture.

Decoding uses PyAV (FFmpeg, as the vPDQ reference does; see ``hashdb.video_container``):
it reads from memory, so the media never touches the disk; it reports a stream's size and
duration before any frame is decoded, so budgets are applied up front; and it seeks by
timestamp across long gaps. Every file has a wall-clock and a frame budget: a two-hour or
8K video costs a bounded amount of work, and yields the frames hashed within it.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import av
import numpy as np
import numpy.typing as npt

from hashdb import pdq
from hashdb.fingerprint import Fingerprint, MediaDecodeError, MediaFingerprints, SkipReason
from hashdb.local import MOMENT_FEATURES, extract_array
from hashdb.local_format import LocalFeatures, mark_moving
from hashdb.photo import hash_photo
from hashdb.regions import Region
from hashdb.signals import VPDQ
from hashdb.video_container import (
    DEMUXER_NAMES,
    NextSample,
    check_frame_size,
    check_listed_samples,
    duration_of,
    frames_of,
    keyframe_times,
    open_video,
)
from hashdb.video_regions import find_regions

log = logging.getLogger(__name__)

VIDEO_KIND: Final = "video"

#: Frames over this many pixels (above 1080p) are scaled down before hashing: PDQ works on
#: a 64x64 downsample, so a 4K or 8K frame only costs time, and scaling keeps it bounded.
MAX_HASH_PIXELS: Final = 1920 * 1088
#: An upload is checked from grey frames scaled to this longer side: PDQ at 768 px costs a
#: third of what it costs at 1280x720, and on the vPDQ reference videos moves a hash by 2
#: bits (median; 23 at the 90th percentile) from the full-size frame's (512 px: 10 and 27).
#: Blocked videos keep the reference's full-size hashes.
CHECK_SIDE: Final = 768
#: An upload whose keyframes are never further apart than this is sampled at its keyframes
#: only (FFmpeg then skips decoding every other frame: 10x faster for a 720p clip with a
#: keyframe every 2 s). Wider gaps would leave too few samples; the frames between are then
#: decoded, skipping only those no other frame refers to.
KEYFRAME_GAP_SECONDS: Final = 2.05
#: Shorter videos are sampled at every interval: they are quick to decode, and sampling only
#: their keyframes would leave a few seconds' clip with one or two frames.
KEYFRAME_MIN_SECONDS: Final = 10.0
#: Samples kept in memory to find the picture's own rectangle from (at most ~35 MB; 20 MB
#: for 16:9); later samples are cut to the rectangle found as they arrive.
REGION_FRAMES: Final = 60
#: Moments of a video whose local features are taken: an upload's, and a blocked video's.
CHECK_MOMENTS: Final = 8
BLOCK_MOMENTS: Final = 16
#: Moments of a blocked video are at least this far apart (a short clip gets fewer).
MOMENT_SPACING_SECONDS: Final = 1.0
#: Seconds between moments of a video of unknown length.
UNKNOWN_LENGTH_SPACING: Final = 3.0


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
    #: For a check: the same samples read other ways, by name ("mirror"; "region1" for
    #: the picture's own rectangle inside a re-framed video, "region1_mirror"...).
    views: tuple[tuple[str, tuple[FrameHash, ...]], ...] = ()
    #: The rectangles those region views were cut from, in CHECK_SIDE-scaled pixels.
    regions: tuple[Region, ...] = ()
    #: Local features of a few moments (when asked for).
    moments: tuple[LocalFeatures, ...] = ()
    #: Seconds between samples, as taken (keyframe sampling spaces them wider).
    spacing: float | None = None


def hash_video(
    data: bytes | str,
    budget: VideoBudget | None = None,
    *,
    check: bool = False,
    local: bool = False,
) -> MediaFingerprints:
    """Fingerprint a video (MP4, WebM, GIF, ...); raises ``MediaDecodeError`` naming why not.

    ``stored`` and ``probes`` are the vPDQ frame hashes (quality-filtered, duplicates
    dropped) in time order. ``check`` hashes an upload for checking rather than for
    storing: quicker sampling and smaller frames (see ``CHECK_SIDE``), and more ways to read
    each frame (``views``: mirrored, and the picture's own rectangle inside bars, a blurred
    fill or a caption). ``local`` adds local features of a few moments (``moments``), so
    crops of the video are found; a blocked video's are stored.
    """
    budget = budget or VideoBudget()
    scan = scan_video(data, budget, check=check, local=local)
    frames = fingerprints_of(scan.frames, budget.min_quality)
    views = tuple(
        kept for _, view in scan.views if (kept := fingerprints_of(view, budget.min_quality))
    )
    stored = frames
    if not check:
        # A blocked video that is itself re-framed (bars, a blurred fill, a caption) also
        # keeps its picture's rectangle, frame by frame, so the plain picture or another
        # re-framing of it matches too.
        regions = [f for view in views for f in view]
        stored = tuple(sorted((*frames, *regions), key=lambda f: f.seconds or 0.0))
        views = ()
    return MediaFingerprints(
        kind=VIDEO_KIND,
        stored=stored,
        probes=frames,
        width=scan.width,
        height=scan.height,
        truncated=scan.truncated,
        frame_count=len(scan.frames),
        views=views,
        moments=scan.moments,
        sample_spacing=scan.spacing,
    )


def hash_animation(
    source: bytes | str,
    budget: VideoBudget | None = None,
    *,
    check: bool = False,
    local: bool = False,
) -> MediaFingerprints:
    """Like ``hash_video``, but a file with one frame (a still GIF, a one-frame clip) is
    fingerprinted as the photo it is: PDQ with its orientations, and pHash.

    ``source`` is the file's bytes, or the path of a file a local Bot API server keeps (read
    in place, so a large video is never copied into memory).
    """
    fingerprints = hash_video(source, budget, check=check, local=local)
    if fingerprints.frame_count == 1 and not fingerprints.truncated:
        try:
            data = source if isinstance(source, bytes) else Path(source).read_bytes()
            return hash_photo(
                data,
                max_pixels=(budget or VideoBudget()).max_pixels,
                for_block=not check,
                # A still blocked as a video keeps its local features, as a photo does.
                local=local or not check,
            )
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


def scan_video(
    data: bytes | str,
    budget: VideoBudget,
    *,
    every_frame: bool = False,
    check: bool = False,
    local: bool = False,
) -> VideoScan:
    """Decode the sampled frames of a video (its bytes, or a file path) and hash each one.

    ``every_frame`` hashes every decoded frame (vPDQ's ``seconds_per_hash = 0``), for
    conformance checks against the reference's per-frame files. ``check`` and ``local``:
    see ``hash_video``.
    """
    if not data:
        raise MediaDecodeError("video data is empty (0 bytes)", SkipReason.EMPTY)
    started = time.monotonic()
    what = f"{len(data)} bytes" if isinstance(data, bytes) else "file"
    try:
        check_listed_samples(data)
        # A tenth of the budget at most: past that, every frame is decoded instead.
        deadline = started + budget.max_seconds / 10
        keyframes = keyframe_times(data, deadline) if check and not every_frame else None
        container = open_video(data)
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise MediaDecodeError(
            f"not a readable video ({what}): {exc}; expected one of: {DEMUXER_NAMES}"
        ) from None
    try:
        reader = _Reader(budget, every_frame=every_frame, check=check, local=local)
        return reader.scan(container, keyframes, started)
    except MediaDecodeError:
        raise
    except (av.FFmpegError, ValueError, OSError, MemoryError, RuntimeError, IndexError) as exc:
        # IndexError: a hashing or feature library refusing a degenerate frame.
        raise MediaDecodeError(f"cannot decode video: {type(exc).__name__}: {exc}") from None
    finally:
        container.close()


def _keyframe_sampling(keyframes: list[float] | None, interval: float) -> bool:
    """Whether sampling only keyframes keeps samples close enough together."""
    if keyframes is None or len(keyframes) < 3:
        return False
    if keyframes[-1] - keyframes[0] < KEYFRAME_MIN_SECONDS:
        return False
    ordered = sorted(keyframes)
    widest = max(b - a for a, b in itertools.pairwise(ordered))
    return widest <= max(KEYFRAME_GAP_SECONDS, interval * 1.5)


class _Reader:
    """One pass over a video: samples frames and hashes each the ways asked for."""

    def __init__(self, budget: VideoBudget, *, every_frame: bool, check: bool, local: bool):
        self.budget = budget
        self.every_frame = every_frame
        self.check = check
        self.local = local
        self.frames: list[FrameHash] = []
        self.mirrored: list[FrameHash] = []
        #: Grey CHECK_SIDE frames kept until the picture's rectangle is known.
        self.kept: list[npt.NDArray[np.uint8]] = []
        self.regions: tuple[Region, ...] | None = None
        #: The size of the frames the regions were found in.
        self.region_shape: tuple[int, ...] | None = None
        self.region_views: list[list[FrameHash]] = []
        self.moment_times: list[float] = []
        self.moments: list[LocalFeatures] = []

    def scan(self, container: Any, keyframes: list[float] | None, started: float) -> VideoScan:
        budget = self.budget
        if not container.streams.video:
            raise MediaDecodeError("the file has no video stream", SkipReason.UNSUPPORTED)
        stream = container.streams.video[0]
        if stream.codec_context is None:
            # PyAV gives no decoder context for a codec id FFmpeg cannot decode (unknown or
            # corrupted header); without this check the scan fails with an AttributeError.
            raise MediaDecodeError(
                "the video stream's codec is unknown or has no decoder", SkipReason.UNSUPPORTED
            )
        stream.thread_type = "AUTO"
        width, height = int(stream.codec_context.width), int(stream.codec_context.height)
        if width <= 0 or height <= 0:
            raise MediaDecodeError(
                f"video frames are {width}x{height} (no size, or one FFmpeg refused as too "
                "large); both sides must be at least 1"
            )
        check_frame_size(width, height, budget.max_pixels)
        # The header's size only describes the first frames: a stream can switch to far
        # larger ones later. The decoder refuses those before allocating them.
        codec = stream.codec_context
        codec.options = {"max_pixels": str(budget.max_pixels)}
        duration = duration_of(container, stream)
        interval = budget.seconds_per_sample
        if duration is not None and duration / interval > budget.max_frames:
            # Cover the whole video with at most max_frames samples rather than its start.
            interval = duration / budget.max_frames
        by_keyframe = self.check and _keyframe_sampling(keyframes, interval)
        if self.check:
            # A check needs the sampled frames only: frames no other frame refers to are
            # not decoded at all, and with keyframe sampling nothing but keyframes is. The
            # deblocking filter is skipped too (a fifth of H.264's decoding time): it
            # smooths block edges that PDQ's 64x64 downsample hardly sees.
            codec.skip_frame = "NONKEY" if by_keyframe else "NONREF"
            codec.options = {**codec.options, "skip_loop_filter": "all"}
        if self.local:
            self.moment_times = _moment_times(
                duration, CHECK_MOMENTS if self.check else BLOCK_MOMENTS
            )

        truncated = False
        # Shared with the frame reader, which seeks ahead to the next sample time.
        upcoming = NextSample()
        # With keyframe sampling, a keyframe this early still counts as the next sample.
        early = interval / 4 if by_keyframe else 0.0
        try:
            for frame, seconds in frames_of(container, stream, upcoming, self.every_frame):
                # The first frame is always hashed, whatever the clock says, so a scan that
                # runs out of time still yields a fingerprint.
                if self.frames and time.monotonic() - started > budget.max_seconds:
                    truncated = True
                    break
                if not self.every_frame and seconds + early + 1e-6 < upcoming.seconds:
                    continue
                # Counted only when a frame is due: frames decoded after the last sample of
                # a video that was fully covered do not make the scan "truncated".
                if len(self.frames) >= budget.max_frames:
                    truncated = True
                    break
                check_frame_size(frame.width, frame.height, budget.max_pixels)
                if by_keyframe and self.frames:
                    gap = seconds - self.frames[-1].seconds
                    if gap > 2 * max(KEYFRAME_GAP_SECONDS, interval):
                        # The container's keyframe marks promised closer keyframes than
                        # the stream has: decode the frames between from here on.
                        by_keyframe, early = False, 0.0
                        codec.skip_frame = "NONREF"
                self._sample(frame, seconds)
                if by_keyframe:
                    upcoming.seconds = seconds + interval
                elif not self.every_frame:
                    # The next sample is the first frame at or after the next multiple of
                    # the interval, as vPDQ samples; a frame gap larger than the interval
                    # skips ahead.
                    upcoming.seconds = (math.floor(seconds / interval + 1e-9) + 1) * interval
        except av.FFmpegError:
            # A decoder that refused an oversized frame has read its size by then.
            check_frame_size(int(codec.width), int(codec.height), budget.max_pixels)
            raise
        # With frame threads the decoder drops an oversized frame silently instead.
        check_frame_size(int(codec.width), int(codec.height), budget.max_pixels)
        if not self.frames and not truncated:
            raise MediaDecodeError("the video has no decodable frames")
        self._find_regions()
        return VideoScan(
            tuple(self.frames),
            width,
            height,
            duration,
            truncated,
            views=self._views(),
            regions=self.regions or (),
            # A blocked video's fixed-camera background does not count toward a match.
            moments=tuple(self.moments) if self.check else mark_moving(self.moments),
            spacing=_spacing(self.frames),
        )

    def _sample(self, frame: Any, seconds: float) -> None:
        index = len(self.frames)
        grey: npt.NDArray[np.uint8] | None = None
        if self.check:
            grey = _grey(frame, CHECK_SIDE)
            value, quality = _pdq(grey)
            self.frames.append(FrameHash(index, seconds, value, quality))
            value, quality = _pdq(grey[:, ::-1])
            self.mirrored.append(FrameHash(index, seconds, value, quality))
            self._reframed(index, seconds, grey)
        else:
            pixels = _rgb(frame, _scale_for(frame.width, frame.height))
            vector, quality = pdq.compute(pixels)
            self.frames.append(FrameHash(index, seconds, _bits_to_int(vector), int(quality)))
            if not self.every_frame and (self.regions is None or self.regions):
                grey = _grey(frame, CHECK_SIDE)
                self._reframed(index, seconds, grey)
        if self.moment_times and seconds + 1e-6 >= self.moment_times[0]:
            while self.moment_times and seconds + 1e-6 >= self.moment_times[0]:
                self.moment_times.pop(0)
            if grey is None:
                grey = _grey(frame, CHECK_SIDE)
            # An upload's moment is read mirrored too (ORB is not mirror-invariant, and a
            # mirrored crop must still be found); both carry the same time.
            for view in (grey, grey[:, ::-1]) if self.check else (grey,):
                features = extract_array(np.ascontiguousarray(view), MOMENT_FEATURES, seconds)
                if features is not None:
                    self.moments.append(features)

    def _reframed(self, index: int, seconds: float, grey: npt.NDArray[np.uint8]) -> None:
        """Keep the sample until the picture's rectangle is known, then hash it there.

        A stream can change its frame size midway: the rectangle is found from frames of
        the first size, and only frames of that size are cut to it.
        """
        if self.regions is None:
            if self.kept and grey.shape != self.kept[0].shape:
                self._find_regions()
            else:
                self.kept.append(grey)
                if len(self.kept) >= REGION_FRAMES:
                    self._find_regions()
                return
        if grey.shape == self.region_shape:
            self._hash_regions(index, seconds, grey)

    def _find_regions(self) -> None:
        """Find the picture's rectangle in the kept frames, and hash it in each of them."""
        if self.every_frame or self.regions is not None:
            return
        self.regions = find_regions(self.kept) if self.kept else ()
        self.region_shape = self.kept[0].shape if self.kept else None
        self.region_views = [[] for _ in range(self._readings * len(self.regions))]
        for frame, grey in zip(self.frames, self.kept, strict=False):
            self._hash_regions(frame.index, frame.seconds, grey)
        self.kept = []

    @property
    def _readings(self) -> int:
        # A check reads each region mirrored too; a blocked video's is stored as it is.
        return 2 if self.check else 1

    def _hash_regions(self, index: int, seconds: float, grey: npt.NDArray[np.uint8]) -> None:
        for number, region in enumerate(self.regions or ()):
            cut = grey[region.top : region.bottom, region.left : region.right]
            cuts = (cut, cut[:, ::-1]) if self.check else (cut,)
            for reading, view in enumerate(cuts):
                value, quality = _pdq(view)
                frame = FrameHash(index, seconds, value, quality)
                self.region_views[self._readings * number + reading].append(frame)

    def _views(self) -> tuple[tuple[str, tuple[FrameHash, ...]], ...]:
        views: list[tuple[str, tuple[FrameHash, ...]]] = []
        if self.check:
            views.append(("mirror", tuple(self.mirrored)))
        for number, frames in enumerate(self.region_views):
            reading = number % self._readings
            name = f"region{number // self._readings + 1}" + ("_mirror" if reading else "")
            views.append((name, tuple(frames)))
        return tuple(views)


def _moment_times(duration: float | None, count: int) -> list[float]:
    """When to take local features: the first frame, then evenly over the video, at least
    MOMENT_SPACING_SECONDS apart (every UNKNOWN_LENGTH_SPACING seconds when the file does
    not say how long it is, as live-recorded WebM does)."""
    if duration is None or duration <= 0:
        return [i * UNKNOWN_LENGTH_SPACING for i in range(count)]
    count = max(1, min(count, int(duration / MOMENT_SPACING_SECONDS) + 1))
    step = duration / count
    # The first frame, then the middle of each later step (measured: moments at the steps'
    # starts found one crop fewer on the dev corpus, 6/7 against 7/7).
    return [round(i * step + step / 2 if i else 0.0, 3) for i in range(count)]


def _spacing(frames: list[FrameHash]) -> float | None:
    """The typical gap between samples (their median), or None for fewer than two."""
    if len(frames) < 2:
        return None
    gaps = sorted(b.seconds - a.seconds for a, b in itertools.pairwise(frames))
    return gaps[len(gaps) // 2]


def _grey(frame: Any, side: int) -> npt.NDArray[np.uint8]:
    """The frame as a grey array, scaled down (never up) to ``side`` on its longer side."""
    width, height = frame.width, frame.height
    scale = min(1.0, side / max(width, height))
    size = max(1, round(width * scale)), max(1, round(height * scale))
    array: npt.NDArray[np.uint8] = frame.to_ndarray(
        format="gray", width=size[0], height=size[1], interpolation="AREA"
    )
    return array


def _pdq(grey: npt.NDArray[np.uint8]) -> tuple[int, int]:
    """PDQ of a grey array (its luminance is the grey value itself)."""
    vector, quality = pdq.compute(np.dstack((grey, grey, grey)))
    return _bits_to_int(vector), int(quality)


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


def distinct_frames(
    fingerprints: tuple[Fingerprint, ...], *, within: int, at_most: int
) -> tuple[Fingerprint, ...]:
    """A video's frame hashes with near-duplicates dropped (a frame within ``within`` bits
    of one kept before it), then at most ``at_most`` of them, spread evenly over the video.
    Fingerprints other than vPDQ frames are kept as they are."""
    if at_most < 1:
        raise ValueError(f"at_most is {at_most!r}; expected 1 or more frames")
    # Comparing each frame with every frame kept is quadratic, and it runs in Python: a
    # densely hashed long video (thousands of frames) is first thinned, evenly over the
    # video, to a few times the frames that can be kept.
    candidates = _spread([f for f in fingerprints if f.signal == VPDQ.name], 8 * at_most)
    frames: list[Fingerprint] = []
    for fingerprint in candidates:
        if all((fingerprint.value ^ kept.value).bit_count() > within for kept in frames):
            frames.append(fingerprint)
    frames = _spread(frames, at_most)
    chosen = set(map(id, frames))
    return tuple(f for f in fingerprints if f.signal != VPDQ.name or id(f) in chosen)


def _spread(items: list[Fingerprint], at_most: int) -> list[Fingerprint]:
    """At most ``at_most`` of ``items``, evenly spaced from the first to the last."""
    if len(items) <= at_most:
        return items
    last = len(items) - 1
    picks = sorted({round(i * last / max(at_most - 1, 1)) for i in range(at_most)})
    return [items[i] for i in picks]
