"""Benchmark: the picture's own rectangle (``hashdb.video_regions.find_regions``) on the dev
corpus, and its cost.

Every video of the corpus (blocklisted originals, their variants, distractors) is read at
1 frame/s with PyAV, scaled to <= 384 px on the long side, as grey, which is what the
function is given in use. For ``vid_vertical_blur`` and ``vid_caption_bar`` the manifest's
params give the true box (``content_box``; ``bar_px`` above the picture); the table shows
the box found and its worst side's error as a share of that side. Every other video should
get no region, except one that is genuinely letterboxed; the table lists what each got.

Re-framed here (``--reframe``): the corpus's real and slideshow originals (first 10 s),
re-framed by this script in ways the corpus does not (bars in black and in a colour, above
and below or at the sides; a fill scaled to cover, at the top and bottom or at the sides; a
caption bar below; a caption over a fill; a round mask on a square crop), encoded with
H.264 at CRF 32 and read back as above: found, and the worst side's error.

Photos (``--photos``): each corpus image as a one-frame input (spatial cues only, as photos
would use it): how many originals and distractors get any region (should be none), and how
many padded copies (``border``, ``pad_square``) and captioned or screenshotted ones do.

Cost: ``find_regions`` on 60 frames of 384x216 (a moving clip, a letterboxed one), timed
with ``timeit`` (best of 5), in milliseconds.

    python bench/video_regions.py --corpus /work/corpus_dev
    python bench/video_regions.py --corpus /work/corpus_dev --photos --reframe
    python bench/video_regions.py                    # cost only

Ends with one JSON line of all figures.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import tempfile
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

from hashdb.regions import Region  # noqa: E402
from hashdb.video_regions import find_regions  # noqa: E402

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


RgbFrames = list[npt.NDArray[np.uint8]]


def _read_rgb(path: Path, seconds: float = 10.0) -> tuple[RgbFrames, float]:
    """Frames of the first ``seconds``, RGB, scaled to <= 480 px on the long side."""
    frames: RgbFrames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 25)
        for frame in container.decode(stream):
            if frame.time is not None and frame.time >= seconds:
                break
            rgb = frame.to_ndarray(format="rgb24")
            height, width = rgb.shape[:2]
            scale = min(1.0, 480 / max(height, width))
            size = (round(width * scale) // 2 * 2, round(height * scale) // 2 * 2)
            frames.append(np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)))
    return frames, fps


def _encoded_sampled(frames: RgbFrames, fps: float) -> tuple[Grey, float]:
    """H.264 at CRF 32 through a temporary file, read back as ``sampled_grey`` reads."""
    height, width = frames[0].shape[:2]
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=round(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "32", "preset": "veryfast"}
        for pixels in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    with tempfile.NamedTemporaryFile(suffix=".mp4") as file:
        file.write(buffer.getvalue())
        file.flush()
        return sampled_grey(Path(file.name))


def _reframings(width: int, height: int) -> dict[str, tuple[tuple[int, int], Box, str]]:
    """name -> (frame size, picture box, kind) for a picture of width x height."""
    even = lambda v: int(v) // 2 * 2  # noqa: E731
    vertical_w = even(min(width, 360))
    vertical_h = even(vertical_w * 16 / 9)
    fit_h = even(height * vertical_w / width)
    top = even((vertical_h - fit_h) / 2)
    wide_h = even(height)
    wide_w = even(wide_h * 21 / 9)
    fit_w = even(width * wide_h / height)
    left = even((wide_w - fit_w) / 2)
    bar = even(height * 0.2)
    side = even(min(width, height))
    half = round(side / 2 / np.sqrt(2))
    return {
        "bars_black_9x16": ((vertical_w, vertical_h), (0, top, vertical_w, top + fit_h), "bars"),
        "bars_colour_21x9": ((wide_w, wide_h), (left, 0, left + fit_w, wide_h), "bars"),
        "fill_9x16": ((vertical_w, vertical_h), (0, top, vertical_w, top + fit_h), "blur_fill"),
        "fill_21x9": ((wide_w, wide_h), (left, 0, left + fit_w, wide_h), "blur_fill"),
        "caption_below": (
            (even(width), even(height) + bar),
            (0, 0, even(width), even(height)),
            "caption",
        ),
        "caption_on_fill": ((vertical_w, vertical_h), (0, top, vertical_w, top + fit_h), "mixed"),
        "round_mask": (
            (side, side),
            (side // 2 - half, side // 2 - half, side // 2 + half, side // 2 + half),
            "circle",
        ),
    }


def _reframe(frames: RgbFrames, name: str, size: tuple[int, int], box: Box) -> RgbFrames:
    width, height = size
    left, top, right, bottom = box
    out: RgbFrames = []
    caption = np.full((max(8, top // 2), width, 3), 255, dtype=np.uint8)
    cv2.putText(
        caption,
        "wait for it",
        (8, caption.shape[0] * 2 // 3),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.7,
        (0, 0, 0),
        2,
        cv2.LINE_AA,
    )
    for frame in frames:
        if name == "caption_below":
            bar = np.full((height - bottom, width, 3), (250, 220, 40), dtype=np.uint8)
            cv2.putText(
                bar,
                "new leak!!",
                (8, bar.shape[0] * 2 // 3),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.8,
                (0, 0, 0),
                2,
                cv2.LINE_AA,
            )
            out.append(np.vstack([frame[:bottom, :width], bar]))
            continue
        if name == "round_mask":
            h, w = frame.shape[:2]
            y, x = (h - height) // 2, (w - width) // 2
            square = frame[y : y + height, x : x + width]
            mask = np.zeros((height, width), dtype=np.uint8)
            cv2.circle(mask, (width // 2, height // 2), width // 2, 255, -1, cv2.LINE_AA)
            out.append((square * (mask[..., None] / 255.0)).astype(np.uint8))
            continue
        if name.startswith("bars"):
            colour = (0, 0, 0) if "black" in name else (30, 60, 140)
            canvas = np.empty((height, width, 3), dtype=np.uint8)
            canvas[:] = colour
        else:
            h, w = frame.shape[:2]
            k = max(width / w, height / h)
            big = cv2.resize(frame, (round(w * k), round(h * k)), interpolation=cv2.INTER_LINEAR)
            y, x = (big.shape[0] - height) // 2, (big.shape[1] - width) // 2
            canvas = cv2.GaussianBlur(big[y : y + height, x : x + width], (0, 0), 20)
        canvas[top:bottom, left:right] = cv2.resize(
            frame, (right - left, bottom - top), interpolation=cv2.INTER_AREA
        )
        if name == "caption_on_fill":
            canvas[: caption.shape[0]] = caption
        out.append(canvas)
    return out


def reframed(root: Path) -> dict[str, Any]:
    originals = [
        r for r in csv.DictReader((root / "originals.csv").open()) if r["media"] == "video"
    ]
    print(f"{'original':10} {'re-framing':18} {'size':>9}  {'found':40} error")
    results: dict[str, list[float | None]] = {}
    for row in originals:
        frames, fps = _read_rgb(root / row["path"])
        height, width = frames[0].shape[:2]
        for name, (size, box, kind) in _reframings(width, height).items():
            grey, scale = _encoded_sampled(_reframe(frames, name, size, box), fps)
            regions = find_regions(grey)
            scaled: Box = tuple(round(v * scale) for v in box)  # type: ignore[assignment]
            size = (grey[0].shape[1], grey[0].shape[0])
            error = box_error(regions[0], scaled, size) if regions else None
            results.setdefault(name, []).append(error)
            shown = (
                f"{regions[0].kind}({regions[0].left},{regions[0].top},{regions[0].right},{regions[0].bottom})"
                if regions
                else "-"
            )
            wrong_kind = "" if not regions or regions[0].kind == kind else f" (expected {kind})"
            print(
                f"{row['id']:10} {name:18} {size[0]:>4}x{size[1]:<4}  {shown:40} "
                + (f"{error:.1%}{wrong_kind}" if error is not None else "missed")
            )
    print()
    for name, errors in results.items():
        close = sum(1 for e in errors if e is not None and e <= 0.03)
        print(f"{name:18} within 3%: {close}/{len(errors)}")
    return {"reframed_here": results}


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
    parser.add_argument("--reframe", action="store_true", help="also originals re-framed here")
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {}
    if args.corpus is not None:
        figures.update(corpus(args.corpus))
        print()
        if args.photos:
            figures.update(photos(args.corpus))
            print()
        if args.reframe:
            figures.update(reframed(args.corpus))
            print()
    figures["cost"] = cost()
    figures.pop("rows", None)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
