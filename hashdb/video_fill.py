"""Whether a band beside a video's picture is a blurred fill: the picture itself, scaled to
cover the frame (or stretched to it) and blurred, compared with the band at low resolution
through the clip. ``hashdb.video_regions`` confirms its ``blur_fill`` readings with it.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

#: The fill must correlate this well with the picture enlarged and blurred.
BLUR_MIN_CORRELATION: Final = 0.5


def cover_crop(
    picture: npt.NDArray[np.float32], width: int, height: int
) -> npt.NDArray[np.float32]:
    """The centre of ``picture`` with the frame's aspect ratio (what "scale to cover" shows)."""
    h, w = picture.shape
    if w * height > h * width:
        keep = max(1, round(h * width / height))
        x = (w - keep) // 2
        return picture[:, x : x + keep]
    keep = max(1, round(w * height / width))
    y = (h - keep) // 2
    return picture[y : y + keep, :]


def band_mask(
    name: str,
    start: int,
    stop: int,
    small: tuple[int, int],
    scale_x: float,
    scale_y: float,
) -> npt.NDArray[np.bool_] | None:
    """Pixels of the low-resolution frame inside one band (away from its boundary line)."""
    mask = np.zeros((small[1], small[0]), dtype=bool)
    if name in ("top", "bottom"):
        a, b = int(np.ceil(start * scale_y)), int(np.floor(stop * scale_y)) - 1
        if b <= a:
            return None
        rows = slice(a, b) if name == "top" else slice(small[1] - b, small[1] - a)
        mask[rows, :] = True
    else:
        a, b = int(np.ceil(start * scale_x)), int(np.floor(stop * scale_x)) - 1
        if b <= a:
            return None
        cols = slice(a, b) if name == "left" else slice(small[0] - b, small[0] - a)
        mask[:, cols] = True
    return mask


def resembles(actual: npt.NDArray[np.float32], predicted: npt.NDArray[np.float32]) -> bool:
    """Whether a band's pixels follow the predicted fill: correlated, at the same level, with
    a like contrast. Measured at 1/8 scale: real fills on the dev corpus and in the tests
    correlate at 0.6-1.0 with level differences under 8 grey levels, while an app's flat
    panels next to a picture (screenshots) differ by 50-180 levels or are 5x flatter."""
    a = actual.ravel().astype(np.float64)
    b = predicted.ravel().astype(np.float64)
    spread_a, spread_b = float(a.std()), float(b.std())
    if spread_a < 1e-3 or spread_b < 1e-3:
        return False
    correlation = float(np.mean((a - a.mean()) * (b - b.mean()))) / (spread_a * spread_b)
    level = abs(float(a.mean() - b.mean()))
    return (
        correlation >= BLUR_MIN_CORRELATION
        and level <= 0.5 * spread_b + 8.0
        and 0.4 <= spread_a / spread_b <= 3.0
    )
