"""Benchmark: the picture's own rectangle (``hashdb.video_regions.find_regions``) on the dev
corpus, and its cost.

Every video of the corpus (blocklisted originals, their variants, distractors) is read at
1 frame/s with PyAV, scaled to <= 384 px on the long side, as grey, which is what the
function is given in use. For ``vid_vertical_blur`` and ``vid_caption_bar`` the manifest's
params give the true box (``content_box``; ``bar_px`` above the picture); the table shows
the box found and its worst side's error as a share of that side. Every other video should
get no region, except one that is genuinely letterboxed; the table lists what each got.

Photos (``--photos``): each corpus image as a one-frame input (spatial cues only, as photos
would use it): how many originals and distractors get any region (should be none), and how
many padded copies (``border``, ``pad_square``) and captioned or screenshotted ones do.

Cost: ``find_regions`` on 60 frames of 384x216 (a moving clip, a letterboxed one), timed
with ``timeit`` (best of 5), in milliseconds.

    python bench/video_regions.py --corpus /work/corpus_dev
    python bench/video_regions.py --corpus /work/corpus_dev --photos
    python bench/video_regions.py                    # cost only

Ends with one JSON line of all figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import timeit
from collections.abc import Sequence
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import av  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

from hashdb.video_regions import Region, find_regions  # noqa: E402

LONG_SIDE = 384
Grey = list[npt.NDArray[np.uint8]]
Box = tuple[int, int, int, int]


def sampled_grey(path: Path, seconds_per_sample: float = 1.0) -> tuple[Grey, float]:
    """Frames at 1 frame/s (the first, then the first at or after each second), grey, scaled
    to <= LONG_SIDE on the long side; and the scale applied."""
    frames: Grey = []
    scale = 1.0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        next_time = 0.0
        for frame in container.decode(stream):
            time = float(frame.time) if frame.time is not None else next_time
            if time + 1e-6 < next_time:
                continue
            next_time += seconds_per_sample
            grey = frame.to_ndarray(format="gray")
            height, width = grey.shape
            scale = min(1.0, LONG_SIDE / max(height, width))
            if scale < 1.0:
                size = (round(width * scale), round(height * scale))
                grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
            frames.append(grey)
    return frames, scale


def true_box(transform: str, params: dict[str, Any], size: tuple[int, int]) -> Box | None:
    """The picture's box in the file's pixels, where the manifest says."""
    width, height = size
    if transform == "vid_vertical_blur":
        left, top, right, bottom = params["content_box"]
        return (left, top, right, bottom)
    if transform == "vid_caption_bar":
        return (0, int(params["bar_px"]), width, height)
    return None


def box_error(found: Region, truth: Box, size: tuple[int, int]) -> float:
    """The worst side's distance from the truth, as a share of the frame's side."""
    width, height = size
    got = (found.left, found.top, found.right, found.bottom)
    return max(abs(g - t) / s for g, t, s in zip(got, truth, (width, height) * 2, strict=True))


def corpus(root: Path) -> dict[str, Any]:
    rows = [r for r in csv.DictReader((root / "manifest.csv").open()) if r["media"] == "video"]
    originals = [
        r for r in csv.DictReader((root / "originals.csv").open()) if r["media"] == "video"
    ]
    items = [(r["path"], "original", {}) for r in originals if r["role"] == "blocklist"]
    items += [(r["variant_path"], r["transform"], json.loads(r["params"])) for r in rows]
    print(f"{'file':42} {'edit':18} {'size':>9}  {'regions (best first)':44} truth / error")
    truths: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    for path, transform, params in items:
        frames, scale = sampled_grey(root / path)
        height, width = frames[0].shape
        regions = find_regions(frames)
        file_size = (round(width / scale), round(height / scale))
        truth = true_box(transform, params, file_size)
        shown = " ".join(f"{r.kind}({r.left},{r.top},{r.right},{r.bottom})" for r in regions) or "-"
        line = f"{path:42} {transform:18} {width:>4}x{height:<4}  {shown:44}"
        record: dict[str, Any] = {"path": path, "transform": transform, "frames": len(frames)}
        record["regions"] = [[r.kind, r.left, r.top, r.right, r.bottom] for r in regions]
        if truth is not None:
            scaled: Box = tuple(round(v * scale) for v in truth)  # type: ignore[assignment]
            error = box_error(regions[0], scaled, (width, height)) if regions else None
            record.update(truth=list(scaled), error=error)
            line += f" {scaled} / " + (f"{error:.1%}" if error is not None else "missed")
            truths.append(record)
        else:
            others.append(record)
        print(line)
    found = [t for t in truths if t["error"] is not None]
    close = [t for t in found if t["error"] <= 0.03]
    with_region = [o for o in others if o["regions"]]
    summary = {
        "reframed": len(truths),
        "reframed_found": len(found),
        "reframed_within_3pct": len(close),
        "reframed_worst_error": max((t["error"] for t in found), default=None),
        "others": len(others),
        "others_with_region": [o["path"] for o in with_region],
    }
    print()
    for transform in ("vid_vertical_blur", "vid_caption_bar"):
        mine = [t for t in truths if t["transform"] == transform]
        hits = [t for t in mine if t["error"] is not None]
        errors = ", ".join(f"{t['error']:.1%}" for t in hits)
        print(f"{transform}: {len(hits)}/{len(mine)} found; side errors {errors or '-'}")
    print(f"other videos with any region: {len(with_region)}/{len(others)}")
    for o in with_region:
        print(f"  {o['path']} ({o['transform']}): {o['regions']}")
    return {"corpus": summary, "rows": truths + others}


PHOTO_EDITS = ("none", "jpeg_q30", "hflip", "border", "pad_square", "overlay_text", "screenshot")


def photos(root: Path) -> dict[str, Any]:
    def grey(path: str) -> npt.NDArray[np.uint8]:
        image = cv2.imread(str(root / path), cv2.IMREAD_GRAYSCALE)
        height, width = image.shape
        scale = min(1.0, LONG_SIDE / max(height, width))
        size = (round(width * scale), round(height * scale))
        return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)

    groups: dict[str, list[str]] = {"originals": [], "distractors": []}
    for row in csv.DictReader((root / "originals.csv").open()):
        if row["media"] == "image":
            groups["originals" if row["role"] == "blocklist" else "distractors"].append(row["path"])
    for row in csv.DictReader((root / "manifest.csv").open()):
        if row["media"] == "image" and row["transform"] in PHOTO_EDITS[1:]:
            groups.setdefault(row["transform"], []).append(row["variant_path"])
    counts: dict[str, list[int]] = {}
    print(f"{'photos':14} {'with a region':>14}  kinds")
    for name, paths in groups.items():
        kinds: dict[str, int] = {}
        for path in paths:
            regions = find_regions([grey(path)])
            if regions:
                kinds[regions[0].kind] = kinds.get(regions[0].kind, 0) + 1
        found = sum(kinds.values())
        counts[name] = [found, len(paths)]
        print(f"{name:14} {found:>6}/{len(paths):<7}  {kinds or ''}")
    return {"photos": counts}


def cost(repeat: int = 5) -> dict[str, float]:
    """Milliseconds for 60 frames of 384x216: a plain moving clip, and one letterboxed."""
    rng = np.random.default_rng(1)
    base = cv2.resize(
        rng.integers(0, 256, (60, 100), dtype=np.uint8), (1200, 400), interpolation=cv2.INTER_CUBIC
    )
    plain = [np.ascontiguousarray(base[100:316, 10 * i : 10 * i + 384]) for i in range(60)]
    boxed = []
    for frame in plain:
        framed = np.zeros_like(frame)
        framed[28:188] = cv2.resize(frame, (384, 160), interpolation=cv2.INTER_AREA)
        boxed.append(framed)
    figures: dict[str, float] = {}
    for name, frames in (("plain", plain), ("letterbox", boxed)):
        best = min(timeit.repeat(lambda f=frames: find_regions(f), number=5, repeat=repeat)) / 5
        figures[f"ms_60x384x216_{name}"] = round(best * 1000, 2)
        print(
            f"find_regions, 60 frames of 384x216, {name}: {best * 1000:.1f} ms (best of {repeat})"
        )
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, help="dev corpus folder (make_corpus.py output)")
    parser.add_argument("--photos", action="store_true", help="also the corpus's images")
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {}
    if args.corpus is not None:
        figures.update(corpus(args.corpus))
        print()
        if args.photos:
            figures.update(photos(args.corpus))
            print()
    figures["cost"] = cost()
    figures.pop("rows", None)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
