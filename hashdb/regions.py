"""The rectangle a region finder returns: where the picture itself sits inside a photo
(``hashdb.photo_regions``) or inside a video's frames (``hashdb.video_regions``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Region:
    """A pixel box in the image or frames given to ``find_regions``; right and bottom are
    exclusive."""

    left: int
    top: int
    right: int
    bottom: int
    #: What was trimmed or cut to find it, in the finder's words: for photos "border",
    #: "chrome", "blur_fill", "cell" or "mixed"; for videos "bars", "blur_fill", "caption",
    #: "circle" or "mixed".
    kind: str

    @property
    def box(self) -> tuple[int, int, int, int]:
        return (self.left, self.top, self.right, self.bottom)

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def crop(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """This region of an image or frame (HxW or HxWxC) of the size it was found in."""
        return image[self.top : self.bottom, self.left : self.right]
