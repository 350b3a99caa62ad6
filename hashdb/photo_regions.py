"""Find the picture's own rectangle(s) inside an uploaded photo, from that one image.

Copies of a photo are re-framed before they are re-shared: a plain border or the padding of
a "fit to square" app (one colour, or a blurred, enlarged copy of the picture), a caption or
meme bar with text, a phone's or a browser's interface around it in a screenshot, or one
cell of a grid or collage. PDQ of the whole upload no longer meets the original's hash; PDQ
of the picture's own rectangle does. Lists without local features (imports, operator bank
files, exports) can only be matched that way.

A photo has one frame, so unlike ``hashdb.video_regions`` (which watches what changes over
time) everything rests on what one image shows, on row and column profiles of a grey copy
thinned to ``WORK_SIDE`` pixels:

- *border*: every line of a band at the image's edge is flat (one value across the line),
  all of one value, and the band ends on a straight edge: the next line differs from that
  value across most of its length;
- *chrome*: a band that starts and ends with flat lines of one background value, is mostly
  that value in between (text, icons, an avatar), and ends on a straight edge. Caption bars
  and a screenshot's status bar, header, navigation bar, sidebar and comment column are all
  such bands; they are peeled one after the other, from every side, until none is left;
- *blur_fill*: the bands on two opposite sides have little fine detail and end, at about
  the same depth, where detail jumps along a line that runs across the image (apps centre
  the picture on its blurred or stretched copy; a smooth sky ends on one side only);
- *cell*: a grid or collage is cut along seams that run across the whole (remaining)
  picture: a gutter (a run of flat lines with straight edges on both sides) or, without a
  gutter, a line where most pixels step sharply from the line before and the lines around
  it do not.

Every test fails closed and the output is bounded (``MAX_REGIONS`` rectangles, none smaller
than ``MIN_KEPT`` of the image's side or ``MIN_SIDE_PX``, none thinner than ``MAX_ASPECT``
allows; a grid's cells at least ``MIN_CELL``): each region costs hashing time
and adds chances of a false match, and an attacker chooses what the upload shows. Measured
in ``bench/photo_regions.py``; the regions' hashes are matched in ``bot.matcher``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from hashdb.photo_lines import (
    BAND_RANGE,
    EDGE_DIFF,
    FLAT_STD,
    RINGING,
    find_seams,
    is_chrome,
    is_detailed,
    mode_share,
    straight_edge,
)
from hashdb.regions import Region

__all__ = ["MAX_REGIONS", "Region", "find_regions"]

#: Regions are found on a grey copy at most this many pixels on its long side: boundaries
#: are placed within one work pixel (0.4% of the side), which moves PDQ by a few bits.
WORK_SIDE: Final = 256
#: Regions returned at most: the upload is hashed 8 more ways per region.
MAX_REGIONS: Final = 10
#: A band is at most this share of the remaining lines on its side, per peel.
MAX_BAND: Final = 0.8
#: Bands peeled at most (a screenshot has five to eight).
MAX_LAYERS: Final = 12
#: A blurred fill's fine detail is at most this share of the picture's...
BLUR_DETAIL_RATIO: Final = 0.35
#: ...and its boundary's detail this many times the fill's, in this share of its columns.
BLUR_EDGE_STEP: Final = 4.0
BLUR_EDGE_SHARE: Final = 0.45
#: Opposite fills end this close in depth (share of the side): apps centre the picture.
BLUR_SYMMETRY: Final = 0.06
#: A region keeps at least this share of each side of the image and ``MIN_SIDE_PX`` (a 3:1
#: panorama in a phone screenshot is 15% of its height)...
MIN_KEPT: Final = 0.12
MIN_SIDE_PX: Final = 48
#: ...and is no longer than this many times its width, or the other way round...
MAX_ASPECT: Final = 5.0
#: ...and a grid's cell keeps at least this share of each side (a 4x4 grid's cells are 25%).
MIN_CELL: Final = 0.2
#: ...and is refused when it keeps this share of both sides (nothing was trimmed).
MAX_KEPT: Final = 0.95
#: Regions whose sides all lie within this share of the image's side of a region already
#: kept are left out.
DUPLICATE_SHARE: Final = 0.01
#: Grid cells cut at most this deep (a cell of a row of a grid).
MAX_SPLIT_DEPTH: Final = 3

_SIDES: Final = ("top", "bottom", "left", "right")
_OPPOSITE: Final = {"top": "bottom", "bottom": "top", "left": "right", "right": "left"}


@dataclass(frozen=True, slots=True)
class _Box:
    """A rectangle in work pixels, and what was trimmed to reach it."""

    top: int
    bottom: int
    left: int
    right: int
    kinds: frozenset[str] = frozenset()

    def trimmed(self, name: str, depth: int, kind: str) -> _Box:
        """The box with ``depth`` more lines trimmed from side ``name``."""
        moved = {
            "top": (self.top + depth, self.bottom, self.left, self.right),
            "bottom": (self.top, self.bottom - depth, self.left, self.right),
            "left": (self.top, self.bottom, self.left + depth, self.right),
            "right": (self.top, self.bottom, self.left, self.right - depth),
        }[name]
        return _Box(*moved, kinds=self.kinds | {kind})


def find_regions(
    grey: npt.NDArray[np.uint8], *, max_regions: int = MAX_REGIONS
) -> tuple[Region, ...]:
    """The picture's own rectangle(s) inside a grey image (HxW uint8), best first.

    Empty when the picture fills the image. Otherwise: the rectangle left once every
    border, fill and interface band is trimmed (each side to its deepest boundary, then to
    its first: the deepest may run into a picture whose edge looks like a band); the one
    inside only the outer plain border, when there was more (a bordered screenshot may
    itself be what was blocked); then the cells of a grid or collage inside the first,
    largest first. Rectangles within a pixel or two of one already given are left out.
    """
    if max_regions < 0:
        raise ValueError(f"max_regions {max_regions} is negative; expected 0 or more")
    if grey.ndim != 2 or grey.dtype != np.uint8:
        raise ValueError(
            f"image is {grey.dtype} with shape {grey.shape}; expected a grey HxW uint8 array"
        )
    height, width = grey.shape
    if max_regions == 0 or min(height, width) < MIN_SIDE_PX:
        return ()
    scale = max(1.0, max(height, width) / WORK_SIDE)
    size = (max(1, round(width / scale)), max(1, round(height / scale)))
    # Per axis, so that the thinned image's last line maps to the image's own.
    factor = (width / size[0], height / size[1])
    # Area averaging, not nearest neighbour: one image has no time to average JPEG noise
    # over, so the thinning does it (a boundary blurs by one work pixel: RINGING covers it).
    small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    work = _Work(small)

    boxes: list[_Box] = []
    # Two readings of the bands: each side's deepest boundary (through a screenshot's
    # lines of text), then the first (should the deepest have run into the picture).
    frame = work.peel(deepest=True)
    for box in (frame, work.peel(deepest=False), work.outer_border()):
        if box is not None and box not in boxes:
            boxes.append(box)
    inside = frame or _Box(0, size[1], 0, size[0])
    cells = sorted(
        work.cells(inside, depth=0),
        key=lambda box: -(box.bottom - box.top) * (box.right - box.left),
    )
    boxes += cells

    regions: list[Region] = []
    for box in boxes:
        region = _region(_refined(grey, box, factor), width, height)
        # Readings a pixel or two apart hash alike: hashing both would only cost time.
        close = max(2, round(DUPLICATE_SHARE * max(width, height)))
        if region is not None and not any(
            max(abs(a - b) for a, b in zip(region.box, known.box, strict=True)) <= close
            for known in regions
        ):
            regions.append(region)
    return tuple(regions[:max_regions])


class _Work:
    """The thinned grey image and the per-pixel detail every test reads."""

    def __init__(self, small: npt.NDArray[np.float32]) -> None:
        self.image = small
        self.height, self.width = int(small.shape[0]), int(small.shape[1])
        self.detail = np.abs(cv2.Laplacian(small, cv2.CV_32F, ksize=1))
        # Running sums along rows and along columns (of values, squares and detail), so
        # any line's mean and spread within any box costs two lookups: the bands are
        # looked for many times, in boxes that shrink as they are trimmed.
        # float32 is enough: a line's sum of squares stays under 2**24 * 4 (256 pixels of
        # 255**2), so a mean of squares is off by well under one grey level squared.
        stack = np.stack([small, small * small, self.detail])
        self._along_rows = np.zeros((3, self.height, self.width + 1), dtype=np.float32)
        np.cumsum(stack, axis=2, out=self._along_rows[:, :, 1:])
        self._along_columns = np.zeros((3, self.height + 1, self.width), dtype=np.float32)
        np.cumsum(stack, axis=1, out=self._along_columns[:, 1:, :])

    def line_stats(
        self, box: _Box, name: str
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Mean, standard deviation and mean detail of each line of the box, ordered from
        side ``name``'s edge inwards."""
        if name in ("top", "bottom"):
            sums = (
                self._along_rows[:, box.top : box.bottom, box.right]
                - self._along_rows[:, box.top : box.bottom, box.left]
            ) / max(1, box.right - box.left)
        else:
            sums = (
                self._along_columns[:, box.bottom, box.left : box.right]
                - self._along_columns[:, box.top, box.left : box.right]
            ) / max(1, box.bottom - box.top)
        if name in ("bottom", "right"):
            sums = sums[:, ::-1]
        mean, square, detail = sums
        return mean, np.sqrt(np.maximum(square - mean * mean, 0.0)), detail

    def oriented(self, box: _Box, name: str) -> tuple[npt.NDArray[np.float32], ...]:
        """The box's pixels and detail as (lines, pixels), line 0 at side ``name``'s edge."""
        out = []
        for array in (self.image, self.detail):
            part = array[box.top : box.bottom, box.left : box.right]
            if name in ("left", "right"):
                part = part.T
            if name in ("bottom", "right"):
                part = part[::-1]
            out.append(part)
        return tuple(out)

    # --- trimming ------------------------------------------------------------------------

    @functools.cached_property
    def filled(self) -> _Box:
        """The whole image, or the box inside a blurred or stretched fill."""
        return self._blur_fill(_Box(0, self.height, 0, self.width))

    def peel(self, *, deepest: bool) -> _Box | None:
        """The box left once blurred fills, borders and interface bands are trimmed."""
        box = self.filled
        for round_ in range(MAX_LAYERS):
            progressed = False
            borders: dict[str, int] = {}
            touched: set[str] = set()
            for name in _SIDES:
                found = self._flat_band(box, name, chrome=True, deepest=deepest)
                if found is None:
                    continue
                depth, kind = found
                touched.add(name)
                if kind == "border" and round_ == 0:
                    borders[name] = depth
                trimmed = box.trimmed(name, depth, kind)
                if not self._big_enough(trimmed):
                    return None
                box, progressed = trimmed, True
            if round_ == 0 and touched == set(borders):
                box = self._centred(box, borders, touched)
            if not progressed:
                break
        return box if box.kinds else None

    def outer_border(self) -> _Box | None:
        """The box inside the plain border alone (one round of border bands)."""
        box = _Box(0, self.height, 0, self.width)
        borders: dict[str, int] = {}
        for name in _SIDES:
            found = self._flat_band(box, name, chrome=False)
            if found is not None:
                borders[name] = found[0]
                box = box.trimmed(name, found[0], found[1])
        box = self._centred(box, borders, set(borders))
        return box if box.kinds and self._big_enough(box) else None

    def _centred(self, box: _Box, borders: dict[str, int], touched: set[str]) -> _Box:
        """``box`` with the plain band opposite each border found (``borders``: side ->
        depth) trimmed too, when that side (not in ``touched``) showed no edge:
        padding apps centre the picture, and a dark picture's edge on black padding is no
        edge to look at. The opposite side must be flat lines of the border's value for
        about as deep."""
        for name, depth in borders.items():
            other = _OPPOSITE[name]
            if other in touched:
                continue
            mean, std, _ = self.line_stats(box, other)
            run = 0
            while (
                run < len(mean)
                and std[run] <= FLAT_STD
                and abs(float(mean[run]) - float(mean[0])) <= BAND_RANGE
            ):
                run += 1
            if run >= depth - 1 and self._same_value(name, other, depth):
                trimmed = box.trimmed(other, min(run, depth), "border")
                if self._big_enough(trimmed):
                    box = trimmed
        return box

    def _same_value(self, name: str, other: str, depth: int) -> bool:
        """Whether the first line of side ``other`` has the value of side ``name``'s band."""
        whole = _Box(0, self.height, 0, self.width)
        a = float(self.line_stats(whole, name)[0][max(0, depth // 2)])
        b = float(self.line_stats(whole, other)[0][0])
        return abs(a - b) <= BAND_RANGE

    def _big_enough(self, box: _Box) -> bool:
        h, w = box.bottom - box.top, box.right - box.left
        return h >= MIN_KEPT * self.height and w >= MIN_KEPT * self.width

    def _flat_band(
        self, box: _Box, name: str, *, chrome: bool, deepest: bool = False
    ) -> tuple[int, str] | None:
        """A border (or, with ``chrome``, an interface or caption band) at side ``name``:
        its depth in lines and its kind. The first boundary found from the edge, or with
        ``deepest`` the last one before the picture: a screenshot's interface is bands of
        flat lines and lines of text or icons, and the first boundary may be a text line's.
        """
        pixels, detail = self.oriented(box, name)
        lines = pixels.shape[0]
        if lines < 8 or pixels.shape[1] < 8:
            return None
        limit = min(round(MAX_BAND * lines), lines - RINGING - 3)
        head = pixels[: limit + RINGING + 1]
        mean, std, _ = self.line_stats(box, name)
        mean, flat = mean[: len(head)], std[: len(head)] <= FLAT_STD
        # The line next to a boundary just trimmed may blend both sides (thinning, ringing).
        if not flat[: RINGING + 1].any():
            return None
        step = np.zeros(len(mean), dtype=bool)
        step[1:] = np.abs(np.diff(mean)) > EDGE_DIFF
        # Where a run of flat lines ends (the next is not flat, or steps to another value).
        ends = np.flatnonzero(flat[: limit - 1] & (~flat[1:limit] | step[1:limit])) + 1
        found: tuple[int, str] | None = None
        shares: npt.NDArray[np.float64] | None = None
        for end in ends.tolist():
            value = float(mean[end - 1])
            edge = next(
                (
                    e
                    for e in range(end, min(end + RINGING + 1, len(mean)))
                    if straight_edge(head[e], value)
                ),
                None,
            )
            first = int(np.argmax(flat))
            plain = bool(flat[first:end].all()) and float(np.ptp(mean[first:end])) <= BAND_RANGE
            if edge is None and plain:
                # A plain band next to a picture of about its grey (a grey border round a
                # mid-grey photo): the picture starts where fine detail does, across it.
                edge = next(
                    (e for e in range(end, min(end + RINGING + 1, len(mean))) if
                     is_detailed(detail[e + 1 : e + 3])),
                    None,
                )  # fmt: skip
            if edge is None:
                continue
            if plain:
                found = (edge, "border")
            elif chrome and is_chrome(
                shares := mode_share(head) if shares is None else shares,
                first,
                end,
                MIN_KEPT * (self.height + self.width) / 2,
            ):
                found = (edge, "chrome")
            elif not chrome or not deepest:
                # Past a line that is neither: whatever lies beyond is no band of this side.
                break
            else:
                continue
            if not deepest:
                break
        return found

    def _blur_fill(self, box: _Box) -> _Box:
        """The box with a blurred or stretched fill trimmed from two opposite sides."""
        for pair in (("top", "bottom"), ("left", "right")):
            depths = [self._blur_band(box, name) for name in pair]
            if depths[0] is None or depths[1] is None:
                continue
            lines = box.bottom - box.top if pair[0] == "top" else box.right - box.left
            if abs(depths[0] - depths[1]) > BLUR_SYMMETRY * lines + 2:
                continue
            trimmed = box.trimmed(pair[0], depths[0], "blur_fill").trimmed(
                pair[1], depths[1], "blur_fill"
            )
            if self._big_enough(trimmed):
                box = trimmed
        return box

    def _blur_band(self, box: _Box, name: str) -> int | None:
        """Depth of a low-detail band at side ``name`` that ends where detail jumps along a
        line across the box."""
        _, detail = self.oriented(box, name)
        lines = detail.shape[0]
        window = max(3, lines // 40)
        line_detail = self.line_stats(box, name)[2]
        limit = min(round(0.45 * lines), lines - 2 * window)
        first = window + 2
        if limit <= first:
            return None
        ends = np.arange(first, limit)
        edge = np.maximum(line_detail[ends], line_detail[ends - 1])
        # before[i]: the median detail of the ``window`` lines that end one before ends[i].
        medians = np.median(sliding_window_view(line_detail, window), axis=1)
        before = medians[ends - 1 - window]
        strong = np.flatnonzero(edge >= BLUR_EDGE_STEP * (before + 0.5))
        if len(strong) == 0:
            return None
        end = int(ends[strong[0]])
        # A flat band is a border (``_flat_band``), not a fill: a blurred picture keeps its
        # colours' spread along each line.
        if float(np.median(self.line_stats(box, name)[1][: end - 1])) <= FLAT_STD:
            return None
        fill = float(line_detail[: end - 1].mean())
        picture = float(np.median(line_detail[end + 1 : end + 1 + lines // 4]))
        if fill > BLUR_DETAIL_RATIO * picture:
            return None
        columns = detail[end - 1 : end + 2].max(axis=0)
        above = detail[max(0, end - 1 - window) : end - 1].mean(axis=0)
        if float((columns > BLUR_EDGE_STEP * (above + 0.5)).mean()) < BLUR_EDGE_SHARE:
            return None
        return end

    # --- grids ---------------------------------------------------------------------------

    def cells(self, box: _Box, depth: int) -> list[_Box]:
        """The cells of a grid or collage filling ``box`` (none if it is one picture)."""
        if depth >= MAX_SPLIT_DEPTH:
            return []
        rows, columns = self._split(box, "rows"), self._split(box, "columns")
        found: list[_Box] = []
        if len(rows) > 1 and len(columns) > 1:
            # Seams across the whole box both ways: a regular grid, cell by cell.
            found = [
                _Box(row.top, row.bottom, column.left, column.right, frozenset({"cell"}))
                for row in rows
                for column in columns
            ]
        else:
            # One way only: each part may be cut again (a collage's rows of pictures), and
            # a part that is not is a picture itself.
            for part in rows if len(rows) > 1 else columns if len(columns) > 1 else []:
                found += self.cells(part, depth + 1) or [part]
        return [cell for cell in found if self._cell_size(cell)]

    def _cell_size(self, box: _Box) -> bool:
        h, w = box.bottom - box.top, box.right - box.left
        return min(h, w) >= 8 and h >= MIN_CELL * self.height and w >= MIN_CELL * self.width

    def _split(self, box: _Box, axis: str) -> list[_Box]:
        """``box`` cut along every seam that runs across it (``rows``: horizontal seams)."""
        name = "top" if axis == "rows" else "left"
        pixels, _ = self.oriented(box, name)
        lines = pixels.shape[0]
        margin = max(4, round(MIN_CELL * (self.height if axis == "rows" else self.width)))
        if lines < 2 * margin:
            return [box]
        mean, std, _ = self.line_stats(box, name)
        cuts = find_seams(pixels, mean, std, margin)
        if not cuts:
            return [box]
        parts: list[_Box] = []
        start = 0
        for first, stop in [*cuts, (lines, lines)]:
            if first - start >= 8:
                if axis == "rows":
                    parts.append(_Box(box.top + start, box.top + first, box.left, box.right))
                else:
                    parts.append(_Box(box.top, box.bottom, box.left + start, box.left + first))
            start = stop
        return [_Box(p.top, p.bottom, p.left, p.right, frozenset({"cell"})) for p in parts] or [box]


def _refined(grey: npt.NDArray[np.uint8], box: _Box, factor: tuple[float, float]) -> _Box:
    """A box found on the thinned image, in the given image's pixels, each side that is not
    the image's edge placed on the line that changes most from the one before it within a
    work pixel or two of the estimate (a boundary is the sharpest straight edge around; an
    error of a few pixels moves PDQ by several bits)."""
    height, width = grey.shape

    def place(estimate: int, lines: int, profile: npt.NDArray[np.uint8], scale: float) -> int:
        if estimate <= 0 or estimate >= lines:
            return min(max(estimate, 0), lines)
        reach = int(np.ceil(scale)) + 2
        low, high = max(1, estimate - reach), min(lines - 1, estimate + reach)
        if high <= low:
            return estimate
        part = profile[low - 1 : high + 1].astype(np.int16)
        change = np.abs(np.diff(part, axis=0)).mean(axis=1)
        # Of the lines that change about as much as the most, the nearest the estimate: a
        # thin gutter has an edge on either side, and the cell ends at the near one.
        strong = np.flatnonzero(change >= 0.7 * float(change.max()))
        return low + int(strong[np.argmin(np.abs(low + strong - estimate))])

    fx, fy = factor
    top, bottom = round(box.top * fy), round(box.bottom * fy)
    left, right = round(box.left * fx), round(box.right * fx)
    rows = grey[:, max(0, left) : min(width, right)]
    columns = grey[max(0, top) : min(height, bottom)].T
    return _Box(
        place(top, height, rows, fy),
        place(bottom, height, rows, fy),
        place(left, width, columns, fx),
        place(right, width, columns, fx),
        box.kinds,
    )


def _region(box: _Box, width: int, height: int) -> Region | None:
    """The box (in the given image's pixels), if it is a useful region."""
    left, top, right, bottom = box.left, box.top, box.right, box.bottom
    w, h = right - left, bottom - top
    if w >= MAX_KEPT * width and h >= MAX_KEPT * height:
        return None
    if min(w, h) < MIN_SIDE_PX or w < MIN_KEPT * width or h < MIN_KEPT * height:
        return None
    if max(w, h) > MAX_ASPECT * min(w, h):
        return None
    kinds = box.kinds or frozenset({"cell"})
    kind = next(iter(kinds)) if len(kinds) == 1 else "mixed"
    return Region(left, top, right, bottom, kind)
