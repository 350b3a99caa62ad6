"""Benchmark: exact PDQ radius search in ``hashdb.index.SignalIndex`` at scale.

Builds N random 256-bit PDQ hashes plus planted near-duplicate clusters (copies of random
hashes with 0-40 bits flipped), then measures, in one run and on one core:

- build time (``add_many`` plus the first query, which sorts the multi-index buckets);
- p50/p99 latency of radius-31 queries, one probe (``query``) and 8 probes
  (``query_many``, as for a photo's 8 dihedral hashes), for multi-index hashing (MIH) and
  for numpy brute force (the same class forced onto its linear scan);
- exactness: MIH results equal brute force on every timed query, and on the real PDQ hash
  lists from ThreatExchange (``../shared/refdata/threatexchange/pdq``) at radius 31;
- the memory the MIH index takes (its numpy arrays, and resident set growth while
  building it, which also counts Python objects and allocator slack).

Prints a table, then one JSON line.

    python bench/match_index.py --n 1000000
    python bench/match_index.py --n 10000000 --brute-queries 20
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import numpy.typing as npt

from hashdb.index import SignalIndex
from hashdb.signals import PDQ

RADIUS = 31
PROBES_PER_PHOTO = 8
MAX_FLIPS = 40
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


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="hashes in the index")
    parser.add_argument("--queries", type=int, default=1000, help="timed MIH queries")
    parser.add_argument(
        "--brute-queries", type=int, default=100, help="of those, also run by brute force"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    pin_to_one_core()
    rng = np.random.default_rng(args.seed)

    hashes = make_hashes(rng, args.n)
    values = to_ints(hashes)
    # Probes: near-duplicates of stored hashes (so hits exist, incl. cluster members) for
    # the first probe of each photo; the other 7 orientations are unrelated hashes.
    near = to_ints(flip_bits(rng, hashes[rng.integers(0, args.n, size=args.queries)], MAX_FLIPS))
    others = to_ints(rng.integers(0, 2**64, size=(args.queries * 7, 4), dtype=np.uint64))
    photos = [[near[i], *others[i * 7 : i * 7 + 7]] for i in range(args.queries)]

    rss_before = rss_bytes()
    mih = SignalIndex(PDQ)
    start = time.perf_counter()
    mih.add_many(enumerate(values))
    added = time.perf_counter()
    mih.query(values[0], RADIUS)  # sorts the buckets
    built = time.perf_counter()
    mih_bytes = rss_bytes() - rss_before
    # The index's numpy arrays (hashes, ids, groups, alive mask, buckets), capacity included;
    # the RSS growth also counts the per-entry row lists and allocator slack from the build.
    array_bytes = sum(v.nbytes for v in vars(mih).values() if isinstance(v, np.ndarray))

    brute = SignalIndex(PDQ, min_index_rows=sys.maxsize)
    brute.add_many(enumerate(values))

    figures: dict[str, object] = {
        "n": args.n,
        "radius": RADIUS,
        "build_s": built - start,
        "add_many_s": added - start,
        "bucket_sort_s": built - added,
        "mih_rss_mb": mih_bytes / 2**20,
        "mih_arrays_mb": array_bytes / 2**20,
    }
    checked = mismatches = hits = 0
    for name, probe_count in (("single", 1), ("8probe", PROBES_PER_PHOTO)):
        mih_times: list[float] = []
        brute_times: list[float] = []
        for i, photo in enumerate(photos):
            probes = photo[:probe_count]
            seconds, got = timed(lambda p=probes: mih.query_many(p, RADIUS))  # type: ignore[misc]
            mih_times.append(seconds)
            hits += len(got)
            if i < args.brute_queries:
                seconds, want = timed(lambda p=probes: brute.query_many(p, RADIUS))  # type: ignore[misc]
                brute_times.append(seconds)
                checked += 1
                mismatches += got != want
        mih_p, brute_p = percentiles(mih_times), percentiles(brute_times)
        figures[f"mih_{name}"] = mih_p
        figures[f"brute_{name}"] = brute_p
        figures[f"speedup_{name}_p50"] = brute_p["p50_ms"] / mih_p["p50_ms"]

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
        f"build {figures['build_s']:.2f} s (add_many {figures['add_many_s']:.2f} s, "
        f"bucket sort {figures['bucket_sort_s']:.2f} s); MIH index: arrays "
        f"{figures['mih_arrays_mb']:.0f} MB, RSS growth {figures['mih_rss_mb']:.0f} MB"
    )
    print(
        f"{'query':<10} {'MIH p50':>9} {'MIH p99':>9} {'brute p50':>10} {'brute p99':>10} {'x':>6}"
    )
    for name in ("single", "8probe"):
        m, b = figures[f"mih_{name}"], figures[f"brute_{name}"]
        assert isinstance(m, dict) and isinstance(b, dict)
        print(
            f"{name:<10} {m['p50_ms']:>7.3f}ms {m['p99_ms']:>7.3f}ms {b['p50_ms']:>8.3f}ms "
            f"{b['p99_ms']:>8.3f}ms {b['p50_ms'] / m['p50_ms']:>6.1f}"
        )
    added_p = figures["add_then_query"]
    assert isinstance(added_p, dict)
    print(
        f"add one hash, then query it: p50 {added_p['p50_ms']:.3f} ms, "
        f"p99 {added_p['p99_ms']:.3f} ms"
    )
    print(f"exactness vs brute force: {checked} queries checked, mismatches = {mismatches}")
    figures["real_pdq"] = check_real_pdq(args.n, mih, args.n + 1000)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
