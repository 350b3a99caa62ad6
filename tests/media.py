"""Test media made on the fly: photo-like images and videos and their edited copies, as file bytes.

Images are smooth random fields with a few shapes, so PDQ sees photo-like structure (high
quality) and different seeds give unrelated hashes. Videos are pans and zooms over such
images, encoded in memory with PyAV (see the video section).
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction

import av
import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFilter, ImageOps


def photo(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    rng = np.random.default_rng(seed)
    width, height = size
    coarse = rng.integers(0, 256, size=(height // 40 + 2, width // 40 + 2, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, width - 60)), int(rng.integers(0, height - 60))
        x1, y1 = x0 + int(rng.integers(30, width // 2)), y0 + int(rng.integers(30, height // 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        else:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
    return image.filter(ImageFilter.GaussianBlur(1.5))


def encode(image: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        params.setdefault("quality", 90)
        image = image.convert("RGB")
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def edited_copy(image: Image.Image) -> Image.Image:
    """A typical re-upload: mirrored, shrunk and re-encoded at lower quality."""
    small = ImageOps.mirror(image).resize((image.width * 3 // 4, image.height * 3 // 4))
    return Image.open(io.BytesIO(encode(small, quality=60)))


# --- videos ---------------------------------------------------------------------------------
#
# Videos are rendered as RGB frame lists and encoded in memory with PyAV (FFmpeg's own
# encoders), so tests exercise the same codecs users upload: H.264 in MP4, VP9 in WebM (video
# stickers), GIF (animations sent as documents) and MPEG-4 Part 2 (old phones, OpenCV).
#
# The content is a sequence of 2-second "shots", each a slow pan and zoom over its own
# photo-like image, with a disc crossing the frame. Shots make frames a second apart in
# different shots unrelated (as cuts are in real footage), while the slow motion within a shot
# keeps a frame sampled half a second off (a trimmed copy) near its neighbours, as in calm
# footage; different seeds give unrelated videos. Fast action changes more than 31 PDQ bits in
# half a second (the dev corpus's Megamind clip does), which 1 frame/s sampling on both sides
# cannot bridge: bench/video.py measures that case on real footage.

#: Seconds per shot; each shot shows a different photo.
SHOT_SECONDS = 2.0

Frames = list[npt.NDArray[np.uint8]]


def _shot_seed(seed: int, shot: int) -> int:
    return int(np.random.SeedSequence([seed, shot]).generate_state(1)[0])


def video_frames(
    seed: int, *, seconds: float = 6.0, fps: float = 30, size: tuple[int, int] = (320, 180)
) -> Frames:
    """RGB frames (height x width x 3) of a photo-like moving video; see the section comment."""
    return list(iter_video_frames(seed, seconds=seconds, fps=fps, size=size))


def iter_video_frames(
    seed: int, *, seconds: float = 6.0, fps: float = 30, size: tuple[int, int] = (320, 180)
) -> Iterator[npt.NDArray[np.uint8]]:
    """``video_frames`` one at a time, for videos too long to hold in memory."""
    width, height = size
    count = max(1, round(seconds * fps))
    rng = np.random.default_rng(seed)
    disc_colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    radius = max(2, min(width, height) // 10)
    source: npt.NDArray[np.uint8] | None = None
    current_shot = -1
    for i in range(count):
        t = i / fps
        shot = int(t // SHOT_SECONDS)
        if shot != current_shot:
            current_shot = shot
            # photo() needs ~100 px a side; tiny videos view a downscaled larger photo.
            k = max(1.5, 120 / min(width, height))
            source_size = (round(width * k), round(height * k))
            source = np.asarray(photo(_shot_seed(seed, shot), source_size))
            direction = 1 if shot % 2 == 0 else -1
        assert source is not None
        u = (t - shot * SHOT_SECONDS) / SHOT_SECONDS  # 0..1 through the shot
        # A slow zoom and pan (2% and ~1% of the view per shot): after a re-encode, a sample
        # half a second off is a median 16 PDQ bits (90% <= 28) from the nearest original
        # sample; samples a second apart in one shot are a median 30 bits apart (measured).
        scale = 1.25 + 0.02 * u
        view_w, view_h = source.shape[1] / scale, source.shape[0] / scale
        x0 = (source.shape[1] - view_w) * (0.5 + direction * 0.05 * (u - 0.5))
        y0 = (source.shape[0] - view_h) * (0.5 - 0.03 * (u - 0.5))
        matrix = np.array([[view_w / width, 0, x0], [0, view_h / height, y0]], dtype=np.float64)
        frame = cv2.warpAffine(
            source,
            matrix,
            (width, height),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT,
        )
        cx = int(width * ((t * 0.05 + seed * 0.13) % 1.0))
        cy = int(height * (0.3 + 0.4 * abs(((t * 0.04) % 2.0) - 1.0)))
        cv2.circle(frame, (cx, cy), radius, disc_colour, -1, lineType=cv2.LINE_AA)
        yield frame


def encode_video(
    frames: Iterable[npt.NDArray[np.uint8]],
    *,
    fps: float = 30,
    codec: str = "libx264",
    fmt: str = "mp4",
    gop: int | None = None,
    crf: int | None = None,
    bit_rate: int | None = None,
    options: dict[str, str] | None = None,
    threads: int = 1,
    first_pts: int = 0,
    muxer_options: dict[str, str] | None = None,
) -> bytes:
    """Encode RGB frames in memory. ``crf`` (x264/VP9) or ``bit_rate`` set the quality.
    ``first_pts`` (in frames) starts the clock later, for MPEG-TS parts joined end to end.

    One encoder thread by default: fast enough at test sizes, and byte-identical run to run.
    """
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError("no frames to encode")
    height, width = first.shape[:2]
    buffer = io.BytesIO()
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(buffer, mode="w", format=fmt, options=muxer_options or {}) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = width, height
        opts: dict[str, str] = {}
        if codec == "gif":
            stream.pix_fmt = "pal8"
        elif codec == "libvpx-vp9":
            stream.pix_fmt = "yuv420p"
            # Realtime mode: the default "good" deadline is ~50x slower at no benefit here.
            opts.update({"deadline": "realtime", "cpu-used": "8", "row-mt": "0"})
            opts["crf"] = str(crf if crf is not None else 32)
            stream.codec_context.bit_rate = bit_rate or 1_000_000
        elif codec in ("libx264", "libx264rgb"):
            stream.pix_fmt = "yuv420p" if codec == "libx264" else "rgb24"
            opts.update({"preset": "veryfast"})
            if bit_rate is None:
                opts["crf"] = str(crf if crf is not None else 23)
        else:
            stream.pix_fmt = "yuv420p"
        if bit_rate is not None:
            stream.codec_context.bit_rate = bit_rate
        if gop is not None:
            stream.codec_context.gop_size = gop
        opts.update(options or {})
        stream.options = opts
        stream.codec_context.thread_count = threads
        for pts, pixels in enumerate(itertools.chain([first], frames)):
            if codec == "gif":
                frame = _palette_frame(pixels)
            else:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
            frame.pts = first_pts + pts
            frame.time_base = Fraction(1) / rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def _palette_frame(pixels: npt.NDArray[np.uint8]) -> av.VideoFrame:
    """A GIF frame with its own adaptive 256-colour palette (as GIF makers quantise)."""
    quantised = Image.fromarray(pixels).quantize(256, method=Image.Quantize.FASTOCTREE)
    rgb = np.zeros((256, 3), dtype=np.uint8)
    flat = np.frombuffer(bytes(quantised.getpalette() or []), dtype=np.uint8).reshape(-1, 3)
    rgb[: len(flat)] = flat[:256]
    argb = np.concatenate([np.full((256, 1), 255, dtype=np.uint8), rgb], axis=1)
    return av.VideoFrame.from_ndarray((np.asarray(quantised), argb), format="pal8")


def video(
    seed: int,
    *,
    seconds: float = 6.0,
    fps: float = 30,
    size: tuple[int, int] = (320, 180),
    codec: str = "libx264",
    fmt: str = "mp4",
    gop: int | None = None,
    crf: int | None = None,
) -> bytes:
    """A photo-like moving video as file bytes (H.264 MP4 unless told otherwise)."""
    frames = video_frames(seed, seconds=seconds, fps=fps, size=size)
    return encode_video(frames, fps=fps, codec=codec, fmt=fmt, gop=gop, crf=crf)


def gif(
    seed: int, *, seconds: float = 4.0, fps: float = 10, size: tuple[int, int] = (240, 136)
) -> bytes:
    """An animated GIF (per-frame adaptive palette), as sent as a document."""
    return video(seed, seconds=seconds, fps=fps, size=size, codec="gif", fmt="gif")


def webm(
    seed: int, *, seconds: float = 3.0, fps: float = 30, size: tuple[int, int] = (256, 256)
) -> bytes:
    """A VP9 WebM, as Telegram's video stickers are (512 px on a side there; smaller here)."""
    return video(seed, seconds=seconds, fps=fps, size=size, codec="libvpx-vp9", fmt="webm")


def video_note(seed: int, *, seconds: float = 4.0, fps: float = 30) -> bytes:
    """A square 384x384 H.264 MP4, the shape of Telegram's round video messages."""
    return video(seed, seconds=seconds, fps=fps, size=(384, 384))


def decode_video(data: bytes) -> tuple[Frames, float]:
    """Every frame of a video as RGB arrays, and its frame rate."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or 30
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    return frames, float(rate)


def trim(data: bytes, start: float, end: float | None = None) -> bytes:
    """Keep ``start``..``end`` seconds, re-encoded as H.264 MP4 (as an editing app exports)."""
    frames, fps = decode_video(data)
    first = round(start * fps)
    last = len(frames) if end is None else round(end * fps)
    return encode_video(frames[first:last], fps=fps)


def reencode(
    data: bytes,
    *,
    crf: int = 35,
    bit_rate: int | None = None,
    codec: str = "libx264",
    fmt: str = "mp4",
    fps: float | None = None,
) -> bytes:
    """A lower-quality re-encode (higher CRF or a bit rate), optionally at another frame rate
    (frames dropped or repeated by time, as FFmpeg's ``-r`` does)."""
    frames, source_fps = decode_video(data)
    if fps is not None:
        frames = _retime(frames, source_fps, fps)
    return encode_video(
        frames, fps=fps or source_fps, codec=codec, fmt=fmt, crf=crf, bit_rate=bit_rate
    )


def resize(data: bytes, size: tuple[int, int]) -> bytes:
    """Scaled to ``size`` (width, height; even numbers for H.264) and re-encoded."""
    frames, fps = decode_video(data)
    scaled = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]
    return encode_video(scaled, fps=fps)


def embed(clip: bytes, before: bytes, after: bytes) -> bytes:
    """``clip`` spliced between two other videos (scaled to its size): a blocked clip hidden
    inside a longer video of unrelated footage."""
    frames, fps = decode_video(clip)
    height, width = frames[0].shape[:2]
    outer: list[Frames] = []
    for other in (before, after):
        other_frames, other_fps = decode_video(other)
        picked = _retime(other_frames, other_fps, fps)
        outer.append([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in picked])
    return encode_video(outer[0] + frames + outer[1], fps=fps)


def _retime(frames: Frames, fps: float, new_fps: float) -> Frames:
    """The same footage at another frame rate, frames dropped or repeated by time."""
    if fps == new_fps:
        return frames
    count = max(1, round(len(frames) * new_fps / fps))
    return [frames[min(len(frames) - 1, int(i * fps / new_fps))] for i in range(count)]


def textured(seed: int) -> Image.Image:
    """A picture with the fine detail real photos have all over (``photo`` is smoother)."""
    picture = photo(seed, (1024, 768))
    rng = np.random.default_rng(seed)
    draw = ImageDraw.Draw(picture)
    for _ in range(400):
        x, y = int(rng.integers(0, 1000)), int(rng.integers(0, 750))
        size = int(rng.integers(4, 24))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        draw.ellipse((x, y, x + size, y + size), fill=colour)
    return picture


def ken_burns(
    picture: Image.Image, seconds: float = 4.0, fps: float = 10
) -> list[npt.NDArray[np.uint8]]:
    """RGB frames (640x360) of a slow zoom and pan across ``picture``."""
    source = np.asarray(picture.convert("RGB"))
    frames = []
    count = round(seconds * fps)
    for i in range(count):
        u = i / (count - 1)
        view_w = source.shape[1] / (1.15 + 0.25 * u)
        view_h = view_w * 9 / 16
        x0 = (source.shape[1] - view_w) * (0.2 + 0.6 * u)
        y0 = (source.shape[0] - view_h) * (0.6 - 0.2 * u)
        matrix = np.array([[view_w / 640, 0, x0], [0, view_h / 360, y0]], dtype=np.float64)
        frames.append(
            cv2.warpAffine(
                source, matrix, (640, 360), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
            )
        )
    return frames


def textured_video(seed: int, seconds: float = 6.0, fps: float = 10) -> bytes:
    """A 640x360 H.264 pan over a picture with fine detail all over, as real footage has
    (``video`` is smoother: too few local features for a crop to be found)."""
    return encode_video(ken_burns(textured(seed), seconds, fps), fps=fps)


# --- reposts: a video's frames edited the way reposts edit them ------------------------------


def edit_frames(
    data: bytes, edit: Callable[[npt.NDArray[np.uint8]], npt.NDArray[np.uint8]]
) -> bytes:
    """Every frame of a video passed through ``edit``, re-encoded as H.264 MP4."""
    frames, fps = decode_video(data)
    return encode_video([np.ascontiguousarray(edit(f)) for f in frames], fps=fps)


def mirror(frame: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Left to right."""
    return np.ascontiguousarray(frame[:, ::-1])


def letterbox(frame: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """16:9 picture in a 4:3 frame with black bars above and below."""
    height, width = frame.shape[:2]
    out = np.zeros((width * 3 // 4, width, 3), np.uint8)
    top = (out.shape[0] - height) // 2
    out[top : top + height] = frame
    return out


def vertical_blur(frame: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """The picture in the middle of a 9:16 frame filled with its own blurred enlargement."""
    height, width = frame.shape[:2]
    tall = width * 16 // 9 // 2 * 2
    fill = cv2.resize(frame, (tall * width // height, tall))
    left = (fill.shape[1] - width) // 2
    out = cv2.GaussianBlur(np.ascontiguousarray(fill[:, left : left + width]), (0, 0), 12)
    top = (tall - height) // 2
    out[top : top + height] = frame
    return out


def caption_bar(frame: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """A white caption bar with black text above the picture."""
    height, width = frame.shape[:2]
    bar = np.full((height // 4 // 2 * 2, width, 3), 255, np.uint8)
    cv2.putText(bar, "watch till the end", (8, bar.shape[0] * 2 // 3), 0, 0.6, (0, 0, 0), 2)
    return np.vstack([bar, frame])


# --- photos in a scene ----------------------------------------------------------------------

# A night shot, a photographed screen, a collage, and the photo edits that local features
# must see through: the photo tests and the end-to-end tests share them.


def dark(image: Image.Image, seed: int) -> Image.Image:
    """A night shot of ``image``: 6% of the light, sensor noise, a phone's tone curve."""
    rng = np.random.default_rng(seed)
    linear = (np.asarray(image.convert("RGB"), dtype=np.float64) / 255) ** 2.2 * 0.06
    linear += rng.normal(0, 0.002, linear.shape)
    toned = np.clip(linear, 0, 1) ** (1 / 1.2)
    return Image.fromarray((toned * 255 + 0.5).astype(np.uint8))


def screen_photo(picture: Image.Image, *, tilt: float, washed: float, seed: int = 0) -> Image.Image:
    """A 1600x1200 phone photo of a monitor showing ``picture``: the screen's plane turned
    by ``tilt`` (0..1 of the frame's side, how much nearer the left edge is), light of the
    room lifting its blacks by ``washed``, a glare spot, a dark bezel, a blurred backdrop,
    defocus and sensor grain, saved as a JPEG."""
    rng = np.random.default_rng(seed)
    width, height = 1600, 1200
    backdrop = photo(seed + 900, (width, height)).filter(ImageFilter.GaussianBlur(20))
    frame = np.asarray(backdrop, dtype=np.float32) * 0.5
    # The monitor's corners: the right edge farther away, so shorter (keystone).
    top, bottom = 300 - 120 * tilt, 900 + 120 * tilt
    screen = np.array([[330, top], [1320, 320], [1320, 880], [330, bottom]], dtype=np.float32)
    bezel = screen + np.array([[-24, -24], [24, -20], [24, 20], [-24, 24]], dtype=np.float32)
    mask = np.zeros((height, width), dtype=np.uint8)
    cv2.fillConvexPoly(mask, np.round(bezel).astype(np.int32), 255)
    frame[mask > 0] = 25
    # The viewer shows the picture on black, fitted to the screen.
    viewer = Image.new("RGB", (1280, 720), (0, 0, 0))
    shown = picture.copy()
    shown.thumbnail((1200, 680))
    viewer.paste(shown, ((1280 - shown.width) // 2, (720 - shown.height) // 2))
    corners = np.array([[0, 0], [1280, 0], [1280, 720], [0, 720]], dtype=np.float32)
    homography = cv2.getPerspectiveTransform(corners, screen)
    warped = cv2.warpPerspective(np.asarray(viewer), homography, (width, height))
    inside = cv2.warpPerspective(np.full((720, 1280), 255, np.uint8), homography, (width, height))
    lit = warped.astype(np.float32) * (1 - washed) + 255 * washed
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    glare = 0.45 * np.exp(-((xs - 1000) ** 2 + (ys - 450) ** 2) / (2 * 160.0**2))
    lit += (255 - lit) * glare[..., None]
    alpha = (inside.astype(np.float32) / 255)[..., None]
    frame = frame * (1 - alpha) + lit * alpha
    frame = cv2.GaussianBlur(frame, (0, 0), 1.2) + rng.normal(0, 4, frame.shape)
    image = Image.fromarray(np.clip(frame, 0, 255).astype(np.uint8))
    return Image.open(io.BytesIO(encode(image, quality=75)))


def collage(cells: list[Image.Image], n: int, gutter: int = 10) -> Image.Image:
    """``cells`` cropped to squares in an n x n grid on white, 1200 px wide, as collage
    apps export them."""
    side = (1200 - gutter * (n + 1)) // n
    canvas = Image.new("RGB", (1200, 1200), (255, 255, 255))
    for k, cell in enumerate(cells):
        row, column = divmod(k, n)
        edge = min(cell.size)
        x, y = (cell.width - edge) // 2, (cell.height - edge) // 2
        square = cell.crop((x, y, x + edge, y + edge)).resize((side, side))
        canvas.paste(square, (gutter + column * (side + gutter), gutter + row * (side + gutter)))
    return Image.open(io.BytesIO(encode(canvas, quality=85)))


def captioned(image: Image.Image) -> Image.Image:
    copy = image.copy()
    draw = ImageDraw.Draw(copy)
    draw.rectangle((0, 330, copy.width, 430), fill=(20, 20, 20))
    draw.text((40, 360), "look at this", fill=(255, 255, 255))
    draw.ellipse((800, 60, 880, 140), fill=(250, 210, 40))
    return copy


def screenshot(image: Image.Image) -> Image.Image:
    canvas = Image.new("RGB", (720, 1560), (18, 18, 18))
    canvas.paste(image.resize((720, 540)), (0, 500))
    ImageDraw.Draw(canvas).rectangle((40, 1200, 680, 1230), fill=(90, 90, 90))
    return canvas


PHOTO_EDITS = {
    "crop to 75%": lambda im: im.crop((128, 96, 896, 672)),
    "caption banner and sticker": captioned,
    "tilted 4 degrees": lambda im: im.rotate(4, resample=Image.Resampling.BILINEAR),
    "inside a phone screenshot": screenshot,
    "padded to a square": lambda im: _padded(im),
}


def _padded(image: Image.Image) -> Image.Image:
    square = Image.new("RGB", (1024, 1024), (0, 0, 0))
    square.paste(image, (0, 128))
    return square
