"""Matching rules: which blocklist entries a medium's fingerprints match, and how closely.

One ``Matcher`` holds the rules (PDQ radius and quality floor, pHash's role, vPDQ's frame
shares) and applies them to a ``BlocklistIndex`` over a set of banks. The bot's moderation
service and the offline ``hashguard match`` command both use it, so they give the same
answers for the same file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from bot.config import MatchingConfig, VideoConfig
from hashdb.fingerprint import Fingerprint, MediaFingerprints
from hashdb.index import BlocklistIndex, IndexHit
from hashdb.local import LocalHit, LocalIndex
from hashdb.signals import PDQ, PHASH, SIGNAL_TYPES, VPDQ
from hashdb.store import Entry
from hashdb.video import VIDEO_KIND
from hashdb.video_match import VideoComparison, VideoMatchRule, comparison_from_pairs

#: The audit's name for a match found by local features rather than a hash.
LOCAL_SIGNAL = "local"

# Low-detail photos (dark, blurred, smooth): PDQ's quality is a gradient sum on the
# unnormalised luminance, so a photo taken in low light scores under ``pdq_min_quality``
# although its hash bits are as stable as a bright photo's (they are signs of DCT
# coefficients against their median: scaling the luminance does not move them). Such a
# hash is matched by a second, tighter rule (``dim_matches``): a closer PDQ distance AND
# the entry's pHash agreeing, two independent reductions of the picture. Measured by
# bench/photo_dim.py (dark, blurred and flat copies of corpus and unseen photos, their
# re-encodes and resizes; flat, gradient, vignette and dark-with-a-lamp distractors): see
# docs/security.md for the figures and margins.
#: Least PDQ quality the low-detail rule considers. Quality 0 is a picture with no
#: gradient at all on PDQ's 64x64 grid (a solid colour, a smooth ramp sampled exactly):
#: its hash is decided by rounding, and such pictures agree in pHash (all 0 bits).
DIM_MIN_QUALITY = 1
#: PDQ radius of the low-detail rule, under the normal 31 since pHash must also agree.
#: Unrelated pairs with a low-detail side (2,178 distractors against 1,050 blocked
#: low-detail photos) came no closer than 76 bits; copies of dark, night and lightly
#: blurred photos came within it 97-100% of the time, of heavily blurred ones (3-5% of the
#: side) 55-71%: their PDQ bits are gone, while pHash still agrees.
DIM_MAX_DISTANCE = 28
#: pHash radius that confirms a low-detail PDQ match (the normal pHash radius). No
#: unrelated pair above agreed within it; a pair of dark pictures of a lamp 20 PDQ bits
#: apart were 32 pHash bits apart.
DIM_PHASH_DISTANCE = 6


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
    #: For a low-detail photo (see ``dim_matches``): the pHash distance that confirmed it.
    phash_distance: int | None = None
    #: For a photo matched by a rectangle found inside it: that region's kind ("border",
    #: "chrome", "blur_fill", "cell" or "mixed"; see ``hashdb.photo_regions``).
    region: str | None = None

    def describe(self) -> str:
        """A short note for the audit row."""
        if self.by_file_id:
            return "same Telegram file"
        if self.points is not None:
            where = f" in a {self.region} of the upload" if self.region is not None else ""
            return f"local features: {self.points} matching points{where}"
        if self.phash_distance is not None:
            return f"low-detail photo: confirmed by pHash ({self.phash_distance} bits)"
        if self.region is not None:
            return f"picture found inside the upload ({self.region})"
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

    def low_detail(self, fingerprint: Fingerprint) -> bool:
        """Whether a photo's PDQ hash is below ``usable`` but matchable by the low-detail
        rule (``dim_matches``)."""
        quality = fingerprint.quality if fingerprint.quality is not None else 0
        return (
            fingerprint.signal == PDQ.name
            and DIM_MIN_QUALITY <= quality < self._matching.pdq_min_quality
        )

    def only_low_detail(self, stored: Sequence[Fingerprint]) -> bool:
        """Whether media with these stored hashes is found again (other than as the same
        file) only by the low-detail rule: no usable hash, but a low-detail PDQ hash and the
        pHash that confirms it. Its re-encodes and resizes are found; edited copies may not
        be."""
        return (
            not any(f.signal_type.has_quality and self.usable(f) for f in stored)
            and any(self.low_detail(f) for f in stored)
            and any(f.signal == PHASH.name for f in stored)
        )

    def min_quality(self) -> dict[str, int]:
        """Per signal with a quality score, the least quality ``usable`` accepts."""
        return {
            name: self._matching.pdq_min_quality
            for name, signal in SIGNAL_TYPES.items()
            if signal.has_quality
        }

    def index_quality(self) -> dict[str, int]:
        """Per signal with a quality score, the least quality ``indexable`` keeps."""
        floors = self.min_quality()
        floors[PDQ.name] = min(floors[PDQ.name], DIM_MIN_QUALITY)
        return floors

    def indexable(self, entry: Entry) -> Entry:
        """The entry with only the fingerprints good enough to match on (low-detail photo
        hashes included: searches leave them out but for ``dim_matches``)."""
        kept = tuple(f for f in entry.fingerprints if self.usable(f) or self.low_detail(f))
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

        A photo or video that no hash matches is looked for in ``local`` (crops, tilts,
        screenshots of blocked photos; crops and picture-in-picture of blocked videos), when
        given. Entries in ``exclude`` (those a group exempted) match nothing, and do not
        keep the local search from running.
        """
        if fingerprints.kind == VIDEO_KIND:
            found = self._video_matches(index, bank_ids, fingerprints, max_distance)
            found = [m for m in found if m.entry_id not in exclude]
            if not found and local is not None:
                found = self.local_matches(local, bank_ids, fingerprints)
        else:
            found = self._photo_matches(index, bank_ids, fingerprints, include_phash, max_distance)
            found = [m for m in found if m.entry_id not in exclude]
            if not found:
                # Exempted entries are left out first: one the group exempted must not keep
                # the tighter rule from finding another.
                found = dim_matches(
                    index,
                    bank_ids,
                    fingerprints.probes,
                    max_distance,
                    self._matching.pdq_min_quality,
                )
                found = [m for m in found if m.entry_id not in exclude]
            if not found and fingerprints.regions:
                found = self._region_matches(index, bank_ids, fingerprints, max_distance)
                found = [m for m in found if m.entry_id not in exclude]
            if not found and local is not None:
                found = self.local_matches(local, bank_ids, fingerprints)
        found = [m for m in found if m.entry_id not in exclude]
        return [dataclasses.replace(m, bank_id=index.bank_of(m.entry_id) or 0) for m in found]

    @staticmethod
    def local_searchable(fingerprints: MediaFingerprints) -> bool:
        """Whether the fingerprints hold local features to search (``local_matches``)."""
        if fingerprints.kind == VIDEO_KIND:
            return bool(fingerprints.moments)
        return fingerprints.local is not None or any(
            r.local is not None for r in fingerprints.regions
        )

    def local_matches(
        self,
        local: LocalIndex,
        bank_ids: Sequence[int],
        fingerprints: MediaFingerprints,
        exclude: Collection[int] = (),
    ) -> list[Match]:
        """The entries of these banks the upload's local features show, most points first
        (one per entry; ``bank_id`` left 0): the search ``matches`` makes when no hash
        matched, on its own for the second stage of an upload's check."""
        if fingerprints.kind == VIDEO_KIND:
            # Crops and picture-in-picture: local features agreeing at two or more moments
            # of the upload (see hashdb.local.search_moments).
            found = (
                [
                    Match(entry_id=hit.entry_id, signal=LOCAL_SIGNAL, distance=0, points=hit.points)
                    for hit in local.search_moments(
                        fingerprints.moments, bank_ids, self._matching.local_min_points
                    )
                ]
                if fingerprints.moments
                else []
            )
        else:
            found = self._local_photo_matches(local, bank_ids, fingerprints)
        return [m for m in found if m.entry_id not in exclude]

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
        floors = self.min_quality()
        hits: list[IndexHit] = index.query(bank_ids, probes, limits, floors) if probes else []
        if self._video.frames_as_images:
            # A screenshot of a blocked video: the photo's orientations against its frames.
            frames = [_as(VPDQ.name, p) for p in fingerprints.probes if p.signal == PDQ.name]
            hits += index.query(
                bank_ids, [f for f in frames if self.usable(f)], {VPDQ.name: max_distance}, floors
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

    def _local_photo_matches(
        self, local: LocalIndex, bank_ids: Sequence[int], fingerprints: MediaFingerprints
    ) -> list[Match]:
        """Entries the photo's local features show (crops, tilts, screenshots, photos of a
        screen), then, if none, those a grid cell's own features show, most points first."""
        minimum = self._matching.local_min_points
        looks = [fingerprints.local] if fingerprints.local is not None else []
        cells = [(r.local, r.kind) for r in fingerprints.regions if r.local is not None]
        hits: list[tuple[LocalHit, str | None]] = [
            (hit, None) for look in looks for hit in local.search(look, bank_ids, minimum)
        ]
        if not hits:
            hits = [
                (hit, kind) for cell, kind in cells for hit in local.search(cell, bank_ids, minimum)
            ]
        hits.sort(key=lambda item: (-item[0].points, item[0].entry_id))
        result: list[Match] = []
        seen: set[int] = set()
        for hit, kind in hits:
            if hit.entry_id not in seen:
                seen.add(hit.entry_id)
                result.append(Match(hit.entry_id, LOCAL_SIGNAL, 0, points=hit.points, region=kind))
        return result

    def _region_matches(
        self,
        index: BlocklistIndex,
        bank_ids: Sequence[int],
        fingerprints: MediaFingerprints,
        max_distance: int,
    ) -> list[Match]:
        """Entries the picture's own rectangles inside the photo match, as the whole photo's
        PDQ probes would (same radius and quality floor; pHash is left out: it is not
        rotation-aware and is weaker on crops). Best first, one per entry."""
        hits: list[tuple[int, int, str]] = []
        for region in fingerprints.regions:
            probes = [p for p in region.probes if self.usable(p)]
            if probes:
                found = index.query(bank_ids, probes, {PDQ.name: max_distance}, self.min_quality())
                hits += ((hit.distance, hit.entry_id, region.kind) for hit in found)
        hits.sort()
        result: list[Match] = []
        seen: set[int] = set()
        for distance, entry_id, kind in hits:
            if entry_id not in seen:
                seen.add(entry_id)
                result.append(Match(entry_id, PDQ.name, distance, region=kind))
        return result

    def video_comparisons(
        self,
        index: BlocklistIndex,
        bank_ids: Sequence[int],
        fingerprints: MediaFingerprints,
        max_distance: int,
        signals: Sequence[str] = (VPDQ.name,),
        accepts: Callable[[VideoComparison], bool] = lambda _: True,
    ) -> dict[int, tuple[str, VideoComparison]]:
        """Per entry, the best comparison ``accepts`` lets through, over the upload's views.

        Each view (the frames as sampled, mirrored, the picture's own rectangle...) is a
        reading of the whole video and is compared on its own: frames of different readings
        never add up to a match.
        """
        views = [
            usable
            for view in (fingerprints.probes, *fingerprints.views)
            if (usable := [f for f in view if self.usable(f)])
        ]
        best: dict[int, tuple[str, VideoComparison]] = {}
        if not views:
            return best
        window = _window(fingerprints.sample_spacing)
        for signal in signals:
            for entry_id, comparison in _view_comparisons(
                index, bank_ids, signal, views, max_distance, window, self.min_quality()
            ):
                if not accepts(comparison):
                    continue
                known = best.get(entry_id)
                if known is None or _score(comparison) > _score(known[1]):
                    best[entry_id] = (signal, comparison)
        return best

    def _video_matches(
        self,
        index: BlocklistIndex,
        bank_ids: Sequence[int],
        fingerprints: MediaFingerprints,
        max_distance: int,
    ) -> list[Match]:
        signals = [VPDQ.name]
        if self._video.frames_as_images:
            # A video showing a blocked photo (a slideshow, a screen recording). A photo
            # entry is a one-frame video, so one matching frame is as sure as a photo match.
            signals.append(PDQ.name)
        best = self.video_comparisons(
            index, bank_ids, fingerprints, max_distance, signals, self._video_rule.accepts
        )
        found = sorted(best.items(), key=lambda item: (-_score(item[1][1]), item[0]))
        return [
            Match(
                entry_id=entry_id,
                signal=signal,
                distance=comparison.best_distance or 0,
                query_pct=comparison.query_pct,
                compared_pct=comparison.compared_pct,
            )
            for entry_id, (signal, comparison) in found
        ]


def dim_matches(
    index: BlocklistIndex,
    bank_ids: Sequence[int],
    probes: Sequence[Fingerprint],
    max_distance: int,
    min_quality: int,
) -> list[Match]:
    """Entries a photo matches by the low-detail rule, closest first: a PDQ hash of the
    upload within ``DIM_MAX_DISTANCE`` (and the chat's own radius) of one of the entry's,
    one side or both of quality under ``min_quality`` (``pdq_min_quality``) but not under
    ``DIM_MIN_QUALITY``, AND the upload's pHash within ``DIM_PHASH_DISTANCE`` of the
    entry's. Called when the normal rule found nothing, so every hit has a low-detail side.

    An entry without a pHash (a PDQ-only list) is never matched this way: on PDQ alone,
    two unrelated dark pictures of a lamp came 20 bits apart (see ``DIM_PHASH_DISTANCE``).
    """
    pdq = [p for p in probes if p.signal == PDQ.name and (p.quality or 0) >= DIM_MIN_QUALITY]
    phash = [p for p in probes if p.signal == PHASH.name]
    if not pdq or not phash:
        return []
    if all((p.quality or 0) >= min_quality for p in pdq) and not index.count_below(
        bank_ids, PDQ.name, min_quality
    ):
        # A detailed upload can only meet a low-detail entry, and these banks hold none:
        # the search would cost as much as the normal one for nothing.
        return []
    radius = min(DIM_MAX_DISTANCE, max_distance)
    near = index.query(bank_ids, pdq, {PDQ.name: radius}, {PDQ.name: DIM_MIN_QUALITY})
    if not near:
        return []
    agreeing = {
        hit.entry_id: hit.distance
        for hit in index.query(bank_ids, phash, {PHASH.name: DIM_PHASH_DISTANCE})
    }
    return [
        Match(
            entry_id=hit.entry_id,
            signal=PDQ.name,
            distance=hit.distance,
            phash_distance=agreeing[hit.entry_id],
        )
        for hit in near
        if hit.entry_id in agreeing
    ]


def needs_regions(
    matching: MatchingConfig,
    index: BlocklistIndex,
    local: LocalIndex | None,
    bank_ids: Iterable[int],
) -> bool:
    """Whether a photo checked against these banks should bring the picture's own
    rectangles found inside it (``MediaFingerprints.regions``), by ``matching.region_probes``:
    always, never, or ("hash_only") when some entry has no local features to find it
    re-framed (every entry of an imported hash list). Counted per bank, so it costs nothing
    per upload; a bank's videos without moments count too, which only costs a check the
    regions' hashing."""
    if matching.region_probes != "hash_only":
        return matching.region_probes == "always"
    return any(
        index.size(bank_id) > (local.bank_size(bank_id) if local is not None else 0)
        for bank_id in bank_ids
    )


def _score(comparison: VideoComparison) -> float:
    return comparison.query_pct + comparison.compared_pct


def _window(spacing: float | None) -> int:
    """Whole seconds of a blocked video that one sample of the upload stands for.

    An upload sampled every 2 s (at its keyframes) can hit at most every other second of a
    blocked video; counting the blocked video's seconds in windows that wide keeps the
    share found ("compared") meaning the same whatever the upload's sampling.
    """
    return max(1, round(spacing)) if spacing is not None else 1


def _view_comparisons(
    index: BlocklistIndex,
    bank_ids: Sequence[int],
    signal: str,
    views: list[list[Fingerprint]],
    max_distance: int,
    window: int,
    min_quality: Mapping[str, int],
) -> list[tuple[int, VideoComparison]]:
    """Per view and entry of ``signal``, how the upload's frames and the entry's hashes met
    (one index search for every view's frames); hashes under ``min_quality`` take no part."""
    values = [f.value for view in views for f in view]
    owner = [(number, i) for number, view in enumerate(views) for i in range(len(view))]
    floor = min_quality.get(signal, 0)
    by_key: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    for probe, entry_id, group, distance in index.pairs(
        bank_ids, signal, values, max_distance, floor
    ):
        view, frame = owner[probe]
        by_key.setdefault((view, entry_id), []).append((frame, _windowed(group, window), distance))
    counts: dict[int, int] = {}
    result: list[tuple[int, VideoComparison]] = []
    for (view, entry_id), pairs in sorted(by_key.items()):
        if entry_id not in counts:
            counts[entry_id] = len(
                {_windowed(g, window) for g in index.groups(signal, entry_id, floor)}
            )
        result.append((entry_id, comparison_from_pairs(pairs, len(views[view]), counts[entry_id])))
    return result


def _windowed(group: int, window: int) -> int:
    # Keys below zero are hashes without a time, each its own group.
    return group // window if group >= 0 else group


def _as(signal: str, fingerprint: Fingerprint) -> Fingerprint:
    """The same hash under another signal name (PDQ photo hash <-> vPDQ frame hash)."""
    return Fingerprint(signal, fingerprint.value, fingerprint.quality)
