"""Benchmark: local features of videos (crops, mirrored crops, picture-in-picture) on the dev
corpus, and the rule that calls a video upload a copy of a blocked one.

Every blocklisted original video is decoded with PyAV, one grey frame every
``--stored-every`` seconds scaled to ``local.SIDE`` px on the long side, near-identical
frames dropped, at most ``--max-stored`` kept (spread over the clip), and ORB features of
each kept frame (``--features`` each) stored as one entry's moments. Every video variant
and distractor in ``manifest.csv`` is decoded the same way, one frame a second, at most
``--max-query`` moments, each with its mirror (same seconds: ORB is not mirror-invariant).

For each query and each original, ``LocalIndex.moment_points`` (an index holding that
original alone, so every pair is scored) gives the consistent points of each agreeing
query moment; sorted, p1 >= p2 >= ... A pair is matched under (min_points, min_moments)
when p[min_moments] >= min_points. Printed: per variant kind, detection under the chosen
rule and the true pairs' p1/p2; the strongest unrelated pairs (variants against other
originals, distractors against all, the hard negative apart); a grid of rules; cost per
query moment (extract, search in an index of all originals) and memory per stored video.

    python bench/video_local.py --corpus /work/corpus_dev
    python bench/video_local.py --corpus /work/corpus_dev --features 1000 --max-query 6

Ends with one JSON line of all figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import av  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
from PIL import Image  # noqa: E402

from hashdb.local import (  # noqa: E402
    DEFAULT_MIN_MOMENTS,
    DEFAULT_MIN_POINTS,
    MOMENT_FEATURES,
    SIDE,
    LocalIndex,
    extract,
    extract_array,
    fitted_matches,
)
from hashdb.local_format import LocalFeatures, pack_moments  # noqa: E402

Grey = npt.NDArray[np.uint8]
#: Floor of the scores looked at: pairs below it show as 0 (the index does not verify
#: candidates with fewer votes, and RANSAC needs 4 matches).
FLOOR = 4
#: Two sampled frames this close (mean absolute difference of 32x32 thumbnails, in grey
#: levels) are one moment: a static shot gives one moment, not sixteen.
SAME_FRAME = 4.0
GRID_POINTS = (12, 16, 24, 32, 48, 64)
GRID_MOMENTS = (1, 2, 3)


def grey_frames(path: Path, every: float) -> list[tuple[float, Grey]]:
    """A grey frame at or after every ``every`` seconds, ``SIDE`` px on its long side."""
    out: list[tuple[float, Grey]] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        next_at = 0.0
        for frame in container.decode(stream):
            seconds = float(frame.time) if frame.time is not None else next_at
            if seconds + 1e-6 < next_at:
                continue
            scale = min(1.0, SIDE / max(frame.width, frame.height))
            width, height = round(frame.width * scale), round(frame.height * scale)
            out.append((seconds, frame.to_ndarray(format="gray", width=width, height=height)))
            next_at = seconds + every
    return out


def distinct(frames: list[tuple[float, Grey]], at_most: int) -> list[tuple[float, Grey]]:
    """Frames that differ from the one kept before them, spread to at most ``at_most``."""
    kept: list[tuple[float, Grey]] = []
    last: npt.NDArray[np.float32] | None = None
    for seconds, grey in frames:
        thumb = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
        if last is not None and float(np.abs(thumb - last).mean()) < SAME_FRAME:
            continue
        kept.append((seconds, grey))
        last = thumb
    if len(kept) > at_most:
        picks = np.linspace(0, len(kept) - 1, at_most).round().astype(int)
        kept = [kept[i] for i in sorted(set(picks.tolist()))]
    return kept


def moments(frames: list[tuple[float, Grey]], features: int, mirror: bool) -> list[LocalFeatures]:
    found: list[LocalFeatures] = []
    for seconds, grey in frames:
        views = [grey, np.ascontiguousarray(grey[:, ::-1])] if mirror else [grey]
        for view in views:
            moment = extract_array(view, features, seconds=seconds)
            if moment is not None:
                found.append(moment)
    return found


@dataclass
class Query:
    path: str
    kind: str
    original: str | None
    role: str
    distractor_kind: str
    similar_to: str


def scores(points: dict[float, int]) -> list[int]:
    return sorted(points.values(), reverse=True)


def nth(values: list[int], n: int) -> int:
    return values[n - 1] if len(values) >= n else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--stored-every", type=float, default=1.0)
    parser.add_argument("--max-stored", type=int, default=16)
    parser.add_argument("--query-every", type=float, default=1.0)
    parser.add_argument("--max-query", type=int, default=8)
    parser.add_argument("--features", type=int, default=MOMENT_FEATURES)
    parser.add_argument("--min-points", type=int, default=DEFAULT_MIN_POINTS)
    parser.add_argument("--min-moments", type=int, default=DEFAULT_MIN_MOMENTS)
    parser.add_argument(
        "--no-raw",
        dest="raw",
        action="store_false",
        help="skip the unchecked RANSAC scores of unrelated pairs (the slow part, ~2 min)",
    )
    args = parser.parse_args()
    cv2.setNumThreads(1)

    with (args.corpus / "originals.csv").open() as file:
        rows = [row for row in csv.DictReader(file) if row["media"] == "video"]
    originals = {row["id"]: args.corpus / row["path"] for row in rows if row["role"] == "blocklist"}
    sources = {row["id"]: _photos_shown(row["source_file"]) for row in rows}
    with (args.corpus / "manifest.csv").open() as file:
        queries = [
            Query(
                row["variant_path"],
                row["transform"] if row["role"] == "variant" else "distractor",
                row["original_id"] or None,
                row["role"],
                row["distractor_kind"],
                row["similar_to"],
            )
            for row in csv.DictReader(file)
            if row["media"] == "video"
        ]

    # Stored side.
    stored: dict[str, list[LocalFeatures]] = {}
    extract_seconds: list[float] = []
    for name, path in sorted(originals.items()):
        frames = distinct(grey_frames(path, args.stored_every), args.max_stored)
        started = time.perf_counter()
        stored[name] = moments(frames, args.features, mirror=False)
        extract_seconds.append((time.perf_counter() - started) / max(1, len(frames)))
    singles = {}
    for name, found in stored.items():
        index = LocalIndex()
        index.add_many([(0, 1, found)])
        singles[name] = index
    combined = LocalIndex()
    names = sorted(stored)
    combined.add_many([(i, 1, stored[n]) for i, n in enumerate(names)])

    # Blocked photos as entries of one index: a video showing one (a slideshow) must find
    # it, others must not; every video query is also searched there.
    with (args.corpus / "originals.csv").open() as file:
        photo_rows = [
            row
            for row in csv.DictReader(file)
            if row["media"] == "image" and row["role"] == "blocklist"
        ]
    photo_ids: list[str] = []
    photo_features: list[tuple[int, int, LocalFeatures]] = []
    for row in photo_rows:
        with Image.open(args.corpus / row["path"]) as image:
            found_photo = extract(image)
        if found_photo is not None:
            photo_features.append((len(photo_ids), 1, found_photo))
            photo_ids.append(row["id"])
    photos = LocalIndex()
    photos.add_many(photo_features)
    photo_pairs: list[tuple[str, str, list[int], bool]] = []

    # Query side: every query against every original.
    pair_scores: dict[tuple[str, str], list[int]] = {}
    query_features: dict[str, list[LocalFeatures]] = {}
    query_moment_counts: list[int] = []
    search_seconds: list[float] = []
    query_extract: list[float] = []
    for query in queries:
        frames = distinct(grey_frames(args.corpus / query.path, args.query_every), args.max_query)
        started = time.perf_counter()
        found = moments(frames, args.features, mirror=True)
        query_features[query.path] = found
        query_extract.append((time.perf_counter() - started) / max(1, len(frames)))
        query_moment_counts.append(len({m.seconds for m in found}))
        started = time.perf_counter()
        combined.search_moments(found, [1], args.min_points, args.min_moments)
        search_seconds.append((time.perf_counter() - started) / max(1, len(frames)))
        for name, index in singles.items():
            points = index.moment_points(found, [1], FLOOR).get(0, {})
            pair_scores[(query.path, name)] = scores(points)
        shown = sources[query.original or Path(query.path).stem]
        for entry, points in photos.moment_points(found, [1], FLOOR).items():
            name = photo_ids[entry]
            photo_pairs.append((query.path, name, scores(points), name in shown))

    rule = (args.min_points, args.min_moments)

    def matched(values: list[int], points: int, count: int) -> bool:
        return nth(values, count) >= points

    print(
        f"stored: {len(stored)} originals, moments per video "
        f"{[len(stored[n]) for n in names]}, features {args.features}, "
        f"query moments (each + mirror) median {statistics.median(query_moment_counts)}"
    )
    print(f"rule: min_points {rule[0]}, min_moments {rule[1]}; floor of scores {FLOOR}\n")
    by_kind: dict[str, list[Query]] = defaultdict(list)
    for query in queries:
        by_kind[query.kind].append(query)
    print(f"{'variant kind':<20} {'found':>7}  {'true p1 (min/med)':>18}  {'p2 (min/med)':>18}")
    figures: dict[str, object] = {"rule": rule}
    detection: dict[str, tuple[int, int]] = {}
    for kind in sorted(by_kind):
        if kind == "distractor":
            continue
        true = [pair_scores[(q.path, q.original or "")] for q in by_kind[kind]]
        hits = sum(matched(v, *rule) for v in true)
        detection[kind] = (hits, len(true))
        p1 = [nth(v, 1) for v in true]
        p2 = [nth(v, 2) for v in true]
        print(
            f"{kind:<20} {hits:>3}/{len(true):<3}  {min(p1):>8}/{statistics.median(p1):<9}"
            f"  {min(p2):>8}/{statistics.median(p2):<9}"
        )
    figures["detection"] = detection

    false_pairs: list[tuple[str, str, list[int], bool]] = []
    shared_pairs: list[tuple[str, str, list[int], bool]] = []
    for query in queries:
        base = query.original or Path(query.path).stem
        for name in names:
            if query.original == name:
                continue
            hard = query.distractor_kind == "hard_negative" and query.similar_to == name
            pair = (query.path, name, pair_scores[(query.path, name)], hard)
            # Two slideshows showing the same photo share footage: a match there is right,
            # so those pairs are neither true nor false here.
            if sources[base] & sources[name]:
                shared_pairs.append(pair)
            else:
                false_pairs.append(pair)
    weakest = sorted(
        (nth(pair_scores[(q.path, q.original or "")], 2), q.path)
        for q in queries
        if q.role == "variant"
    )[:4]
    print("\nweakest true pairs (p2): " + ", ".join(f"{p} {path}" for p, path in weakest))
    print("\nstrongest other pairs (points of the n-th best agreeing moment):")
    strongest: dict[str, object] = {}
    for label, pool in (
        ("unrelated", [p for p in false_pairs if not p[3]]),
        ("hard negative (same fixed camera, other minutes)", [p for p in false_pairs if p[3]]),
        ("sharing a photo (slideshows)", shared_pairs),
    ):
        if not pool:
            continue
        row = []
        for n in (1, 2, 3):
            best = max(pool, key=lambda p, n=n: nth(p[2], n))
            row.append(f"p{n} {nth(best[2], n)} ({best[0]} vs {best[1]})")
            strongest[f"{label} p{n}"] = nth(best[2], n)
        hits = sum(matched(p[2], *rule) for p in pool)
        strongest[f"{label} matched"] = (hits, len(pool))
        print(f"  {label}, {hits} of {len(pool)} pairs matched: " + "; ".join(row))
    figures["strongest_false"] = strongest

    shows = sum(len(sources[q.original or Path(q.path).stem] & set(photo_ids)) for q in queries)
    for label, wanted in (("showing it", True), ("not showing it", False)):
        pool = [p for p in photo_pairs if p[3] == wanted]
        best = [max((nth(p[2], n) for p in pool), default=0) for n in (1, 2, 3)]
        hits = sum(matched(p[2], *rule) for p in pool)
        print(
            f"  videos vs {len(photo_ids)} blocked photos, {label}: matched {hits}"
            + (f" of {shows} pairs" if wanted else "")
            + f"; best p1/p2/p3 {best[0]}/{best[1]}/{best[2]}"
        )
        strongest[f"photos {label} p1/p2/p3"] = best
        strongest[f"photos {label} matched"] = hits

    if args.raw:
        # How near unrelated pairs come in points before the plausibility checks (scale,
        # spread, coverage) turn them down: every query moment against every stored moment.
        raw = [
            (path, name, _raw_pair(query_features[path], stored[name]))
            for path, name, _, hard in false_pairs
            if not hard
        ]
        row = []
        for n in (1, 2):
            best_raw = max(raw, key=lambda p, n=n: nth(p[2], n))
            row.append(f"p{n} {nth(best_raw[2], n)} ({best_raw[0]} vs {best_raw[1]})")
            strongest[f"unrelated raw p{n}"] = nth(best_raw[2], n)
        print("  unrelated, RANSAC inliers before the plausibility checks: " + "; ".join(row))

    print("\nrules: found (of variants) / false pairs (unrelated) / hard-negative pairs")
    header = "min_points " + "".join(f"{f'{m} moment(s)':>24}" for m in GRID_MOMENTS)
    print(header)
    grid: dict[str, tuple[int, int, int]] = {}
    true_all = [pair_scores[(q.path, q.original or "")] for q in queries if q.role == "variant"]
    for points in GRID_POINTS:
        cells = []
        for count in GRID_MOMENTS:
            found_n = sum(matched(v, points, count) for v in true_all)
            false_n = sum(matched(p[2], points, count) for p in false_pairs if not p[3])
            hard_n = sum(matched(p[2], points, count) for p in false_pairs if p[3])
            grid[f"{points}/{count}"] = (found_n, false_n, hard_n)
            cells.append(f"{found_n:>3}/{len(true_all)} {false_n:>3} {hard_n:>3}")
        print(f"{points:>10} " + "".join(f"{c:>24}" for c in cells))
    figures["grid"] = grid

    blob = statistics.mean(len(pack_moments(stored[n])) for n in names)
    rss = _index_rss_per_video([stored[n] for n in names])
    print(
        f"\ncost per query moment (frame + mirror): extract "
        f"{statistics.median(query_extract) * 1e3:.1f} ms, search "
        f"{statistics.median(search_seconds) * 1e3:.1f} ms (index of {len(names)} videos); "
        f"stored side extract {statistics.median(extract_seconds) * 1e3:.1f} ms per moment"
    )
    descriptors = statistics.mean(sum(len(m) for m in stored[n]) for n in names)
    print(
        f"memory per stored video ({descriptors:.0f} descriptors): blob {blob / 1024:.0f} KiB, "
        f"index RSS {rss / 1024:.0f} KiB ({rss / descriptors:.0f} bytes per descriptor)"
    )
    figures.update(
        query_extract_ms=statistics.median(query_extract) * 1e3,
        query_search_ms=statistics.median(search_seconds) * 1e3,
        blob_kib=blob / 1024,
        index_rss_kib=rss / 1024,
    )
    print(json.dumps(figures, default=str))


def _raw_pair(query: list[LocalFeatures], stored: list[LocalFeatures]) -> list[int]:
    best: dict[float, int] = {}
    for moment in query:
        assert moment.seconds is not None
        points = max(_raw_points(moment, s) for s in stored)
        best[moment.seconds] = max(points, best.get(moment.seconds, 0))
    return scores(best)


def _raw_points(query: LocalFeatures, stored: LocalFeatures) -> int:
    """``consistent_points`` without its checks of scale, spread and coverage."""
    fitted = fitted_matches(query, stored)
    if fitted is None:
        return 0
    _, indexes, fits = fitted
    matched = stored.points[indexes[fits]]
    return len({(round(x / 2), round(y / 2)) for x, y in matched})


def _photos_shown(source: str) -> set[str]:
    """The photos a slideshow shows ("ken_burns:d0058+d0089"); none for real footage."""
    return set(source.split(":", 1)[1].split("+")) if source.startswith("ken_burns:") else set()


def _rss() -> int:
    with open("/proc/self/status") as file:
        for line in file:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _index_rss_per_video(videos: list[list[LocalFeatures]], copies: int = 20) -> float:
    """Resident memory an LSH index of ``copies`` x the videos takes, per video (copies of
    the arrays, as entries loaded from the database are)."""
    entries = [
        (i * len(videos) + j, 1, [_copy(m) for m in video])
        for i in range(copies)
        for j, video in enumerate(videos)
    ]
    before = _rss()
    index = LocalIndex()
    index.add_many(entries)
    after = _rss()
    del index
    arrays = sum(m.points.nbytes + m.descriptors.nbytes for _, _, v in entries for m in v)
    return (after - before + arrays) / len(entries)


def _copy(moment: LocalFeatures) -> LocalFeatures:
    return LocalFeatures(
        moment.points.copy(), moment.descriptors.copy(), moment.width, moment.height, moment.seconds
    )


if __name__ == "__main__":
    main()
