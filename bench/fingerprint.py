"""Benchmark: photos fingerprinted per second per core by ``hashdb.photo.hash_photo``.

Generates N photo-like 1280x960 JPEGs in memory (smoothed colour noise, shapes and grain,
quality 85, fixed seed), then times each stage on its own and three whole paths:

- the upload check in a group whose banks hold hash lists only: a quick decode (libjpeg
  scales the JPEG by 1/2 in the DCT, ``Image.draft``), the 512x512 nearest-neighbour step,
  PDQ with its 8 dihedral hashes, a quick pHash (box reduction before Lanczos);
- the same where some bank holds blocked photos, so local features (ORB) are extracted too;
- hashing from the reference's exact pixels, as blocking and ``hashguard hash`` do;

and what region probes add to a check (``hashdb.photo.region_probes``: finding the
picture's rectangles inside the photo and hashing them, done when a bank holds entries
without local features): the median per photo over these plain photos, and over the same
photos bordered or letterboxed (where a region is found and hashed).

The quick path is not bit-exact with Meta's reference; the JSON gives its PDQ and pHash
distances from the exact hashes. The process is pinned to one CPU where the OS allows it,
so the figures are per core. Prints a table, then one JSON line.

With ``--vs-pdqhash`` (the ``pdqhash`` package installed) the PDQ stage and the quick path
are also timed with ``pdqhash`` in place of ``hashdb.pdq``, in the same run on the same
photos: the figures before and after PDQ became our own.

    python bench/fingerprint.py --n 200
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

# Stage timings are single-threaded; keep numpy's BLAS from borrowing other cores.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFilter, ImageOps  # noqa: E402

import hashdb.photo  # noqa: E402
from hashdb import pdq as our_pdq  # noqa: E402
from hashdb.fingerprint import MediaFingerprints  # noqa: E402
from hashdb.local import extract as extract_local  # noqa: E402
from hashdb.photo import (  # noqa: E402
    decode_image,
    hash_photo,
    pdq_from_pixels,
    phash_fingerprint,
    reference_pixels,
    region_probes,
)

T = TypeVar("T")
U = TypeVar("U")

WIDTH, HEIGHT = 1280, 960


def make_photo(rng: np.random.Generator, width: int = WIDTH, height: int = HEIGHT) -> bytes:
    """One photo-like JPEG: smooth colour field, a few shapes, sensor-like grain."""
    coarse = rng.integers(0, 256, size=(height // 64 + 2, width // 64 + 2, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(8):
        x0, y0 = int(rng.integers(0, width - 100)), int(rng.integers(0, height - 100))
        x1 = x0 + int(rng.integers(40, width // 2))
        y1 = y0 + int(rng.integers(40, height // 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        else:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(2))
    # Grain gives the JPEG real high-frequency content, so decode cost is realistic.
    grain = rng.integers(-6, 7, size=(height, width, 1), dtype=np.int16)
    pixels = np.clip(np.asarray(image, dtype=np.int16) + grain, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def pin_to_one_cpu() -> int | None:
    """Run on a single CPU so photos/s is per core; returns the CPU, or None if unsupported."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def best_time(fn: Callable[[T], U], items: Sequence[T], repeat: int) -> tuple[float, list[U]]:
    """Fastest of ``repeat`` passes over ``items``, in seconds per item, and the results."""
    best = float("inf")
    results: list[U] = []
    for _ in range(repeat):
        start = time.perf_counter()
        results = [fn(item) for item in items]
        best = min(best, (time.perf_counter() - start) / len(items))
    return best, results


def median_time(fn: Callable[[T], U], items: Sequence[T], repeat: int) -> float:
    """Median over ``items`` of each item's fastest of ``repeat`` runs, in seconds."""
    times = []
    for item in items:
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            fn(item)
            best = min(best, time.perf_counter() - start)
        times.append(best)
    return statistics.median(times)


def reframed(data: bytes, number: int) -> bytes:
    """The photo with a plain border, or letterboxed to a square, re-encoded."""
    image = decode_image(data)
    if number % 2:
        image = ImageOps.expand(image, border=64, fill=(250, 250, 250))
    else:
        side = max(image.size)
        canvas = Image.new("RGB", (side, side))
        canvas.paste(image, (0, (side - image.height) // 2))
        image = canvas
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def with_pdqhash(photos: list[bytes], pixels: list[np.ndarray], repeat: int) -> dict[str, float]:
    """The PDQ stage and the quick path with the ``pdqhash`` package doing PDQ."""
    import pdqhash

    class PdqhashModule:
        compute = staticmethod(pdqhash.compute)
        compute_dihedral = staticmethod(pdqhash.compute_dihedral)

    hashdb.photo.pdq = PdqhashModule  # type: ignore[assignment]
    try:
        stage, _ = best_time(pdq_from_pixels, pixels, repeat)
        total, _ = best_time(lambda d: hash_photo(d, quick=True, local=False), photos, repeat)
    finally:
        hashdb.photo.pdq = our_pdq
    return {
        "pdqhash_photos_per_s": round(1 / total, 1),
        "pdqhash_ms_per_photo": round(total * 1000, 3),
        "pdqhash_dihedral_ms": round(stage * 1000, 3),
    }


def run(n: int, repeat: int, seed: int, vs_pdqhash: bool = False) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    photos = [make_photo(rng) for _ in range(n)]
    mean_kib = statistics.fmean(len(p) for p in photos) / 1024
    our_pdq.warm_up()

    total, exact = best_time(hash_photo, photos, repeat)
    decode, images = best_time(decode_image, photos, repeat)
    downsample, pixels = best_time(reference_pixels, images, repeat)
    pdq, _ = best_time(pdq_from_pixels, pixels, repeat)
    phash, _ = best_time(phash_fingerprint, images, repeat)
    local, _ = best_time(extract_local, images, repeat)
    qualities = [fp.stored[0].quality or 0 for fp in exact]
    quick_total, quick = best_time(lambda d: hash_photo(d, quick=True), photos, repeat)
    bare_total, _ = best_time(lambda d: hash_photo(d, quick=True, local=False), photos, repeat)
    quick_decode, quick_images = best_time(
        lambda d: decode_image(d, draft_side=512), photos, repeat
    )
    regions_total, _ = best_time(
        lambda d: hash_photo(d, quick=True, local=False, regions=True), photos, repeat
    )
    regions_plain = median_time(region_probes, quick_images, repeat)
    framed = [decode_image(reframed(d, i), draft_side=512) for i, d in enumerate(photos)]
    regions_framed = median_time(region_probes, framed, repeat)
    found = sum(bool(region_probes(image)) for image in framed)
    before = with_pdqhash(photos, pixels, repeat) if vs_pdqhash else {}

    return {
        **before,
        "bench": "fingerprint",
        "n": n,
        "width": WIDTH,
        "height": HEIGHT,
        "jpeg_quality": 85,
        "mean_kib": round(mean_kib, 1),
        # What the bot runs on an upload in a group whose banks hold hash lists only.
        "photos_per_s": round(1 / bare_total, 1),
        "ms_per_photo": round(bare_total * 1000, 3),
        # ... and where some bank holds blocked photos (local features extracted too).
        "with_local_photos_per_s": round(1 / quick_total, 1),
        "with_local_ms_per_photo": round(quick_total * 1000, 3),
        # The reference pixels (what blocking and `hashguard hash` use), local features too.
        "exact_photos_per_s": round(1 / total, 1),
        "exact_ms_per_photo": round(total * 1000, 3),
        # ... and in a group whose banks hold entries without local features (hash lists).
        "with_regions_photos_per_s": round(1 / regions_total, 1),
        "with_regions_ms_per_photo": round(regions_total * 1000, 3),
        "regions_p50_ms_plain": round(regions_plain * 1000, 3),
        "regions_p50_ms_reframed": round(regions_framed * 1000, 3),
        "reframed_with_region": found,
        "decode_ms": round(decode * 1000, 3),
        "quick_decode_ms": round(quick_decode * 1000, 3),
        "nn_downsample_ms": round(downsample * 1000, 3),
        "pdq_dihedral_ms": round(pdq * 1000, 3),
        "phash_ms": round(phash * 1000, 3),
        "local_features_ms": round(local * 1000, 3),
        "min_pdq_quality": min(qualities),
        "quick_vs_exact": _distances(exact, quick),
    }


def _distances(exact: list[MediaFingerprints], fast: list[MediaFingerprints]) -> dict[str, float]:
    pdq = [a.stored[0].distance(b.stored[0]) for a, b in zip(exact, fast, strict=True)]
    phash = [a.stored[1].distance(b.stored[1]) for a, b in zip(exact, fast, strict=True)]
    return {
        "pdq_exact_fraction": round(sum(d == 0 for d in pdq) / len(pdq), 3),
        "pdq_mean_distance": round(statistics.fmean(pdq), 2),
        "pdq_max_distance": max(pdq),
        "phash_exact_fraction": round(sum(d == 0 for d in phash) / len(phash), 3),
        "phash_max_distance": max(phash),
    }


def print_table(figures: dict[str, object]) -> None:
    print(
        f"{figures['n']} JPEGs {WIDTH}x{HEIGHT} q85 (~{figures['mean_kib']} KiB), "
        f"CPU pinned: {figures['pinned_cpu']}"
    )
    rows = [
        ("decode, exact (Pillow, RGB)", figures["decode_ms"]),
        ("decode, quick (JPEG draft)", figures["quick_decode_ms"]),
        ("NN downsample to 512x512", figures["nn_downsample_ms"]),
        ("PDQ + 8 dihedral", figures["pdq_dihedral_ms"]),
        ("pHash (imagehash)", figures["phash_ms"]),
        ("local features (ORB)", figures["local_features_ms"]),
        ("regions found + hashed, p50, plain", figures["regions_p50_ms_plain"]),
        ("regions found + hashed, p50, re-framed", figures["regions_p50_ms_reframed"]),
    ]
    for name, ms in rows:
        print(f"  {name:<40} {ms:>8.3f} ms/photo")
    print(f"  {'path':<44} {'ms/photo':>9} {'photos/s':>9}")
    for name, key in (
        ("upload check, banks of hash lists only", ""),
        ("upload check, banks with blocked photos", "with_local_"),
        ("upload check, hash lists, region probes", "with_regions_"),
        ("exact pixels (block, hashguard hash)", "exact_"),
    ):
        print(
            f"  {name:<44} {figures[key + 'ms_per_photo']:>9.3f} {figures[key + 'photos_per_s']:>9}"
        )
    if "pdqhash_photos_per_s" in figures:
        print(
            f"  with pdqhash: PDQ + 8 dihedral {figures['pdqhash_dihedral_ms']:.3f} ms, upload "
            f"check (hash lists) {figures['pdqhash_ms_per_photo']:.3f} ms = "
            f"{figures['pdqhash_photos_per_s']} photos/s"
        )
    distances = figures["quick_vs_exact"]
    assert isinstance(distances, dict)
    print(
        f"  quick vs exact pixels: PDQ exact {distances['pdq_exact_fraction']:.0%}, "
        f"mean/max distance {distances['pdq_mean_distance']}/{distances['pdq_max_distance']}; "
        f"pHash exact {distances['phash_exact_fraction']:.0%}, "
        f"max {distances['phash_max_distance']}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="number of photos (default 200)")
    parser.add_argument("--repeat", type=int, default=3, help="passes; the best is kept")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    parser.add_argument(
        "--vs-pdqhash", action="store_true", help="time the pdqhash package too (before)"
    )
    args = parser.parse_args(argv)
    cpu = None if args.no_pin else pin_to_one_cpu()
    figures = run(args.n, args.repeat, args.seed, args.vs_pdqhash)
    figures["pinned_cpu"] = cpu
    print_table(figures)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
