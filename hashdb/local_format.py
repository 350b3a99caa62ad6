"""Local features as values: one photo's or video moment's ORB keypoints, their stored
form, and which points of a fixed camera's video are its unmoving background.

Descriptors of blocked photos and videos are not the media and cannot be turned back into
it; a query's descriptors are never stored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

#: Moments one stored entry may hold (a video: a few distinct frames; more would cost
#: memory without finding more crops).
MAX_MOMENTS = 64

_FORMAT_VERSION = 1
#: Several moments, each with its time: [version, moments], then per moment
#: [count, width, height, flags] (u4) and seconds (f4; NaN for none), points, descriptors,
#: and with flag _HAS_MOVING a byte per point.
_MOMENTS_VERSION = 2
_VERSIONS = (_FORMAT_VERSION, _MOMENTS_VERSION)
#: A version-2 moment's header: point count, width, height, flags (u4 each), seconds (f4).
_MOMENT_HEADER = 20
#: Flag: a byte per point follows the descriptors, 1 where the point is not background.
_HAS_MOVING = 1


@dataclass(frozen=True)
class LocalFeatures:
    """ORB keypoints of one photo or video moment: positions (x, y) and 32-byte
    descriptors; ``seconds`` is a video moment's time (None for a photo)."""

    points: npt.NDArray[np.float32]
    descriptors: npt.NDArray[np.uint8]
    width: int
    height: int
    seconds: float | None = None
    #: A fixed-camera video's moment: which points are not its unmoving background (see
    #: ``mark_moving``); None when every point counts.
    moving: npt.NDArray[np.bool_] | None = None

    def __len__(self) -> int:
        return len(self.descriptors)

    def to_bytes(self) -> bytes:
        """A compact form for the database: a small header, then points and descriptors
        (version 1: one photo; the time is not kept, see ``pack_moments``)."""
        header = np.array([_FORMAT_VERSION, len(self), self.width, self.height], dtype="<u4")
        return (
            header.tobytes()
            + self.points.astype("<f4").tobytes()
            + self.descriptors.astype(np.uint8).tobytes()
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> LocalFeatures:
        """One photo's features from ``to_bytes`` (version 1 only; ``unpack`` reads both)."""
        header = np.frombuffer(data[: len(data) // 4 * 4][:16], dtype="<u4")
        if len(header) != 4 or header[0] != _FORMAT_VERSION:
            raise ValueError(
                f"local features in an unknown format (version "
                f"{int(header[0]) if len(header) else '?'}); expected {_FORMAT_VERSION}"
            )
        count, width, height = (int(v) for v in header[1:])
        end_points = 16 + count * 8
        if len(data) != end_points + count * 32:
            raise ValueError(f"local features of {len(data)} bytes do not hold {count} points")
        points = np.frombuffer(data[16:end_points], dtype="<f4").reshape(count, 2)
        descriptors = np.frombuffer(data[end_points:], dtype=np.uint8).reshape(count, 32)
        return cls(points.astype(np.float32), descriptors, width, height)


def pack_moments(moments: Sequence[LocalFeatures]) -> bytes:
    """Several moments (a video's frames) with their times, for the database (version 2)."""
    if not 1 <= len(moments) <= MAX_MOMENTS:
        raise ValueError(f"{len(moments)} moments to pack; expected 1 to {MAX_MOMENTS}")
    parts = [np.array([_MOMENTS_VERSION, len(moments)], dtype="<u4").tobytes()]
    for moment in moments:
        flags = _HAS_MOVING if moment.moving is not None else 0
        header = [len(moment), moment.width, moment.height, flags]
        parts.append(np.array(header, dtype="<u4").tobytes())
        seconds = np.nan if moment.seconds is None else moment.seconds
        parts.append(np.array([seconds], dtype="<f4").tobytes())
        parts.append(moment.points.astype("<f4").tobytes())
        parts.append(moment.descriptors.astype(np.uint8).tobytes())
        if moment.moving is not None:
            parts.append(moment.moving.astype(np.uint8).tobytes())
    return b"".join(parts)


def unpack(data: bytes) -> tuple[LocalFeatures, ...]:
    """The moments a stored blob holds: one for a photo (version 1), several for a video
    (version 2)."""
    version = int(np.frombuffer(data[:4], dtype="<u4")[0]) if len(data) >= 4 else None
    if version == _FORMAT_VERSION:
        return (LocalFeatures.from_bytes(data),)
    if version != _MOMENTS_VERSION:
        raise ValueError(
            f"local features in an unknown format (version "
            f"{'?' if version is None else version}); expected one of "
            f"{', '.join(map(str, _VERSIONS))}"
        )
    if len(data) < 8:
        raise ValueError(f"local features of {len(data)} bytes do not hold a moment count")
    count = int(np.frombuffer(data[4:8], dtype="<u4")[0])
    if not 1 <= count <= MAX_MOMENTS:
        raise ValueError(f"local features claim {count} moments; expected 1 to {MAX_MOMENTS}")
    moments: list[LocalFeatures] = []
    offset = 8
    for number in range(count):
        if len(data) < offset + _MOMENT_HEADER:
            raise ValueError(
                f"local features of {len(data)} bytes end inside the header of moment "
                f"{number + 1} of {count}"
            )
        points_count, width, height, flags = (
            int(v) for v in np.frombuffer(data[offset : offset + 16], dtype="<u4")
        )
        if flags & ~_HAS_MOVING:
            raise ValueError(
                f"moment {number + 1} of {count} has flags {flags:#x}; expected 0 or "
                f"{_HAS_MOVING:#x}"
            )
        seconds = float(np.frombuffer(data[offset + 16 : offset + 20], dtype="<f4")[0])
        end_points = offset + _MOMENT_HEADER + points_count * 8
        end_descriptors = end_points + points_count * 32
        end = end_descriptors + (points_count if flags & _HAS_MOVING else 0)
        if len(data) < end:
            raise ValueError(
                f"local features of {len(data)} bytes do not hold moment {number + 1} of "
                f"{count} ({points_count} points)"
            )
        points = np.frombuffer(data[offset + _MOMENT_HEADER : end_points], dtype="<f4")
        descriptors = np.frombuffer(data[end_points:end_descriptors], dtype=np.uint8)
        moving = (
            np.frombuffer(data[end_descriptors:end], dtype=np.uint8).astype(bool)
            if flags & _HAS_MOVING
            else None
        )
        moments.append(
            LocalFeatures(
                points.astype(np.float32).reshape(-1, 2),
                descriptors.reshape(-1, 32),
                width,
                height,
                None if np.isnan(seconds) else seconds,
                moving,
            )
        )
        offset = end
    if offset != len(data):
        raise ValueError(
            f"local features of {len(data)} bytes have {len(data) - offset} bytes after "
            f"their {count} moments"
        )
    return tuple(moments)


#: A video whose moments share this share of their points' places is filmed by a fixed
#: camera; its unmoving background does not count toward a match...
FIXED_CAMERA_SHARE = 0.25
#: ...unless nearly everything is unmoving (a still scene: a landscape, a room before anyone
#: enters): the scene itself is then the content, and every point counts.
STILL_SCENE_SHARE = 0.8
#: A point is background when this share of the video's other moments has a point within
#: about STATIC_PX (2 to 4 px of the 512 px frame) of its place. With a moving camera,
#: about one point in ten has a chance neighbour in a given moment.
STATIC_SHARE = 0.25
STATIC_PX = 2


def mark_moving(moments: Sequence[LocalFeatures]) -> tuple[LocalFeatures, ...]:
    """A blocked video's moments, each point marked whether it is a fixed camera's unmoving
    background (``LocalFeatures.moving``).

    A different clip from the same fixed camera (a webcam, a tripod in the same room) shows
    the same background: hundreds of points that fit one transform, which alone would make
    it a copy. Only what moves (the people, whatever the clip is of) tells two such clips
    apart. A point is background when enough other moments have a point at its place (ORB
    finds a background corner again within a pixel or two); with a moving camera, points
    rarely keep their place, and every point counts.
    """
    moments = tuple(moments)
    if len(moments) < 3 or len({(m.width, m.height) for m in moments}) > 1:
        # Places compare only between frames of one size (a stream can change size).
        return moments
    cell = STATIC_PX
    grids = []
    for moment in moments:
        grid = np.zeros((int(moment.height // cell) + 3, int(moment.width // cell) + 3), bool)
        cells = (moment.points // cell).astype(int) + 1
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                grid[cells[:, 1] + dy, cells[:, 0] + dx] = True
        grids.append(grid)
    masks: list[npt.NDArray[np.bool_]] = []
    for number, moment in enumerate(moments):
        cells = (moment.points // cell).astype(int) + 1
        seen = np.zeros(len(moment), dtype=int)
        for other, grid in enumerate(grids):
            if other != number:
                inside = (cells[:, 0] < grid.shape[1]) & (cells[:, 1] < grid.shape[0])
                seen[inside] += grid[cells[inside, 1], cells[inside, 0]]
        masks.append(seen < STATIC_SHARE * (len(moments) - 1))
    static = 1 - float(np.mean([mask.mean() for mask in masks]))
    if not FIXED_CAMERA_SHARE <= static <= STILL_SCENE_SHARE:
        return moments
    return tuple(
        dataclasses.replace(moment, moving=mask)
        for moment, mask in zip(moments, masks, strict=True)
    )
