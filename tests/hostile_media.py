"""Hostile media, made in memory: every kind of file a member can send to hurt the bot, and
what the bot does with each (``docs/reliability.md`` has the table).

``tests/hashdb/test_hostile_media.py`` runs the whole table through the bot's hashing, and
``tests/e2e/test_hostile_media_e2e.py`` sends some of the cases through the running bot.
"""

from __future__ import annotations

import functools
import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from PIL import Image

from bot.config import load_config
from tests import media

#: The budgets the table runs with: the defaults, but for a short time budget.
BUDGETS = {
    "HASHGUARD_MEDIA_HASH_TIMEOUT_SECONDS": "10",
    "HASHGUARD_VIDEO_BUDGET_SECONDS": "1",
    "HASHGUARD_MEDIA_WORKERS": "1",
}


CONFIG = load_config(None, environ=BUDGETS, require_token=False)
#: Another user's video, in the folder where a local Bot API server keeps the files.
NEIGHBOUR = "neighbour.mp4"


def _png(width: int, height: int) -> bytes:
    """A 1-bit black PNG of any size: a few kB of zlib for hundreds of MB of pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    compressor = zlib.compressobj(9)
    row = bytes((width + 7) // 8 + 1)
    rows = max(1, min(height, (1 << 20) // len(row)))
    idat = [compressor.compress(row * rows) for _ in range(height // rows)]
    idat.append(compressor.compress(row * (height % rows)))
    idat.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(idat)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def _gif(frames: int, screen: tuple[int, int] = (1, 1)) -> bytes:
    """A GIF of ``frames`` 1x1 frames (23 bytes each) on a logical screen of any size."""
    parts = [b"GIF89a", struct.pack("<HHBBB", *screen, 0x80, 0, 0), b"\x00\x00\x00\xff\xff\xff"]
    black, white = b"\x02\x02\x44\x01\x00", b"\x02\x02\x4c\x01\x00"
    for i in range(frames):
        parts.append(b"\x21\xf9\x04\x00\x01\x00\x00\x00")  # 10 ms a frame
        parts.append(b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0))
        parts.append(white if i % 2 else black)
    return b"".join([*parts, b"\x3b"])


def _riff(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("<I", len(body)) + body + b"\x00" * (len(body) % 2)


def _webp(frames: int, canvas: tuple[int, int] = (1, 1)) -> bytes:
    """An animated WebP: ``frames`` 1x1 frames on a canvas of any size (WebP's limit is 2^24)."""
    still = io.BytesIO()
    Image.new("RGB", (1, 1), (200, 10, 10)).save(still, "WEBP", lossless=True)
    at = still.getvalue().index(b"VP8L")
    (size,) = struct.unpack("<I", still.getvalue()[at + 4 : at + 8])
    vp8l = still.getvalue()[at : at + 8 + size + size % 2]

    def u24(value: int) -> bytes:
        return value.to_bytes(3, "little")

    vp8x = _riff(b"VP8X", b"\x02\x00\x00\x00" + u24(canvas[0] - 1) + u24(canvas[1] - 1))
    anim = _riff(b"ANIM", struct.pack("<IH", 0, 0))
    # Offset 0,0; size 1x1 (stored minus one); 10 ms; no blending or disposal.
    frame = _riff(b"ANMF", u24(0) * 4 + u24(10) + b"\x00" + vp8l)
    body = b"WEBP" + vp8x + anim + frame * frames
    return b"RIFF" + struct.pack("<I", len(body)) + body


@functools.cache
def _jpeg() -> bytes:
    return media.encode(media.photo(31, (320, 240)))


def _with_exif_absurd() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 9999  # Orientation: 1 to 8 exist
    exif[0x0100] = exif[0x0101] = 2**32 - 1  # ImageWidth, ImageLength
    sub = exif.get_ifd(0x8769)
    sub[0xA002] = sub[0xA003] = 2**32 - 1  # PixelXDimension, PixelYDimension
    return media.encode(media.photo(31, (320, 240)), exif=exif.tobytes())


def _with_app1(payload: bytes, copies: int = 1) -> bytes:
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return _jpeg()[:2] + segment * copies + _jpeg()[2:]


def _with_exif_huge() -> bytes:
    """300 full APP1 segments: 19.6 MB of EXIF around a 10 kB photo, under the 20 MB cap."""
    ifd = b"MM\x00\x2a\x00\x00\x00\x08\xff\xff"  # an IFD claiming 65535 entries
    return _with_app1(b"Exif\x00\x00" + ifd + bytes(65533 - 2 - 6 - len(ifd)), copies=300)


def _with_exif_loop() -> bytes:
    """An IFD whose entries claim 4 billion values and whose next IFD is itself."""
    ifd = struct.pack(">H", 2)
    ifd += struct.pack(">HHII", 0x0112, 3, 0xFFFFFFFF, 8)  # Orientation x 4 billion
    ifd += struct.pack(">HHII", 0x8769, 4, 1, 8)  # the Exif sub-IFD: this one again
    ifd += struct.pack(">I", 8)
    return _with_app1(b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08" + ifd)


def h264(
    width: int, height: int, frames: int = 1, fps: Fraction = Fraction(1), fmt: str = "mp4"
) -> bytes:
    """Flat H.264 frames made from YUV directly (an 8K frame costs ~0.2 s)."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=fmt) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        stream.codec_context.thread_count = 1
        for pts in range(frames):
            luma = 40 + 50 * (pts % 4)
            yuv = np.full((height * 3 // 2, width), luma, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            frame.pts = pts
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def _box(data: bytes, *path: bytes) -> int:
    """Offset of the MP4 box at ``path`` (e.g. moov, trak, ...)."""
    start, end = 0, len(data)
    for kind in path:
        at = start
        while at < end:
            size, found = struct.unpack(">I4s", data[at : at + 8])
            if found == kind:
                start, end = at + 8, at + size
                break
            at += size
        else:
            raise KeyError(kind)
    return start - 8


def listing_frames(count: int) -> bytes:
    """A one-frame MP4 whose run-length sample tables list ``count`` frames (no data)."""
    data = bytearray(h264(64, 64))
    stbl = (b"moov", b"trak", b"mdia", b"minf", b"stbl")
    stts, stsz, stsc = (_box(bytes(data), *stbl, kind) for kind in (b"stts", b"stsz", b"stsc"))
    data[stts + 16 : stts + 20] = struct.pack(">I", count)  # one run of `count` samples
    (size,) = struct.unpack(">I", data[stsz + 20 : stsz + 24])
    data[stsz + 12 : stsz + 20] = struct.pack(">II", size, count)  # all of one size
    data[stsc + 16 : stsc + 28] = struct.pack(">III", 1, count, 1)  # all in one chunk
    return bytes(data)


def _size_switch() -> bytes:
    """An MPEG-TS whose first 30 s are 64x64 and whose frames then turn 41 Mpx.

    FFmpeg sizes the stream from its first seconds, so only the frames show the switch.
    """
    small = h264(64, 64, frames=30, fmt="mpegts")
    large = io.BytesIO()
    with av.open(large, mode="w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=1)
        stream.width, stream.height, stream.pix_fmt = 6400, 6400, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        frame = av.VideoFrame.from_ndarray(np.full((9600, 6400), 90, np.uint8), format="yuv420p")
        frame.pts = 40
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return small + large.getvalue()


def _zip() -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("photo.jpg", _jpeg())
    return buffer.getvalue()


def _noise(size: int) -> Callable[[], bytes]:
    return lambda: np.random.default_rng(size).bytes(size)


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    #: The MIME type the message claims; the bot picks the hasher from it.
    mime: str
    make: Callable[[], bytes]
    #: What the bot does with it (docs/reliability.md has this table).
    does: str
    #: Words the refusal names; empty when the file is hashed within its budgets.
    refused: tuple[str, ...] = ()
    #: Read in place from a local Bot API server's folder, next to another user's video.
    local: bool = False


OVER_CAP = CONFIG.media.max_file_bytes + 1
LIMIT = f"limit is {CONFIG.media.max_image_pixels}"
CASES = [
    # Decompression bombs.
    Case(
        "png_30000x30000_bomb", "image/png", lambda: _png(30000, 30000),
        "refused before decoding (Pillow's bomb check)",
        ("900000000 pixels", "decompression bomb", LIMIT),
    ),
    Case(
        "png_bomb_sent_as_video", "video/mp4", lambda: _png(30000, 30000),
        "refused before decoding (FFmpeg gives no frame size)", ("0x0", "too large"),
    ),
    Case(
        "gif_100000_frames", "image/gif", lambda: _gif(100_000),
        "hashed by the video hasher within video.budget_seconds and video.max_frames",
    ),
    Case(
        "gif_65535x65535_screen", "image/gif", lambda: _gif(1, (65535, 65535)),
        "refused before decoding", ("0x0", "too large"),
    ),
    Case(
        "gif_65535x65535_screen_as_jpeg", "image/jpeg", lambda: _gif(1, (65535, 65535)),
        "refused before decoding", ("4294836225 pixels", LIMIT),
    ),
    Case(
        "webp_100000_frames", "image/webp", lambda: _webp(100_000),
        "hashed: the first frame only",
    ),
    Case(
        "webp_16000x16000_canvas", "image/webp", lambda: _webp(1, (16000, 16000)),
        "refused before the canvas is allocated", ("256000000 pixels", LIMIT),
    ),
    Case(
        "webp_canvas_at_pixel_limit", "image/webp", lambda: _webp(1, (6324, 6324)),
        "hashed (40 Mpx of canvas around a 1x1 frame; the costliest file admitted, ~700 MB)",
    ),
    # Truncated and garbage files.
    Case(
        "jpeg_truncated", "image/jpeg", lambda: _jpeg()[: len(_jpeg()) // 2],
        "refused", ("JPEG", "truncated"),
    ),
    Case(
        "png_truncated", "image/png",
        lambda: media.encode(media.photo(32, (400, 300)), "PNG")[:20_000],
        "refused", ("PNG", "truncated"),
    ),
    Case(
        "mp4_truncated", "video/mp4", lambda: media.video(33, seconds=2, size=(128, 72))[:3000],
        "refused (its index, at the end, is missing)", ("not a readable video",),
    ),
    Case(
        "garbage_as_image", "image/jpeg", _noise(50_000),
        "refused", ("not a supported image format", "JPEG, PNG"),
    ),
    Case(
        "garbage_as_video", "video/mp4", _noise(50_001),
        "refused", ("not a readable video", "expected one of: MP4"),
    ),
    # Absurd dimensions and EXIF.
    Case(
        "png_1x40000000_sliver", "image/png", lambda: _png(1, 40_000_000),
        "refused before decoding (within the pixel limit, but 875 MB to decode)",
        ("1x40000000", "at most 65535"),
    ),
    Case(
        "exif_absurd_dimensions_and_orientation", "image/jpeg", _with_exif_absurd,
        "hashed from the pixels; EXIF is ignored, so it cannot dodge a match",
    ),
    Case(
        "exif_19mb_of_app1_segments", "image/jpeg", _with_exif_huge,
        "hashed from the pixels; EXIF is ignored",
    ),
    Case(
        "exif_ifd_loop_claiming_4g_values", "image/jpeg", _with_exif_loop,
        "hashed from the pixels; EXIF is ignored",
    ),
    # Videos that claim hours, millions of frames or 8K.
    Case(
        "mp4_10_hours_in_10_frames", "video/mp4",
        lambda: h264(64, 64, frames=10, fps=Fraction(1, 3600)),
        "hashed: at most video.max_frames samples spread over the whole claimed duration",
    ),
    Case(
        "mp4_listing_40m_frames", "video/mp4", lambda: listing_frames(40_000_000),
        "refused before FFmpeg opens it (its index would take 1.5 GB)",
        ("list 40000000 frames", "limit is 5000000"),
    ),
    Case(
        "mp4_8k_7680x4320", "video/mp4", lambda: h264(7680, 4320, frames=2),
        "hashed; frames are scaled to 1080p before hashing",
    ),
    Case(
        "ts_switching_to_41mpx_frames", "video/mp2t", _size_switch,
        "refused when the decoder meets the first oversized frame (it is never allocated)",
        ("6400x6400 = 40960000 pixels", LIMIT),
    ),
    # Size.
    Case(
        "photo_over_20mb_cap", "image/jpeg", lambda: _jpeg() + bytes(OVER_CAP - len(_jpeg())),
        "refused (handlers refuse it before downloading when Telegram reports the size)",
        (f"{OVER_CAP} bytes", f"limit is {CONFIG.media.max_file_bytes}"),
    ),
    Case("empty_image", "image/jpeg", lambda: b"", "refused", ("empty (0 bytes)",)),
    Case("empty_video", "video/mp4", lambda: b"", "refused", ("empty (0 bytes)",)),
    # Documents whose MIME type lies.
    Case(
        "mp4_as_image_jpeg", "image/jpeg", lambda: h264(64, 64),
        "refused", ("not a supported image format",),
    ),
    Case(
        "pdf_as_image_jpeg", "image/jpeg", lambda: b"%PDF-1.7\n" + bytes(2000) + b"%%EOF\n",
        "refused", ("not a supported image format",),
    ),
    Case(
        "zip_as_image_png", "image/png", _zip, "refused", ("not a supported image format",)
    ),
    Case(
        "ffconcat_playlist_as_video", "video/mp4",
        lambda: f"ffconcat version 1.0\nfile {NEIGHBOUR}\n".encode(),
        "refused: playlists that open other files are not read", ("not a readable video",),
        local=True,
    ),
]  # fmt: skip
