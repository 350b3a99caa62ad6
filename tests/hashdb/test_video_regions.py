"""Tests of hashdb.video_regions: the picture's own rectangle found inside re-framed videos
(bars, a blurred fill, caption bars, a round mask), and no region for plain videos.

Every video is rendered here (moving photo-like content from ``tests.media``), encoded with
H.264 at a low quality so codec noise is real, decoded with PyAV and sampled at 1 frame/s as
grey frames, as the bot samples uploads.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable

import av
import cv2
import numpy as np
import numpy.typing as npt
import pytest

from hashdb.regions import Region
from hashdb.video_regions import find_regions
from tests import media

Rgb = npt.NDArray[np.uint8]
Grey = list[npt.NDArray[np.uint8]]
Box = tuple[int, int, int, int]

FPS = 5
SECONDS = 8
#: A found side may be off by this share of the frame's side (codec ringing at the boundary).
TOLERANCE = 0.03


def _content(seed: int, size: tuple[int, int]) -> list[Rgb]:
    return media.video_frames(seed, seconds=SECONDS, fps=FPS, size=size)


def _sampled(frames: list[Rgb], *, crf: int = 34, codec: str = "libx264") -> Grey:
    """Encoded (H.264 unless told; MPEG-4 Part 2 at a low bit rate), decoded with PyAV, one
    grey frame a second."""
    if codec == "mpeg4":
        data = media.encode_video(frames, fps=FPS, codec=codec, bit_rate=150_000)
    else:
        data = media.encode_video(frames, fps=FPS, crf=crf)
    with av.open(io.BytesIO(data)) as container:
        decoded = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
    return decoded[::FPS]


def _framed(
    content: list[Rgb], size: tuple[int, int], box: Box, background: Callable[[Rgb], Rgb]
) -> list[Rgb]:
    """Each content frame scaled into ``box`` (left, top, right, bottom) of a frame of
    ``size``, over ``background(content frame)``."""
    left, top, right, bottom = box
    out = []
    for frame in content:
        canvas = background(frame).copy()
        assert canvas.shape[:2] == (size[1], size[0])
        canvas[top:bottom, left:right] = cv2.resize(
            frame, (right - left, bottom - top), interpolation=cv2.INTER_AREA
        )
        out.append(canvas)
    return out


def _solid(size: tuple[int, int], colour: tuple[int, int, int]) -> Callable[[Rgb], Rgb]:
    plane = np.empty((size[1], size[0], 3), dtype=np.uint8)
    plane[:] = colour
    return lambda _frame: plane


def _blurred_cover(size: tuple[int, int], sigma: float = 20.0) -> Callable[[Rgb], Rgb]:
    """The frame scaled to cover ``size`` (centre crop) and blurred, as vertical reposts."""
    width, height = size

    def fill(frame: Rgb) -> Rgb:
        h, w = frame.shape[:2]
        k = max(width / w, height / h)
        big = cv2.resize(frame, (round(w * k), round(h * k)), interpolation=cv2.INTER_LINEAR)
        y, x = (big.shape[0] - height) // 2, (big.shape[1] - width) // 2
        return cv2.GaussianBlur(big[y : y + height, x : x + width], (0, 0), sigma)

    return fill


def _blurred_stretch(size: tuple[int, int], sigma: float = 12.0) -> Callable[[Rgb], Rgb]:
    """The frame stretched to ``size`` and blurred (as the dev corpus's re-framing does)."""
    return lambda frame: cv2.GaussianBlur(
        cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR), (0, 0), sigma
    )


def _caption(width: int, height: int, text: str, colour: tuple[int, int, int]) -> Rgb:
    bar = np.empty((height, width, 3), dtype=np.uint8)
    bar[:] = colour
    cv2.putText(
        bar, text, (12, height * 2 // 3), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2, cv2.LINE_AA
    )
    return bar


def _assert_box(regions: tuple[Region, ...], truth: Box, frame: Grey, kind: str) -> None:
    assert regions, f"no region found; expected {truth}"
    best = regions[0]
    height, width = frame[0].shape
    found = (best.left, best.top, best.right, best.bottom)
    limits = (width, height, width, height)
    for got, want, side in zip(found, truth, limits, strict=True):
        assert abs(got - want) <= TOLERANCE * side, f"found {found}, expected {truth}"
    assert best.kind == kind


# --- positives ------------------------------------------------------------------------------


@functools.cache
def letterbox_black() -> tuple[Grey, Box]:
    box = (0, 28, 384, 188)
    frames = _framed(_content(1, (384, 160)), (384, 216), box, _solid((384, 216), (0, 0, 0)))
    return _sampled(frames), box


@functools.cache
def pillarbox_colour() -> tuple[Grey, Box]:
    box = (48, 0, 336, 216)
    frames = _framed(_content(2, (288, 216)), (384, 216), box, _solid((384, 216), (40, 90, 160)))
    return _sampled(frames), box


@functools.cache
def letterbox_colour() -> tuple[Grey, Box]:
    box = (0, 131, 216, 253)
    background = _solid((216, 384), (200, 60, 50))
    frames = _framed(_content(3, (384, 216)), (216, 384), box, background)
    return _sampled(frames), box


@functools.cache
def pillarbox_black() -> tuple[Grey, Box]:
    box = (72, 0, 312, 180)
    frames = _framed(_content(4, (240, 180)), (384, 180), box, _solid((384, 180), (0, 0, 0)))
    return _sampled(frames), box


@functools.cache
def vertical_blur() -> tuple[Grey, Box]:
    box = (0, 131, 216, 253)
    frames = _framed(_content(5, (384, 216)), (216, 384), box, _blurred_cover((216, 384)))
    return _sampled(frames), box


@functools.cache
def letterbox_mpeg4() -> tuple[Grey, Box]:
    """Black bars through an old-phone codec at a starved bit rate (blocky, ringing)."""
    box = (0, 24, 320, 216)
    frames = _framed(_content(21, (320, 192)), (320, 240), box, _solid((320, 240), (0, 0, 0)))
    return _sampled(frames, codec="mpeg4"), box


@functools.cache
def vertical_blur_stretched() -> tuple[Grey, Box]:
    box = (0, 131, 216, 253)
    frames = _framed(_content(22, (384, 216)), (216, 384), box, _blurred_stretch((216, 384)))
    return _sampled(frames), box


@functools.cache
def pillarbox_blur() -> tuple[Grey, Box]:
    """A vertical phone video shown in a landscape frame, its sides filled with itself."""
    box = (131, 0, 253, 216)
    frames = _framed(_content(23, (216, 384)), (384, 216), box, _blurred_cover((384, 216)))
    return _sampled(frames), box


@functools.cache
def caption_above() -> tuple[Grey, Box]:
    bar = _caption(384, 52, "watch till the end", (255, 255, 255))
    frames = [np.vstack([bar, f]) for f in _content(6, (384, 216))]
    return _sampled(frames), (0, 52, 384, 268)


@functools.cache
def caption_below() -> tuple[Grey, Box]:
    bar = _caption(384, 48, "new leak!!", (250, 220, 40))
    frames = [np.vstack([f, bar]) for f in _content(7, (384, 216))]
    return _sampled(frames), (0, 0, 384, 216)


@functools.cache
def caption_over_blur() -> tuple[Grey, Box]:
    box = (0, 131, 216, 253)
    fill = _blurred_cover((216, 384))
    bar = _caption(216, 56, "viral now", (255, 255, 255))

    def background(frame: Rgb) -> Rgb:
        canvas = fill(frame).copy()
        canvas[:56] = bar
        return canvas

    frames = _framed(_content(8, (384, 216)), (216, 384), box, background)
    return _sampled(frames), box


@functools.cache
def caption_over_letterbox() -> tuple[Grey, Box]:
    """A meme-style caption bar stacked over a letterboxed clip."""
    box = (0, 84, 384, 244)
    background = _solid((384, 272), (0, 0, 0))
    bar = _caption(384, 56, "ye dekho", (255, 255, 255))

    def framed(frame: Rgb) -> Rgb:
        canvas = background(frame).copy()
        canvas[:56] = bar
        return canvas

    frames = _framed(_content(26, (384, 160)), (384, 272), box, framed)
    return _sampled(frames), box


@functools.cache
def circle_note() -> tuple[Grey, Box]:
    size = 256
    mask = np.zeros((size, size), dtype=np.uint8)
    cv2.circle(mask, (size // 2, size // 2), size // 2, 255, -1, lineType=cv2.LINE_AA)
    alpha = (mask.astype(np.float32) / 255)[..., None]
    frames = [(f * alpha).astype(np.uint8) for f in _content(9, (size, size))]
    half = round(size / 2 / np.sqrt(2))
    return _sampled(frames), (128 - half, 128 - half, 128 + half, 128 + half)


@pytest.mark.parametrize(
    ("case", "kind"),
    [
        (letterbox_black, "bars"),
        (pillarbox_colour, "bars"),
        (letterbox_colour, "bars"),
        (pillarbox_black, "bars"),
        (letterbox_mpeg4, "bars"),
        (vertical_blur, "blur_fill"),
        (vertical_blur_stretched, "blur_fill"),
        (pillarbox_blur, "blur_fill"),
        (caption_above, "caption"),
        (caption_below, "caption"),
        (caption_over_blur, "mixed"),
        (caption_over_letterbox, "mixed"),
        (circle_note, "circle"),
    ],
    ids=lambda v: getattr(v, "__name__", v),
)
def test_reframed_videos_give_the_pictures_box(
    case: Callable[[], tuple[Grey, Box]], kind: str
) -> None:
    frames, truth = case()
    regions = find_regions(frames)
    _assert_box(regions, truth, frames, kind)
    assert len(regions) <= 2


@pytest.mark.parametrize("count", [1, 2])
def test_bars_are_found_from_one_or_two_frames(count: int) -> None:
    frames, truth = letterbox_black()
    _assert_box(find_regions(frames[3 : 3 + count]), truth, frames, "bars")
    frames, truth = pillarbox_colour()
    _assert_box(find_regions(frames[3 : 3 + count]), truth, frames, "bars")


@pytest.mark.parametrize("count", [1, 2])
@pytest.mark.parametrize(
    ("case", "kind"),
    [(vertical_blur, "blur_fill"), (caption_above, "caption"), (circle_note, "circle")],
    ids=lambda v: getattr(v, "__name__", v),
)
def test_fills_captions_and_masks_are_found_from_one_or_two_frames(
    case: Callable[[], tuple[Grey, Box]], kind: str, count: int
) -> None:
    frames, truth = case()
    _assert_box(find_regions(frames[2 : 2 + count]), truth, frames, kind)


def test_caption_over_blur_offers_the_caption_trimmed_as_second_reading() -> None:
    frames, _ = caption_over_blur()
    regions = find_regions(frames)
    assert len(regions) == 2
    second = regions[1]
    assert (second.kind, second.top, second.bottom) == ("caption", pytest.approx(56, abs=4), 384)
    assert find_regions(frames, max_regions=1) == regions[:1]


# --- negatives ------------------------------------------------------------------------------


@functools.cache
def plain_moving() -> Grey:
    return _sampled(_content(11, (384, 216)))


@functools.cache
def plain_vertical() -> Grey:
    return _sampled(_content(12, (216, 384)))


@functools.cache
def plain_square() -> Grey:
    return _sampled(_content(13, (256, 256)))


@functools.cache
def static_camera() -> Grey:
    """A fixed view where only a small object moves."""
    scene = np.asarray(media.photo(14, (384, 216)))
    frames = []
    for i in range(SECONDS * FPS):
        frame = scene.copy()
        cv2.circle(frame, (60 + i * 6, 150), 14, (250, 250, 250), -1, lineType=cv2.LINE_AA)
        frames.append(frame)
    return _sampled(frames)


@functools.cache
def dark_scene() -> Grey:
    return _sampled([(f * 0.12).astype(np.uint8) for f in _content(15, (384, 216))])


@functools.cache
def sky_band() -> Grey:
    """A pan over a landscape: a flat sky (a smooth gradient) over hills and textured ground."""
    width, height = 640, 216
    ground = np.asarray(media.photo(16, (width, height)))
    xs = np.arange(width)
    horizon = (80 + 22 * np.sin(xs / 47.0) + 12 * np.sin(xs / 13.0 + 1)).astype(int)
    sky = np.linspace([70, 120, 200], [190, 215, 240], height).astype(np.uint8)
    scene = ground.copy()
    for x in range(width):
        scene[: horizon[x], x] = sky[: horizon[x]]
    frames = [scene[:, 4 * i : 4 * i + 384] for i in range(SECONDS * FPS)]
    return _sampled(frames)


@functools.cache
def slideshow() -> Grey:
    """Still photos, two seconds each, with cuts between them."""
    frames = []
    for shot in range(SECONDS // 2):
        photo = np.asarray(media.photo(20 + shot, (384, 216)))
        frames.extend([photo] * (2 * FPS))
    return _sampled(frames)


@functools.cache
def dark_round_note() -> Grey:
    """A square video, dark towards its corners (vignetted night footage), no mask."""
    size = 256
    ys, xs = np.mgrid[:size, :size]
    falloff = np.clip(1.2 - np.hypot(ys - 128, xs - 128) / 128, 0.05, 1.0)[..., None]
    return _sampled([(f * falloff).astype(np.uint8) for f in _content(24, (size, size))])


@functools.cache
def dark_letterbox_like() -> Grey:
    """Night footage whose top and bottom are all but black (no bars: the dark fades)."""
    frames = []
    ramp = np.concatenate([np.linspace(0.02, 1, 60), np.ones(96), np.linspace(1, 0.02, 60)])
    for frame in _content(25, (384, 216)):
        frames.append((frame * 0.5 * ramp[:, None, None]).astype(np.uint8))
    return _sampled(frames)


@pytest.mark.parametrize(
    "case",
    [
        plain_moving,
        plain_vertical,
        plain_square,
        static_camera,
        dark_scene,
        sky_band,
        slideshow,
        dark_round_note,
        dark_letterbox_like,
    ],
    ids=lambda v: v.__name__,
)
def test_plain_videos_give_no_region(case: Callable[[], Grey]) -> None:
    frames = case()
    assert find_regions(frames) == ()
    assert find_regions(frames[:1]) == ()
    assert find_regions(frames[:2]) == ()


def test_input_is_checked() -> None:
    with pytest.raises(ValueError, match="no frames"):
        find_regions([])
    with pytest.raises(ValueError, match="expected a grey HxW uint8 array"):
        find_regions([np.zeros((64, 64, 3), dtype=np.uint8)])
    with pytest.raises(ValueError, match="expected every frame the size of the first"):
        find_regions([np.zeros((64, 64), dtype=np.uint8), np.zeros((64, 80), dtype=np.uint8)])
    frames, _ = letterbox_black()
    assert find_regions(frames, max_regions=0) == ()
    assert find_regions([np.zeros((20, 20), dtype=np.uint8)]) == ()
