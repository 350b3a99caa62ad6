"""Matching rules: which blocklist entries a medium's fingerprints match, and how closely.

One ``Matcher`` holds the rules (PDQ radius and quality floor, pHash's role, vPDQ's frame
shares) and applies them to a ``BlocklistIndex`` over a set of banks. The bot's moderation
service and the offline ``hashguard match`` command both use it, so they give the same
answers for the same file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from bot.config import MatchingConfig, VideoConfig
from hashdb.fingerprint import Fingerprint, MediaFingerprints
from hashdb.index import BlocklistIndex, IndexHit
from hashdb.local import LocalIndex
from hashdb.signals import PDQ, PHASH, SIGNAL_TYPES, VPDQ
from hashdb.store import Entry
from hashdb.video import VIDEO_KIND
from hashdb.video_match import VideoComparison, VideoMatchRule, comparison_from_pairs

#: The audit's name for a match found by local features rather than a hash.
LOCAL_SIGNAL = "local"


@dataclass(frozen=True, slots=True)
class Match:
    """Why an upload is considered blocked content."""

    entry_id: int
    signal: str
    #: Hamming distance of the closest fingerprint; 0 for a known Telegram file.
    distance: int
    #: True when Telegram's file_unique_id was already known, so nothing was downloaded.
    by_file_id: bool = False
    #: For videos: the share of the upload's frames found in the entry, and of the entry's
    #: frames found in the upload (vPDQ's two directions).
    query_pct: float | None = None
    compared_pct: float | None = None
    #: The bank the entry belongs to (0 when unknown).
    bank_id: int = 0
    #: For a local-feature match (signal "local"): the consistent matched points.
    points: int | None = None

    def describe(self) -> str:
        """A short note for the audit row."""
        if self.by_file_id:
            return "same Telegram file"
        if self.points is not None:
            return f"local features: {self.points} matching points"
        if self.query_pct is None or self.compared_pct is None:
            return ""
        return f"frames: {self.query_pct:.0f}% of upload, {self.compared_pct:.0f}% of entry"


class Matcher:
    """The matching rules of one deployment (from ``[matching]`` and ``[video]``)."""

    def __init__(self, matching: MatchingConfig, video: VideoConfig) -> None:
        self._matching = matching
        self._video = video
        self._video_rule = VideoMatchRule(
            query_pct=video.query_match_pct,
            compared_pct=video.compared_match_pct,
            min_frames=video.min_matched_frames,
        )

    def usable(self, fingerprint: Fingerprint) -> bool:
        # Featureless images (flat colour, tiny thumbnails) give PDQ hashes that sit close
        # to many unrelated ones; upstream discards quality < 50, and so do we for actions.
        if fingerprint.signal_type.has_quality:
            quality = fingerprint.quality if fingerprint.quality is not None else 0
            return quality >= self._matching.pdq_min_quality
        return True

    def min_quality(self) -> dict[str, int]:
        """Per signal with a quality score, the least quality ``usable`` accepts."""
        return {
            name: self._matching.pdq_min_quality
            for name, signal in SIGNAL_TYPES.items()
            if signal.has_quality
        }

    def indexable(self, entry: Entry) -> Entry:
        """The entry with only the fingerprints good enough to match on."""
        kept = tuple(f for f in entry.fingerprints if self.usable(f))
        return (
            entry if kept == entry.fingerprints else dataclasses.replace(entry, fingerprints=kept)
        )

    def matches(
        self,
        index: BlocklistIndex,
        bank_ids: Sequence[int],
        fingerprints: MediaFingerprints,
        *,
        include_phash: bool,
        max_distance: int,
        local: LocalIndex | None = None,
        exclude: Collection[int] = (),
    ) -> list[Match]:
        """Every entry of these banks the fingerprints match, best first (one per entry).

        A photo that no hash matches is looked for in ``local`` (crops, tilts,
        screenshots of blocked photos), when given. Entries in ``exclude`` (those a group
        exempted) match nothing, and do not keep the local search from running.
        """
        if fingerprints.kind == VIDEO_KIND:
            found = self._video_matches(index, bank_ids, fingerprints, max_distance)
        else:
            found = self._photo_matches(index, bank_ids, fingerprints, include_phash, max_distance)
            found = [m for m in found if m.entry_id not in exclude]
            if not found and local is not None and fingerprints.local is not None:
                found = [
                    Match(entry_id=hit.entry_id, signal=LOCAL_SIGNAL, distance=0, points=hit.points)
                    for hit in local.search(
                        fingerprints.local, bank_ids, self._matching.local_min_points
                    )
                ]
        found = [m for m in found if m.entry_id not in exclude]
        return [dataclasses.replace(m, bank_id=index.bank_of(m.entry_id) or 0) for m in found]

    def _photo_matches(
        self,
        index: BlocklistIndex,
        bank_ids: Sequence[int],
        fingerprints: MediaFingerprints,
        include_phash: bool,
        max_distance: int,
    ) -> list[Match]:
        probes = [p for p in fingerprints.probes if self.usable(p)]
        limits = {PDQ.name: max_distance}
        if include_phash:
            limits[PHASH.name] = self._matching.phash_max_distance
        hits: list[IndexHit] = index.query(bank_ids, probes, limits) if probes else []
        if self._video.frames_as_images:
            # A screenshot of a blocked video: the photo's orientations against its frames.
            frames = [_as(VPDQ.name, p) for p in fingerprints.probes if p.signal == PDQ.name]
            hits += index.query(
                bank_ids, [f for f in frames if self.usable(f)], {VPDQ.name: max_distance}
            )
        # PDQ is the primary signal: prefer it (and video frames, which are PDQ) over pHash.
        hits.sort(key=lambda h: (h.signal == PHASH.name, h.distance, h.entry_id))
        result: list[Match] = []
        seen: set[int] = set()
        for hit in hits:
            if hit.entry_id not in seen:
                seen.add(hit.entry_id)
                result.append(
                    Match(entry_id=hit.entry_id, signal=hit.signal, distance=hit.distance)
                )
        return result

    def _video_matches(
        self,
        index: BlocklistIndex,
        bank_ids: Sequence[int],
        fingerprints: MediaFingerprints,
        max_distance: int,
    ) -> list[Match]:
        frames = [f for f in fingerprints.probes if self.usable(f)]
        if not frames:
            return []
        found: list[tuple[str, int, VideoComparison]] = [
            (VPDQ.name, entry_id, c)
            for entry_id, c in self._accepted(
                _frame_comparisons(index, bank_ids, VPDQ.name, frames, max_distance)
            )
        ]
        if self._video.frames_as_images:
            # A video showing a blocked photo (a slideshow, a screen recording). A photo
            # entry is a one-frame video, so one matching frame is as sure as a photo match.
            found += [
                (PDQ.name, entry_id, c)
                for entry_id, c in self._accepted(
                    _frame_comparisons(index, bank_ids, PDQ.name, frames, max_distance)
                )
            ]
        found.sort(key=lambda item: (-(item[2].query_pct + item[2].compared_pct), item[1]))
        return [
            Match(
                entry_id=entry_id,
                signal=signal,
                distance=comparison.best_distance or 0,
                query_pct=comparison.query_pct,
                compared_pct=comparison.compared_pct,
            )
            for signal, entry_id, comparison in found
        ]

    def _accepted(
        self, comparisons: list[tuple[int, VideoComparison]]
    ) -> list[tuple[int, VideoComparison]]:
        return [(entry_id, c) for entry_id, c in comparisons if self._video_rule.accepts(c)]


def _frame_comparisons(
    index: BlocklistIndex,
    bank_ids: Sequence[int],
    signal: str,
    frames: list[Fingerprint],
    max_distance: int,
) -> list[tuple[int, VideoComparison]]:
    """Per entry of ``signal``, how the upload's frames and the entry's hashes met."""
    pairs = index.pairs(bank_ids, signal, [f.value for f in frames], max_distance)
    by_entry: dict[int, list[tuple[int, int, int]]] = {}
    for probe, entry_id, group, distance in pairs:
        by_entry.setdefault(entry_id, []).append((probe, group, distance))
    return [
        (
            entry_id,
            comparison_from_pairs(entry_pairs, len(frames), index.group_count(signal, entry_id)),
        )
        for entry_id, entry_pairs in sorted(by_entry.items())
    ]


def _as(signal: str, fingerprint: Fingerprint) -> Fingerprint:
    """The same hash under another signal name (PDQ photo hash <-> vPDQ frame hash)."""
    return Fingerprint(signal, fingerprint.value, fingerprint.quality)
