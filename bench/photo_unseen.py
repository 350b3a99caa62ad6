"""Detection of grids, collages and photos of a screen (``bench/photo_edits.py``'s set), in
bank mode: blocked photos keep their local features.

Blocks every original of the set through the bot's path (``hash_photo`` as the hashing pool
runs it: exact pixels to block, a quick decode to check; ``BlocklistService.block`` on a
fresh SQLite store), then checks every variant and distractor with
``MatchingService.find_match``, the call the bot makes for each upload. Prints, per edit,
how many variants matched their own original, by source (``corpus``: the dev corpus's
originals; ``unseen``: photos from the same packages the corpus does not use;
``synthetic``: phone-sized pictures made by the set's builder), how many matched a wrong
one, and how many distractors matched anything. Then, to show the margins: the fewest
consistent points of a local match found, and the most that any distractor reaches against
any blocked photo (searched again with a floor of 8 points), and the checking speed.

    python bench/photo_edits.py /work/corpus_dev OUT
    python bench/photo_unseen.py OUT [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.quality import hash_as_the_bot
from bot.config import load_config
from bot.core import Core
from bot.matcher import LOCAL_SIGNAL
from bot.values import Person
from hashdb.fingerprint import MediaFingerprints
from hashdb.local import LocalIndex
from hashdb.sqlite import SQLiteStore

CHAT = -1001
ADMIN = Person(1, "bench")
SOURCES = ("corpus", "unseen", "synthetic")
#: The floor of the second search that shows how close distractors come.
PROBE_POINTS = 8


def _hash_all(
    paths: list[str], workers: int, for_block: bool, regions: bool = False
) -> tuple[dict[str, MediaFingerprints | None], float]:
    results: dict[str, MediaFingerprints | None] = {}
    seconds = 0.0
    with ProcessPoolExecutor(workers) as pool:
        for path, fingerprints, took in pool.map(
            hash_as_the_bot, paths, [for_block] * len(paths), [regions] * len(paths), chunksize=8
        ):
            results[path] = fingerprints
            seconds += took
    return results, seconds


async def _run(root: Path, workers: int, folder: Path) -> dict[str, object]:
    originals = [
        row for row in csv.DictReader((root / "originals.csv").open()) if row["role"] == "blocklist"
    ]
    queries = list(csv.DictReader((root / "manifest.csv").open()))
    config = load_config(None, environ={}, require_token=False)
    store = SQLiteStore(folder / "unseen.sqlite3")
    await store.open()
    service = Core.build(store, config.matching, config.video, config.moderation)
    await service.load()

    blocked, block_seconds = _hash_all(
        [str(root / row["path"]) for row in originals], workers, for_block=True
    )
    entry_of: dict[int, str] = {}
    # The same features in an index of our own, searched with a low floor for the margins.
    probe = LocalIndex()
    for row in originals:
        fingerprints = blocked[str(root / row["path"])]
        if fingerprints is None:
            print(f"cannot hash original {row['path']}", file=sys.stderr)
            continue
        result = await service.blocklist.block(
            CHAT,
            fingerprints,
            actor=ADMIN,
            reason=row["id"],
            message_id=None,
            sender=None,
            file_unique_id=None,
        )
        entry_of[result.entry.id] = row["id"]
        if fingerprints.local is not None:
            moments = [fingerprints.local]
            if fingerprints.local_mirror is not None:
                moments.append(fingerprints.local_mirror)
            probe.add(result.entry.id, 1, moments)
    probe.build()

    # The picture's own rectangles, as the bot hashes them for this chat (by default for
    # every group; not under matching.region_probes = "hash_only" with local features).
    regions = await service.matching.uses_regions(CHAT)
    print(f"region probes: {'on' if regions else 'off'}")
    hashed, check_seconds = _hash_all(
        [str(root / row["variant_path"]) for row in queries], workers, False, regions
    )
    found: Counter[tuple[str, str, str]] = Counter()
    totals: Counter[tuple[str, str]] = Counter()
    by_local: Counter[str] = Counter()
    local_points: list[int] = []
    near: dict[tuple[str, str], int] = defaultdict(int)
    false_matches: list[str] = []
    match_seconds = 0.0
    for row in queries:
        edit, source = row["transform"], row["source"]
        fingerprints = hashed[str(root / row["variant_path"])]
        started = time.perf_counter()
        match = await service.matching.find_match(CHAT, fingerprints) if fingerprints else None
        match_seconds += time.perf_counter() - started
        matched = entry_of.get(match.entry_id) if match is not None else None
        if row["role"] == "variant":
            totals[edit, source] += 1
            if matched == row["original_id"]:
                found[edit, source, "hit"] += 1
                if match is not None and match.signal == LOCAL_SIGNAL:
                    by_local[edit] += 1
                    local_points.append(match.points or 0)
            elif matched is not None:
                found[edit, source, "wrong"] += 1
                false_matches.append(f"{row['variant_path']} -> {matched} (not {row['base_id']})")
        else:
            totals[f"distractor:{edit}", source] += 1
            if matched is not None:
                found[f"distractor:{edit}", source, "fp"] += 1
                false_matches.append(f"{row['variant_path']} -> {matched}")
            if fingerprints is not None and fingerprints.local is not None:
                hits = probe.search(fingerprints.local, [1], PROBE_POINTS)
                if hits:
                    near[edit, source] = max(near[edit, source], hits[0].points)
    await service.close()
    await store.close()

    edits = sorted({row["transform"] for row in queries if row["role"] == "variant"})
    print(f"{'edit':<16}" + "".join(f"{s:>16}" for s in SOURCES) + f"{'wrong':>7}{'local':>7}")
    per_edit: dict[str, dict[str, float]] = {}
    for edit in edits:
        cells, figures = [], {}
        for source in SOURCES:
            total = totals[edit, source]
            hit = found[edit, source, "hit"]
            cells.append(f"{hit:>4}/{total:<4} {100 * hit / total:5.1f}%" if total else "-")
            if total:
                figures[source] = round(100 * hit / total, 1)
        wrong = sum(found[edit, s, "wrong"] for s in SOURCES)
        print(f"{edit:<16}" + "".join(f"{c:>16}" for c in cells) + f"{wrong:>7}{by_local[edit]:>7}")
        per_edit[edit] = figures
    summary: dict[str, object] = {}
    for source in SOURCES:
        total = sum(totals[e, source] for e in edits)
        hit = sum(found[e, source, "hit"] for e in edits)
        if total:
            summary[f"{source}_pct"] = round(100 * hit / total, 1)
            print(f"{'all ' + source:<16} {hit:>4}/{total:<4} {100 * hit / total:5.1f}%")
    print(f"{'distractors':<16}" + "".join(f"{s:>16}" for s in ("corpus", "unseen")))
    distractor_total, distractor_fp = 0, 0
    for edit in edits:
        cells = []
        for source in ("corpus", "unseen"):
            total = totals[f"distractor:{edit}", source]
            fp = found[f"distractor:{edit}", source, "fp"]
            distractor_total += total
            distractor_fp += fp
            cells.append(f"{fp:>3}/{total:<3} (max {near[edit, source]:>3} pts)")
        print(f"{edit:<16}" + "".join(f"{c:>16}" for c in cells))
    for line in false_matches[:20]:
        print(f"  false match: {line}")
    if local_points:
        print(
            f"local matches: {len(local_points)}, consistent points min {min(local_points)}, "
            f"median {statistics.median(local_points):.0f} (threshold "
            f"{config.matching.local_min_points}); distractors reach at most "
            f"{max(near.values(), default=0)} against any blocked photo"
        )
    checks = len(queries)
    print(
        f"{len(originals)} blocked in {block_seconds:.1f} CPU s; {checks} checks: hashing "
        f"{1000 * check_seconds / checks:.1f} ms, matching {1000 * match_seconds / checks:.1f} ms "
        f"per upload"
    )
    return {
        "bench": "photo_unseen",
        "variants": sum(totals[e, s] for e in edits for s in SOURCES),
        "detected": sum(found[e, s, "hit"] for e in edits for s in SOURCES),
        **summary,
        "wrong_original": sum(found[e, s, "wrong"] for e in edits for s in SOURCES),
        "distractors": distractor_total,
        "false_positives": distractor_fp,
        "distractor_max_points": max(near.values(), default=0),
        "min_local_points": min(local_points, default=0),
        "hash_ms_per_upload": round(1000 * check_seconds / checks, 2),
        "match_ms_per_upload": round(1000 * match_seconds / checks, 2),
        "per_edit": per_edit,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set", type=Path, help="folder photo_edits.py wrote")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if not (args.set / "manifest.csv").is_file():
        parser.error(f"{args.set} has no manifest.csv; build it with bench/photo_edits.py")
    with tempfile.TemporaryDirectory() as folder:
        figures = asyncio.run(_run(args.set, args.workers, Path(folder)))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
