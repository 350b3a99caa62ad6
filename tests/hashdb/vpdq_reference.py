"""What the video tests share: PDQ of a frame's pixels as the vPDQ reference computes it, and
a budget that hashes every frame."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from hashdb import pdq
from hashdb.video import VideoBudget

EVERY_FRAME = VideoBudget(max_frames=10**6, max_seconds=600)


def reference_pdq(pixels: npt.NDArray[np.uint8]) -> tuple[int, int]:
    """PDQ of RGB pixels, the bits joined in the order ``hashdb.pdq`` (like the ``pdqhash``
    package) returns them (refdata README)."""
    bits, quality = pdq.compute(np.ascontiguousarray(pixels))
    return int("".join(str(int(b)) for b in bits), 2), int(quality)
