"""Local features: find a blocked photo inside a cropped, rotated, captioned or
screenshotted copy, where whole-image hashes (PDQ) no longer meet.

A photo is described by up to ``MAX_FEATURES`` ORB keypoints (position plus a 256-bit
binary descriptor) on a grey copy scaled to ``SIDE`` pixels. Descriptors of blocked photos
are kept in a FLANN LSH index, so a query finds candidate entries without scanning them
all; each candidate is then verified geometrically: the matched points must fit one
similarity transform (rotation, uniform scale, shift: what cropping, padding, tilting and
screenshotting do) with RANSAC, at a plausible scale, spread over the stored photo. A
different photo of the same scene does not fit one such transform, and random matches do
not line up at all (measured on the dev corpus: at most 16 consistent points for photos of
the same subject, against a threshold of 24; see bench/quality.py). A photo upload that
no similarity verifies is also fitted with a homography within what a photo of a slanted
screen or print can give, and an upload with few keypoints is looked at a second time,
larger and contrast-equalised (``SECOND_LOOK_SIDE``; docs/photos.md).

Videos are described by several *moments*: the features of a few distinct frames, each
with its time. Votes count per (entry, moment), so only an entry's best-voted moments are
verified. A video upload is matched only when at least two of its own moments (distinct
seconds; a frame and its mirror are one moment) each verify against the entry: one frame
can meet an unrelated video by chance (a logo, a shared backdrop), two separate moments of
the same clip hardly do. Measured by bench/video_local.py on the dev corpus (blocked
videos stored as up to 16 distinct frames a second apart, 500 features each; uploads as up
to 8 frames and their mirrors): with 24 points and 2 moments, 77 of 78 edited copies are
found (crops to 80%, mirrored crops, captions, 9:16 re-framing, speed and frame-rate
changes; the miss is a 4.5 s clip spliced into 9 s of other footage, one sample of which
fell on it). The weakest copy found has 55 points on its second moment; no unrelated pair
verified even 4 points on any moment (7 RANSAC inliers at most before the checks of scale,
spread and coverage). Video uploads against 132 blocked photos: 113 of the 132 pairs of a
slideshow and a blocked photo it shows are found, no photo it does not show. What local
features cannot tell apart: other minutes of the same fixed camera (161 points on a second
moment) and videos that show the same photo for a while; both are the same picture, to a
local match.

Descriptors of blocked photos are not the media and cannot be turned back into it; a
query's descriptors are never stored.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from hashdb.local_extract import (
    DEFAULT_MIN_POINTS,
    MAX_FEATURES,
    MIN_SIDE,
    MOMENT_FEATURES,
    SECOND_LOOK_SHARE,
    SIDE,
    extract,
    extract_array,
    opencv,
    takes_second_look,
)
from hashdb.local_format import MAX_MOMENTS, LocalFeatures

# Extraction lives in hashdb.local_extract; its names are offered here too, beside the index.
__all__ = [
    "DEFAULT_MIN_MOMENTS",
    "DEFAULT_MIN_POINTS",
    "MAX_FEATURES",
    "MIN_SIDE",
    "MOMENT_FEATURES",
    "SECOND_LOOK_SHARE",
    "SIDE",
    "LocalHit",
    "LocalIndex",
    "consistent_points",
    "extract",
    "extract_array",
    "fitted_matches",
    "takes_second_look",
]

#: A matched pair must be this close (of 256 bits), and clearly closer than the second
#: best candidate (Lowe's ratio test), to count.
MAX_DESCRIPTOR_DISTANCE = 64
RATIO = 0.8
#: Neighbours of each query descriptor that may vote for a candidate, and how close.
NEIGHBOURS = 4
VOTE_DISTANCE = 50
#: Descriptors added since the last LSH build that are searched by brute force before the
#: index is rebuilt (about 20 photos: a few milliseconds per query).
REBUILD_AFTER = 20_000
#: RANSAC tolerance, in pixels of the SIDE-pixel copies.
REPROJECTION_PX = 4.0
#: The stored photo may appear at 1/5 to 5 times its size in the query (a screenshot
#: shrinks it; a crop enlarges it).
SCALE_RANGE = (0.2, 5.0)
#: The consistent points must span at least this share of the stored photo's area, so a
#: repeated texture in one corner is not a match.
MIN_SPREAD = 0.04
#: The stored photo is cut into square cells, GRID to its longer side; matches must reach
#: at least this share
#: of the cells that have keypoints and are visible in the query. Measured: copies in the
#: dev corpus reach 0.42 or more (2nd percentile), screenshots of one app layout showing
#: different photos 0.17 to 0.25.
GRID = 6
MIN_COVERAGE = 1 / 3
#: A photo of a screen or a print taken at a slant is a perspective view of the picture,
#: which one similarity fits only near its middle. Photo queries the similarity does not
#: match are fitted with a homography too, accepted only where a slanted flat picture could
#: give it: over the matched points, one side at most MAX_DEPTH_RATIO times nearer the
#: camera than the other, and its linear part at most MAX_SQUASH times longer one way than
#: the other. A screen spanning 65% of a phone photo's width, turned 20 degrees, gives 1.32
#: across its whole width; the screen photos found this way (bench/photo_unseen.py) were
#: 1.05 to 1.17 over their matched points, squash at most 1.07. Two photos of one flat
#: facade from two viewpoints are also a homography: the dev corpus's leuvenA/leuvenB pair
#: fitted 47 points at 1.49, which 1.6 let through.
MAX_DEPTH_RATIO = 1.35
MAX_SQUASH = 1.3
#: Candidates verified per query, best voted first.
CANDIDATES = 3
#: Of a candidate video entry, its best-voted moments verified (photo entries have one):
#: the stored moment nearest the query in time has the most votes, and a second guards
#: against a moment split between two near-identical stored frames.
MOMENTS_PER_CANDIDATE = 2
#: Distinct moments of a video upload that must each verify against an entry, by default.
#: One moment found no unrelated pair either on the dev corpus, but a single frame is what a
#: shared logo, backdrop or title card gives; three found only 66 of the 78 copies (short
#: clips and spliced ones have few moments to agree).
DEFAULT_MIN_MOMENTS = 2


#: FLANN's LSH over the 256-bit descriptors: 8 hash tables keyed on 24 bits each, no
#: multi-probe. Measured on 62K stored descriptors: 0.8 ms per query photo, with the right
#: entry among the 3 best voted for 199 of 200 cropped, tilted, captioned and screenshot
#: copies (6 tables of 12 bits with multi-probe: 28 ms; brute force: 73 ms).
_LSH_INDEX = {"algorithm": 6, "table_number": 8, "key_size": 24, "multi_probe_level": 0}


@dataclass(frozen=True, slots=True)
class LocalHit:
    entry_id: int
    #: Matched points consistent with one similarity transform (distinct stored positions);
    #: for a video upload, the most that any of its agreeing moments has.
    points: int
    #: Distinct moments of the upload that each verified against the entry (1 for a photo).
    moments: int = 1


def _moments_of(features: LocalFeatures | Sequence[LocalFeatures]) -> tuple[LocalFeatures, ...]:
    if isinstance(features, LocalFeatures):
        return (features,)
    moments = tuple(features)
    if not 1 <= len(moments) <= MAX_MOMENTS:
        raise ValueError(f"an entry of {len(moments)} moments; expected 1 to {MAX_MOMENTS}")
    return moments


@dataclass
class _Stored:
    moments: tuple[LocalFeatures, ...]
    bank_id: int

    @property
    def size(self) -> int:
        return sum(len(moment) for moment in self.moments)

    @property
    def is_video(self) -> bool:
        # A video's moments carry their times; a photo's (itself, and its mirror) do not.
        return any(moment.seconds is not None for moment in self.moments)


class _Part:
    """Stacked descriptors with the entry and moment each came from, and their matcher."""

    def __init__(self, matcher: Any, owners: npt.NDArray[np.int64], numbers: npt.NDArray[np.int32]):
        self.matcher, self.owners, self.numbers = matcher, owners, numbers


class LocalIndex:
    """Local features of blocked photos and videos, searchable by a query photo's features
    or a video upload's moments.

    An entry holds one moment (a photo) or several (a video's distinct frames). Used from
    one thread at a time: searching builds parts lazily (the moderation service holds a
    lock around every search and change). Descriptors live in two
    parts: a FLANN LSH index over everything present at the last build, and a small
    "recent" part searched by brute force. New entries go to the recent part; when it holds
    ``REBUILD_AFTER`` descriptors, the whole index is rebuilt. Removing an entry only
    forgets it (searches skip it), so unblocking never costs a rebuild.
    """

    def __init__(self) -> None:
        self._entries: dict[int, _Stored] = {}
        #: bank id -> how many of its entries are here.
        self._bank_counts: collections.Counter[int] = collections.Counter()
        self._built: _Part | None = None
        self._recent: list[int] = []
        self._recent_part: _Part | None = None

    def add(
        self, entry_id: int, bank_id: int, features: LocalFeatures | Sequence[LocalFeatures]
    ) -> None:
        """Index an entry's features: one photo's, or a video's moments."""
        moments = _moments_of(features)
        self.remove(entry_id)
        self._entries[entry_id] = _Stored(moments, bank_id)
        self._bank_counts[bank_id] += 1
        self._recent.append(entry_id)
        self._recent_part = None
        if sum(self._entries[i].size for i in self._recent if i in self._entries) > (REBUILD_AFTER):
            self.build()

    def add_many(
        self, items: Iterable[tuple[int, int, LocalFeatures | Sequence[LocalFeatures]]]
    ) -> None:
        """Add many entries and rebuild once (start-up)."""
        for entry_id, bank_id, features in items:
            moments = _moments_of(features)
            self.remove(entry_id)
            self._entries[entry_id] = _Stored(moments, bank_id)
            self._bank_counts[bank_id] += 1
        self.build()

    def remove(self, entry_id: int) -> None:
        stored = self._entries.pop(entry_id, None)
        if stored is not None:
            self._bank_counts[stored.bank_id] -= 1
            if not self._bank_counts[stored.bank_id]:
                del self._bank_counts[stored.bank_id]

    def holds_any(self, bank_ids: Iterable[int]) -> bool:
        """Whether any of these banks has an entry here (safe to ask from any thread)."""
        counts = self._bank_counts
        return any(bank_id in counts for bank_id in bank_ids)

    def bank_size(self, bank_id: int) -> int:
        """How many of a bank's entries are here (safe to ask from any thread)."""
        return self._bank_counts.get(bank_id, 0)

    def __len__(self) -> int:
        return len(self._entries)

    def build(self) -> None:
        """Rebuild the LSH index over every entry (and empty the recent part)."""
        cv2 = opencv()
        ids = list(self._entries)
        self._recent, self._recent_part = [], None
        if not ids:
            self._built = None
            return
        descriptors, owners, numbers = self._stack(ids)
        matcher = cv2.FlannBasedMatcher(_LSH_INDEX, {"checks": 16})
        matcher.add([descriptors])
        matcher.train()
        self._built = _Part(matcher, owners, numbers)

    def _stack(
        self, ids: list[int]
    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], npt.NDArray[np.int32]]:
        moments = [(i, n, m) for i in ids for n, m in enumerate(self._entries[i].moments)]
        descriptors = np.vstack([m.descriptors for _, _, m in moments])
        sizes = [len(m) for _, _, m in moments]
        owners = np.repeat(np.array([i for i, _, _ in moments], dtype=np.int64), sizes)
        numbers = np.repeat(np.array([n for _, n, _ in moments], dtype=np.int32), sizes)
        return descriptors, owners, numbers

    def _recent_matcher(self) -> _Part | None:
        if self._recent_part is None:
            ids = [i for i in self._recent if i in self._entries]
            if not ids:
                return None
            cv2 = opencv()
            descriptors, owners, numbers = self._stack(ids)
            matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
            matcher.add([descriptors])
            self._recent_part = _Part(matcher, owners, numbers)
        return self._recent_part

    def search(
        self, query: LocalFeatures, bank_ids: Sequence[int], min_points: int
    ) -> list[LocalHit]:
        """Blocked photos of these banks the query photo shows, most consistent points first.

        Blocked videos are not searched: a video counts as shown only when two moments
        agree (``search_moments``), and a photo is one moment.
        """
        allowed = set(bank_ids)
        if not self._entries or not allowed:
            return []
        found = self._verified(query, allowed, min_points, photos_only=True)
        hits = [LocalHit(entry_id, points) for entry_id, points in found.items()]
        hits.sort(key=lambda hit: (-hit.points, hit.entry_id))
        return hits

    def moment_points(
        self, query_moments: Sequence[LocalFeatures], bank_ids: Sequence[int], min_points: int
    ) -> dict[int, dict[float, int]]:
        """For each entry some query moment shows: the most consistent points per distinct
        query time (a frame and its mirror, sharing their seconds, are one moment). The raw
        material of ``search_moments``, and of the bench that chose its rule."""
        for number, query in enumerate(query_moments):
            if query.seconds is None:
                raise ValueError(
                    f"query moment {number + 1} of {len(query_moments)} has no seconds; "
                    f"each moment of a video upload needs its time (a mirror, the same time)"
                )
        allowed = set(bank_ids)
        agreeing: dict[int, dict[float, int]] = {}
        if not self._entries or not allowed:
            return agreeing
        for query in query_moments:
            assert query.seconds is not None  # checked above
            for entry_id, points in self._verified(query, allowed, min_points).items():
                seen = agreeing.setdefault(entry_id, {})
                seen[query.seconds] = max(points, seen.get(query.seconds, 0))
        return agreeing

    def search_moments(
        self,
        query_moments: Sequence[LocalFeatures],
        bank_ids: Sequence[int],
        min_points: int,
        min_moments: int = DEFAULT_MIN_MOMENTS,
    ) -> list[LocalHit]:
        """Entries of these banks a video upload shows: those against which at least
        ``min_moments`` distinct moments of the upload each verify (``min_points`` or more
        consistent points), most agreeing moments first.

        Each query moment carries its ``seconds``. ORB is not mirror-invariant, so the
        caller passes each frame's mirror too, with the same seconds: it then counts as the
        same moment, whichever of the two verifies. Stored entries may be videos (moments)
        or photos (one moment: a video showing a cropped blocked photo).
        """
        if min_moments < 1:
            raise ValueError(f"min_moments {min_moments}; expected 1 or more")
        hits = [
            LocalHit(entry_id, max(seen.values()), len(seen))
            for entry_id, seen in self.moment_points(query_moments, bank_ids, min_points).items()
            if len(seen) >= min_moments
        ]
        hits.sort(key=lambda hit: (-hit.moments, -hit.points, hit.entry_id))
        return hits

    def _verified(
        self, query: LocalFeatures, allowed: set[int], min_points: int, photos_only: bool = False
    ) -> dict[int, int]:
        """Entries of the allowed banks among the best voted that verify geometrically, with
        their most consistent points."""
        votes: dict[tuple[int, int], int] = {}
        for part in (self._built, self._recent_matcher()):
            if part is None:
                continue
            for neighbours in part.matcher.knnMatch(query.descriptors, k=NEIGHBOURS):
                # One vote per entry's moment among a descriptor's near neighbours. No ratio
                # test here: the same photo blocked twice (two groups, or a group and a
                # person who submitted it) gives two equally near neighbours, and both must
                # count. Votes only rank the candidates; the geometric check decides.
                voted: set[tuple[int, int]] = set()
                for neighbour in neighbours:
                    if neighbour.distance >= VOTE_DISTANCE:
                        break
                    key = (
                        int(part.owners[neighbour.trainIdx]),
                        int(part.numbers[neighbour.trainIdx]),
                    )
                    stored = self._entries.get(key[0])
                    if (
                        key in voted
                        or stored is None
                        or stored.bank_id not in allowed
                        or key[1] >= len(stored.moments)
                        or (photos_only and stored.is_video)
                    ):
                        continue
                    voted.add(key)
                    votes[key] = votes.get(key, 0) + 1
        ranked = sorted(votes.items(), key=lambda item: (-item[1], item[0]))
        tried: collections.Counter[int] = collections.Counter()
        found: dict[int, int] = {}
        for (entry_id, number), count in ranked:
            # A copy has far more votes than the points it must fit; fewer is not worth the
            # geometric check (which costs a millisecond per candidate).
            if count < min_points:
                break
            if entry_id in found or tried[entry_id] >= MOMENTS_PER_CANDIDATE:
                continue
            if entry_id not in tried and len(tried) >= CANDIDATES:
                continue
            tried[entry_id] += 1
            stored = self._entries[entry_id]
            moment = stored.moments[number]
            points = consistent_points(
                query, moment, moment.moving, perspective_below=min_points if photos_only else 0
            )
            if points >= min_points:
                found[entry_id] = points
        return found


def _cells(points: npt.NDArray[np.float32], width: int, height: int) -> set[tuple[int, int]]:
    # Square cells, GRID to the longer side: a tall screenshot gets rows of its own for its
    # header, its picture and its buttons.
    side = max(width, height) / GRID
    columns = (points[:, 0] // side).astype(int)
    rows = (points[:, 1] // side).astype(int)
    return set(zip(columns.tolist(), rows.tolist(), strict=True))


def _coverage(
    transform: Any,
    query: LocalFeatures,
    stored: LocalFeatures,
    matched: npt.NDArray[np.float32],
) -> float:
    """The share of the stored photo's textured, visible grid cells that hold matches.

    Two app screenshots share their chrome (status bar, buttons, captions) but not the
    photo between: the chrome alone fits one transform with many points, yet leaves the
    photo's cells empty. A real copy matches across whatever part of the photo it shows.
    ``transform`` maps the query onto the stored photo: 2x3 (similarity) or 3x3
    (perspective).
    """
    square = transform if transform.shape == (3, 3) else np.vstack([transform, [0.0, 0.0, 1.0]])
    if abs(float(np.linalg.det(square))) < 1e-9:
        return 0.0
    back = np.linalg.inv(square)
    # Where each stored keypoint would be in the query: only the visible ones count.
    seen = np.hstack([stored.points, np.ones((len(stored.points), 1))]) @ back.T
    ahead = seen[:, 2] > 1e-9
    seen = seen[:, :2] / np.where(ahead, seen[:, 2], 1.0)[:, None]
    visible = (
        ahead
        & (seen[:, 0] >= 0)
        & (seen[:, 0] < query.width)
        & (seen[:, 1] >= 0)
        & (seen[:, 1] < query.height)
    )
    textured = _cells(stored.points[visible], stored.width, stored.height)
    if not textured:
        return 0.0
    return len(_cells(matched, stored.width, stored.height) & textured) / len(textured)


def _good_matches(
    query: LocalFeatures, stored: LocalFeatures
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.intp]] | None:
    """Query points matched to stored points (by Hamming distance and Lowe's ratio test),
    and the stored points' indexes; None when fewer than 4 match."""
    cv2 = opencv()
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    good = [
        pair[0]
        for pair in matcher.knnMatch(query.descriptors, stored.descriptors, k=2)
        if len(pair) == 2
        and pair[0].distance < RATIO * pair[1].distance
        and pair[0].distance < MAX_DESCRIPTOR_DISTANCE
    ]
    if len(good) < 4:
        return None
    source = query.points[[m.queryIdx for m in good]]
    return source, np.array([m.trainIdx for m in good], dtype=np.intp)


def fitted_matches(
    query: LocalFeatures, stored: LocalFeatures
) -> tuple[Any, npt.NDArray[np.intp], npt.NDArray[np.bool_]] | None:
    """Matched points that fit one similarity transform (RANSAC), before any plausibility
    check: the transform, the stored points' indexes of every match, and which matches
    fit it. None when too few points match."""
    good = _good_matches(query, stored)
    if good is None:
        return None
    source, indexes = good
    transform, inliers = opencv().estimateAffinePartial2D(
        source,
        stored.points[indexes],
        method=opencv().RANSAC,
        ransacReprojThreshold=REPROJECTION_PX,
    )
    if transform is None or inliers is None:
        return None
    return transform, indexes, inliers.ravel().astype(bool)


def _perspective_fit(
    source: npt.NDArray[np.float32], target: npt.NDArray[np.float32]
) -> tuple[Any, npt.NDArray[np.bool_]] | None:
    """A homography of the matched points (RANSAC) that a photo of a flat picture taken at
    a slant can have: near a similarity where the points are, no mirror, no fold."""
    cv2 = opencv()
    homography, inliers = cv2.findHomography(source, target, cv2.RANSAC, REPROJECTION_PX)
    if homography is None or inliers is None:
        return None
    fits = inliers.ravel().astype(bool)
    if fits.sum() < 4:
        return None
    inside = source[fits].astype(np.float64)
    low, high = inside.min(axis=0), inside.max(axis=0)
    corners = np.array([[low[0], low[1]], [high[0], low[1]], [high[0], high[1]], [low[0], high[1]]])
    # The projective divisor over the matched region: how much nearer one side of the
    # picture was to the camera. Both of one sign (no point behind the camera), and within
    # MAX_DEPTH_RATIO of each other.
    depth = corners @ homography[2, :2] + homography[2, 2]
    if depth.min() <= 0 or depth.max() / depth.min() > MAX_DEPTH_RATIO:
        return None
    # The linear part at the middle of the matches: a plausible scale, no mirror, and
    # little squash (a slanted picture is foreshortened, not stretched).
    middle = inside.mean(axis=0)
    w = float(homography[2, :2] @ middle + homography[2, 2])
    mapped = (homography[:2, :2] @ middle + homography[:2, 2]) / w
    jacobian = (homography[:2, :2] - np.outer(mapped, homography[2, :2])) / w
    if np.linalg.det(jacobian) <= 0:
        return None
    singular = np.linalg.svd(jacobian, compute_uv=False)
    scale = float(np.sqrt(singular[0] * singular[1]))
    if not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1] or singular[0] > MAX_SQUASH * singular[1]:
        return None
    return homography, fits


def _counted_points(
    transform: Any,
    indexes: npt.NDArray[np.intp],
    fits: npt.NDArray[np.bool_],
    query: LocalFeatures,
    stored: LocalFeatures,
    counted: npt.NDArray[np.bool_] | None,
) -> int:
    """The fitted points as ``consistent_points`` counts them, 0 unless they spread over
    the stored photo and cover what of it the query shows."""
    matched = stored.points[indexes[fits]]
    if len(matched) == 0:
        return 0
    span = matched.max(axis=0) - matched.min(axis=0)
    if span[0] * span[1] < MIN_SPREAD * stored.width * stored.height:
        return 0
    if _coverage(transform, query, stored, matched) < MIN_COVERAGE:
        return 0
    if counted is not None:
        kept = indexes[fits]
        matched = stored.points[kept[counted[kept]]]
    # ORB finds the same corner at several pyramid levels: count places, not detections.
    return len({(round(x / 2), round(y / 2)) for x, y in matched})


def consistent_points(
    query: LocalFeatures,
    stored: LocalFeatures,
    counted: npt.NDArray[np.bool_] | None = None,
    *,
    perspective_below: int = 0,
) -> int:
    """How many matched points fit one plausible similarity transform (0 if none does).

    ``counted`` marks the stored points that count (see ``mark_moving``); the others still
    help fit the transform, but are not counted. When the similarity leaves fewer than
    ``perspective_below`` points, a perspective fit is tried too (a photo of a screen or a
    print, taken at a slant: see ``MAX_DEPTH_RATIO``), and the better count is returned.
    """
    good = _good_matches(query, stored)
    if good is None:
        return 0
    source, indexes = good
    cv2 = opencv()
    transform, inliers = cv2.estimateAffinePartial2D(
        source, stored.points[indexes], method=cv2.RANSAC, ransacReprojThreshold=REPROJECTION_PX
    )
    best = 0
    if transform is not None and inliers is not None:
        scale = float(np.hypot(transform[0, 0], transform[1, 0]))
        if SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]:
            fits = inliers.ravel().astype(bool)
            best = _counted_points(transform, indexes, fits, query, stored, counted)
    if best < perspective_below:
        fitted = _perspective_fit(source, stored.points[indexes])
        if fitted is not None:
            homography, fits = fitted
            best = max(best, _counted_points(homography, indexes, fits, query, stored, counted))
    return best
