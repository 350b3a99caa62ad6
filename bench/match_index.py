"""Benchmark: exact PDQ radius search in ``hashdb.signal_index.SignalIndex`` at scale.

Builds N random 256-bit PDQ hashes plus planted near-duplicate clusters (copies of random
hashes with 0-40 bits flipped), then measures, in one run and on one core:

- build time (``add_arrays``, the start-up path, plus the first query, which sorts the
  multi-index buckets);
- p50/p99 latency of radius-31 queries, one probe (``query``) and 8 probes
  (``query_many``, as for a photo's 8 dihedral hashes), for multi-index hashing (MIH),
  numpy brute force and FAISS ``IndexBinaryFlat`` (``range_search``), same hashes and
  probes;
- exactness: MIH results equal both baselines on every query they ran, and the real PDQ
  hash lists from ThreatExchange (``../shared/refdata/threatexchange/pdq``) at radius 31;
- the memory the MIH index takes (its numpy arrays, and resident set growth while
  building it, which also counts allocator slack).

FAISS is optional (``pip install '.[bench]'``); without it that column is skipped. Prints
a table, then one JSON line.

    python bench/match_index.py --n 1000000
    python bench/match_index.py --n 10000000 --baseline-queries 50
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import numpy.typing as npt

from hashdb import kernels
from hashdb.signal_index import SignalIndex
from hashdb.signals import PDQ

RADIUS = 31
PROBES_PER_PHOTO = 8
MAX_FLIPS = 40
#: Rows per numpy brute-force step (the XOR/popcount temporaries stay in cache).
BLOCK = 1 << 16
REFDATA = Path(__file__).resolve().parents[2] / "shared/refdata/threatexchange/pdq"

Result = list[tuple[int, int]]


def pin_to_one_core() -> None:
    """Latency is per core: keep the process (and numpy) on one CPU where the OS allows."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def rss_bytes() -> int:
    """Current resident set size (Linux), or 0 where /proc is not available."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def flip_bits(
    rng: np.random.Generator, hashes: npt.NDArray[np.uint64], max_flips: int
) -> npt.NDArray[np.uint64]:
    """Copies of ``hashes`` (rows of 4 words) with up to ``max_flips`` random bits flipped."""
    out = hashes.copy()
    flips = rng.integers(0, max_flips + 1, size=len(out))
    positions = rng.integers(0, 256, size=(len(out), max_flips))
    rows = np.arange(len(out))
    for step in range(max_flips):
        chosen = step < flips
        bit = positions[chosen, step]
        out[rows[chosen], bit // 64] ^= np.uint64(1) << (bit % 64).astype(np.uint64)
    return out


def to_ints(hashes: npt.NDArray[np.uint64]) -> list[int]:
    raw = hashes.astype("<u8").tobytes()
    return [int.from_bytes(raw[i : i + 32], "little") for i in range(0, len(raw), 32)]


def make_hashes(rng: np.random.Generator, n: int) -> npt.NDArray[np.uint64]:
    """``n`` hashes: 99% uniform random, 1% planted near-duplicates in small clusters."""
    planted = n // 100
    hashes = rng.integers(0, 2**64, size=(n, 4), dtype=np.uint64)
    sources = rng.integers(0, n - planted, size=planted)
    # Clusters: several variants of the same source when sources repeat (~10 per source).
    sources = sources % max(1, planted // 10)
    hashes[n - planted :] = flip_bits(rng, hashes[sources], MAX_FLIPS)
    return hashes


def timed(call: Callable[[], Result]) -> tuple[float, Result]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def percentiles(seconds: Sequence[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50_ms": statistics.median(ordered) * 1e3, "p99_ms": p99 * 1e3}


def check_real_pdq(n_random: int, big: SignalIndex, first_id: int) -> dict[str, object]:
    """Exactness on ThreatExchange's haystack/needles, alone and inside the big index."""
    haystack_file = REFDATA / "hashlists/haystack.txt"
    needles_file = REFDATA / "hashlists/needles.txt"
    expected_file = REFDATA / "expected/needles_vs_haystack_matches_d52.csv"
    if not all(p.exists() for p in (haystack_file, needles_file, expected_file)):
        print(f"real PDQ check skipped: {REFDATA} not found")
        return {"skipped": True}
    haystack = [PDQ.parse(line) for line in haystack_file.read_text().split()]
    needles = [PDQ.parse(line) for line in needles_file.read_text().split()]
    expected: dict[int, set[tuple[int, int]]] = {i: set() for i in range(1, len(needles) + 1)}
    with expected_file.open(newline="") as rows:
        for row in csv.DictReader(rows):
            if int(row["hamming_distance"]) <= RADIUS:
                expected[int(row["needle_line"])].add(
                    (int(row["haystack_line"]), int(row["hamming_distance"]))
                )
    # Alone: too small for MIH by default, so force it on.
    alone = SignalIndex(PDQ, min_index_rows=0)
    alone.add_many((line, value) for line, value in enumerate(haystack, 1))
    # Inside the big index: the haystack lines get ids after the random hashes.
    big.add_many((first_id + line, value) for line, value in enumerate(haystack, 1))
    mismatches = 0
    for line, needle in enumerate(needles, 1):
        got_alone = set(alone.query(needle, RADIUS))
        got_big = {
            (entry_id - first_id, d)
            for entry_id, d in big.query(needle, RADIUS)
            if entry_id > first_id
        }
        mismatches += (got_alone != expected[line]) + (got_big != expected[line])
    matches = sum(len(found) for found in expected.values())
    print(
        f"real PDQ: {len(needles)} needles x {len(haystack)} haystack, {matches} expected "
        f"matches within {RADIUS}; alone and inside the {n_random:,}-hash index: "
        f"mismatches = {mismatches}"
    )
    return {"needles": len(needles), "haystack": len(haystack), "matches": matches,
            "mismatches": mismatches}  # fmt: skip


def brute_numpy(
    hashes: npt.NDArray[np.uint64], probes: npt.NDArray[np.uint64], radius: int
) -> Result:
    """numpy brute force: XOR and popcount every row, in cache-sized blocks; best distance
    per row over the probes, sorted like ``SignalIndex.query_many``."""
    best: dict[int, int] = {}
    for start in range(0, len(hashes), BLOCK):
        block = hashes[start : start + BLOCK]
        for probe in probes:
            bits = np.bitwise_count(block ^ probe)
            distance = bits[:, 0].astype(np.uint16) + bits[:, 1] + bits[:, 2] + bits[:, 3]
            for row in np.flatnonzero(distance <= radius).tolist():
                d = int(distance[row])
                if best.get(start + row, 1 << 16) > d:
                    best[start + row] = d
    return sorted(best.items(), key=lambda pair: (pair[1], pair[0]))


def faiss_index(hashes: npt.NDArray[np.uint64]) -> Any:
    """FAISS ``IndexBinaryFlat`` over the same hashes (bytes in any fixed order give the
    same Hamming distances), on one thread; None when faiss is not installed."""
    try:
        import faiss  # type: ignore[import-not-found]
    except ImportError:
        return None
    faiss.omp_set_num_threads(1)
    index = faiss.IndexBinaryFlat(256)
    index.add(np.ascontiguousarray(hashes).view(np.uint8).reshape(len(hashes), 32))
    return index


def faiss_query(index: Any, probes: npt.NDArray[np.uint64], radius: int) -> Result:
    # range_search keeps distances strictly below its radius.
    _, distances, labels = index.range_search(
        np.ascontiguousarray(probes).view(np.uint8).reshape(len(probes), 32), radius + 1
    )
    best: dict[int, int] = {}
    for label, distance in zip(labels.tolist(), distances.tolist(), strict=True):
        if best.get(label, 1 << 16) > distance:
            best[label] = distance
    return sorted(best.items(), key=lambda pair: (pair[1], pair[0]))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="hashes in the index")
    parser.add_argument("--queries", type=int, default=1000, help="timed MIH queries")
    parser.add_argument(
        "--baseline-queries",
        type=int,
        default=100,
        help="of those, also run by numpy brute force and FAISS (and checked equal)",
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    pin_to_one_core()
    rng = np.random.default_rng(args.seed)

    hashes = make_hashes(rng, args.n)
    # Probes: near-duplicates of stored hashes (so hits exist, incl. cluster members) for
    # the first probe of each photo; the other 7 orientations are unrelated hashes.
    near = flip_bits(rng, hashes[rng.integers(0, args.n, size=args.queries)], MAX_FLIPS)
    others = rng.integers(0, 2**64, size=(args.queries, 7, 4), dtype=np.uint64)
    photo_arrays = np.concatenate([near[:, None, :], others], axis=1)
    photos = [to_ints(photo) for photo in photo_arrays]

    kernels.warm_up()
    rss_before = rss_bytes()
    mih = SignalIndex(PDQ)
    start = time.perf_counter()
    mih.add_arrays(np.arange(args.n, dtype=np.int64), hashes)
    added = time.perf_counter()
    mih.query(photos[0][0], RADIUS)  # sorts the buckets
    built = time.perf_counter()
    mih_bytes = rss_bytes() - rss_before
    # The index's numpy arrays (hashes, ids, groups, alive mask, buckets), capacity included.
    array_bytes = sum(v.nbytes for v in vars(mih).values() if isinstance(v, np.ndarray))

    start_faiss = time.perf_counter()
    faiss = faiss_index(hashes)
    faiss_build = time.perf_counter() - start_faiss
    if faiss is None:
        print("FAISS baseline skipped: pip install faiss-cpu (or '.[bench]')")

    figures: dict[str, object] = {
        "n": args.n,
        "radius": RADIUS,
        "build_s": built - start,
        "add_arrays_s": added - start,
        "bucket_sort_s": built - added,
        "mih_rss_mb": mih_bytes / 2**20,
        "mih_arrays_mb": array_bytes / 2**20,
        "faiss_build_s": faiss_build if faiss is not None else None,
    }
    checked = mismatches = hits = 0
    for name, probe_count in (("single", 1), ("8probe", PROBES_PER_PHOTO)):
        times: dict[str, list[float]] = {"mih": [], "numpy": [], "faiss": []}
        for i, photo in enumerate(photos):
            probes = photo[:probe_count]
            seconds, got = timed(lambda p=probes: mih.query_many(p, RADIUS))  # type: ignore[misc]
            times["mih"].append(seconds)
            hits += len(got)
            if i >= args.baseline_queries:
                continue
            arrays = photo_arrays[i, :probe_count]
            seconds, want = timed(lambda a=arrays: brute_numpy(hashes, a, RADIUS))  # type: ignore[misc]
            times["numpy"].append(seconds)
            checked += 1
            mismatches += got != want
            if faiss is not None:
                seconds, want = timed(lambda a=arrays: faiss_query(faiss, a, RADIUS))  # type: ignore[misc]
                times["faiss"].append(seconds)
                checked += 1
                mismatches += got != want
        for method, seconds_list in times.items():
            if seconds_list:
                figures[f"{method}_{name}"] = percentiles(seconds_list)
        mih_p50 = figures[f"mih_{name}"]["p50_ms"]  # type: ignore[index]
        for method in ("numpy", "faiss"):
            if times[method]:
                figures[f"speedup_vs_{method}_{name}_p50"] = (
                    figures[f"{method}_{name}"]["p50_ms"] / mih_p50  # type: ignore[index]
                )

    # A hash added one by one is matchable at once (it sits in the unsorted tail).
    add_times: list[float] = []
    for offset, fresh in enumerate(to_ints(rng.integers(0, 2**64, size=(100, 4), dtype=np.uint64))):
        start = time.perf_counter()
        mih.add(args.n + offset, fresh)
        found = mih.query(fresh, 0)
        add_times.append(time.perf_counter() - start)
        mismatches += found != [(args.n + offset, 0)]
        checked += 1
    figures["add_then_query"] = percentiles(add_times)
    figures["checked_queries"] = checked
    figures["mismatches"] = mismatches
    figures["hits"] = hits

    print(f"\n{args.n:,} PDQ hashes ({args.n // 100:,} planted near-duplicates), radius {RADIUS}")
    print(
        f"build {figures['build_s']:.2f} s (add_arrays {figures['add_arrays_s']:.2f} s, "
        f"bucket sort {figures['bucket_sort_s']:.2f} s); MIH index: arrays "
        f"{figures['mih_arrays_mb']:.0f} MB, RSS growth {figures['mih_rss_mb']:.0f} MB"
    )
    print(f"{'query':<8} {'method':<6} {'p50':>9} {'p99':>9} {'MIH is x faster':>16}")
    for name in ("single", "8probe"):
        for method in ("mih", "numpy", "faiss"):
            found_p = figures.get(f"{method}_{name}")
            if not isinstance(found_p, dict):
                continue
            speedup = figures.get(f"speedup_vs_{method}_{name}_p50")
            print(
                f"{name:<8} {method:<6} {found_p['p50_ms']:>7.3f}ms {found_p['p99_ms']:>7.3f}ms "
                f"{'' if speedup is None else f'{speedup:.1f}':>16}"
            )
    added_p = figures["add_then_query"]
    assert isinstance(added_p, dict)
    print(
        f"add one hash, then query it: p50 {added_p['p50_ms']:.3f} ms, "
        f"p99 {added_p['p99_ms']:.3f} ms"
    )
    print(
        f"exactness vs numpy brute force and FAISS: {checked} results checked, "
        f"mismatches = {mismatches}"
    )
    figures["real_pdq"] = check_real_pdq(args.n, mih, args.n + 1000)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
