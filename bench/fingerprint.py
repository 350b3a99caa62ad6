"""Benchmark: photos fingerprinted per second per core by ``hashdb.photo.hash_photo``.

Generates N photo-like 1280x960 JPEGs in memory (smoothed colour noise, shapes and grain,
quality 85, fixed seed), then times the full path (decode + 512x512 nearest-neighbour step +
PDQ with 8 dihedral hashes + pHash) and each stage on its own. The process is pinned to one
CPU where the OS allows it, so the figure is per core. Prints a table, then one JSON line.

    python bench/fingerprint.py --n 200
    python bench/fingerprint.py --n 200 --draft   # also try JPEG draft (DCT-scaled) decoding

``--draft`` decodes at half size in libjpeg (``Image.draft``) before hashing. It is faster
but not bit-exact with Meta's reference, so it is measured here only; the bot uses the exact
path. The JSON gives its PDQ/pHash distances from the exact hashes.
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
from PIL import Image, ImageDraw, ImageFilter  # noqa: E402

from hashdb.fingerprint import MediaFingerprints  # noqa: E402
from hashdb.photo import (  # noqa: E402
    decode_image,
    hash_image,
    hash_photo,
    pdq_from_pixels,
    phash_fingerprint,
    reference_pixels,
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


def decode_draft(data: bytes) -> Image.Image:
    """Decode a JPEG at half size in the DCT domain (libjpeg scaling); not reference-exact."""
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (image.width // 2, image.height // 2))
        image.load()
        return image.convert("RGB") if image.mode != "RGB" else image.copy()


def run(n: int, repeat: int, seed: int, draft: bool) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    photos = [make_photo(rng) for _ in range(n)]
    mean_kib = statistics.fmean(len(p) for p in photos) / 1024

    total, exact = best_time(hash_photo, photos, repeat)
    decode, images = best_time(decode_image, photos, repeat)
    downsample, pixels = best_time(reference_pixels, images, repeat)
    pdq, _ = best_time(pdq_from_pixels, pixels, repeat)
    phash, _ = best_time(phash_fingerprint, images, repeat)
    qualities = [fp.stored[0].quality or 0 for fp in exact]

    figures: dict[str, object] = {
        "bench": "fingerprint",
        "n": n,
        "width": WIDTH,
        "height": HEIGHT,
        "jpeg_quality": 85,
        "mean_kib": round(mean_kib, 1),
        "photos_per_s": round(1 / total, 1),
        "ms_per_photo": round(total * 1000, 3),
        "decode_ms": round(decode * 1000, 3),
        "nn_downsample_ms": round(downsample * 1000, 3),
        "pdq_dihedral_ms": round(pdq * 1000, 3),
        "phash_ms": round(phash * 1000, 3),
        "min_pdq_quality": min(qualities),
    }
    if draft:
        draft_total, fast = best_time(lambda d: hash_image(decode_draft(d)), photos, repeat)
        draft_decode, _ = best_time(decode_draft, photos, repeat)
        figures["draft"] = {
            "photos_per_s": round(1 / draft_total, 1),
            "ms_per_photo": round(draft_total * 1000, 3),
            "decode_ms": round(draft_decode * 1000, 3),
            **_distances(exact, fast),
        }
    return figures


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
        f"hash_photo on {figures['n']} JPEGs {WIDTH}x{HEIGHT} q85 "
        f"(~{figures['mean_kib']} KiB), CPU pinned: {figures['pinned_cpu']}"
    )
    rows = [
        ("decode (Pillow, RGB)", figures["decode_ms"]),
        ("NN downsample to 512x512", figures["nn_downsample_ms"]),
        ("PDQ + 8 dihedral", figures["pdq_dihedral_ms"]),
        ("pHash (imagehash)", figures["phash_ms"]),
        ("total hash_photo", figures["ms_per_photo"]),
    ]
    for name, ms in rows:
        print(f"  {name:<28} {ms:>8.3f} ms/photo")
    print(f"  {'photos/s per core':<28} {figures['photos_per_s']:>8}")
    draft = figures.get("draft")
    if isinstance(draft, dict):
        print(
            f"  draft (1/2-scale JPEG decode): {draft['photos_per_s']} photos/s, "
            f"decode {draft['decode_ms']} ms; PDQ exact {draft['pdq_exact_fraction']:.0%}, "
            f"mean/max distance {draft['pdq_mean_distance']}/{draft['pdq_max_distance']}; "
            f"pHash exact {draft['phash_exact_fraction']:.0%}, max {draft['phash_max_distance']}"
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="number of photos (default 200)")
    parser.add_argument("--repeat", type=int, default=3, help="passes; the best is kept")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--draft", action="store_true", help="also measure JPEG draft decode")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    args = parser.parse_args(argv)
    cpu = None if args.no_pin else pin_to_one_cpu()
    figures = run(args.n, args.repeat, args.seed, args.draft)
    figures["pinned_cpu"] = cpu
    print_table(figures)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
