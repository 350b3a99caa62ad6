"""Opening a video file safely, and reading its frames in time order.

The container-level half of video fingerprinting (``hashdb.video`` samples and hashes):
FFmpeg is offered a fixed list of demuxers, an MP4's sample tables are counted before FFmpeg
indexes them, frame sizes are checked against the budget, keyframe times are read from the
packets without decoding, and frames come out with their time in seconds, seeking across
long gaps.
"""

from __future__ import annotations

import io
import math
import struct
import time
from collections.abc import Iterator
from fractions import Fraction
from typing import IO, Any, Final

import av

from hashdb.fingerprint import MediaDecodeError, SkipReason

#: A gap between samples longer than this is crossed by seeking, not by decoding.
SEEK_GAP_SECONDS: Final = 2.0
#: Frames (and audio samples) an MP4/MOV may list in its sample tables. FFmpeg builds an
#: index entry (~35 bytes) for each while opening the file, before any budget applies, and
#: run-length tables let a 1 kB file list 80 million of them (2.9 GB of index). 5 million
#: is 46 hours at 30 fps, with an index of ~175 MB.
MAX_LISTED_SAMPLES: Final = 5_000_000

# Only these demuxers are tried. FFmpeg would otherwise sniff ~350 formats, among them
# playlists (concat, HLS) that open other files: a "video" holding "ffconcat version 1.0
# / file x.mp4" had the worker read x.mp4 from its working directory, or from the local Bot
# API server's folder of other users' files. Still images stay (a photo sent as a video
# hashes as a one-frame video).
_DEMUXERS: Final = (
    "mov,mp4,matroska,webm,avi,mpegts,mpeg,flv,asf,ogg,gif,"
    "image2,jpeg_pipe,png_pipe,webp_pipe,bmp_pipe,tiff_pipe"
)
DEMUXER_NAMES: Final = "MP4, MOV, 3GP, WebM, MKV, AVI, MPEG-TS, MPEG-PS, FLV, WMV, Ogg, GIF"


def open_video(data: bytes | str) -> Any:
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    return av.open(
        source,
        mode="r",
        metadata_errors="ignore",
        container_options={"format_whitelist": _DEMUXERS},
    )


#: Packets read looking for keyframes before deciding from what was seen (a 10-minute
#: 60 fps video has 36,000 video packets).
_MAX_PROBED_PACKETS: Final = 50_000


def keyframe_times(data: bytes | str, deadline: float) -> list[float] | None:
    """Times of the first video stream's keyframes, read from its packets without decoding
    (a few milliseconds); None when they cannot be read, or not by ``deadline``
    (``time.monotonic``), which means: decode them all."""
    try:
        with open_video(data) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            base = stream.time_base
            if base is None:
                return None
            times: list[float] = []
            # Every stream's packets are read (and counted): a file of few video packets
            # among millions of others must not be read to its end.
            for count, packet in enumerate(container.demux()):
                if count >= _MAX_PROBED_PACKETS:
                    break
                if count % 1000 == 999 and time.monotonic() > deadline:
                    return None
                if packet.stream is not stream:
                    continue
                if packet.is_keyframe and packet.pts is not None:
                    times.append(float(packet.pts * base))
            times.append(_end_time(container, stream, times))
            return times
    except (av.FFmpegError, ValueError, OSError, MemoryError):
        return None


def _end_time(container: Any, stream: Any, times: list[float]) -> float:
    duration = duration_of(container, stream)
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    return start + duration if duration is not None else (times[-1] if times else 0.0)


def check_frame_size(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise MediaDecodeError(
            f"video frames are {width}x{height} = {width * height} pixels; limit is {max_pixels}",
            SkipReason.TOO_LARGE,
        )


# Where each sample table keeps its 32-bit sample count, counted from its type field
# (stsz and stz2: 4 bytes of version/flags and a size field first; trun: version/flags).
_COUNT_AT: Final = {b"stsz": 12, b"stz2": 12, b"trun": 8}
#: Top-level boxes read before refusing; a real MP4 has a few, a fragmented one two per
#: fragment.
_MAX_BOXES: Final = 100_000
# Top-level boxes that make a file an MP4 (FFmpeg reads "free" and "hoov" as a moov too).
_MP4_BOXES: Final = frozenset({b"ftyp", b"styp", b"moov", b"moof", b"mdat", b"free", b"hoov"})
_CHUNK: Final = 1 << 20
# Index entries are 24 bytes and FFmpeg allocates at most 2 GB at once (av_max_alloc).
_FFMPEG_REFUSES: Final = (1 << 31) // 24


def check_listed_samples(data: bytes | str) -> None:
    """Refuse an MP4/MOV whose sample tables list more than ``MAX_LISTED_SAMPLES`` samples.

    FFmpeg reads every top-level box but ``mdat`` (the media) as structure, and applies a
    table wherever it sits in one, so each such box is searched for table types rather
    than walked the way a well-formed file nests them. Top-level boxes are followed as
    FFmpeg follows them, whatever their type; a file none of whose boxes is an MP4 box
    (every other format) is not searched, since its media would give chance matches.
    """
    with io.BytesIO(data) if isinstance(data, bytes) else open(data, "rb") as source:
        end = source.seek(0, io.SEEK_END)
        boxes: list[tuple[int, int, bytes]] = []
        at = 0
        while at + 8 <= end:
            if len(boxes) == _MAX_BOXES:
                raise MediaDecodeError(
                    f"the file has over {_MAX_BOXES} MP4 boxes; expected a few",
                    SkipReason.TOO_LARGE,
                )
            source.seek(at)
            header = source.read(16)
            size, kind = struct.unpack(">I4s", header[:8])
            if size == 1 and len(header) == 16:  # a 64-bit size follows the type
                (size,) = struct.unpack(">Q", header[8:])
            elif size == 0:  # the box runs to the end of the file
                size = end - at
            if size < 8:
                break
            boxes.append((at, min(at + size, end), kind))
            at += size
        listed = 0
        if any(kind in _MP4_BOXES for _, _, kind in boxes):
            for start, stop, kind in boxes:
                if kind != b"mdat":
                    listed += _tables_in(source, start, stop)
    if listed > MAX_LISTED_SAMPLES:
        raise MediaDecodeError(
            f"the file's MP4 sample tables list {listed} frames and audio samples; "
            f"limit is {MAX_LISTED_SAMPLES}",
            SkipReason.TOO_LARGE,
        )


def _tables_in(source: IO[bytes], start: int, end: int) -> int:
    """Samples listed by the sample tables found anywhere in bytes ``start:end``."""
    listed = 0
    at = start
    while at < end:
        # Each chunk starts 4 bytes early (a table's size field) and runs 24 bytes long (the
        # rest of its header), so a table cut at a chunk boundary is still read whole.
        lead = min(4, at - start)
        source.seek(at - lead)
        chunk = source.read(lead + min(_CHUNK + 24, end - at))
        found = chunk.find(b"cmov")
        while found != -1:
            if chunk[found + 8 : found + 12] == b"dcom":
                # Compressed QuickTime headers would hide their tables from this search.
                raise MediaDecodeError(
                    "compressed MOV headers (cmov) are not supported", SkipReason.UNSUPPORTED
                )
            found = chunk.find(b"cmov", found + 1)
        for kind, offset in _COUNT_AT.items():
            found = chunk.find(kind, lead)
            while found != -1 and found < lead + _CHUNK:
                where = found + offset
                if chunk[found - 4 : found] == b"\0\0\0\1":  # a 64-bit size: 8 more bytes
                    where += 8
                count = int.from_bytes(chunk[where : where + 4], "big")
                # A larger count makes FFmpeg's index allocation fail outright (over 2 GB);
                # skipping those also skips chance matches in text ("trunk"), whose
                # bytes are all 0x20 or more.
                if count < _FFMPEG_REFUSES:
                    listed += count
                found = chunk.find(kind, found + 1)
        at += _CHUNK
    return listed


class NextSample:
    """The time of the next frame to hash, updated by the scan as it goes."""

    def __init__(self) -> None:
        self.seconds = 0.0


def frames_of(
    container: Any, stream: Any, upcoming: NextSample, every_frame: bool
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


def duration_of(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration / av.time_base)
    return None
