"""What a line of a photo, or a run of lines, is: flat, mostly one background value (an
interface or caption band), detailed like a picture's edge, a straight edge after a band,
or a seam that cuts a grid or collage. ``hashdb.photo_regions`` searches for the picture's
own rectangles with these tests; the thresholds were measured in ``bench/photo_regions.py``.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

#: A line is flat when its standard deviation along itself is below this (JPEG noise on a
#: flat band is 1-2 grey levels after thinning; a sky's texture or gradient is more).
FLAT_STD: Final = 4.0
#: A band's lines keep one value within this (grey levels).
BAND_RANGE: Final = 5.0
#: A picture's first lines next to a plain band of its own grey: this much |Laplacian|...
DETAIL_EDGE: Final = 6.0
#: Lines step by more than this (grey levels) at a seam or between stacked bands.
EDGE_DIFF: Final = 12.0
#: The picture's first line differs from a flat band's value by more than this (twice the
#: band's own JPEG noise; a coloured border can be near the picture's average grey)...
EDGE_FROM_BAND: Final = 8.0
#: ...in at least this share of its pixels (a dark picture on black bars fails: fail closed),
#: or in this share of them, nearly all (``EDGE_DENSITY``) in one stretch of the line.
EDGE_SHARE: Final = 0.7
EDGE_SPAN: Final = 0.5
EDGE_DENSITY: Final = 0.9
#: A chrome band's lines are on average at least this share one value (per line, within
#: about this tolerance), and each at least ``CHROME_LINE`` (a line of large caption text
#: is 40-70%).
CHROME_BACKGROUND: Final = 0.7
CHROME_LINE: Final = 0.35
BACKGROUND_TOLERANCE: Final = 8.0
#: Lines of ringing (JPEG, resampling) on either side of a boundary.
RINGING: Final = 2
#: A seam without a gutter: this share of the line steps by more than ``EDGE_DIFF``, its
#: mean step this many times the lines' around it (measured at thinned scale: grid seams
#: 0.83-0.94 and 3-16x; a plain photo's most seam-like line 1.7x at the median, 4.6x at
#: the 90th percentile)...
SEAM_SHARE: Final = 0.8
SEAM_CONTRAST: Final = 5.0
#: ...or, at a half or a third of the side (where collage apps cut), these ("weak")...
GRID_SEAM_SHARE: Final = 0.7
GRID_SEAM_CONTRAST: Final = 2.5
#: ...or, at the other third of a grid whose first third has a seam, these ("faint").
FAINT_SEAM_SHARE: Final = 0.5
FAINT_SEAM_CONTRAST: Final = 1.8
#: Where collage apps cut a side: halves and thirds.
_GRID_CUTS: Final = (1 / 3, 1 / 2, 2 / 3)


def is_chrome(shares: npt.NDArray[np.float64], first: int, end: int, longest: float) -> bool:
    """Whether lines ``first``..``end`` (their ``mode_share``) are interface or caption:
    each line mostly one value (a bar, a button's or a text field's background) around text
    and icons, and the band as a whole more so, with no run of lines that are less so
    longer than ``longest`` (a picture with large even areas, which a band of interface
    around it would otherwise swallow). A photo's lines are seldom half one value within a
    few grey levels."""
    share = shares[first:end]
    return (
        float(share.min()) >= CHROME_LINE
        and float(share.mean()) >= CHROME_BACKGROUND
        and _longest_run(share < CHROME_BACKGROUND) <= longest
    )


def _longest_run(mask: npt.NDArray[np.bool_]) -> int:
    """The longest run of True in ``mask``."""
    if not mask.any():
        return 0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return int((edges[1::2] - edges[::2]).max())


def mode_share(lines: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Per line, the share of its pixels within about ``BACKGROUND_TOLERANCE`` of its most
    common value (counted in bins of that width, with their neighbours)."""
    bins = np.clip(lines / BACKGROUND_TOLERANCE, 0, 255 // BACKGROUND_TOLERANCE).astype(np.intp)
    count = int(bins.max()) + 3
    offsets = (np.arange(lines.shape[0]) * count)[:, None]
    hist = np.bincount((bins + 1 + offsets).ravel(), minlength=lines.shape[0] * count)
    hist = hist.reshape(lines.shape[0], count)
    near = hist[:, :-2] + hist[:, 1:-1] + hist[:, 2:]
    share: npt.NDArray[np.float64] = near.max(axis=1) / lines.shape[1]
    return share


def is_detailed(lines: npt.NDArray[np.float32]) -> bool:
    """Whether these lines have fine detail (|Laplacian| over ``DETAIL_EDGE``) across most
    of their length, as a picture's first lines do and a plain band's never."""
    return len(lines) > 0 and float((lines.max(axis=0) > DETAIL_EDGE).mean()) >= EDGE_SHARE


def straight_edge(line: npt.NDArray[np.float32], value: float) -> bool:
    """Whether a line differs from a band's ``value`` across most of its length, or along
    one stretch of at least ``EDGE_SPAN`` of it: a picture beside a screenshot's sidebar
    or comment column starts along part of the line until those are trimmed too."""
    differs = np.flatnonzero(np.abs(line - value) > EDGE_FROM_BAND)
    if len(differs) >= EDGE_SHARE * len(line):
        return True
    if len(differs) < EDGE_SPAN * len(line):
        return False
    return len(differs) >= EDGE_DENSITY * (int(differs[-1]) - int(differs[0]) + 1)


def find_seams(
    pixels: npt.NDArray[np.float32],
    mean: npt.NDArray[np.float32],
    std: npt.NDArray[np.float32],
    margin: int,
) -> list[tuple[int, int]]:
    """Seams across ``pixels`` (lines, pixels; with each line's mean and spread) at least
    ``margin`` lines from either end and from each other, as (first line of the seam, first
    line after it)."""
    lines = pixels.shape[0]
    flat = std <= FLAT_STD
    found: list[tuple[int, int]] = []
    # Gutters: runs of flat lines of one value, with a straight edge on both sides.
    for line in np.flatnonzero(flat[margin : lines - margin]).tolist():
        line += margin
        if found and line < found[-1][1] + RINGING:
            continue
        stop = line
        while stop < lines and flat[stop] and abs(mean[stop] - mean[line]) <= BAND_RANGE:
            stop += 1
        value = float(mean[line])
        before = next(
            (
                e
                for e in range(line - 1, max(-1, line - 2 - RINGING), -1)
                if straight_edge(pixels[e], value)
            ),
            None,
        )
        after = next(
            (
                e
                for e in range(stop, min(lines, stop + RINGING + 1))
                if straight_edge(pixels[e], value)
            ),
            None,
        )
        if before is not None and after is not None and stop - line <= 0.1 * lines:
            found.append((before + 1, after))
    # Seams without a gutter: a line that steps from the one before it nearly across, and
    # by much more than the lines around it step (a photo's straight edges, a horizon or a
    # door frame, step on part of a line, or no more than its texture does). Steps are
    # taken over two lines, as thinning blurs a seam into two. Collage apps cut at halves
    # and thirds, where a seam is looked for with less evidence.
    difference = np.abs(pixels[2:] - pixels[:-2])
    share = np.zeros(lines)
    share[1:-1] = (difference > EDGE_DIFF).mean(axis=1)
    step = np.zeros(lines)
    step[1:-1] = difference.mean(axis=1)
    peaks = (
        (share[1:-1] >= FAINT_SEAM_SHARE) & (share[1:-1] >= share[:-2]) & (share[1:-1] >= share[2:])
    )
    weak: dict[float, int] = {}
    faint: dict[float, int] = {}
    for centre in (np.flatnonzero(peaks[margin - 1 : lines - margin - 1]) + margin).tolist():
        if any(first - RINGING <= centre < stop + RINGING for first, stop in found):
            continue
        around = sorted([*step[centre - 6 : centre - 2], *step[centre + 3 : centre + 7]])
        contrast = step[centre] / (around[len(around) // 2] + 1.0)
        if share[centre] >= SEAM_SHARE and contrast >= SEAM_CONTRAST:
            found.append((centre, centre + 1))
            continue
        usual = next((f for f in _GRID_CUTS if abs(centre - lines * f) <= 2), None)
        if usual is None:
            continue
        if share[centre] >= GRID_SEAM_SHARE and contrast >= GRID_SEAM_CONTRAST:
            weak[usual] = centre
        elif contrast >= FAINT_SEAM_CONTRAST:
            faint[usual] = centre
    # Weaker seams count only as a whole regular grid (a half, or both thirds, one of them
    # at least weak and the other at least faint): one line of a busy photo that happens to
    # step at a third is no grid.
    strong = {f for f in _GRID_CUTS if any(abs(a - lines * f) <= 2 for a, _ in found)}
    if 1 / 2 in weak:
        found.append((weak[1 / 2], weak[1 / 2] + 1))
    thirds = (1 / 3, 2 / 3)
    if any(f in weak or f in strong for f in thirds) and all(
        f in weak or f in faint or f in strong for f in thirds
    ):
        found += [(c, c + 1) for f in thirds if (c := weak.get(f, faint.get(f))) is not None]
    found.sort()
    # Seams too close together leave no cell between them: keep the first.
    kept: list[tuple[int, int]] = []
    for seam in found:
        if not kept or seam[0] - kept[-1][1] >= margin:
            kept.append(seam)
    return kept
