"""Find the picture's own rectangle inside re-framed video frames.

Reposts of a clip re-frame it: black or coloured bars (letterbox, pillarbox), a vertical
frame whose top and bottom are filled with a blurred, enlarged copy of the picture, a
caption bar with static text above or below, a round mask baked into a video note, or a mix.
Whole-frame PDQ of such a frame no longer meets the original's; PDQ of the picture's own
rectangle does. This module finds that rectangle from grey frames sampled through the clip
(e.g. 1 frame/s; the bot passes 768 px grey frames); it decodes nothing and hashes nothing.

The picture is axis-aligned and what surrounds it comes in full-width or full-height bands,
so the work is on row and column profiles (one OpenCV pass per frame, on frames thinned to
``WORK_SIDE``), each side (top, bottom, left, right) peeled from the frame's edge inwards,
one layer at a time; each boundary is then placed on the given frames' own lines:

- *bars*: every line of the band is flat (one value across the line) and keeps its value
  through the clip;
- *caption*: the band does not change over time, is mostly one background value from a flat
  margin at the frame's edge to a flat margin at the picture's, and with several frames
  something beyond it moves;
- *blur_fill*: the band has little fine detail (Laplacian energy) and ends where detail
  jumps, on a line that runs across the whole frame; the opposite side has a fill too; and
  the band follows the picture enlarged (scaled to cover or stretched) and blurred, at the
  same level and contrast, through the clip;
- *circle*: a square frame whose corners outside the inscribed circle are black, cut off
  sharply at the rim; the circle's inscribed square is the region.

Bars and captions also need the straight line: the picture's first line differs from the
band across nearly its whole width at some moment of the clip. A flat sky, a dark scene or
a static camera gives flat, dark or static lines too, but its boundary is not one line
across the frame, and a sky is a gradient, not one value. Returning nothing is the default:
each region costs hashing time and adds chances of a false match, so every test is set to
fail closed. Measured in ``bench/video_regions.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

import cv2
import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from hashdb.regions import Region
from hashdb.video_fill import band_mask, cover_crop, resembles

#: Bands are found on frames scaled down to at most this many pixels on the long side.
WORK_SIDE: Final = 192
#: Frames looked at; longer inputs are thinned evenly, which bounds the cost (about 60
#: frames already show which lines stay static or flat through a clip).
MAX_FRAMES: Final = 64
#: A line is flat when its values' standard deviation across the line stays below this in
#: every frame: encoder noise in a bar is ~0-1 grey levels, a sky's texture usually more.
FLAT_STD: Final = 4.0
#: A band's line keeps its value through the clip within this (grey levels).
STATIC_RANGE: Final = 4.0
#: Mean absolute frame-to-frame change of a static line: low-bitrate H.264/MPEG-4 flicker
#: around caption text stays under this.
STATIC_MOTION: Final = 1.5
#: A pixel of the picture's first line differs from the band's value by more than this...
EDGE_DIFF: Final = 12.0
#: ...at some moment of the clip, in at least this share of the line's pixels.
EDGE_SHARE: Final = 0.7
#: Caption bands are mostly their background value (within ``BACKGROUND_TOLERANCE``).
CAPTION_BACKGROUND: Final = 0.5
BACKGROUND_TOLERANCE: Final = 6.0
#: Lines on either side of a boundary that codec ringing may blur.
RINGING: Final = 2
#: A blur fill's fine detail is at most this share of the picture's next to it (measured:
#: a sigma-20 fill after H.264 at CRF 34 keeps ~0.4 of a soft picture's detail)...
BLUR_DETAIL_RATIO: Final = 0.6
#: ...and the boundary's detail is this many times the fill's before it (measured: 5-30x
#: for sharp footage, ~4.5x for dark soft footage; a sky over an irregular horizon 2-5x,
#: which the column test, the pairing and the resemblance test then refuse)...
BLUR_EDGE_STEP: Final = 4.0
#: ...and column by column, the edge is this many times the fill's detail above it...
BLUR_COLUMN_STEP: Final = 3.0
#: ...column by column, for at least this share of the line.
BLUR_EDGE_SHARE: Final = 0.6
#: Bands are at most this share of the frame's side, per side.
MAX_BAND: Final = 0.45
#: A region is refused when it keeps at least this share of both sides (nothing trimmed)...
MAX_KEPT: Final = 0.92
#: ...or when either side is below this share of the frame or ``MIN_SIDE_PX``.
MIN_KEPT: Final = 0.2
MIN_SIDE_PX: Final = 32
#: Square frames (video notes) within this aspect tolerance are tested for a round mask.
SQUARE_TOLERANCE: Final = 0.03
#: Largest grey value of a mask's black corners (limited-range black decodes to 0-16).
MASK_BLACK: Final = 24.0

_SIDES: Final = ("top", "bottom", "left", "right")


@dataclass(frozen=True, slots=True)
class _LineStats:
    """Statistics of each line (row or column) of the frames."""

    #: (time, lines): the line's mean value in each frame.
    mean: npt.NDArray[np.float32]
    #: The line's standard deviation along itself, in its worst frame.
    std: npt.NDArray[np.float32]
    #: Mean |frame-to-frame change|; None for a single frame.
    motion: npt.NDArray[np.float32] | None
    #: Whether the line's values stay put through the clip (always, for a single frame).
    static: npt.NDArray[np.bool_]
    #: (lines, pixels): mean |Laplacian| over time, and its mean along each line.
    detail_map: npt.NDArray[np.float32]
    detail: npt.NDArray[np.float32]

    def flipped(self) -> _LineStats:
        return _LineStats(
            self.mean[:, ::-1],
            self.std[::-1],
            None if self.motion is None else self.motion[::-1],
            self.static[::-1],
            self.detail_map[::-1],
            self.detail[::-1],
        )


def _line_stats(
    small: Sequence[npt.NDArray[np.uint8]],
) -> tuple[_LineStats, _LineStats]:
    """Statistics of the rows and of the columns of these frames.

    One pass per frame with OpenCV's reductions, without a float copy of the clip: three
    times faster than the same sums in numpy over a stacked array.
    """
    count = len(small)
    height, width = small[0].shape
    row_mean = np.empty((count, height), dtype=np.float32)
    row_square = np.empty((count, height), dtype=np.float32)
    column_mean = np.empty((count, width), dtype=np.float32)
    column_square = np.empty((count, width), dtype=np.float32)
    detail_map = np.zeros((height, width), dtype=np.float32)
    motion_map = np.zeros((height, width), dtype=np.float32)
    previous: npt.NDArray[np.uint8] | None = None
    for t, frame in enumerate(small):
        square = cv2.multiply(frame, frame, dtype=cv2.CV_32F)
        row_mean[t] = cv2.reduce(frame, 1, cv2.REDUCE_AVG, dtype=cv2.CV_32F)[:, 0]
        row_square[t] = cv2.reduce(square, 1, cv2.REDUCE_AVG)[:, 0]
        column_mean[t] = cv2.reduce(frame, 0, cv2.REDUCE_AVG, dtype=cv2.CV_32F)[0]
        column_square[t] = cv2.reduce(square, 0, cv2.REDUCE_AVG)[0]
        laplacian = cv2.Laplacian(frame, cv2.CV_16S, ksize=1)
        cv2.accumulate(cv2.convertScaleAbs(laplacian), detail_map)
        if previous is not None:
            cv2.accumulate(cv2.absdiff(frame, previous), motion_map)
        previous = frame
    detail_map /= count
    motion = motion_map / (count - 1) if count > 1 else None

    def stats(
        mean: npt.NDArray[np.float32],
        mean_square: npt.NDArray[np.float32],
        line_motion: npt.NDArray[np.float32] | None,
        lines_map: npt.NDArray[np.float32],
    ) -> _LineStats:
        std = np.sqrt(np.maximum(mean_square - mean * mean, 0.0)).max(axis=0)
        static = np.ptp(mean, axis=0) <= STATIC_RANGE
        if line_motion is not None:
            static &= line_motion <= STATIC_MOTION
        return _LineStats(mean, std, line_motion, static, lines_map, lines_map.mean(axis=1))

    rows = stats(row_mean, row_square, None if motion is None else motion.mean(axis=1), detail_map)
    columns = stats(
        column_mean,
        column_square,
        None if motion is None else motion.mean(axis=0),
        detail_map.T,
    )
    return rows, columns


@dataclass(frozen=True, slots=True)
class _Layer:
    """One band peeled from one side: it ends ``depth`` lines from the frame's edge."""

    depth: int
    kind: str


class _Side:
    """Per-line statistics of the frames, ordered from one edge of the frame inwards.

    ``frames`` is (time, lines, pixels along a line): the frames themselves for the top,
    flipped for the bottom, transposed for the left and right; the statistics are views of
    ones computed once per axis, in the same order.
    """

    def __init__(self, frames: npt.NDArray[np.uint8], stats: _LineStats) -> None:
        self.frames = frames
        self.lines = frames.shape[1]
        self.mean = stats.mean
        self.flat = stats.std <= FLAT_STD
        self.motion = stats.motion
        self.static = stats.static
        # step[l]: line l's value differs from line l-1's in some frame (step[0] is False).
        self.step = np.zeros(self.lines, dtype=bool)
        self.step[1:] = (np.abs(np.diff(self.mean, axis=1)) > EDGE_DIFF).any(axis=0)
        self.detail_map = stats.detail_map
        self.detail = stats.detail

    def straight_edge(self, line: int, value: npt.NDArray[np.float32]) -> bool:
        """Whether line ``line`` differs from the band's per-frame ``value`` nearly across."""
        differs = np.abs(self.frames[:, line, :] - value[:, None]) > EDGE_DIFF
        return float(differs.any(axis=0).mean()) >= EDGE_SHARE

    def picture_moves(self, start: int, band_stop: int) -> bool:
        """With several frames: something beyond the band changes, and more than the band.

        Anywhere beyond it, not next to it: under a caption, a static camera's view may
        only move in its middle (people crossing a hall).
        """
        if self.motion is None:
            return True
        band = float(self.motion[:band_stop].mean())
        return float(self.motion[start:].max()) > max(1.0, 3.0 * band)

    def flat_band(self, start: int) -> _Layer | None:
        """Bars, or a caption bar, from line ``start``."""
        limit = min(start + round(MAX_BAND * self.lines), self.lines - RINGING - 1)
        moving = np.flatnonzero(~self.static[start:limit])
        first_moving = start + int(moving[0]) if len(moving) else limit
        # Candidates, in the static part of the frame: where a run of flat lines ends, or
        # steps to another value (a caption bar stacked on bars).
        after = slice(start + 1, limit)
        ends = np.flatnonzero(self.flat[start : limit - 1] & (~self.flat[after] | self.step[after]))
        for end in (start + 1 + ends).tolist():
            # Codec ringing blurs a line or two on either side of the boundary.
            if end - RINGING > first_moving:
                return None
            if end - start < 2:
                continue
            value = self.mean[:, end - 1]
            edge = next(
                (e for e in range(end, end + RINGING + 1) if self.straight_edge(e, value)), None
            )
            if edge is None:
                continue
            band_values = self.mean[:, start:end]
            if self.flat[start:end].all() and np.all(np.abs(band_values - value[:, None]) <= 4.0):
                return _Layer(edge, "bars")
            if self.caption(start, end):
                return _Layer(edge, "caption")
        return None

    def caption(self, start: int, end: int) -> bool:
        """Whether lines ``start``..``end`` are a caption bar over a moving picture.

        Mostly one background value, from a flat margin at the frame's side to a flat margin
        of at least two lines at the picture's (past a line of ringing, if any). A sky's
        gradient drifts from one value to another; a caption bar's background does not.
        """
        if not self.flat[start]:
            return False
        background = self.mean[:, start]
        margin = next(
            (
                line
                for line in range(end - 1, max(start, end - 2 - RINGING), -1)
                if self.flat[line]
                and self.flat[line - 1]
                and np.all(np.abs(self.mean[:, line] - background) <= BACKGROUND_TOLERANCE)
            ),
            None,
        )
        if margin is None:
            return False
        band = self.frames[:, start:end, :].astype(np.float32)
        near = np.abs(band - background[:, None, None]) <= BACKGROUND_TOLERANCE
        if float(near.mean()) < CAPTION_BACKGROUND:
            return False
        return self.picture_moves(end, end)

    def blur_band(self, start: int) -> _Layer | None:
        """A blurred fill from line ``start``: low detail up to a sharp straight boundary.

        The boundary is a persistent straight edge where fine detail starts: the fill's
        lines have next to none (Laplacian energy of ~1 after a codec), the picture's first
        lines have the picture's own and the edge between the two, in every frame.
        """
        window = max(4, self.lines // 40)
        limit = min(start + round(MAX_BAND * self.lines), self.lines - 2 * window)
        # Past the previous layer's own boundary (its edge and ringing), if any.
        inner = start + RINGING + 1 if start else 0
        first = inner + window + 1
        if limit <= first:
            return None
        # medians[i]: the median detail of the window of lines from line i.
        medians = np.median(sliding_window_view(self.detail, window), axis=1)
        ends = np.arange(first, limit)
        # The boundary's two lines (the fill's last, the picture's first) against the fill
        # before them; the first line from the edge where that jumps is the boundary (the
        # picture beyond may be sharper still, or softer than the edge itself).
        edge = (self.detail[ends - 1] + self.detail[ends]) / 2
        step = edge / (medians[ends - 1 - window] + 1.0)
        strong = np.flatnonzero(step >= BLUR_EDGE_STEP)
        if len(strong) == 0:
            return None
        end = int(ends[strong[0]])
        # The fill has clearly less fine detail than the picture next to it.
        band_detail = float(self.detail[inner : end - 1].mean())
        picture_detail = float(np.median(self.detail[end + 1 : end + 1 + self.lines // 4]))
        if band_detail > BLUR_DETAIL_RATIO * picture_detail:
            return None
        # The edge runs across the whole line, not just where a horizon or an object is:
        # column by column, the boundary stands out from the fill's side of it.
        edge_columns = self.detail_map[end - 1 : end + 2].max(axis=0)
        fill = self.detail_map[end - 1 - window : end - 1].mean(axis=0)
        if float((edge_columns > BLUR_COLUMN_STEP * (fill + 1.0)).mean()) < BLUR_EDGE_SHARE:
            return None
        return _Layer(end, "blur_fill")

    def peel(self) -> list[_Layer]:
        """The bands on this side, outermost first."""
        layers: list[_Layer] = []
        start = 0
        for _ in range(3):
            layer = self.flat_band(start) or self.blur_band(start)
            if layer is None or layer.depth > round(MAX_BAND * self.lines):
                break
            layers.append(layer)
            start = layer.depth
        return layers


def find_regions(
    frames: Sequence[npt.NDArray[np.uint8]], *, max_regions: int = 2
) -> tuple[Region, ...]:
    """The picture's own rectangle(s) inside these frames (grey, HxW uint8, all the same size,
    in time order, e.g. 1 frame/s of a clip downscaled to 768 px on the long side).
    Empty when the picture fills the frame.

    At most ``max_regions``, best first: every band found trimmed; then, when a side has
    more than one layer (a caption bar over a blurred fill or bars), the frame with only
    those outermost layers trimmed: the re-framed copy itself may be what was blocked.
    """
    _validate(frames, max_regions)
    height, width = frames[0].shape
    if max_regions == 0 or min(height, width) < MIN_SIDE_PX:
        return ()
    if len(frames) > MAX_FRAMES:
        frames = [frames[int(i)] for i in np.linspace(0, len(frames) - 1, MAX_FRAMES).round()]
    # Bands are found on frames at most WORK_SIDE px long, then their boundaries are
    # placed on the full frames' lines. Every factor-th line and pixel is kept (nearest
    # neighbour) rather than averaged: averaging would blend the picture's first line with
    # the band's last, blunting the edge.
    factor = max(1, math.ceil(max(height, width) / WORK_SIDE))
    size = (width // factor, height // factor)
    small: list[npt.NDArray[np.uint8]] = [
        np.asarray(cv2.resize(f, size, interpolation=cv2.INTER_NEAREST), dtype=np.uint8)
        for f in frames
    ]
    grey: npt.NDArray[np.uint8] = np.stack(small)

    if _round_mask(grey):
        return (_circle_square(width, height),)[:max_regions]

    rows, columns = _line_stats(small)
    layers: dict[str, list[_Layer]] = {}
    for name in _SIDES:
        stats = rows if name in ("top", "bottom") else columns
        if name in ("bottom", "right"):
            stats = stats.flipped()
        layers[name] = _Side(_oriented(name, grey), stats).peel()
    # Paired again after the check: a fill confirmed on one side only is no fill.
    layers = _paired_blur(_confirm_blur(grey, _paired_blur(layers)))
    layers = {
        name: [_Layer(_refined(frames, name, layer.depth, factor), layer.kind) for layer in found]
        for name, found in layers.items()
    }

    readings = [layers]
    if any(len(found) > 1 for found in layers.values()):
        # A caption over a re-framed copy: that copy (its outer layer trimmed) may be what
        # was blocked, as much as the picture inside it.
        readings.append(
            {name: found[:1] if len(found) > 1 else [] for name, found in layers.items()}
        )
    regions: list[Region] = []
    for cut in readings:
        region = _region(cut, width, height)
        if region is not None and region not in regions:
            regions.append(region)
    return tuple(regions[:max_regions])


def _refined(frames: Sequence[npt.NDArray[np.uint8]], side: str, depth: int, factor: int) -> int:
    """A boundary found ``depth`` lines in from ``side`` on frames thinned by ``factor``,
    placed on the full frames' line where they change most from the line before (the
    boundary is the sharpest straight edge around; a line or two of ringing, or of the
    detail step's window, is where the thinned frames' estimate may be off)."""
    lines = int(frames[0].shape[0 if side in ("top", "bottom") else 1])
    low = max(1, (depth - 1) * factor - 1)
    high = min(lines - 1, (depth + 1) * factor + 1)
    if high <= low:
        return min(depth * factor, lines - 1)
    # Lines low-1 .. high from the side's edge, in frame coordinates.
    if side in ("top", "left"):
        span = slice(low - 1, high + 1)
    else:
        span = slice(lines - high - 1, lines - low + 1)
    band = np.stack([f[span] if side in ("top", "bottom") else f[:, span].T for f in frames])
    change = np.abs(np.diff(band.astype(np.int16), axis=1)).mean(axis=(0, 2))
    if side in ("bottom", "right"):
        change = change[::-1]
    return low + int(np.argmax(change))


def _validate(frames: Sequence[npt.NDArray[np.uint8]], max_regions: int) -> None:
    if max_regions < 0:
        raise ValueError(f"max_regions {max_regions} is negative; expected 0 or more")
    if len(frames) == 0:
        raise ValueError("no frames; expected at least one grey frame")
    shape = frames[0].shape
    for i, frame in enumerate(frames):
        if frame.ndim != 2 or frame.dtype != np.uint8:
            raise ValueError(
                f"frame {i} is {frame.dtype} with shape {frame.shape}; "
                "expected a grey HxW uint8 array"
            )
        if frame.shape != shape:
            raise ValueError(
                f"frame {i} is {frame.shape[1]}x{frame.shape[0]}; expected every frame "
                f"the size of the first, {shape[1]}x{shape[0]}"
            )


_Frames = TypeVar("_Frames", npt.NDArray[np.float32], npt.NDArray[np.uint8])


def _oriented(name: str, frames: _Frames) -> _Frames:
    """Frames as (time, lines, pixels) with line 0 at this side's edge (a view, no copy)."""
    if name in ("left", "right"):
        frames = frames.transpose(0, 2, 1)
    if name in ("bottom", "right"):
        frames = frames[:, ::-1, :]
    return frames


def _region(cut: dict[str, list[_Layer]], width: int, height: int) -> Region | None:
    def depth(name: str) -> int:
        return cut[name][-1].depth if cut[name] else 0

    left, top = depth("left"), depth("top")
    right, bottom = width - depth("right"), height - depth("bottom")
    w, h = right - left, bottom - top
    if w >= MAX_KEPT * width and h >= MAX_KEPT * height:
        return None
    if min(w, h) < MIN_SIDE_PX or w < MIN_KEPT * width or h < MIN_KEPT * height:
        return None
    kinds = {layer.kind for found in cut.values() for layer in found}
    kind = kinds.pop() if len(kinds) == 1 else "mixed"
    return Region(left, top, right, bottom, kind)


_OPPOSITE: Final = {"top": "bottom", "bottom": "top", "left": "right", "right": "left"}


def _paired_blur(layers: dict[str, list[_Layer]]) -> dict[str, list[_Layer]]:
    """Keep blur-fill layers only where the opposite side has one too.

    Re-framing apps centre the picture, so a fill comes in pairs (above and below, or left
    and right), while a smooth sky or floor that ends on a straight horizon is on one side.
    """
    has_blur = {
        name: any(layer.kind == "blur_fill" for layer in found) for name, found in layers.items()
    }
    paired: dict[str, list[_Layer]] = {}
    for name, found in layers.items():
        kept: list[_Layer] = []
        for layer in found:
            if layer.kind == "blur_fill" and not has_blur[_OPPOSITE[name]]:
                break
            kept.append(layer)
        paired[name] = kept
    return paired


def _confirm_blur(
    grey: npt.NDArray[np.uint8], layers: dict[str, list[_Layer]]
) -> dict[str, list[_Layer]]:
    """Drop blur-fill readings whose band does not look like the picture enlarged and blurred.

    A blurred fill is the picture itself, scaled to cover the frame (or stretched to it) and
    blurred, so at low resolution it follows the picture's colours and their changes over
    time; a flat sky or an out-of-focus background above a sharp foreground does not.
    """
    if not any(layer.kind == "blur_fill" for found in layers.values() for layer in found):
        return layers
    height, width = grey.shape[1:]
    box = {name: (found[-1].depth if found else 0) for name, found in layers.items()}
    left, top = box["left"], box["top"]
    right, bottom = width - box["right"], height - box["bottom"]
    if right - left < 8 or bottom - top < 8:
        return {name: [] for name in layers}
    # Compare at 1/8 of the frame; the fill's own blur is unknown.
    small = (max(8, width // 8), max(8, height // 8))
    sigma = max(0.7, min(small) * 0.03)
    frames = [f.astype(np.float32) for f in grey]
    # Only the prediction is blurred further: blurring the frame would smear what lies
    # next to the band (a white caption bar) into it.
    actual = np.stack([cv2.resize(f, small, interpolation=cv2.INTER_AREA) for f in frames])
    predictions = []
    for cover in (False, True):
        predicted = []
        for f in frames:
            picture = f[top:bottom, left:right]
            if cover:
                picture = cover_crop(picture, width, height)
            scaled = cv2.resize(picture, small, interpolation=cv2.INTER_AREA)
            predicted.append(cv2.GaussianBlur(scaled, (0, 0), sigma))
        predictions.append(np.stack(predicted))
    scale_x, scale_y = small[0] / width, small[1] / height
    confirmed: dict[str, list[_Layer]] = {}
    for name, found in layers.items():
        kept: list[_Layer] = []
        start = 0
        for layer in found:
            if layer.kind == "blur_fill":
                mask = band_mask(name, start, layer.depth, small, scale_x, scale_y)
                if mask is None or not any(
                    resembles(actual[:, mask], p[:, mask]) for p in predictions
                ):
                    break
            kept.append(layer)
            start = layer.depth
        confirmed[name] = kept
    return confirmed


def _round_mask(grey: npt.NDArray[np.uint8]) -> bool:
    """Whether a square frame has a black round mask baked in (video notes re-encoded)."""
    height, width = grey.shape[1:]
    if abs(height - width) > SQUARE_TOLERANCE * max(height, width):
        return False
    cy, cx = (height - 1) / 2, (width - 1) / 2
    radius = min(height, width) / 2
    ys, xs = np.ogrid[:height, :width]
    distance = np.sqrt((ys - cy) ** 2 + (xs - cx) ** 2)
    # The corners well outside the circle (anti-aliasing and codec ringing sit at the rim).
    corners = distance > radius * 1.06
    rim = (distance > radius * 0.85) & (distance < radius * 0.95)
    if not corners.any():
        return False
    outside = grey[:, corners]
    if float(outside.max(axis=0).mean()) > MASK_BLACK or float(np.percentile(outside, 99)) > 48:
        return False
    # The picture reaches the rim undimmed: a mask cuts it off sharply, where a vignette
    # or a dark scene with a bright middle fades towards the corners.
    inside = grey[:, rim]
    if float((inside.max(axis=0) > MASK_BLACK + EDGE_DIFF).mean()) < EDGE_SHARE:
        return False
    middle = grey[:, distance < radius * 0.6]
    return float(inside.mean()) >= 0.5 * float(middle.mean())


def _circle_square(width: int, height: int) -> Region:
    """The square inscribed in the frame's inscribed circle, a little inside its rim."""
    half = min(width, height) / 2 / math.sqrt(2) * 0.98
    cx, cy = width / 2, height / 2
    return Region(round(cx - half), round(cy - half), round(cx + half), round(cy + half), "circle")
