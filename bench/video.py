"""Benchmark: video fingerprint throughput, and video detection on the dev corpus.

Everything follows the production pipeline, built from the config defaults (``bot.config``)
as ``bot.hashing.Fingerprinter`` and ``bot.core.Core`` build it: an
upload is sampled with the upload budget (``video.seconds_per_sample``, 1 frame/s;
``video.max_frames``; ``video.budget_seconds``), a video an admin blocks is hashed with the
block budget (``video.block_seconds_per_sample``, every 0.2 s; ``video.block_max_frames``),
frames below ``matching.pdq_min_quality`` are not used, two frames are near within
``matching.pdq_max_distance``, and the rule comes from ``video.query_match_pct``,
``video.compared_match_pct`` and ``video.min_matched_frames``.

Throughput (``bench/video_speed.py``): a 720p H.264 clip made in memory is checked as the
bot checks an upload, on every CPU and pinned to one, beside full-size whole frames only (the
check before views), with where the time goes and blocking the clip.

Detection (``--corpus DIR``: the dev corpus, or a set from ``bench/video_edits.py``): the
originals are blocked and every variant and distractor checked through the bot's own
``Matcher`` (every view, then local features); "before" is whole frames only. Printed: per
edit, what was found and how; unrelated pairs matched, with their margin to the rule; a
grid of candidate rules; and frames checked as photos (``bench/video_frames.py``).

    python bench/video.py                          # throughput only, ~1 min
    python bench/video.py --corpus /work/corpus_dev
    python bench/video.py --corpus /work/corpus_dev --skip-throughput
    python bench/video.py --seconds 30 --repeat 1  # quicker throughput run
    python bench/video.py --mbit 1.2               # a lower-rate clip (decode cost follows it)
    python bench/video.py --gop 10                 # keyframes 10 s apart (no keyframe sampling)
    python bench/video.py --skip-throughput --block-minutes 10  # block a 10-minute video

Ends with one JSON line of all figures.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import av  # noqa: E402

from bench.video_frames import frame_grabs, frames_as_images, slideshow_sources  # noqa: E402
from bench.video_speed import block_long, make_clip, print_throughput, throughput  # noqa: E402
from bot.config import Config, load_config  # noqa: E402
from bot.matcher import Match, Matcher  # noqa: E402
from hashdb.fingerprint import Fingerprint, MediaDecodeError, MediaFingerprints  # noqa: E402
from hashdb.index import BlocklistIndex  # noqa: E402
from hashdb.local import LocalIndex  # noqa: E402
from hashdb.store import Entry  # noqa: E402
from hashdb.video import VideoBudget, hash_animation, hash_video  # noqa: E402
from hashdb.video_match import VideoComparison, VideoMatchRule, compare_videos  # noqa: E402


@dataclass(frozen=True)
class Pipeline:
    """The production settings for video: how each side is hashed and how they match."""

    upload: VideoBudget
    block: VideoBudget
    rule: VideoMatchRule
    max_distance: int
    min_quality: int
    config: Config

    def describe(self) -> dict[str, Any]:
        return {
            "upload_budget": dataclasses.asdict(self.upload),
            "block_budget": dataclasses.asdict(self.block),
            "rule": dataclasses.asdict(self.rule),
            "max_distance": self.max_distance,
            "min_quality": self.min_quality,
        }


def production_pipeline() -> Pipeline:
    """The config defaults, put together as the bot does (``bot.hashing``, ``bot.core``)."""
    config = load_config(None, environ={"HASHGUARD_TELEGRAM_TOKEN": "x"})
    video = config.video
    upload = VideoBudget(
        seconds_per_sample=video.seconds_per_sample,
        max_frames=video.max_frames,
        max_seconds=video.budget_seconds,
        max_pixels=config.media.max_image_pixels,
    )
    block = dataclasses.replace(
        upload,
        seconds_per_sample=video.block_seconds_per_sample,
        max_frames=video.block_max_frames,
        max_seconds=video.block_budget_seconds,
    )
    rule = VideoMatchRule(
        query_pct=video.query_match_pct,
        compared_pct=video.compared_match_pct,
        min_frames=video.min_matched_frames,
    )
    return Pipeline(
        upload,
        block,
        rule,
        config.matching.pdq_max_distance,
        config.matching.pdq_min_quality,
        config,
    )


def usable(fingerprints: MediaFingerprints, min_quality: int) -> tuple[Fingerprint, ...]:
    """The frames the bot acts on (``Matcher.usable``): quality >= the minimum."""
    return tuple(
        f for f in fingerprints.probes if f.quality is not None and f.quality >= min_quality
    )


def rule_text(rule: VideoMatchRule) -> str:
    return (
        f"query >= {rule.query_pct:g}% or compared >= {rule.compared_pct:g}%, "
        f">= {rule.min_frames} matched frames"
    )


# --- corpus: video against video --------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    path: Path
    transform: str  # "distractor:random", "distractor:hard_negative" for distractors
    original: str | None
    #: The baseline (before the views): whole frames hashed full size, as blocked.
    hashes: tuple[Fingerprint, ...]
    #: Production: checked as the bot checks an upload (views, local features).
    check: MediaFingerprints | None
    #: The original or distractor the file was made from.
    base: str = ""


@dataclass(frozen=True)
class Blocked:
    name: str
    entry_id: int
    #: Production: the block budget, frame times kept (compared side counted in seconds).
    hashes: tuple[Fingerprint, ...]
    #: 1 frame/s, frame times dropped (frames as images' baseline).
    before: tuple[Fingerprint, ...]
    sampled: int
    truncated: bool
    moments: int


@dataclass
class Production:
    """The bot's matcher over the blocked originals, as ``Core`` builds it."""

    matcher: Matcher
    index: BlocklistIndex
    local: LocalIndex
    radius: int
    bank: int = 1

    def matches(self, fingerprints: MediaFingerprints) -> list[Match]:
        return self.matcher.matches(
            self.index,
            [self.bank],
            fingerprints,
            include_phash=False,
            max_distance=self.radius,
            local=self.local,
        )

    def comparisons(self, fingerprints: MediaFingerprints) -> dict[int, VideoComparison]:
        """Best view's comparison with each original, whatever the rule says."""
        found = self.matcher.video_comparisons(self.index, [self.bank], fingerprints, self.radius)
        return {entry_id: comparison for entry_id, (_, comparison) in found.items()}


def load_corpus(
    root: Path, pipeline: Pipeline
) -> tuple[list[Blocked], list[Query], list[dict[str, str]], Production]:
    blocked = []
    entries = []
    matcher = Matcher(pipeline.config.matching, pipeline.config.video)
    local = LocalIndex()
    for number, path in enumerate(sorted((root / "originals").glob("dv*.mp4")), start=1):
        data = path.read_bytes()
        block = hash_video(data, pipeline.block, local=True)
        before = usable(hash_video(data, pipeline.upload), pipeline.min_quality)
        entries.append(
            matcher.indexable(Entry(number, 0, block.stored, None, 0.0, "", "bench", bank_id=1))
        )
        if block.moments:
            local.add(number, 1, block.moments)
        blocked.append(
            Blocked(
                path.stem,
                number,
                usable(block, pipeline.min_quality),
                tuple(dataclasses.replace(f, seconds=None) for f in before),
                block.frame_count,
                block.truncated,
                len(block.moments),
            )
        )
    production = Production(matcher, BlocklistIndex.build(entries), local, pipeline.max_distance)
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
        data = path.read_bytes()
        try:
            hashes = usable(hash_video(data, pipeline.upload), pipeline.min_quality)
            check: MediaFingerprints | None = hash_animation(
                data, pipeline.upload, check=True, local=True
            )
        except MediaDecodeError as exc:
            print(f"warning: {path} not hashed: {exc}", file=sys.stderr)
            hashes, check = (), None
        queries.append(Query(path, transform, original, hashes, check, row["base_id"]))
    return blocked, queries, rows, production


@dataclass(frozen=True)
class Pair:
    query: Query
    original: str
    comparison: VideoComparison  # production's hashes: the best view
    before: VideoComparison  # baseline: whole frames only
    #: The production decision (hashes with views, or local features).
    matched: bool
    #: Matched by local features (consistent points), else None.
    local_points: int | None


NO_COMPARISON = VideoComparison(0, 0, 0, 0, None)


def over_rule(rule: VideoMatchRule, c: VideoComparison) -> float:
    """Percentage points above the nearer threshold (negative: below both)."""
    return max(c.query_pct - rule.query_pct, c.compared_pct - rule.compared_pct)


def describe_pair(pair: Pair, c: VideoComparison, rule: VideoMatchRule) -> str:
    return (
        f"{pair.query.path.stem} ({pair.query.transform}) vs {pair.original}: "
        f"q {c.query_pct:.0f}%, c {c.compared_pct:.0f}%, {c.matched_query} matched, "
        f"{over_rule(rule, c):+.0f} pp"
    )


def video_tables(
    blocked: list[Blocked],
    queries: list[Query],
    pipeline: Pipeline,
    production: Production,
    sources: dict[str, set[str]],
) -> dict[str, Any]:
    rule, radius = pipeline.rule, pipeline.max_distance
    true_pairs: dict[str, list[Pair]] = defaultdict(list)
    false_pairs: dict[str, list[Pair]] = defaultdict(list)
    shared_pairs: list[Pair] = []
    for query in queries:
        found = production.matches(query.check) if query.check is not None else []
        compared = production.comparisons(query.check) if query.check is not None else {}
        for original in blocked:
            match = next((m for m in found if m.entry_id == original.entry_id), None)
            pair = Pair(
                query,
                original.name,
                compared.get(original.entry_id, NO_COMPARISON),
                compare_videos(query.hashes, original.hashes, radius),
                match is not None,
                match.points if match is not None else None,
            )
            if query.original == original.name:
                true_pairs[query.transform].append(pair)
            elif sources.get(query.base, set()) & sources.get(original.name, set()):
                # Two slideshows showing the same photo: a match is right, and not counted
                # either way.
                shared_pairs.append(pair)
            else:
                group = query.transform if query.original is None else "variant_vs_other_original"
                false_pairs[group].append(pair)

    block, upload = pipeline.block, pipeline.upload
    print(
        f"\n== Videos: {len(blocked)} blocklisted originals hashed every "
        f"{block.seconds_per_sample:g} s (compared% = seconds covered), {len(queries)} queries "
        f"every {upload.seconds_per_sample:g} s; rule: {rule_text(rule)}, radius {radius} =="
    )
    print(
        "   detected: the bot's decision (Matcher.matches: hashes of every view, then local "
        "features); by hash: the best view passes the rule; by local: local features found "
        "it; before: whole frames only, as checked before views (same rule); q%/c%: the best "
        "view's"
    )
    print(
        f"{'transform':22} {'n':>3} {'detected':>9} {'by hash':>8} {'by local':>8} "
        f"{'q% min':>7} {'q% med':>7} "
        f"{'c% min':>7} {'c% med':>7} {'matched min':>12} | {'before':>9} "
        f"{'q% med':>7} {'c% med':>7}"
    )
    per_transform: dict[str, Any] = {}
    for transform, pairs in sorted(true_pairs.items()):
        now = [p.comparison for p in pairs]
        was = [p.before for p in pairs]
        hits = sum(p.matched for p in pairs)
        by_hash = sum(rule.accepts(c) for c in now)
        by_local = sum(p.local_points is not None for p in pairs)
        hits_before = sum(rule.accepts(c) for c in was)
        q = [c.query_pct for c in now]
        c_ = [c.compared_pct for c in now]
        per_transform[transform] = {
            "n": len(pairs),
            "detected": hits,
            "rate": round(hits / len(pairs), 3),
            "by_hash": by_hash,
            "by_local": by_local,
            "query_pct_min": round(min(q), 1),
            "query_pct_median": round(statistics.median(q), 1),
            "compared_pct_min": round(min(c_), 1),
            "compared_pct_median": round(statistics.median(c_), 1),
            "matched_min": min(c.matched_query for c in now),
            "before_detected": hits_before,
            "before_query_pct_median": round(statistics.median(c.query_pct for c in was), 1),
            "before_compared_pct_median": round(statistics.median(c.compared_pct for c in was), 1),
        }
        t = per_transform[transform]
        print(
            f"{transform:22} {len(pairs):3} {hits:4}/{len(pairs):<4} {by_hash:8} {by_local:8} "
            f"{t['query_pct_min']:7.0f} "
            f"{t['query_pct_median']:7.0f} {t['compared_pct_min']:7.0f} "
            f"{t['compared_pct_median']:7.0f} {t['matched_min']:12} | "
            f"{hits_before:4}/{len(pairs):<4} {t['before_query_pct_median']:7.0f} "
            f"{t['before_compared_pct_median']:7.0f}"
        )
    all_true = [p for pairs in true_pairs.values() for p in pairs]
    detected = sum(p.matched for p in all_true)
    detected_before = sum(rule.accepts(p.before) for p in all_true)
    print(
        f"{'all variants':22} {len(all_true):3} {detected:4}/{len(all_true):<4} "
        f"{'':62} | {detected_before:4}/{len(all_true):<4}"
    )

    print(
        f"\n{'false pairs':28} {'pairs':>5} {'accepted':>8} {'max q%':>7} {'max c%':>7} "
        f"{'max matched':>11} {'min dist':>8} {'q margin':>8} {'c margin':>8} | {'before acc':>10}"
    )
    false_summary: dict[str, Any] = {}
    for group, pairs in sorted(false_pairs.items()):
        now = [p.comparison for p in pairs]
        distances = [c.best_distance for c in now if c.best_distance is not None]
        max_q = max(c.query_pct for c in now)
        max_c = max(c.compared_pct for c in now)
        false_summary[group] = {
            "pairs": len(pairs),
            "accepted": sum(p.matched for p in pairs),
            "accepted_by_local": sum(p.local_points is not None for p in pairs),
            "max_query_pct": round(max_q, 1),
            "max_compared_pct": round(max_c, 1),
            "max_matched": max(c.matched_query for c in now),
            "min_best_distance": min(distances) if distances else None,
            # Percentage points below each threshold (negative: over it).
            "query_margin_pp": round(rule.query_pct - max_q, 1),
            "compared_margin_pp": round(rule.compared_pct - max_c, 1),
            "before_accepted": sum(rule.accepts(p.before) for p in pairs),
            "before_max_query_pct": round(max(p.before.query_pct for p in pairs), 1),
            "before_max_compared_pct": round(max(p.before.compared_pct for p in pairs), 1),
        }
        s = false_summary[group]
        print(
            f"{group:28} {s['pairs']:5} {s['accepted']:8} {s['max_query_pct']:7.0f} "
            f"{s['max_compared_pct']:7.0f} {s['max_matched']:11} "
            f"{s['min_best_distance'] if s['min_best_distance'] is not None else '-':>8} "
            f"{s['query_margin_pp']:8.0f} {s['compared_margin_pp']:8.0f} | "
            f"{s['before_accepted']:10}"
        )
    print("  (margin: percentage points between the rule's threshold and the highest seen)")
    for group, pairs in sorted(false_pairs.items()):
        for pair in pairs:
            if pair.matched:
                how = f"local, {pair.local_points} points" if pair.local_points else "hashes"
                print(f"  FALSE MATCH {group}: {pair.query.path.stem} vs {pair.original} ({how})")
    print(
        f"  pairs of slideshows sharing a photo (a match there is right; not counted): "
        f"{sum(p.matched for p in shared_pairs)}/{len(shared_pairs)} matched"
    )

    all_false = [p for pairs in false_pairs.values() for p in pairs]
    extremes: dict[str, Any] = {}
    print(
        "\nclosest to the rule (pp above the nearer threshold; the weakest true pair among "
        "those detected):"
    )
    for label, pick in (("production", "comparison"), ("before", "before")):
        found = [p for p in all_true if rule.accepts(getattr(p, pick))]
        missed = sorted({p.query.transform for p in all_true if p not in found})
        strongest = max(all_false, key=lambda p: over_rule(rule, getattr(p, pick)))
        strong_c = getattr(strongest, pick)
        figures: dict[str, Any] = {
            "strongest_false": describe_pair(strongest, strong_c, rule),
            "missed": len(all_true) - len(found),
            "missed_transforms": missed,
        }
        print(f"  {label:10} strongest false pair: {figures['strongest_false']}")
        if found:
            weakest = min(found, key=lambda p: over_rule(rule, getattr(p, pick)))
            weak_c = getattr(weakest, pick)
            gap = over_rule(rule, weak_c) - over_rule(rule, strong_c)
            figures["weakest_detected_true"] = describe_pair(weakest, weak_c, rule)
            figures["gap_pp"] = round(gap, 1)
            print(f"  {'':10} weakest detected true: {figures['weakest_detected_true']}")
            print(f"  {'':10} gap {gap:.0f} pp")
        print(f"  {'':10} not detected: {figures['missed']} ({', '.join(missed) or 'none'})")
        extremes[label] = figures

    grid = rule_grid(
        {t: [p.comparison for p in pairs] for t, pairs in true_pairs.items()},
        [p.comparison for p in all_false],
        rule,
    )
    return {
        "originals": {
            b.name: {
                "sampled": b.sampled,
                "stored": len(b.hashes),
                "seconds": len({int(f.seconds or 0) for f in b.hashes}),
                "truncated": b.truncated,
                "before_stored": len(b.before),
            }
            for b in blocked
        },
        "per_transform": per_transform,
        "detected": detected,
        "detected_before": detected_before,
        "variants": len(all_true),
        "false_pairs": false_summary,
        "closest_to_rule": extremes,
        "rule_grid": grid,
    }


def rule_grid(
    true: dict[str, list[VideoComparison]], false: list[VideoComparison], production: VideoMatchRule
) -> list[dict[str, Any]]:
    """Detection and false accepts of candidate rules (pct 101 = that direction unused)."""
    # Printed whatever their rank: the configured rule and python-threatexchange's (query >=
    # 80%, compared unused, which its AND with "compared >= 0%" amounts to).
    named = {
        (production.query_pct, production.compared_pct, production.min_frames): "production",
        (80, 101, 1): "pytx default",
    }
    transforms = sorted(true)
    rows: list[dict[str, Any]] = []
    for query_pct in sorted({20, 30, 40, 50, 70, 80, 101, production.query_pct}):
        for compared_pct in sorted({20, 30, 40, 50, 70, 80, 101, production.compared_pct}):
            for min_frames in sorted({1, 2, 3, production.min_frames}):
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
        f"\nCandidate rules on the production pipeline (query% OR compared%, 101 = unused; "
        f"{total} true pairs, {len(false)} false pairs), safest first:"
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
        if (r["query_pct"], r["compared_pct"], r["min_frames"]) in named and r not in shown
    ]
    for r in shown:
        name = named.get((r["query_pct"], r["compared_pct"], r["min_frames"]), "")
        print(
            f"{r['query_pct']:6g} {r['compared_pct']:5g} {r['min_frames']:6} "
            f"{r['detected']:4}/{total:<3} {r['false_accepts']:5}  "
            + " ".join(f"{r['by_transform'][t]:>5}/{len(true[t]):<3}" for t in transforms)
            + (f"  <- {name}" if name else "")
        )
    return rows


def corpus(root: Path, pipeline: Pipeline) -> dict[str, Any]:
    started = time.perf_counter()
    blocked, queries, rows, production = load_corpus(root, pipeline)
    truncated = [b.name for b in blocked if b.truncated]
    print(
        f"\nhashed {len(blocked)} originals (block budget: "
        f"{sum(b.sampled for b in blocked)} frames sampled, "
        f"{sum(len(b.hashes) for b in blocked)} used; before: "
        f"{sum(len(b.before) for b in blocked)} used; truncated: {', '.join(truncated) or 'none'})"
        f" and {len(queries)} video queries in {time.perf_counter() - started:.1f} s"
    )
    figures: dict[str, Any] = {"corpus": str(root)}
    figures["videos"] = video_tables(
        blocked, queries, pipeline, production, slideshow_sources(root)
    )
    figures["frames_as_images"] = frames_as_images(root, blocked, rows, pipeline)
    figures["frame_grabs"] = frame_grabs(root, blocked, queries, pipeline)
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the 720p clip")
    parser.add_argument("--mbit", type=float, default=2.5, help="bit rate of the 720p clip")
    parser.add_argument(
        "--gop", type=float, default=2.0, help="seconds between the 720p clip's keyframes"
    )
    parser.add_argument(
        "--block-minutes",
        type=int,
        default=0,
        help="also block the clip repeated to this many minutes (one core), e.g. 10",
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best is kept")
    parser.add_argument("--corpus", type=Path, help="dev corpus folder (make_corpus.py output)")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args(argv)
    if args.corpus is not None and not (args.corpus / "manifest.csv").is_file():
        parser.error(f"{args.corpus} has no manifest.csv; build it with make_corpus.py")
    pipeline = production_pipeline()
    figures: dict[str, Any] = {
        "bench": "video",
        "pyav": av.__version__,
        "ffmpeg_libavcodec": ".".join(map(str, av.library_versions["libavcodec"])),
        "pipeline": pipeline.describe(),
    }
    if not args.skip_throughput:
        figures["throughput"] = throughput(args.seconds, args.mbit, args.repeat, pipeline, args.gop)
        print_throughput(figures["throughput"])
    if args.block_minutes:
        clip = make_clip(args.seconds, args.mbit, gop=args.gop)
        figures["block_long"] = block_long(clip, args.seconds, args.block_minutes, pipeline)
        f = figures["block_long"]
        print(
            f"\n== Blocking a {f['block_long_minutes']} min 720p video, one core: "
            f"{f['block_long_s']} s (budget {f['block_long_budget_s']} s), "
            f"{f['block_long_frames']} frames, truncated: {f['block_long_truncated']}, "
            f"{f['block_long_moments']} moments; peak resident memory {f['peak_rss_mb']} MB =="
        )
    if args.corpus is not None:
        figures["detection"] = corpus(args.corpus, pipeline)
    print(json.dumps(figures, default=str))


if __name__ == "__main__":
    main()
