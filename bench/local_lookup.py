"""Local-feature lookups: time per query photo that matches nothing, and index build time.

Indexes the local features of every blocklisted original of a corpus built by
``../shared/corpus/make_corpus.py`` (as the bot's start-up does), then searches the
features of every distractor image, which must find nothing.

    python bench/local_lookup.py corpus_dev

Ends with one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hashdb.local import DEFAULT_MIN_POINTS, LocalIndex, extract


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path, help="folder make_corpus.py wrote")
    args = parser.parse_args()
    rows = list(csv.DictReader((args.corpus / "originals.csv").open()))
    originals = [r["path"] for r in rows if r["media"] == "image" and r["role"] == "blocklist"]
    queries = [
        r["variant_path"]
        for r in csv.DictReader((args.corpus / "manifest.csv").open())
        if r["media"] == "image" and r["role"] == "distractor"
    ]
    stored = [
        (n, extract(Image.open(args.corpus / p).convert("RGB"))) for n, p in enumerate(originals)
    ]
    index = LocalIndex()
    started = time.perf_counter()
    index.add_many((n, 1, f) for n, f in stored if f is not None)
    build_ms = (time.perf_counter() - started) * 1000
    descriptors = sum(len(f) for _, f in stored if f is not None)
    features = [extract(Image.open(args.corpus / p).convert("RGB")) for p in queries]
    timings: list[float] = []
    found = 0
    for query in features:
        if query is None:
            continue
        started = time.perf_counter()
        found += bool(index.search(query, [1], DEFAULT_MIN_POINTS))
        timings.append((time.perf_counter() - started) * 1000)
    figures = {
        "blocked_photos": len(index),
        "descriptors": descriptors,
        "build_ms": round(build_ms, 1),
        "queries": len(timings),
        "p50_ms": round(statistics.median(timings), 2),
        "max_ms": round(max(timings), 2),
        "false_matches": found,
    }
    for key, value in figures.items():
        print(f"{key:>15}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
