"""The edits of ``bench/video_edits.py``: how reposts re-frame, retime and re-encode a video.

Each edit takes a video's RGB frames, its frame rate and a seeded generator, and returns the
edited frames (lazily), their frame rate, the parameters it drew (with the true content box
where the picture keeps one) and how the result is encoded (H.264 MP4 unless said: a GIF, a
VP9 WebM sticker, a bit rate).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

Frame = npt.NDArray[np.uint8]
CAPTIONS = ["wait for it", "new leak!!", "she didn't know", "part 2", "omg", "full vid in bio"]


def even(n: float) -> int:
    return max(2, round(n) // 2 * 2)


def resize(frame: Frame, size: tuple[int, int]) -> Frame:
    shrinking = size[0] < frame.shape[1]
    flags = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(frame, size, interpolation=flags), dtype=np.uint8)


@dataclass(frozen=True)
class Output:
    """An edited video: its frames (lazily), frame rate, drawn parameters and encoding."""

    frames: Iterable[Frame]
    fps: float
    params: dict[str, Any]
    codec: str = "libx264"
    fmt: str = "mp4"
    crf: int | None = None
    bit_rate: int | None = None


@dataclass(frozen=True)
class Context:
    background: Callable[[int, int, float, int], list[Frame]]  # unrelated footage for pip


Edit = Callable[[list[Frame], float, random.Random, Context], Output]


def blurred_cover(frame: Frame, size: tuple[int, int], darken: float) -> Frame:
    """``frame`` scaled to cover ``size`` (cropped to it), heavily blurred and darkened.
    Blurred at an eighth of the size: as strong a blur as the apps use, at a fraction of the
    cost."""
    w, h = size
    fh, fw = frame.shape[:2]
    k = max(w / fw, h / fh)
    cw, ch = round(w / k), round(h / k)
    x0, y0 = (fw - cw) // 2, (fh - ch) // 2
    small = resize(frame[y0 : y0 + ch, x0 : x0 + cw], (max(8, w // 8), max(8, h // 8)))
    blurred = cv2.GaussianBlur(small, (0, 0), 3)
    return resize((blurred * darken).astype(np.uint8), (w, h))


def place(
    frames: Iterable[Frame],
    canvas: tuple[int, int],
    box: tuple[int, int, int, int],
    fill: Callable[[Frame], Frame],
) -> Iterator[Frame]:
    """Each frame scaled into ``box`` (x0, y0, x1, y1) of a ``canvas`` made by ``fill``."""
    x0, y0, x1, y1 = box
    for frame in frames:
        out = fill(frame).copy()
        out[y0:y1, x0:x1] = resize(frame, (x1 - x0, y1 - y0))
        yield out


def fit_box(
    content: tuple[int, int], canvas: tuple[int, int], scale: float, rng: random.Random
) -> tuple[int, int, int, int]:
    """The content's aspect fitted inside the canvas at ``scale``, centred (± a few pixels, as
    editing apps round differently)."""
    (cw, ch), (w, h) = content, canvas
    k = min(w / cw, h / ch) * scale
    bw, bh = min(w, even(cw * k)), min(h, even(ch * k))
    x0 = max(0, min(w - bw, (w - bw) // 2 + rng.randint(-2, 2)))
    y0 = max(0, min(h - bh, (h - bh) // 2 + rng.randint(-2, 2)))
    return x0, y0, x0 + bw, y0 + bh


def bounded(w: float, h: float, max_side: int = 960) -> tuple[int, int]:
    k = min(1.0, max_side / max(w, h))
    return even(w * k), even(h * k)


def solid(size: tuple[int, int], colour: Sequence[int]) -> Callable[[Frame], Frame]:
    canvas = np.empty((size[1], size[0], 3), dtype=np.uint8)
    canvas[:] = np.asarray(colour, dtype=np.uint8)
    return lambda _frame: canvas


def e_letterbox(frames: list[Frame], fps: float, rng: random.Random, ctx: Context) -> Output:
    """Black bars above and below: the canvas is 1.25-1.5x taller in aspect than the video
    (16:9 in 4:3, 4:3 in a square, 9:16 on a tall phone screen)."""
    h, w = frames[0].shape[:2]
    factor = rng.uniform(1.25, 1.5)
    canvas = bounded(w, h * factor)
    box = fit_box((w, h), canvas, 1.0, rng)
    params = {"canvas": list(canvas), "content_box": list(box), "colour": [0, 0, 0]}
    return Output(place(frames, canvas, box, solid(canvas, (0, 0, 0))), fps, params)


def e_pillarbox(frames: list[Frame], fps: float, rng: random.Random, ctx: Context) -> Output:
    """Coloured bars left and right: a canvas 1.3-1.8x wider in aspect."""
    h, w = frames[0].shape[:2]
    canvas = bounded(w * rng.uniform(1.3, 1.8), h)
    colour = rng.choice([[255, 255, 255], [20, 20, 20], [rng.randrange(256) for _ in range(3)]])
    box = fit_box((w, h), canvas, 1.0, rng)
    params = {"canvas": list(canvas), "content_box": list(box), "colour": colour}
    return Output(place(frames, canvas, box, solid(canvas, colour)), fps, params)


def blur_fill(frames: list[Frame], fps: float, rng: random.Random, aspect: float) -> Output:
    h, w = frames[0].shape[:2]
    long_side = rng.choice([640, 854, 960])
    canvas = (
        (even(long_side * aspect), long_side)
        if aspect < 1
        else (long_side, even(long_side / aspect))
    )
    # Content already close to the canvas's shape would fill it: apps then show it smaller.
    close = 0.8 < (w / h) / aspect < 1.25
    scale = rng.uniform(0.7, 0.85) if close else 1.0
    box = fit_box((w, h), canvas, scale, rng)
    darken = rng.uniform(0.6, 0.95)
    params = {"canvas": list(canvas), "content_box": list(box), "scale": round(scale, 3)}
    params["darken"] = round(darken, 3)
    fill = lambda frame: blurred_cover(frame, canvas, darken)  # noqa: E731
    return Output(place(frames, canvas, box, fill), fps, params)


def e_blur_fill_9x16(frames: list[Frame], fps: float, rng: random.Random, ctx: Context) -> Output:
    """A TikTok/Reels repost: the video across a 9:16 frame, a blurred enlarged copy around."""
    return blur_fill(frames, fps, rng, 9 / 16)


def e_blur_fill_16x9(frames: list[Frame], fps: float, rng: random.Random, ctx: Context) -> Output:
    """A portrait video in a 16:9 frame with blurred sides (landscape ones shown smaller)."""
    return blur_fill(frames, fps, rng, 16 / 9)


def caption_bar(
    width: int, height: int, text: str, rng: random.Random
) -> tuple[Frame, dict[str, Any]]:
    colour = rng.choice([(255, 255, 255)] * 2 + [(255, 221, 0), (230, 30, 90), (0, 0, 0)])
    ink = (0, 0, 0) if sum(colour) > 380 else (255, 255, 255)
    bar = Image.new("RGB", (width, height), colour)
    draw = ImageDraw.Draw(bar)
    size = max(10, int(height * rng.uniform(0.35, 0.55)))
    try:
        font: ImageFont.FreeTypeFont | ImageFont.ImageFont = ImageFont.truetype(
            "DejaVuSans-Bold.ttf", size
        )
    except OSError:
        font = ImageFont.load_default()
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    draw.text(((width - right + left) / 2, (height - bottom + top) / 2 - top), text, ink, font)
    return np.asarray(bar), {"text": text, "bar_colour": list(colour), "text_px": size}


def with_caption(
    frames: list[Frame], fps: float, rng: random.Random, where: str, params: dict[str, Any]
) -> Output:
    """A caption bar added above or below the picture (the canvas grows), or laid over the
    bottom of the picture ("over_bottom", subtitle style, the canvas keeps its size)."""
    h, w = frames[0].shape[:2]
    bar_h = even(h * rng.uniform(0.12, 0.25))
    bar, drawn = caption_bar(w, bar_h, rng.choice(CAPTIONS), rng)
    params = {**params, **drawn, "bar_px": bar_h, "where": where}
    if where == "over_bottom":
        opacity = rng.uniform(0.7, 1.0)
        params.update({"opacity": round(opacity, 3), "content_box": [0, 0, w, h]})
        params["covered_box"] = [0, h - bar_h, w, h]

        def over(frame: Frame) -> Frame:
            out = frame.copy()
            out[h - bar_h :] = cv2.addWeighted(frame[h - bar_h :], 1 - opacity, bar, opacity, 0)
            return out

        return Output((over(f) for f in frames), fps, params)
    top = where == "top"
    params["content_box"] = [0, bar_h if top else 0, w, h + bar_h if top else h]
    return Output((np.vstack([bar, f] if top else [f, bar]) for f in frames), fps, params)


def e_caption_top(frames: list[Frame], fps: float, rng: random.Random, ctx: Context) -> Output:
    return with_caption(frames, fps, rng, "top", {})


def e_caption_bottom(frames: list[Frame], fps: float, rng: random.Random, ctx: Context) -> Output:
    return with_caption(frames, fps, rng, rng.choice(["bottom", "over_bottom"]), {})


def mirrored(frames: list[Frame]) -> list[Frame]:
    return [np.ascontiguousarray(f[:, ::-1]) for f in frames]


def e_mirror(frames: list[Frame], fps: float, rng: random.Random, ctx: Context) -> Output:
    return Output(mirrored(frames), fps, {"mirrored": True})


def e_mirror_letterbox(frames: list[Frame], fps: float, rng: random.Random, ctx: Context) -> Output:
    out = e_letterbox(mirrored(frames), fps, rng, ctx)
    return Output(out.frames, fps, {**out.params, "mirrored": True})


def e_mirror_caption(frames: list[Frame], fps: float, rng: random.Random, ctx: Context) -> Output:
    where = rng.choice(["top", "bottom"])
    return with_caption(mirrored(frames), fps, rng, where, {"mirrored": True})


def off_centre_crop(
    frames: list[Frame], fps: float, rng: random.Random, keep: float, mirror: bool
) -> Output:
    """``keep`` of each side, away from the centre (towards a drawn corner), scaled back up."""
    h, w = frames[0].shape[:2]
    cw, ch = even(w * keep), even(h * keep)
    fx, fy = rng.choice([rng.uniform(0, 0.25), rng.uniform(0.75, 1)]), rng.uniform(0, 1)
    x0, y0 = round((w - cw) * fx), round((h - ch) * fy)
    params = {"keep": keep, "box": [x0, y0, x0 + cw, y0 + ch], "mirrored": mirror}

    def crop(frame: Frame) -> Frame:
        out = resize(frame[y0 : y0 + ch, x0 : x0 + cw], (even(w), even(h)))
        return np.ascontiguousarray(out[:, ::-1]) if mirror else out

    return Output((crop(f) for f in frames), fps, params)


def e_crop_70(frames: list[Frame], fps: float, rng: random.Random, ctx: Context) -> Output:
    return off_centre_crop(frames, fps, rng, 0.7, False)


def e_crop_mirror_75(frames: list[Frame], fps: float, rng: random.Random, ctx: Context) -> Output:
    return off_centre_crop(frames, fps, rng, 0.75, True)


def e_pip(frames: list[Frame], fps: float, rng: random.Random, ctx: Context) -> Output:
    """The video shrunk to 35-45% of the frame's width in a corner, over unrelated footage."""
    h, w = frames[0].shape[:2]
    share = rng.uniform(0.35, 0.45)
    bw, bh = even(w * share), even(h * share)
    margin = even(min(w, h) * rng.uniform(0.02, 0.05))
    corner = rng.choice(["top_left", "top_right", "bottom_left", "bottom_right"])
    x0 = margin if corner.endswith("left") else w - margin - bw
    y0 = margin if corner.startswith("top") else h - margin - bh
    background = ctx.background(even(w), even(h), fps, len(frames))

    def pip(i: int, frame: Frame) -> Frame:
        out = background[i].copy()
        out[y0 - 2 : y0 + bh + 2, x0 - 2 : x0 + bw + 2] = 255  # a thin white frame
        out[y0 : y0 + bh, x0 : x0 + bw] = resize(frame, (bw, bh))
        return out

    params = {"share": round(share, 3), "corner": corner, "content_box": [x0, y0, x0 + bw, y0 + bh]}
    return Output((pip(i, f) for i, f in enumerate(frames)), fps, params)


def make_speed(speed: float) -> Edit:
    def e_speed(frames: list[Frame], fps: float, rng: random.Random, ctx: Context) -> Output:
        """Played ``speed`` times as fast at the same frame rate: frames dropped (faster) or
        repeated (slower), so every timestamp moves."""
        count = max(1, int(len(frames) / speed))
        picked = [frames[min(len(frames) - 1, int(i * speed))] for i in range(count)]
        return Output(picked, fps, {"speed": speed})

    return e_speed


def e_reencode_h264_low(
    frames: list[Frame], fps: float, rng: random.Random, ctx: Context
) -> Output:
    """480p (short side) H.264 at ~300 kbit/s: a messenger's or a reposter's low-rate copy."""
    h, w = frames[0].shape[:2]
    k = 480 / min(w, h)
    size = (even(w * k), even(h * k))
    rate = rng.randint(250, 350) * 1000
    params = {"size": list(size), "bit_rate": rate}
    return Output((resize(f, size) for f in frames), fps, params, bit_rate=rate)


def e_video_note(frames: list[Frame], fps: float, rng: random.Random, ctx: Context) -> Output:
    """Telegram's round video message: a centred square at 384x384 (at most 60 s), sometimes
    with the circle baked in (black outside the inscribed circle)."""
    h, w = frames[0].shape[:2]
    side = even(min(w, h))
    x0, y0 = (w - side) // 2, (h - side) // 2
    circle = rng.random() < 0.5
    mask = np.zeros((384, 384), dtype=np.uint8)
    cv2.circle(mask, (192, 192), 192, 255, -1, lineType=cv2.LINE_AA)
    keep = (mask.astype(np.float32) / 255)[:, :, None]

    def note(frame: Frame) -> Frame:
        out = resize(frame[y0 : y0 + side, x0 : x0 + side], (384, 384))
        return (out * keep).astype(np.uint8) if circle else out

    count = min(len(frames), int(60 * fps))
    params = {"content_box_source": [x0, y0, x0 + side, y0 + side], "circle_mask": circle}
    return Output((note(f) for f in frames[:count]), fps, params, crf=rng.randint(24, 30))


def e_sticker_webm(frames: list[Frame], fps: float, rng: random.Random, ctx: Context) -> Output:
    """A video sticker: VP9 WebM, 512 px on the long side, 3 s from a drawn start, <= 30 fps."""
    h, w = frames[0].shape[:2]
    k = 512 / max(w, h)
    size = (even(w * k), even(h * k))
    duration = len(frames) / fps
    start = round(rng.uniform(0, max(0.0, duration - 3)), 2)
    out_fps = min(fps, 30.0)
    count = max(1, int(min(3.0, duration - start) * out_fps))
    picked = [frames[min(len(frames) - 1, int((start + i / out_fps) * fps))] for i in range(count)]
    params = {"size": list(size), "start_s": start, "seconds": round(count / out_fps, 2)}
    return Output(
        (resize(f, size) for f in picked),
        out_fps,
        params,
        "libvpx-vp9",
        "webm",
        rng.randint(30, 40),
    )


def e_gif(frames: list[Frame], fps: float, rng: random.Random, ctx: Context) -> Output:
    """The first 3 s as a GIF: 320 px on the long side, 10 fps, a palette per frame."""
    h, w = frames[0].shape[:2]
    k = 320 / max(w, h)
    size = (even(w * k), even(h * k))
    count = max(1, int(min(3.0, len(frames) / fps) * 10))
    picked = [frames[min(len(frames) - 1, int(i / 10 * fps))] for i in range(count)]
    params = {"size": list(size), "seconds": count / 10, "fps": 10}
    return Output((resize(f, size) for f in picked), 10.0, params, "gif", "gif")


def e_trim_middle(frames: list[Frame], fps: float, rng: random.Random, ctx: Context) -> Output:
    """A 30-50% section from the middle part of the video."""
    share = rng.uniform(0.3, 0.5)
    start = rng.uniform(0.1, 0.9 - share)
    first, count = int(start * len(frames)), max(1, int(share * len(frames)))
    params = {"share": round(share, 3), "start_s": round(first / fps, 2)}
    params["end_s"] = round((first + count) / fps, 2)
    return Output(frames[first : first + count], fps, params)


def e_rotate_90(frames: list[Frame], fps: float, rng: random.Random, ctx: Context) -> Output:
    """Turned a quarter (a phone held the other way), baked into the pixels."""
    k = rng.choice([1, -1])
    params = {"degrees": 90 * k, "baked": True}
    return Output((np.ascontiguousarray(np.rot90(f, k)) for f in frames), fps, params)


def e_brightness_contrast(
    frames: list[Frame], fps: float, rng: random.Random, ctx: Context
) -> Output:
    contrast, brightness = rng.uniform(0.75, 1.3), rng.uniform(-35, 35)
    saturation = rng.uniform(0.7, 1.3)
    lut = np.clip((np.arange(256) - 128) * contrast + 128 + brightness, 0, 255).astype(np.uint8)

    def adjust(frame: Frame) -> Frame:
        grey = cv2.cvtColor(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        out = cv2.addWeighted(frame, saturation, grey, 1 - saturation, 0)  # saturates
        return np.asarray(cv2.LUT(out, lut), dtype=np.uint8)

    params = {"contrast": round(contrast, 3), "brightness": round(brightness, 1)}
    params["saturation"] = round(saturation, 3)
    return Output((adjust(f) for f in frames), fps, params)


EDITS: dict[str, Edit] = {
    "vid_letterbox": e_letterbox,
    "vid_pillarbox": e_pillarbox,
    "vid_blur_fill_9x16": e_blur_fill_9x16,
    "vid_blur_fill_16x9": e_blur_fill_16x9,
    "vid_caption_top": e_caption_top,
    "vid_caption_bottom": e_caption_bottom,
    "vid_mirror": e_mirror,
    "vid_mirror_letterbox": e_mirror_letterbox,
    "vid_mirror_caption": e_mirror_caption,
    "vid_crop_70": e_crop_70,
    "vid_crop_mirror_75": e_crop_mirror_75,
    "vid_pip": e_pip,
    "vid_speed_0.75": make_speed(0.75),
    "vid_speed_1.5": make_speed(1.5),
    "vid_speed_2.0": make_speed(2.0),
    "vid_reencode_h264_low": e_reencode_h264_low,
    "vid_video_note": e_video_note,
    "vid_sticker_webm": e_sticker_webm,
    "vid_gif": e_gif,
    "vid_trim_middle": e_trim_middle,
    "vid_rotate_90": e_rotate_90,
    "vid_brightness_contrast": e_brightness_contrast,
}
DISTRACTOR_EDITS = ("vid_mirror", "vid_letterbox", "vid_blur_fill_9x16")
