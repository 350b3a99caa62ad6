"""Detection quality on a corpus built by ``../shared/corpus/make_corpus.py``.

Blocks every blocklisted original image through the bot's own path (``hash_photo`` as the
hashing pool runs it: exact pixels to block, quick decoding to check), then
``ModerationService.block`` on a fresh SQLite store, then checks every image variant and
distractor with ``ModerationService.find_match``, the call the bot makes for each upload.
Prints, per transform, how many variants matched their own original, how many matched a
wrong one, and how many distractors matched anything; then the totals, the hashing speed,
and one JSON line.

    python bench/quality.py /path/to/corpus_dev [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import load_config
from bot.moderation import ModerationService, Person
from hashdb.fingerprint import MediaDecodeError, MediaFingerprints
from hashdb.photo import hash_photo
from hashdb.sqlite_store import SQLiteStore

CHAT = -1001
ADMIN = Person(1, "bench")


def _hash(path: str, for_block: bool) -> tuple[str, MediaFingerprints | None, float]:
    started = time.perf_counter()
    try:
        data = Path(path).read_bytes()
        # As the bot hashes: exact pixels for what is blocked, a quick decode for checks.
        fingerprints: MediaFingerprints | None = hash_photo(
            data, for_block=for_block, quick=not for_block
        )
    except MediaDecodeError:
        fingerprints = None
    return path, fingerprints, time.perf_counter() - started


def _hash_all(
    paths: list[str], workers: int, *, for_block: bool = False
) -> dict[str, MediaFingerprints | None]:
    results: dict[str, MediaFingerprints | None] = {}
    seconds = 0.0
    with ProcessPoolExecutor(workers) as pool:
        flags = [for_block] * len(paths)
        for path, fingerprints, took in pool.map(_hash, paths, flags, chunksize=8):
            results[path] = fingerprints
            seconds += took
    _hash_all.cpu_seconds += seconds  # type: ignore[attr-defined]
    return results


_hash_all.cpu_seconds = 0.0  # type: ignore[attr-defined]


async def _run(corpus: Path, workers: int, folder: Path) -> dict[str, object]:
    originals = [
        row
        for row in csv.DictReader((corpus / "originals.csv").open())
        if row["media"] == "image" and row["role"] == "blocklist"
    ]
    queries = [
        row for row in csv.DictReader((corpus / "manifest.csv").open()) if row["media"] == "image"
    ]
    config = load_config(None, environ={}, require_token=False)
    store = SQLiteStore(folder / "quality.sqlite3")
    await store.open()
    service = ModerationService(store, config.matching, config.video, config.moderation)
    await service.load()

    started = time.perf_counter()
    # Originals are hashed as /block hashes them, the rest as uploads are.
    hashed = _hash_all([str(corpus / row["path"]) for row in originals], workers, for_block=True)
    entry_of: dict[int, str] = {}
    for row in originals:
        fingerprints = hashed[str(corpus / row["path"])]
        if fingerprints is None:
            print(f"cannot hash original {row['path']}", file=sys.stderr)
            continue
        result = await service.block(
            CHAT,
            fingerprints,
            actor=ADMIN,
            reason=row["id"],
            message_id=None,
            sender=None,
            file_unique_id=None,
        )
        entry_of[result.entry.id] = row["id"]
    hashed = _hash_all([str(corpus / row["variant_path"]) for row in queries], workers)
    found: Counter[tuple[str, str]] = Counter()
    totals: Counter[str] = Counter()
    false_positives: list[str] = []
    for row in queries:
        transform = row["transform"]
        fingerprints = hashed[str(corpus / row["variant_path"])]
        match = await service.find_match(CHAT, fingerprints) if fingerprints else None
        matched = entry_of.get(match.entry_id) if match is not None else None
        if row["role"] == "variant":
            totals[transform] += 1
            if matched == row["original_id"]:
                found[transform, "hit"] += 1
            elif matched is not None:
                found[transform, "wrong"] += 1
        else:
            kind = row["distractor_kind"] or "random"
            totals[f"distractor:{kind}"] += 1
            if matched is not None:
                found[f"distractor:{kind}", "fp"] += 1
                false_positives.append(f"{row['variant_path']} -> {matched}")
    elapsed = time.perf_counter() - started
    await service.close()
    await store.close()

    images = len(originals) + len(queries)
    rows: dict[str, dict[str, int]] = defaultdict(dict)
    print(f"{'transform':<22} {'detected':>12} {'wrong':>6}")
    for transform in sorted(t for t in totals if not t.startswith("distractor:")):
        hit, wrong, total = found[transform, "hit"], found[transform, "wrong"], totals[transform]
        rows[transform] = {"hit": hit, "wrong": wrong, "total": total}
        print(f"{transform:<22} {hit:>4}/{total:<4} {100 * hit / total:5.1f}% {wrong:>4}")
    variant_total = sum(v["total"] for v in rows.values())
    variant_hits = sum(v["hit"] for v in rows.values())
    wrong_total = sum(v["wrong"] for v in rows.values())
    print(
        f"{'all variants':<22} {variant_hits:>4}/{variant_total:<4} "
        f"{100 * variant_hits / variant_total:5.1f}% {wrong_total:>4}"
    )
    for kind in sorted(t for t in totals if t.startswith("distractor:")):
        print(f"{kind:<22} {found[kind, 'fp']:>4}/{totals[kind]:<4} matched (must be 0)")
    for line in false_positives[:20]:
        print(f"  false positive: {line}")
    cpu = _hash_all.cpu_seconds  # type: ignore[attr-defined]
    print(
        f"{images} images in {elapsed:.1f} s with {workers} worker(s): "
        f"{images / cpu:.1f} images/s per core (hashing), "
        f"{images / elapsed:.1f} images/s end to end"
    )
    return {
        "variants": variant_total,
        "detected": variant_hits,
        "detection_pct": round(100 * variant_hits / variant_total, 2),
        "wrong_original": wrong_total,
        "false_positives": len(false_positives),
        "distractors": sum(v for k, v in totals.items() if k.startswith("distractor:")),
        "images_per_s_per_core": round(images / cpu, 1),
        "per_transform": {k: round(100 * v["hit"] / v["total"], 1) for k, v in rows.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path, help="folder make_corpus.py wrote")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if not (args.corpus / "manifest.csv").is_file():
        parser.error(f"{args.corpus} has no manifest.csv; build it with make_corpus.py")
    with tempfile.TemporaryDirectory() as folder:
        figures = asyncio.run(_run(args.corpus, args.workers, Path(folder)))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
