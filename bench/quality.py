"""Detection quality on a corpus built by ``../shared/corpus/make_corpus.py``, in two modes.

*bank*: blocks every blocklisted original image through the bot's own path (``hash_photo``
as the hashing pool runs it: exact pixels to block, quick decoding to check, local
features), then ``BlocklistService.block`` on a fresh SQLite store, then checks every image
variant and distractor with ``MatchingService.find_match``, the call the bot makes for
each upload.

*list*: the originals as a hash list, as ``hashguard hash`` writes it (PDQ and pHash, no
local features), read back and indexed as ``hashguard match --list`` does
(``ListIndex.of_items``); every variant and distractor is hashed and matched as that
command does (``bot.scan.hash_file`` with region probes, ``best_match``).

Prints, per transform and mode, how many variants matched their own original, how many
matched a wrong one, and how many distractors matched anything; then the totals, the
hashing speed, and one JSON line.

    python bench/quality.py /path/to/corpus_dev [--workers 2] [--mode both|bank|list]
        [--regions auto|on|off]
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
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import Config, load_config
from bot.core import Core
from bot.matcher import Matcher
from bot.scan import ListIndex, best_match, hash_file
from bot.values import Person
from hashdb.fingerprint import MediaDecodeError, MediaFingerprints
from hashdb.lists import ListItem, parse_list, text_lines
from hashdb.photo import hash_photo
from hashdb.sqlite import SQLiteStore
from hashdb.video import VideoBudget

CHAT = -1001
ADMIN = Person(1, "bench")
MODES = ("bank", "list")


def hash_as_the_bot(
    path: str, for_block: bool, regions: bool = False
) -> tuple[str, MediaFingerprints | None, float]:
    """A photo hashed as the bot's pool hashes it, and the seconds it took (None when it
    cannot be decoded)."""
    started = time.perf_counter()
    try:
        data = Path(path).read_bytes()
        # As the bot hashes: exact pixels for what is blocked, a quick decode for checks.
        fingerprints: MediaFingerprints | None = hash_photo(
            data, for_block=for_block, quick=not for_block, regions=regions
        )
    except MediaDecodeError:
        fingerprints = None
    return path, fingerprints, time.perf_counter() - started


def _hash_listed(
    path: str, max_pixels: int, regions: bool
) -> tuple[str, MediaFingerprints | None, float]:
    """As ``hashguard match --list`` hashes a file against a hash-only list."""
    started = time.perf_counter()
    budget = VideoBudget(seconds_per_sample=1.0, max_frames=1, max_seconds=1.0)
    hashed = hash_file(Path(path), budget, max_pixels, "check", regions=regions)
    return path, hashed.fingerprints, time.perf_counter() - started


def _hash_all(
    paths: list[str],
    workers: int,
    *,
    for_block: bool = False,
    listed: int = 0,
    regions: bool = False,
) -> dict[str, MediaFingerprints | None]:
    """Every path hashed as the bot hashes it (``for_block`` or as an upload) or, with
    ``listed`` (the pixel limit), as ``hashguard match --list`` does; with or without the
    photos' region probes."""
    results: dict[str, MediaFingerprints | None] = {}
    seconds = 0.0
    count = len(paths)
    with ProcessPoolExecutor(workers) as pool:
        if listed:
            done = pool.map(_hash_listed, paths, [listed] * count, [regions] * count, chunksize=8)
        else:
            done = pool.map(
                hash_as_the_bot, paths, [for_block] * count, [regions] * count, chunksize=8
            )
        for path, fingerprints, took in done:
            results[path] = fingerprints
            seconds += took
    _hash_all.cpu_seconds += seconds  # type: ignore[attr-defined]
    return results


_hash_all.cpu_seconds = 0.0  # type: ignore[attr-defined]


class _Tally:
    """Per transform: variants found as their own original, or as a wrong one; per
    distractor kind: how many matched anything."""

    def __init__(self) -> None:
        self.found: Counter[tuple[str, str]] = Counter()
        self.totals: Counter[str] = Counter()
        self.false_positives: list[str] = []

    def add(self, row: dict[str, str], matched: str | None) -> None:
        transform = row["transform"]
        if row["role"] == "variant":
            self.totals[transform] += 1
            if matched == row["original_id"]:
                self.found[transform, "hit"] += 1
            elif matched is not None:
                self.found[transform, "wrong"] += 1
        else:
            kind = f"distractor:{row['distractor_kind'] or 'random'}"
            self.totals[kind] += 1
            if matched is not None:
                self.found[kind, "fp"] += 1
                self.false_positives.append(f"{row['variant_path']} -> {matched}")

    def transforms(self) -> list[str]:
        return sorted(t for t in self.totals if not t.startswith("distractor:"))

    def distractors(self) -> list[str]:
        return sorted(t for t in self.totals if t.startswith("distractor:"))

    def figures(self) -> dict[str, object]:
        hits = sum(self.found[t, "hit"] for t in self.transforms())
        total = sum(self.totals[t] for t in self.transforms())
        return {
            "variants": total,
            "detected": hits,
            "detection_pct": round(100 * hits / total, 2) if total else 0.0,
            "wrong_original": sum(self.found[t, "wrong"] for t in self.transforms()),
            "false_positives": len(self.false_positives),
            "distractors": sum(self.totals[k] for k in self.distractors()),
            "per_transform": {
                t: round(100 * self.found[t, "hit"] / self.totals[t], 1) for t in self.transforms()
            },
        }


async def _bank_mode(
    corpus: Path,
    originals: list[dict[str, str]],
    queries: list[dict[str, str]],
    blocked: dict[str, MediaFingerprints | None],
    config: Config,
    workers: int,
    folder: Path,
    regions: bool,
) -> _Tally:
    store = SQLiteStore(folder / "quality.sqlite3")
    await store.open()
    service = Core.build(store, config.matching, config.video, config.moderation)
    await service.load()
    entry_of: dict[int, str] = {}
    for row in originals:
        fingerprints = blocked[str(corpus / row["path"])]
        if fingerprints is None:
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
    hashed = _hash_all(
        [str(corpus / row["variant_path"]) for row in queries], workers, regions=regions
    )
    tally = _Tally()
    for row in queries:
        fingerprints = hashed[str(corpus / row["variant_path"])]
        match = await service.matching.find_match(CHAT, fingerprints) if fingerprints else None
        tally.add(row, entry_of.get(match.entry_id) if match is not None else None)
    await service.close()
    await store.close()
    return tally


def _list_mode(
    corpus: Path,
    originals: list[dict[str, str]],
    queries: list[dict[str, str]],
    blocked: dict[str, MediaFingerprints | None],
    config: Config,
    workers: int,
    regions: bool,
) -> _Tally:
    # The list exactly as ``hashguard hash`` prints it (it hashes as /block does), then
    # read back as ``hashguard match --list`` reads it.
    items = [
        ListItem(fingerprints.stored, label=row["id"])
        for row in originals
        if (fingerprints := blocked[str(corpus / row["path"])]) is not None
    ]
    parsed = parse_list(list(text_lines(items)))
    matcher = Matcher(config.matching, config.video)
    lists = ListIndex.of_items(parsed.items, matcher)
    paths = [str(corpus / row["variant_path"]) for row in queries]
    hashed = _hash_all(paths, workers, listed=config.media.max_image_pixels, regions=regions)
    tally = _Tally()
    for row in queries:
        fingerprints = hashed[str(corpus / row["variant_path"])]
        match = best_match(lists, matcher, fingerprints, config) if fingerprints else None
        tally.add(row, lists.names.get(match.entry_id) if match is not None else None)
    return tally


async def _run(
    corpus: Path, workers: int, folder: Path, modes: list[str], regions: str
) -> dict[str, object]:
    originals = [
        row
        for row in csv.DictReader((corpus / "originals.csv").open())
        if row["media"] == "image" and row["role"] == "blocklist"
    ]
    queries = [
        row for row in csv.DictReader((corpus / "manifest.csv").open()) if row["media"] == "image"
    ]
    config = load_config(None, environ={}, require_token=False)

    started = time.perf_counter()
    # Originals are hashed as /block (and ``hashguard hash``) hash them, the rest as
    # uploads are.
    blocked = _hash_all([str(corpus / row["path"]) for row in originals], workers, for_block=True)
    for row in originals:
        if blocked[str(corpus / row["path"])] is None:
            print(f"cannot hash original {row['path']}", file=sys.stderr)
    tallies: dict[str, _Tally] = {}
    if "bank" in modes:
        # Every entry has local features, so "auto" hashes regions as the default config
        # does ("always"), and not under matching.region_probes = "hash_only".
        bank_regions = regions == "on" or (
            regions == "auto" and config.matching.region_probes == "always"
        )
        tallies["bank"] = await _bank_mode(
            corpus, originals, queries, blocked, config, workers, folder, bank_regions
        )
    if "list" in modes:
        tallies["list"] = _list_mode(
            corpus, originals, queries, blocked, config, workers, regions != "off"
        )
    elapsed = time.perf_counter() - started

    images = len(originals) + len(queries) * len(tallies)
    first = next(iter(tallies.values()))
    header = "".join(f" {mode + ' detected':>17} {'wrong':>5}" for mode in tallies)
    print(f"{'transform':<22}{header}")

    def cells(hit: int, wrong: int, total: int) -> str:
        return f" {hit:>5}/{total:<4} {100 * hit / total:5.1f}% {wrong:>5}"

    for transform in first.transforms():
        line = "".join(
            cells(t.found[transform, "hit"], t.found[transform, "wrong"], t.totals[transform])
            for t in tallies.values()
        )
        print(f"{transform:<22}{line}")
    line = ""
    for tally in tallies.values():
        figures = tally.figures()
        line += cells(
            int(figures["detected"]),  # type: ignore[call-overload]
            int(figures["wrong_original"]),  # type: ignore[call-overload]
            int(figures["variants"]),  # type: ignore[call-overload]
        )
    print(f"{'all variants':<22}{line}")
    for kind in first.distractors():
        line = "".join(
            f" {t.found[kind, 'fp']:>5}/{t.totals[kind]:<4} matched" for t in tallies.values()
        )
        print(f"{kind:<22}{line} (must be 0)")
    for mode, tally in tallies.items():
        for fp in tally.false_positives[:20]:
            print(f"  {mode} false positive: {fp}")
    cpu = _hash_all.cpu_seconds  # type: ignore[attr-defined]
    print(
        f"{images} images hashed in {elapsed:.1f} s with {workers} worker(s): "
        f"{images / cpu:.1f} images/s per core (hashing), "
        f"{images / elapsed:.1f} images/s end to end"
    )
    result: dict[str, object] = {"images_per_s_per_core": round(images / cpu, 1)}
    for mode, tally in tallies.items():
        figures = tally.figures()
        if mode == "bank":
            # The bank mode's figures keep their keys at the top level, as before.
            result.update(figures)
        else:
            result[mode] = figures
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path, help="folder make_corpus.py wrote")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--mode", choices=("both", *MODES), default="both", help="default: both")
    parser.add_argument(
        "--regions",
        choices=("auto", "on", "off"),
        default="auto",
        help="photos' region probes: as the bot decides with the config (auto), always, never",
    )
    args = parser.parse_args()
    if not (args.corpus / "manifest.csv").is_file():
        parser.error(f"{args.corpus} has no manifest.csv; build it with make_corpus.py")
    modes = list(MODES) if args.mode == "both" else [args.mode]
    with tempfile.TemporaryDirectory() as folder:
        figures = asyncio.run(_run(args.corpus, args.workers, Path(folder), modes, args.regions))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
