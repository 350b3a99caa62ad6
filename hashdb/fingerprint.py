"""Fingerprint value types shared by the hashers, the store and the index.

A ``Fingerprint`` is one hash of one signal type. ``MediaFingerprints`` is what hashing one
file yields: the fingerprints to *store* when the item is blocked, and the *probes* to look
up when checking an upload (for photos, the 8 rotations/flips of PDQ from one DCT, so a
mirrored or rotated copy meets the single stored hash).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from hashdb.signals import SIGNAL_TYPES, SignalType

if TYPE_CHECKING:
    from hashdb.local_format import LocalFeatures


class SkipReason(StrEnum):
    """Why a file was not checked: the only thing users and the audit trail are told.

    The decoder's own words stay in the operational logs: they can quote the file's path,
    and with a local Bot API server that path holds the bot token. The value is the code
    kept in audit rows; never renamed.
    """

    TOO_LARGE = "too_large"
    DOWNLOAD_FAILED = "download_failed"
    EMPTY = "empty"
    UNSUPPORTED = "unsupported"
    UNDECODABLE = "undecodable"
    TIMEOUT = "timeout"
    DECODER_CRASHED = "decoder_crashed"
    THUMBNAIL_ONLY = "thumbnail_only"
    QUEUE_FULL = "queue_full"
    REPORT_QUEUE_FULL = "report_queue_full"

    @property
    def text(self) -> str:
        """What it means, in plain words (for replies and the audit detail)."""
        return _SKIP_TEXT[self]


_SKIP_TEXT = {
    SkipReason.TOO_LARGE: "the file is larger than this bot checks",
    SkipReason.DOWNLOAD_FAILED: "Telegram did not let me download the file",
    SkipReason.EMPTY: "the file is empty",
    SkipReason.UNSUPPORTED: "the file's format is not one I can read",
    SkipReason.UNDECODABLE: "the file is damaged or not a readable image or video",
    SkipReason.TIMEOUT: "reading the file took too long",
    SkipReason.DECODER_CRASHED: "the decoder failed on this file",
    SkipReason.THUMBNAIL_ONLY: (
        "the file is over the download cap: only its thumbnail was checked (no match)"
    ),
    SkipReason.QUEUE_FULL: "queue full: too many uploads of this chat waiting to be checked",
    SkipReason.REPORT_QUEUE_FULL: (
        "report not filed: too many uploads of this chat waiting to be checked"
    ),
}


class MediaDecodeError(Exception):
    """Media could not be decoded or broke a size/time budget.

    ``reason`` is what users and the audit see; the message is the decoder's own detail,
    for operational logs only (it may quote a file path).
    """

    def __init__(self, message: str, reason: SkipReason = SkipReason.UNDECODABLE) -> None:
        super().__init__(message)
        self.reason = reason

    def __reduce__(self) -> tuple[type[MediaDecodeError], tuple[str, SkipReason]]:
        # Raised in worker processes: the reason must survive the trip back.
        return (type(self), (str(self), self.reason))


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
    #: a screenshot; None for featureless images and for videos (see ``moments``).
    local: LocalFeatures | None = None
    #: A blocked photo's mirror image's local features (stored beside ``local``).
    local_mirror: LocalFeatures | None = None
    #: A video checked as an upload: its frames read other ways (mirrored; the picture's
    #: own rectangle inside bars, a blurred fill or a caption), each matched like ``probes``.
    #: Never stored.
    views: tuple[tuple[Fingerprint, ...], ...] = ()
    #: A video's local features at a few moments, each with its time (``seconds``).
    moments: tuple[LocalFeatures, ...] = ()
    #: A video's typical seconds between samples (wider when only keyframes were sampled).
    sample_spacing: float | None = None
    #: A photo checked as an upload for lists without local features: the picture's own
    #: rectangles found inside it (``hashdb.photo_regions``), each as its kind and its 8 PDQ
    #: orientations, matched like ``probes``. Never stored.
    regions: tuple[RegionProbes, ...] = ()


@dataclass(frozen=True, slots=True)
class RegionProbes:
    """The PDQ orientations of one rectangle found inside an uploaded photo."""

    #: What was trimmed or cut to find it: "border", "chrome", "blur_fill", "cell", "mixed".
    kind: str
    probes: tuple[Fingerprint, ...]
    #: For a grid or collage cell of a check that uses local features: the cell's own. A
    #: cell holds too small a share of the whole collage's keypoints to be found among
    #: them, and collage apps crop each photo to fill its cell, which PDQ does not survive.
    local: LocalFeatures | None = None
