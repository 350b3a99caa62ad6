"""Comparing videos by their vPDQ frame hashes, in both directions.

Two videos match when enough frames of one have a near frame (PDQ distance within the
radius) in the other. Both directions are reported, as python-threatexchange's vPDQ matcher
does: ``query_pct`` is the share of the query's frames found in the blocked video, and
``compared_pct`` the share of the blocked video found in the query, counted in whole seconds
of its running time where frame times are known (blocked videos are hashed denser than
uploads are sampled, so counting frames would understate it), else in frames. A trimmed copy
scores high on the first, a blocked clip embedded in a longer video on the second; the
rule accepts either, with a floor on matched frames so one coincidental frame never decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from hashdb.fingerprint import Fingerprint


@dataclass(frozen=True, slots=True)
class VideoComparison:
    query_frames: int
    compared_frames: int
    matched_query: int
    matched_compared: int
    #: Smallest frame-to-frame distance found (None when no frame pair is near).
    best_distance: int | None

    @property
    def query_pct(self) -> float:
        return 100.0 * self.matched_query / self.query_frames if self.query_frames else 0.0

    @property
    def compared_pct(self) -> float:
        if not self.compared_frames:
            return 0.0
        return 100.0 * self.matched_compared / self.compared_frames


@dataclass(frozen=True, slots=True)
class VideoMatchRule:
    #: A match needs this share of the query's frames found in the blocked video...
    query_pct: float = 50.0
    #: ...or this share of the blocked video's frames found in the query.
    compared_pct: float = 50.0
    #: ...and at least this many matched query frames (fewer if a video is that short).
    min_frames: int = 2

    def accepts(self, comparison: VideoComparison) -> bool:
        needed = min(
            self.min_frames, max(1, comparison.query_frames), max(1, comparison.compared_frames)
        )
        if comparison.matched_query < needed:
            return False
        return (
            comparison.query_pct >= self.query_pct or comparison.compared_pct >= self.compared_pct
        )


def comparison_from_pairs(
    pairs: Iterable[tuple[int, int, int]], query_frames: int, compared_frames: int
) -> VideoComparison:
    """Summarise near frame pairs ``(query_index, compared_key, distance)``.

    ``compared_key`` names the part of the compared video hit (its second, or its frame),
    and ``compared_frames`` is how many such parts it has.
    """
    query_hit: set[int] = set()
    compared_hit: set[int] = set()
    best: int | None = None
    for query_index, compared_index, distance in pairs:
        query_hit.add(query_index)
        compared_hit.add(compared_index)
        best = distance if best is None else min(best, distance)
    return VideoComparison(query_frames, compared_frames, len(query_hit), len(compared_hit), best)


def compare_videos(
    query: Sequence[Fingerprint], compared: Sequence[Fingerprint], max_distance: int
) -> VideoComparison:
    """Brute-force comparison of two frame-hash lists (for tools and benchmarks)."""
    if not query or not compared:
        return VideoComparison(len(query), len(compared), 0, 0, None)
    left = _bits([f.value for f in query])
    right = _bits([f.value for f in compared])
    distances = np.bitwise_count(left[:, None, :] ^ right[None, :, :]).sum(axis=2)
    near = np.argwhere(distances <= max_distance)
    keys = [_group_key(index, f) for index, f in enumerate(compared)]
    return comparison_from_pairs(
        ((int(i), keys[int(j)], int(distances[i, j])) for i, j in near),
        len(query),
        len(set(keys)),
    )


def _group_key(index: int, fingerprint: Fingerprint) -> int:
    # The whole second a frame is from; frames without a time count one by one.
    return int(fingerprint.seconds) if fingerprint.seconds is not None else -1 - index


def _bits(values: Sequence[int]) -> np.ndarray:
    raw = b"".join(v.to_bytes(32, "little") for v in values)
    return np.frombuffer(raw, dtype="<u8").reshape(len(values), 4)
