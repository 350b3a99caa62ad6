"""Benchmark: video fingerprint throughput, and video detection on the dev corpus.

Throughput: a 720p H.264 clip (default 60 s at 30 fps, ~2.5 Mbit/s, keyframe every 2 s, with
sensor-like grain so the decoder does realistic work) is made in memory, then
``hashdb.video.hash_video`` fingerprints it at 1 frame/s, reported as a multiple of real time:
once with FFmpeg's default threading on every CPU, once pinned to one CPU (FFmpeg sizes its
decoder thread pool from the CPU affinity, so that is one decoding thread). Where the time
goes (decode, colour conversion, PDQ) and two what-ifs are measured too.

Detection (``--corpus DIR``, built by ``../shared/corpus/make_corpus.py``): every blocklisted
original video and every video variant or distractor in ``manifest.csv`` is hashed; each
query is compared with every original (``compare_videos``, per-frame radius 31). Printed: per
transform, the detection rate under ``VideoMatchRule()`` and the match percentages of true
pairs; for false pairs (variants against other originals, distractors against all), the
highest percentages and matched frames seen; a grid of candidate rules; the same with the
originals hashed at 5 frames/s (a what-if); and "frames as images": whether the originals'
frame hashes, used as photo hashes, hit any image of the corpus (false positives), and whether
a frame grab of each video (JPEG q80) matches its original's frames.

    python bench/video.py                          # throughput only, ~1 min
    python bench/video.py --corpus /work/corpus_dev
    python bench/video.py --corpus /work/corpus_dev --skip-throughput
    python bench/video.py --seconds 30 --repeat 1  # quicker throughput run
    python bench/video.py --mbit 1.2               # a lower-rate clip (decode cost follows it)

Ends with one JSON line of all figures.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import av  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
import pdqhash  # noqa: E402
from PIL import Image  # noqa: E402

from hashdb.fingerprint import Fingerprint, MediaDecodeError  # noqa: E402
from hashdb.photo import hash_photo  # noqa: E402
from hashdb.signals import PDQ, VPDQ  # noqa: E402
from hashdb.video import VideoBudget, VideoScan, fingerprints_of, hash_video, scan_video  # noqa: E402
from hashdb.video_match import VideoComparison, VideoMatchRule, compare_videos  # noqa: E402
from tests.media import encode_video, iter_video_frames  # noqa: E402

RADIUS = VPDQ.default_max_distance  # 31
#: The what-if rate for blocked originals: 5 frames/s puts every 1 frame/s query sample within
#: 0.1 s of a stored frame, whatever the trim offset.
DENSE_SECONDS = 0.2

# --- throughput -------------------------------------------------------------------------------


def make_clip(
    seconds: float, mbit: float = 2.5, fps: int = 30, size: tuple[int, int] = (1280, 720)
) -> bytes:
    """Photo-like 720p footage with per-frame grain, H.264 at ``mbit`` Mbit/s (2.5: a phone
    upload's rate; Telegram's own 720p re-encodes are lower), keyframe every 2 s."""
    rng = np.random.default_rng(0)
    width, height = size
    # Eight grain patterns reused in turn: enough that the encoder cannot predict them away.
    grain = [
        (
            rng.integers(0, 6, size=(height, width, 3), dtype=np.uint8),
            rng.integers(0, 6, size=(height, width, 3), dtype=np.uint8),
        )
        for _ in range(8)
    ]

    def grained() -> Iterator[npt.NDArray[np.uint8]]:
        frames = iter_video_frames(1, seconds=seconds, fps=fps, size=size)
        for i, frame in enumerate(frames):
            up, down = grain[i % len(grain)]
            yield cv2.add(cv2.subtract(frame, down), up)

    return encode_video(
        grained(), fps=fps, bit_rate=int(mbit * 1e6), gop=2 * fps, threads=os.cpu_count() or 1
    )


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def decode_all(data: bytes, skip_nonref: bool = False) -> int:
    """Decode every frame as ``hash_video`` does (same threading), converting none."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if skip_nonref:
            stream.codec_context.skip_frame = "NONREF"
        return sum(1 for _ in container.decode(stream))


def sample_frames(data: bytes, count: int) -> list[Any]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = []
        for i, frame in enumerate(container.decode(stream)):
            if i % 30 == 0:
                frames.append(frame)
            if len(frames) == count:
                break
    return frames


def throughput(seconds: float, mbit: float, repeat: int) -> dict[str, Any]:
    started = time.perf_counter()
    clip = make_clip(seconds, mbit)
    made_in = time.perf_counter() - started
    with av.open(io.BytesIO(clip)) as container:
        stream = container.streams.video[0]
        profile, frame_total = stream.codec_context.profile, stream.frames
    result = hash_video(clip)
    figures: dict[str, Any] = {
        "clip_seconds": seconds,
        "clip_size": "1280x720",
        "clip_fps": 30,
        "clip_frames": frame_total,
        "clip_profile": profile,
        "clip_mbit_s": round(len(clip) * 8 / seconds / 1e6, 2),
        "clip_made_in_s": round(made_in, 1),
        "frames_hashed": result.frame_count,
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }

    default_s = best_of(repeat, lambda: hash_video(clip))
    figures["default_threads_s"] = round(default_s, 3)
    figures["default_threads_x_realtime"] = round(seconds / default_s, 1)

    cpu = pin_to_one_cpu()
    figures["pinned_cpu"] = cpu
    one_s = best_of(repeat, lambda: hash_video(clip))
    figures["one_core_s"] = round(one_s, 3)
    figures["one_core_x_realtime"] = round(seconds / one_s, 1)
    # Where the time goes, on the same core.
    decode_s = best_of(repeat, lambda: decode_all(clip))
    nonref_s = best_of(repeat, lambda: decode_all(clip, skip_nonref=True))
    frames = sample_frames(clip, 20)
    rgb_s = best_of(repeat, lambda: [f.to_ndarray(format="rgb24") for f in frames]) / len(frames)
    pixels = [f.to_ndarray(format="rgb24") for f in frames]
    pdq_s = best_of(repeat, lambda: [pdqhash.compute(p) for p in pixels]) / len(frames)
    small = [cv2.resize(p, (512, 288), interpolation=cv2.INTER_AREA) for p in pixels]
    pdq_small_s = best_of(repeat, lambda: [pdqhash.compute(p) for p in small]) / len(frames)
    dense_s = best_of(1, lambda: hash_video(clip, VideoBudget(seconds_per_sample=DENSE_SECONDS)))
    figures.update(
        {
            "one_core_decode_all_frames_s": round(decode_s, 3),
            "one_core_decode_x_realtime": round(seconds / decode_s, 1),
            "one_core_rgb_ms_per_frame": round(rgb_s * 1000, 2),
            "one_core_pdq_ms_per_frame": round(pdq_s * 1000, 2),
            # What-ifs, not what hash_video does today:
            "whatif_skip_nonref_decode_s": round(nonref_s, 3),
            "whatif_pdq_at_512px_ms_per_frame": round(pdq_small_s * 1000, 2),
            "whatif_skip_nonref_and_512px_x_realtime": round(
                seconds / (nonref_s + result.frame_count * (rgb_s + pdq_small_s)), 1
            ),
            "one_core_block_at_5fps_s": round(dense_s, 3),
        }
    )
    unpin()
    return figures


_ALL_CPUS: set[int] | None = None


def pin_to_one_cpu() -> int | None:
    """Run on a single CPU; returns it, or None where the OS cannot pin."""
    global _ALL_CPUS
    if not hasattr(os, "sched_setaffinity"):
        return None
    _ALL_CPUS = set(os.sched_getaffinity(0))
    cpu = min(_ALL_CPUS)
    os.sched_setaffinity(0, {cpu})
    return cpu


def unpin() -> None:
    if _ALL_CPUS is not None:
        os.sched_setaffinity(0, _ALL_CPUS)


def print_throughput(f: dict[str, Any]) -> None:
    print(
        f"\n== Throughput: {f['clip_seconds']:.0f} s {f['clip_size']} H.264 ({f['clip_profile']}, "
        f"{f['clip_mbit_s']} Mbit/s, {f['clip_frames']} frames), hash_video at 1 frame/s "
        f"({f['frames_hashed']} frames hashed) =="
    )
    rows = [
        (
            f"default threading ({f['cpus']} CPUs)",
            f["default_threads_s"],
            f["default_threads_x_realtime"],
        ),
        ("one core (pinned)", f["one_core_s"], f["one_core_x_realtime"]),
        (
            "  of which: decode every frame",
            f["one_core_decode_all_frames_s"],
            f["one_core_decode_x_realtime"],
        ),
        ("what-if: skip non-reference frames (decode)", f["whatif_skip_nonref_decode_s"], None),
        ("what-if: that + PDQ at 512 px", None, f["whatif_skip_nonref_and_512px_x_realtime"]),
        ("blocking at 5 frames/s, one core", f["one_core_block_at_5fps_s"], None),
    ]
    print(f"{'':48} {'seconds':>8} {'x real time':>12}")
    for label, secs, speed in rows:
        s = f"{secs:8.2f}" if secs is not None else f"{'':8}"
        x = f"{speed:11.1f}x" if speed is not None else ""
        print(f"{label:48} {s} {x:>12}")
    print(
        f"per hashed frame on one core: RGB conversion {f['one_core_rgb_ms_per_frame']} ms, "
        f"PDQ at 720p {f['one_core_pdq_ms_per_frame']} ms "
        f"(at 512 px: {f['whatif_pdq_at_512px_ms_per_frame']} ms)"
    )


# --- corpus: video against video --------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    path: Path
    transform: str  # "distractor:random", "distractor:hard_negative" for distractors
    original: str | None
    hashes: tuple[Fingerprint, ...]


@dataclass(frozen=True)
class Blocked:
    name: str
    hashes: tuple[Fingerprint, ...]
    dense: VideoScan  # the what-if: every 0.2 s


def load_corpus(root: Path) -> tuple[list[Blocked], list[Query], list[dict[str, str]]]:
    blocked = []
    for path in sorted((root / "originals").glob("dv*.mp4")):
        data = path.read_bytes()
        dense = scan_video(data, VideoBudget(seconds_per_sample=DENSE_SECONDS))
        blocked.append(Blocked(path.stem, hash_video(data).stored, dense))
    with (root / "manifest.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    queries = []
    for row in rows:
        if row["media"] != "video":
            continue
        path = root / row["variant_path"]
        if row["role"] == "distractor":
            transform, original = f"distractor:{row['distractor_kind'] or 'random'}", None
        else:
            transform, original = row["transform"], row["original_id"]
        try:
            hashes = hash_video(path.read_bytes()).probes
        except MediaDecodeError as exc:
            print(f"warning: {path} not hashed: {exc}", file=sys.stderr)
            hashes = ()
        queries.append(Query(path, transform, original, hashes))
    return blocked, queries, rows


def dense_comparison(query: Sequence[Fingerprint], blocked: Blocked) -> tuple[float, float, int]:
    """What-if: query (1 frame/s) against originals hashed every 0.2 s. Returns query_pct,
    the share of the original's seconds with a matched frame (coverage), matched query frames."""
    kept = [f for f in blocked.dense.frames if f.quality >= 50]
    if not query or not kept:
        return 0.0, 0.0, 0
    stored = fingerprints_of(tuple(kept), 50)
    comparison = compare_videos(query, stored, RADIUS)
    near = {
        int(f.seconds)
        for f in kept
        if any(VPDQ.distance(f.value, q.value) <= RADIUS for q in query)
    }
    seconds = {int(f.seconds) for f in kept}
    return comparison.query_pct, 100.0 * len(near) / len(seconds), comparison.matched_query


def video_tables(blocked: list[Blocked], queries: list[Query]) -> dict[str, Any]:
    rule = VideoMatchRule()
    true_pairs: dict[str, list[VideoComparison]] = defaultdict(list)
    false_pairs: dict[str, list[VideoComparison]] = defaultdict(list)
    dense_true: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    dense_false: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for query in queries:
        for original in blocked:
            comparison = compare_videos(query.hashes, original.hashes, RADIUS)
            dense = dense_comparison(query.hashes, original)
            if query.original == original.name:
                true_pairs[query.transform].append(comparison)
                dense_true[query.transform].append(dense)
            else:
                group = query.transform if query.original is None else "variant_vs_other_original"
                false_pairs[group].append(comparison)
                dense_false[group].append(dense)

    print(
        f"\n== Videos: {len(blocked)} blocklisted originals, {len(queries)} queries, 1 frame/s "
        f"both sides, rule {rule} =="
    )
    print(
        f"{'transform':22} {'n':>3} {'detected':>9} {'q% min':>7} {'q% med':>7} "
        f"{'c% min':>7} {'c% med':>7} {'matched min':>12}"
    )
    per_transform: dict[str, Any] = {}
    for transform, pairs in sorted(true_pairs.items()):
        hits = sum(rule.accepts(c) for c in pairs)
        q = [c.query_pct for c in pairs]
        c_ = [c.compared_pct for c in pairs]
        per_transform[transform] = {
            "n": len(pairs),
            "detected": hits,
            "rate": round(hits / len(pairs), 3),
            "query_pct_min": round(min(q), 1),
            "query_pct_median": round(statistics.median(q), 1),
            "compared_pct_min": round(min(c_), 1),
            "compared_pct_median": round(statistics.median(c_), 1),
            "matched_min": min(c.matched_query for c in pairs),
        }
        t = per_transform[transform]
        print(
            f"{transform:22} {len(pairs):3} {hits:4}/{len(pairs):<4} {t['query_pct_min']:7.0f} "
            f"{t['query_pct_median']:7.0f} {t['compared_pct_min']:7.0f} "
            f"{t['compared_pct_median']:7.0f} {t['matched_min']:12}"
        )
    all_true = [c for pairs in true_pairs.values() for c in pairs]
    detected = sum(rule.accepts(c) for c in all_true)
    print(f"{'all variants':22} {len(all_true):3} {detected:4}/{len(all_true):<4}")

    print(
        f"\n{'false pairs':28} {'pairs':>5} {'accepted':>8} {'max q%':>7} {'max c%':>7} "
        f"{'max matched':>11} {'min dist':>8}"
    )
    false_summary: dict[str, Any] = {}
    for group, pairs in sorted(false_pairs.items()):
        distances = [c.best_distance for c in pairs if c.best_distance is not None]
        false_summary[group] = {
            "pairs": len(pairs),
            "accepted": sum(rule.accepts(c) for c in pairs),
            "max_query_pct": round(max(c.query_pct for c in pairs), 1),
            "max_compared_pct": round(max(c.compared_pct for c in pairs), 1),
            "max_matched": max(c.matched_query for c in pairs),
            "min_best_distance": min(distances) if distances else None,
        }
        s = false_summary[group]
        print(
            f"{group:28} {s['pairs']:5} {s['accepted']:8} {s['max_query_pct']:7.0f} "
            f"{s['max_compared_pct']:7.0f} {s['max_matched']:11} "
            f"{s['min_best_distance'] if s['min_best_distance'] is not None else '-':>8}"
        )

    grid = rule_grid(true_pairs, [c for pairs in false_pairs.values() for c in pairs])
    dense = dense_tables(dense_true, dense_false)
    return {
        "rule": {
            "query_pct": rule.query_pct,
            "compared_pct": rule.compared_pct,
            "min_frames": rule.min_frames,
        },
        "per_transform": per_transform,
        "detected": detected,
        "variants": len(all_true),
        "false_pairs": false_summary,
        "rule_grid": grid,
        "dense_whatif": dense,
    }


#: Rules printed whatever their rank: the current default and python-threatexchange's
#: (query >= 80%, compared unused, which its AND with "compared >= 0%" amounts to).
NAMED_RULES = {(50, 50, 2): "current default", (80, 101, 1): "pytx default"}


def rule_grid(
    true: dict[str, list[VideoComparison]], false: list[VideoComparison]
) -> list[dict[str, Any]]:
    """Detection and false accepts of candidate rules (pct 101 = that direction unused)."""
    transforms = sorted(true)
    rows = []
    for query_pct in (20, 30, 40, 50, 70, 80, 101):
        for compared_pct in (20, 30, 40, 50, 70, 80, 101):
            for min_frames in (1, 2, 3):
                if query_pct == compared_pct == 101:
                    continue
                rule = VideoMatchRule(query_pct, compared_pct, min_frames)
                by_transform = {t: sum(rule.accepts(c) for c in true[t]) for t in transforms}
                rows.append(
                    {
                        "query_pct": query_pct,
                        "compared_pct": compared_pct,
                        "min_frames": min_frames,
                        "detected": sum(by_transform.values()),
                        "by_transform": by_transform,
                        "false_accepts": sum(rule.accepts(c) for c in false),
                    }
                )
    # Safest first: no false accepts, most detections, then the highest thresholds (largest
    # margin over the false pairs) among rules that detect the same.
    rows.sort(
        key=lambda r: (
            r["false_accepts"],
            -r["detected"],
            -r["min_frames"],
            -min(r["query_pct"], r["compared_pct"]),
            -r["query_pct"] - r["compared_pct"],
        )
    )
    total = sum(len(v) for v in true.values())
    print(
        f"\nCandidate rules (query% OR compared%, 101 = unused; {total} true pairs, "
        f"{len(false)} false pairs), safest first:"
    )
    short = [t.removeprefix("vid_")[:9] for t in transforms]
    print(
        f"{'query%':>6} {'comp%':>5} {'min fr':>6} {'detected':>8} {'false':>5}  "
        + " ".join(f"{t:>9}" for t in short)
    )
    shown = [r for r in rows if r["false_accepts"] == 0][:6]
    shown += [r for r in rows if r["false_accepts"] > 0][:2]
    shown += [
        r
        for r in rows
        if (r["query_pct"], r["compared_pct"], r["min_frames"]) in NAMED_RULES and r not in shown
    ]
    for r in shown:
        name = NAMED_RULES.get((r["query_pct"], r["compared_pct"], r["min_frames"]), "")
        print(
            f"{r['query_pct']:6} {r['compared_pct']:5} {r['min_frames']:6} "
            f"{r['detected']:4}/{total:<3} {r['false_accepts']:5}  "
            + " ".join(f"{r['by_transform'][t]:>5}/{len(true[t]):<3}" for t in transforms)
            + (f"  <- {name}" if name else "")
        )
    return rows


def dense_tables(
    true: dict[str, list[tuple[float, float, int]]],
    false: dict[str, list[tuple[float, float, int]]],
) -> dict[str, Any]:
    """What-if: originals stored every 0.2 s; "coverage" = share of the original's seconds
    with a matched frame (the time-based stand-in for compared_pct, which a denser stored
    side would dilute). Rule: query >= 50% or coverage >= 50%, and >= 2 matched frames."""

    def accepts(q: float, cov: float, matched: int) -> bool:
        return matched >= 2 and (q >= 50 or cov >= 50)

    print(
        f"\n== What-if: originals hashed every {DENSE_SECONDS} s, queries at 1 frame/s; rule "
        "query >= 50% or coverage >= 50%, >= 2 frames =="
    )
    print(
        f"{'transform':22} {'n':>3} {'detected':>9} {'q% min':>7} {'q% med':>7} "
        f"{'cov% min':>9} {'cov% med':>9}"
    )
    out: dict[str, Any] = {"per_transform": {}, "false_pairs": {}}
    for transform, rows in sorted(true.items()):
        hits = sum(accepts(*r) for r in rows)
        q = [r[0] for r in rows]
        cov = [r[1] for r in rows]
        out["per_transform"][transform] = {
            "n": len(rows),
            "detected": hits,
            "query_pct_min": round(min(q), 1),
            "query_pct_median": round(statistics.median(q), 1),
            "coverage_min": round(min(cov), 1),
            "coverage_median": round(statistics.median(cov), 1),
        }
        print(
            f"{transform:22} {len(rows):3} {hits:4}/{len(rows):<4} {min(q):7.0f} "
            f"{statistics.median(q):7.0f} {min(cov):9.0f} {statistics.median(cov):9.0f}"
        )
    print(
        f"\n{'false pairs':28} {'pairs':>5} {'accepted':>8} {'max q%':>7} {'max cov%':>9} "
        f"{'max matched':>11}"
    )
    for group, rows in sorted(false.items()):
        s = {
            "pairs": len(rows),
            "accepted": sum(accepts(*r) for r in rows),
            "max_query_pct": round(max(r[0] for r in rows), 1),
            "max_coverage": round(max(r[1] for r in rows), 1),
            "max_matched": max(r[2] for r in rows),
        }
        out["false_pairs"][group] = s
        print(
            f"{group:28} {s['pairs']:5} {s['accepted']:8} {s['max_query_pct']:7.0f} "
            f"{s['max_coverage']:9.0f} {s['max_matched']:11}"
        )
    return out


# --- corpus: frames as images -----------------------------------------------------------------


def slideshow_sources(root: Path) -> dict[str, set[str]]:
    """Original video -> ids of the photos its Ken Burns slideshow was made from."""
    sources: dict[str, set[str]] = {}
    with (root / "originals.csv").open(newline="") as file:
        for row in csv.DictReader(file):
            if row["media"] == "video" and row["source_file"].startswith("ken_burns:"):
                sources[row["id"]] = set(row["source_file"].removeprefix("ken_burns:").split("+"))
    return sources


def pdq_probes(data: bytes) -> list[int]:
    return [f.value for f in hash_photo(data).probes if f.signal == PDQ.name]


def nearest(probes: Iterable[int], frames: Sequence[int]) -> int:
    return min((VPDQ.distance(p, f) for p in probes for f in frames), default=256)


def frames_as_images(
    root: Path, blocked: list[Blocked], rows: list[dict[str, str]]
) -> dict[str, Any]:
    """Do the originals' frame hashes, checked as photo hashes, hit corpus images?"""
    sources = slideshow_sources(root)
    frame_sets = {
        "1fps": {b.name: [f.value for f in b.hashes] for b in blocked},
        "5fps": {b.name: [f.value for f in b.dense.frames if f.quality >= 50] for b in blocked},
    }
    images: list[tuple[Path, str]] = [
        (p, p.stem) for p in sorted((root / "originals").glob("d*.jpg"))
    ]
    for row in rows:
        if row["media"] == "image":
            images.append((root / row["variant_path"], row["original_id"] or row["base_id"]))
    counts: dict[str, Any] = {}
    for rate in frame_sets:
        counts[rate] = {
            "images": 0,
            "unrelated_hits": 0,
            "related_hits": 0,
            "related_images": 0,
            "unrelated_min_distance": 256,
            "examples": [],
        }
    started = time.perf_counter()
    for path, base in images:
        try:
            probes = pdq_probes(path.read_bytes())
        except MediaDecodeError:
            continue
        for rate, frames in frame_sets.items():
            c = counts[rate]
            c["images"] += 1
            for video, values in frames.items():
                related = base in sources.get(video, set())
                distance = nearest(probes, values)
                if related:
                    c["related_images"] += 1
                    c["related_hits"] += distance <= RADIUS
                else:
                    c["unrelated_min_distance"] = min(c["unrelated_min_distance"], distance)
                    if distance <= RADIUS:
                        c["unrelated_hits"] += 1
                        if len(c["examples"]) < 5:
                            c["examples"].append(f"{path.relative_to(root)}~{video}:{distance}")
    elapsed = time.perf_counter() - started

    print(
        f"\n== Frames as images: each original's frame hashes used as photo hashes, against "
        f"{counts['1fps']['images']} corpus images (originals, variants, distractors; 8 "
        f"dihedral PDQ probes each, hit = distance <= {RADIUS}); {elapsed:.0f} s =="
    )
    print(
        f"{'frames stored':14} {'unrelated pairs':>15} {'false hits':>10} {'min dist':>8} "
        f"{'slideshow-source hits':>22}"
    )
    for rate, c in counts.items():
        pairs = c["images"] * len(blocked) - c["related_images"]
        c["unrelated_pairs"] = pairs
        print(
            f"{rate:14} {pairs:15} {c['unrelated_hits']:10} {c['unrelated_min_distance']:8} "
            f"{c['related_hits']:>10}/{c['related_images']:<11}"
        )
        for example in c["examples"]:
            print(f"    false hit: {example}")
    print(
        "  (slideshow-source hits: photos a slideshow original was made from, and their edited "
        "copies; a hit there is a true relation, not a false positive)"
    )
    return counts


def frame_grab(data: bytes, at: float = 0.4) -> bytes:
    """A JPEG (q80) of the frame at ``at`` of the video's length, as a screenshot would be."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    buffer = io.BytesIO()
    Image.fromarray(frames[int(at * (len(frames) - 1))]).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def frame_grabs(root: Path, blocked: list[Blocked], queries: list[Query]) -> dict[str, Any]:
    """Does a frame grab of a video (JPEG q80, at 40% of its length) match its original?"""
    items = [(root / "originals" / f"{b.name}.mp4", "original", b.name) for b in blocked]
    items += [(q.path, q.transform, q.original) for q in queries]
    results: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"n": 0, "hit_1fps": 0, "hit_5fps": 0, "distances_1fps": []}
    )
    false_hits = {"1fps": 0, "5fps": 0}
    false_pairs = 0
    for path, transform, original in items:
        probes = pdq_probes(frame_grab(path.read_bytes()))
        for b in blocked:
            d1 = nearest(probes, [f.value for f in b.hashes])
            d5 = nearest(probes, [f.value for f in b.dense.frames if f.quality >= 50])
            if b.name == original:
                r = results[transform]
                r["n"] += 1
                r["hit_1fps"] += d1 <= RADIUS
                r["hit_5fps"] += d5 <= RADIUS
                r["distances_1fps"].append(d1)
            else:
                false_pairs += 1
                false_hits["1fps"] += d1 <= RADIUS
                false_hits["5fps"] += d5 <= RADIUS
    print(
        "\n== Frame grabs (JPEG q80 at 40% of each video) checked as photos against the "
        "originals' frames =="
    )
    print(f"{'video':22} {'n':>3} {'hit @1fps':>10} {'hit @5fps':>10}  distances @1fps")
    for transform, r in sorted(results.items()):
        print(
            f"{transform:22} {r['n']:3} {r['hit_1fps']:6}/{r['n']:<3} "
            f"{r['hit_5fps']:6}/{r['n']:<3}  "
            f"{sorted(r['distances_1fps'])}"
        )
    print(
        f"false hits (grab vs other originals, distractor grabs vs all): 1fps "
        f"{false_hits['1fps']}/{false_pairs}, 5fps {false_hits['5fps']}/{false_pairs}"
    )
    return {"per_video": dict(results), "false_hits": false_hits, "false_pairs": false_pairs}


def corpus(root: Path) -> dict[str, Any]:
    started = time.perf_counter()
    blocked, queries, rows = load_corpus(root)
    print(
        f"\nhashed {len(blocked)} originals and {len(queries)} video queries in "
        f"{time.perf_counter() - started:.1f} s"
    )
    figures: dict[str, Any] = {"corpus": str(root)}
    figures["videos"] = video_tables(blocked, queries)
    figures["frames_as_images"] = frames_as_images(root, blocked, rows)
    figures["frame_grabs"] = frame_grabs(root, blocked, queries)
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the 720p clip")
    parser.add_argument("--mbit", type=float, default=2.5, help="bit rate of the 720p clip")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best is kept")
    parser.add_argument("--corpus", type=Path, help="dev corpus folder (make_corpus.py output)")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {
        "bench": "video",
        "pyav": av.__version__,
        "ffmpeg_libavcodec": ".".join(map(str, av.library_versions["libavcodec"])),
    }
    if not args.skip_throughput:
        figures["throughput"] = throughput(args.seconds, args.mbit, args.repeat)
        print_throughput(figures["throughput"])
    if args.corpus is not None:
        if not (args.corpus / "manifest.csv").is_file():
            parser.error(f"{args.corpus} has no manifest.csv; build it with make_corpus.py")
        figures["detection"] = corpus(args.corpus)
    print(json.dumps(figures, default=str))


if __name__ == "__main__":
    main()
