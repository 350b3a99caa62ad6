"""Fingerprint value types shared by the hashers, the store and the index.

A ``Fingerprint`` is one hash of one signal type. ``MediaFingerprints`` is what hashing one
file yields: the fingerprints to *store* when the item is blocked, and the *probes* to look
up when checking an upload (for photos, the 8 rotations/flips of PDQ from one DCT, so a
mirrored or rotated copy meets the single stored hash).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hashdb.signals import SIGNAL_TYPES, SignalType

if TYPE_CHECKING:
    from hashdb.local import LocalFeatures


class MediaDecodeError(Exception):
    """Media could not be decoded or broke a size/time budget; the message says why."""


@dataclass(frozen=True, slots=True)
class Fingerprint:
    signal: str
    value: int
    #: PDQ quality 0..100; ``None`` for signals without a quality score.
    quality: int | None = None
    #: For a video frame: its time in the video, in seconds.
    seconds: float | None = None

    @property
    def signal_type(self) -> SignalType:
        return SIGNAL_TYPES[self.signal]

    @property
    def hex(self) -> str:
        return self.signal_type.format(self.value)

    def distance(self, other: Fingerprint) -> int:
        if other.signal != self.signal:
            raise ValueError(f"cannot compare {self.signal} with {other.signal}")
        return SignalType.distance(self.value, other.value)

    def __str__(self) -> str:
        return f"{self.signal} {self.hex}"


@dataclass(frozen=True, slots=True)
class MediaFingerprints:
    """Fingerprints of one media file."""

    #: "photo" for still images; later kinds (video) add their own.
    kind: str
    #: Kept in the blocklist when the item is blocked; the first is the whole-image PDQ.
    stored: tuple[Fingerprint, ...]
    #: Looked up when an upload is checked (includes the stored ones' orientations).
    probes: tuple[Fingerprint, ...]
    width: int
    height: int
    #: A budget (time, frames) stopped hashing before the end of the media.
    truncated: bool = False
    #: Frames sampled before quality filtering (1 for a still image).
    frame_count: int = 1
    #: Local features (ORB keypoints) of a still image, to find it cropped, tilted or inside
    #: a screenshot; None for videos and featureless images.
    local: LocalFeatures | None = None
