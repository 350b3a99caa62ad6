"""PDQ, Meta's 256-bit photo hash, in numpy and numba: the same bits as the ``pdqhash`` package.

``compute`` and ``compute_dihedral`` return what ``pdqhash.compute`` / ``compute_dihedral``
return (the package binds Meta's C++ reference, ``pdq/cpp/hashing/pdqhashing.cpp``), so a
caller changes only its import; the package needs a C++ compiler to install, this does not.

The steps follow the C++ operation for operation, in float32 where it uses float, because
a hash bit is a comparison with the median and one rounding difference can flip it:

* luma ``0.299 R + 0.587 G + 0.114 B``, summed in float64 and rounded to float32 (the
  package computes it with numpy before calling the C++; the C++ CLI sums in float, which
  can differ in the last bit);
* the Jarosz "tent" blur: two passes of a box filter along rows then columns, the window
  ``ceil(side / 128)``, running float32 sums with the reference's edge handling; then the
  64x64 decimation at pixel centres;
* quality: the sum of quantised 64x64 gradients / 90, at most 100;
* the 16x64 DCT matrix (cosines in double, stored as float32) and a 16x16 DCT summed in
  index order, each bit "coefficient > Torben median";
* the 8 dihedral hashes from that one DCT by sign flips and transposes (a rotation or flip
  of the image only changes the signs of odd frequencies, and a transpose swaps axes).

Bits come out most significant first: element ``k`` is bit ``255 - k`` of the hash, bit
``16 i + j`` being coefficient ``(i, j)``; ``int("".join(map(str, bits)), 2)`` is the hash.

The kernels are compiled on first use and cached on disk like ``hashdb.kernels``;
``warm_up`` compiles or loads them ahead of time so a worker's first photo is not slow.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

import numba
import numpy as np
import numpy.typing as npt

__all__ = ["DIHEDRAL_ORDER", "compute", "compute_dihedral", "warm_up"]

#: Order of ``compute_dihedral``'s hashes (that of the C++ ``--pdqdih`` output).
DIHEDRAL_ORDER: Final = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flipx",
    "flipy",
    "flipplus1",
    "flipminus1",
)

#: Below this many rows or columns the reference gives the all-zero hash, quality 0.
_MIN_HASHABLE_DIM: Final = 5


def _dct_matrix() -> npt.NDArray[np.float32]:
    """The reference's 16x64 DCT matrix: a float scale times a double cosine, kept as float."""
    scale = float(np.float32(math.sqrt(2.0 / 64.0)))
    # math.cos is the C library's cos, as in the C++; numpy's may be a vectorised one that
    # differs in the last bit.
    values = [
        [scale * math.cos((math.pi / 2.0 / 64.0) * i * (2 * j + 1)) for j in range(64)]
        for i in range(1, 17)
    ]
    return np.array(values, dtype=np.float32)


_DCT: Final = _dct_matrix()

#: ``0.299 * v``, ``0.587 * v``, ``0.114 * v`` for every byte value ``v``, in float64 as
#: numpy computes them for ``pdqhash`` (uint8 times a Python float).
_WEIGHTED: Final = np.array([0.299, 0.587, 0.114])[:, None] * np.arange(256, dtype=np.float64)


def _compiled(function: Callable[..., Any]) -> Any:
    """``numba.njit`` with the GIL released, cached on disk where numba finds a place."""
    try:
        return numba.njit(cache=True, nogil=True)(function)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return numba.njit(nogil=True)(function)


@numba.njit(inline="always")
def _window(old: int) -> int:
    """``computeJaroszFilterWindowSize(old, 64)``: half a 64th of the side, rounded up."""
    return (old + 127) // 128


#: Rows filtered at once along rows: their running sums are independent, so the CPU
#: overlaps them (one row alone is a chain of dependent additions).
_LANES: Final = 16


@numba.njit
def _box_rows(src: Any, dst: Any, window: int, lanes_in: Any, lanes_out: Any) -> None:
    """``boxAlongRowsFloat``: ``_box_cols`` on blocks of ``_LANES`` rows turned on their side
    (each row's sums are the same additions in the same order)."""
    rows, cols = src.shape
    lanes = lanes_in.shape[1]
    totals = np.empty(lanes, dtype=np.float32)
    for top in range(0, rows, lanes):
        count = min(lanes, rows - top)
        for c in range(cols):
            for k in range(count):
                lanes_in[c, k] = src[top + k, c]
        _box_cols(lanes_in, lanes_out, window, totals)
        for k in range(count):
            for c in range(cols):
                dst[top + k, c] = lanes_out[c, k]


@numba.njit
def _box_cols(src: Any, dst: Any, window: int, totals: Any) -> None:
    """``boxAlongColsFloat``, row by row over all columns at once (same sums per column,
    in the same order, but walking memory contiguously)."""
    rows, cols = src.shape
    half = (window + 2) // 2
    totals[:] = np.float32(0.0)
    count = 0
    right = 0
    left = 0
    out = 0
    for _ in range(half - 1):
        for c in range(cols):
            totals[c] += src[right, c]
        count += 1
        right += 1
    for _ in range(window - half + 1):
        count += 1
        divisor = np.float32(count)
        for c in range(cols):
            totals[c] += src[right, c]
            dst[out, c] = totals[c] / divisor
        right += 1
        out += 1
    divisor = np.float32(count)
    for _ in range(rows - window):
        for c in range(cols):
            totals[c] += src[right, c]
            totals[c] -= src[left, c]
            dst[out, c] = totals[c] / divisor
        left += 1
        right += 1
        out += 1
    for _ in range(half - 1):
        count -= 1
        divisor = np.float32(count)
        for c in range(cols):
            totals[c] -= src[left, c]
            dst[out, c] = totals[c] / divisor
        left += 1
        out += 1


@numba.njit
def _downsample(pixels: Any, weighted: Any, shortcut: bool) -> Any:
    """The 64x64 float32 luma the DCT reads: luma, tent blur, decimation at pixel centres.
    ``weighted`` holds each channel's coefficient times each value 0-255, in float64.

    With ``shortcut`` a 64x64 image is taken as is (``pdqFloat256FromFloatLuma`` does so;
    the dihedral entry point always blurs)."""
    rows, cols = pixels.shape[0], pixels.shape[1]
    luma = np.empty((rows, cols), dtype=np.float32)
    for r in range(rows):
        for c in range(cols):
            # The products are looked up, not multiplied: the same doubles, 3x faster.
            value = weighted[0, pixels[r, c, 0]] + weighted[1, pixels[r, c, 1]]
            luma[r, c] = np.float32(value + weighted[2, pixels[r, c, 2]])
    if shortcut and rows == 64 and cols == 64:
        return luma
    other = np.empty_like(luma)
    totals = np.empty(cols, dtype=np.float32)
    # Lanes past the last row keep zeros or an earlier block's values: filtered, never read.
    lanes_in = np.zeros((cols, _LANES), dtype=np.float32)
    lanes_out = np.empty((cols, _LANES), dtype=np.float32)
    along_rows = _window(cols)
    along_cols = _window(rows)
    for _ in range(2):
        _box_rows(luma, other, along_rows, lanes_in, lanes_out)
        _box_cols(other, luma, along_cols, totals)
    small = np.empty((64, 64), dtype=np.float32)
    for i in range(64):
        r = int(((i + 0.5) * rows) / 64)
        for j in range(64):
            small[i, j] = luma[r, int(((j + 0.5) * cols) / 64)]
    return small


@numba.njit
def _quality(small: Any) -> int:
    """``pdqImageDomainQualityMetric``: quantised gradients summed, / 90, capped at 100."""
    total = 0
    hundred = np.float32(100.0)
    scale = np.float32(255.0)
    for i in range(63):
        for j in range(64):
            total += abs(int(((small[i, j] - small[i + 1, j]) * hundred) / scale))
    for i in range(64):
        for j in range(63):
            total += abs(int(((small[i, j] - small[i, j + 1]) * hundred) / scale))
    return min(total // 90, 100)


@numba.njit
def _dct16(small: Any, matrix: Any) -> Any:
    """``dct64To16``: ``D A D^T`` keeping frequencies 1..16, each sum in index order."""
    half = np.empty((16, 64), dtype=np.float32)
    for i in range(16):
        for j in range(64):
            total = np.float32(0.0)
            for k in range(64):
                total += matrix[i, k] * small[k, j]
            half[i, j] = total
    out = np.empty((16, 16), dtype=np.float32)
    for i in range(16):
        for j in range(16):
            total = np.float32(0.0)
            for k in range(64):
                total += half[i, k] * matrix[j, k]
            out[i, j] = total
    return out


@numba.njit
def _torben(values: Any) -> Any:
    """Torben Mogensen's median without sorting, as ``torben.cpp`` (float32 throughout)."""
    n = values.shape[0]
    low = values[0]
    high = values[0]
    for i in range(1, n):
        low = min(low, values[i])
        high = max(high, values[i])
    half = (n + 1) // 2
    two = np.float32(2.0)
    while True:
        guess = (low + high) / two
        less = 0
        greater = 0
        equal = 0
        below = low
        above = high
        for i in range(n):
            value = values[i]
            if value < guess:
                less += 1
                if value > below:
                    below = value
            elif value > guess:
                greater += 1
                if value < above:
                    above = value
            else:
                equal += 1
        if less <= half and greater <= half:
            break
        if less > greater:
            high = below
        else:
            low = above
    if less >= half:
        return below
    if less + equal >= half:
        return guess
    return above


@numba.njit
def _bits(coefficients: Any, out: Any) -> None:
    """One hash, most significant bit first: ``out[255 - (16 i + j)]`` is coefficient
    ``(i, j)`` > median."""
    flat = coefficients.ravel()
    median = _torben(flat)
    for k in range(256):
        out[255 - k] = 1 if flat[k] > median else 0


@numba.njit
def _dihedral(coefficients: Any, which: int) -> Any:
    """The DCT of a rotated or flipped image, from the original's (``dct16OriginalTo*``):
    rotations and flips negate odd frequencies along an axis; some also transpose."""
    out = np.empty((16, 16), dtype=np.float32)
    for i in range(16):
        for j in range(16):
            value = coefficients[i, j]
            if which == 1:  # rotate90: transposed, even columns negated
                out[j, i] = value if j & 1 else -value
            elif which == 2:  # rotate180
                out[i, j] = -value if (i + j) & 1 else value
            elif which == 3:  # rotate270: transposed, even rows negated
                out[j, i] = value if i & 1 else -value
            elif which == 4:  # flipx
                out[i, j] = value if i & 1 else -value
            elif which == 5:  # flipy
                out[i, j] = value if j & 1 else -value
            elif which == 6:  # flipplus1: the transpose
                out[j, i] = value
            elif which == 7:  # flipminus1
                out[j, i] = -value if (i + j) & 1 else value
            else:
                out[i, j] = value
    return out


@_compiled
def _hash(
    pixels: Any, weighted: Any, matrix: Any, transforms: int, shortcut: bool, out: Any
) -> int:
    """The first ``transforms`` dihedral hashes of an RGB image into ``out``; the quality."""
    small = _downsample(pixels, weighted, shortcut)
    quality: int = _quality(small)
    coefficients = _dct16(small, matrix)
    for which in range(transforms):
        _bits(_dihedral(coefficients, which), out[which])
    return quality


def _rgb(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    array = np.asarray(pixels)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(
            f"PDQ needs an RGB image as a height x width x 3 uint8 array, "
            f"not {array.dtype} of shape {array.shape}"
        )
    return np.ascontiguousarray(array)


def _run(pixels: npt.NDArray[np.uint8], transforms: int, shortcut: bool) -> tuple[Any, int]:
    rgb = _rgb(pixels)
    out = np.zeros((transforms, 256), dtype=np.uint8)
    if rgb.shape[0] < _MIN_HASHABLE_DIM or rgb.shape[1] < _MIN_HASHABLE_DIM:
        return out, 0
    quality = _hash(rgb, _WEIGHTED, _DCT, transforms, shortcut, out)
    return out, int(quality)


def compute(pixels: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.uint8], int]:
    """PDQ of an RGB uint8 image: 256 bits (0/1, most significant first) and the quality
    0-100. Equals ``pdqhash.compute``; an image under 5 px a side gives zeros, quality 0."""
    out, quality = _run(pixels, 1, True)
    return out[0], quality


def compute_dihedral(pixels: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.uint8], int]:
    """The 8 dihedral PDQ hashes of an RGB uint8 image, one row each in ``DIHEDRAL_ORDER``,
    and the quality. Equals ``pdqhash.compute_dihedral`` (there a list of 8 vectors)."""
    return _run(pixels, 8, False)


def warm_up() -> None:
    """Compile (or load from the disk cache) the kernel, on a small image: both a writable
    one and a read-only one (numba compiles each apart; ``np.asarray`` of a Pillow image is
    read-only)."""
    pixels = np.zeros((8, 8, 3), dtype=np.uint8)
    compute_dihedral(pixels)
    pixels.flags.writeable = False
    compute_dihedral(pixels)
