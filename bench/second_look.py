"""What the second look at a washed-out or dim upload (``hashdb.local_extract.SECOND_LOOK_SHARE``)
costs a check: how many uploads take it, and the local features' time with and without it.

Reads every ``--step``-th query image of a corpus folder (the dev corpus, or the set
``bench/photo_edits.py`` writes), decodes it as a check does (quick decode), and times
``extract`` both ways on one CPU.

    python bench/second_look.py /work/corpus_dev
    python bench/second_look.py OUT   # grids and screen photos
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hashdb.local import extract, takes_second_look  # noqa: E402
from hashdb.photo import PDQ_REFERENCE_DIMS, decode_image  # noqa: E402


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, help="a folder with manifest.csv")
    parser.add_argument("--step", type=int, default=5, help="every n-th query image")
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    rows = [
        row
        for row in csv.DictReader((args.corpus / "manifest.csv").open())
        if row["media"] == "image"
    ][:: args.step]
    images = [
        decode_image(
            (args.corpus / row["variant_path"]).read_bytes(), draft_side=PDQ_REFERENCE_DIMS
        )
        for row in rows
    ]
    timings: dict[bool, list[float]] = {False: [], True: []}
    taken = 0
    for image in images:
        for second in (False, True):
            started = time.perf_counter()
            extract(image, second_look=second)
            timings[second].append(time.perf_counter() - started)
        taken += takes_second_look(image)
    once, twice = (statistics.fmean(timings[k]) * 1000 for k in (False, True))
    print(
        f"{len(images)} uploads from {args.corpus}: {taken} ({100 * taken / len(images):.0f}%) "
        f"take the second look; local features {once:.2f} ms -> {twice:.2f} ms on average "
        f"(p50 {statistics.median(timings[True]) * 1000:.2f} ms)"
    )
    print(
        json.dumps(
            {
                "bench": "second_look",
                "uploads": len(images),
                "second_look_share": round(taken / len(images), 3),
                "local_ms": round(once, 2),
                "local_ms_with_second_look": round(twice, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
