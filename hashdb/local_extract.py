"""Local features taken from a picture: ORB keypoints and descriptors of a grey copy, for
``hashdb.local``'s index to store (a blocked photo, a video's moments) or to look up (an
upload, with a second look at a washed-out or dim one).

Plain synchronous functions; callers run them on a worker pool, never on the event loop.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from hashdb.local_format import LocalFeatures

#: Longer side of the grey copy features are taken from: enough detail for a 25% crop of
#: the stored photo to keep texture, small enough to take ~3 ms. 1000 features rather
#: than 500 keep enough points around a caption banner or sticker (dev corpus: 99% of
#: captioned copies found, against 92.5% with 500).
SIDE = 512
#: An upload whose copy at SIDE gives fewer than this share of its features, and that looks
#: washed out, dim or soft (its grey levels spanning fewer than SECOND_LOOK_RANGE between
#: their 1st and 99th percentiles, or neighbouring pixels differing by less than
#: SECOND_LOOK_DETAIL on average, across plus down), is looked at again, at SECOND_LOOK_SIDE
#: with its local contrast equalised (CLAHE): ORB's fixed corner threshold finds little in
#: a washed-out photo of a screen (reflected room light, glare, defocus) or a dim one, and a
#: picture filling a third of a phone photo of a monitor is only ~170 px across at SIDE.
#: Measured (bench/photo_unseen.py, with the perspective fit below): photos of a screen
#: found 5% -> 28% (strong), 59% -> 76% (mild). The range and detail tests keep the cost
#: (~5 ms) to such photos: a smooth but well-exposed upload gives few keypoints too
#: (bench/fingerprint.py's photos: 120-270, range 159-193, detail 3.8-5.4), and while every
#: upload under 500 keypoints took the second look, each of those paid it (11.5 -> 17.3 ms
#: a check) for 4 more strong screen photos found (32%). Now none of them and 3% of the dev
#: corpus's queries take it (12% before; bench/second_look.py); docs/photos.md compares
#: the other triggers tried. Equalising leaves ORB's descriptors (intensity comparisons
#: within a patch) mostly as they were, so the second look's features still meet those of
#: the blocked photo.
SECOND_LOOK_SHARE = 0.5
SECOND_LOOK_RANGE = 150
SECOND_LOOK_DETAIL = 3.0
SECOND_LOOK_SIDE = 768
CLAHE_CLIP = 3.0
#: Below this many pixels on a side (after scaling to ``SIDE``), no features are taken.
MIN_SIDE = 32
MAX_FEATURES = 1000
#: Features per video moment. A video holds up to ~16 moments, so each keeps fewer than a
#: photo: measured (bench/video_local.py), 500 leave the weakest copy found 55 points on
#: its second moment and take ~1.6 MB of index per stored video; 300 left 31 (against a
#: threshold of 24) for 0.7 MB.
MOMENT_FEATURES = 500
#: Consistent matched points that make a local match, by default.
DEFAULT_MIN_POINTS = 24


def opencv() -> Any:
    # Imported when first used (hashing workers, the index thread), and typed loosely:
    # OpenCV's stubs do not describe the arrays these calls take.
    import cv2

    return cv2


def extract(
    image: Image.Image, max_features: int = MAX_FEATURES, *, second_look: bool = False
) -> LocalFeatures | None:
    """ORB features of an image (any mode); None when it has too little texture.

    ``second_look`` (for an upload being checked): when the photo gives fewer than
    ``SECOND_LOOK_SHARE`` of ``max_features`` and it looks washed out, dim or soft, it is
    looked at again (see ``SECOND_LOOK_SHARE``), and the features of both looks are
    kept. Blocked photos keep their first look only: the same corner found by both looks
    would be two near-identical stored descriptors, which fail each other's ratio test."""
    grey = _grey(image, SIDE)
    pixels = np.asarray(grey)
    found = _orb(pixels, max_features, None)
    if not second_look or not _washed_out(grey, pixels, found, max_features):
        return found
    second = _second_look(image, grey, max_features)
    if second is None or found is None:
        return second or found
    return dataclasses.replace(
        found,
        points=np.vstack([found.points, second.points]),
        descriptors=np.vstack([found.descriptors, second.descriptors]),
    )


def takes_second_look(image: Image.Image, max_features: int = MAX_FEATURES) -> bool:
    """Whether checking this upload takes the second look (see ``SECOND_LOOK_SHARE``)."""
    grey = _grey(image, SIDE)
    pixels = np.asarray(grey)
    return _washed_out(grey, pixels, _orb(pixels, max_features, None), max_features)


def _washed_out(
    grey: Image.Image,
    pixels: npt.NDArray[np.uint8],
    found: LocalFeatures | None,
    max_features: int,
) -> bool:
    """Whether the first look (``found`` in ``grey``, whose array is ``pixels``) found few
    features in a photo whose grey levels span a narrow range, or whose neighbouring pixels
    differ little (see ``SECOND_LOOK_SHARE``)."""
    if found is not None and len(found) >= SECOND_LOOK_SHARE * max_features:
        return False
    # A histogram rather than a percentile of the pixels: no sort, ~0.2 ms at SIDE.
    counts = np.cumsum(grey.histogram())
    low, high = np.searchsorted(counts, [0.01 * counts[-1], 0.99 * counts[-1]])
    if high - low < SECOND_LOOK_RANGE:
        return True
    # cv2.norm sums the differences without an array of them: 0.02 ms, not 0.5.
    cv2 = opencv()
    height, width = pixels.shape
    if min(height, width) < 2:  # a one-pixel sliver: no neighbours to compare
        return True
    across = cv2.norm(pixels[:, 1:], pixels[:, :-1], cv2.NORM_L1) / (height * (width - 1))
    down = cv2.norm(pixels[1:], pixels[:-1], cv2.NORM_L1) / ((height - 1) * width)
    return bool(across + down < SECOND_LOOK_DETAIL)


def _grey(image: Image.Image, side: int) -> Image.Image:
    """A grey copy no longer than ``side`` on its longer side."""
    scale = side / max(image.size)
    if scale >= 1:
        return image.convert("L")
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    factor = int(1 / scale)
    # A box reduction by a whole factor first: resampling the full-size photo straight
    # to SIDE costs twice as long for the same features.
    if factor >= 2:
        image = image.reduce(factor)
    return image.convert("L").resize(size, Image.Resampling.BILINEAR)


def _second_look(image: Image.Image, grey: Image.Image, max_features: int) -> LocalFeatures | None:
    """Features of a low-contrast or small-subject photo: a grey copy up to
    ``SECOND_LOOK_SIDE`` (``grey``, the first look's copy, when that is as large), its local
    contrast equalised, keypoints given in ``grey``'s coordinates (so the two looks compare
    alike)."""
    cv2 = opencv()
    larger = grey
    if max(grey.size) < SECOND_LOOK_SIDE and max(image.size) > max(grey.size):
        larger = _grey(image, SECOND_LOOK_SIDE)
    equalised = cv2.createCLAHE(clipLimit=CLAHE_CLIP, tileGridSize=(8, 8)).apply(np.asarray(larger))
    found = _orb(np.ascontiguousarray(equalised), max_features, None)
    if found is None or grey.size == (found.width, found.height):
        return found
    factor = grey.width / found.width
    return LocalFeatures(found.points * np.float32(factor), found.descriptors, *grey.size)


def extract_array(
    grey: npt.NDArray[np.uint8], max_features: int = MAX_FEATURES, seconds: float | None = None
) -> LocalFeatures | None:
    """ORB features of a grey frame (height x width, uint8), as ``extract`` takes them from
    a photo; ``seconds`` marks a video moment (whose frames take ``MOMENT_FEATURES``).
    None when it has too little texture."""
    if grey.ndim != 2 or grey.dtype != np.uint8:
        raise ValueError(
            f"a grey frame of shape {grey.shape} and type {grey.dtype}; expected a 2-D uint8 "
            f"array (height x width)"
        )
    height, width = grey.shape
    scale = SIDE / max(width, height, 1)
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        # Area averaging, as the photo path's box reduction: no aliasing of fine texture.
        grey = opencv().resize(grey, size, interpolation=opencv().INTER_AREA)
    return _orb(np.ascontiguousarray(grey), max_features, seconds)


def _orb(
    pixels: npt.NDArray[np.uint8], max_features: int, seconds: float | None
) -> LocalFeatures | None:
    height, width = pixels.shape
    if min(width, height) < MIN_SIDE:
        # A sliver (a banner, or a hostile file's 96x1 image) has no room for features,
        # and ORB's image pyramid fails on it.
        return None
    orb = opencv().ORB_create(nfeatures=max_features)
    keypoints, descriptors = orb.detectAndCompute(pixels, None)
    if descriptors is None or len(keypoints) < DEFAULT_MIN_POINTS:
        return None
    points = np.array([k.pt for k in keypoints], dtype=np.float32)
    return LocalFeatures(points, descriptors, width, height, seconds)
