"""The footage the unseen-edits set is made from (``bench/video_edits.py``): segments of the
sample videos in Debian's opencv-doc, and pan-and-zoom clips over the dev corpus's photos."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from PIL import Image

from bench.video_reposts import Frame, resize

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")


def rng_for(seed: int, *parts: object) -> random.Random:
    """An independent generator per (seed, video, edit), the same in any process."""
    digest = hashlib.sha256(":".join(map(str, (seed, *parts))).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


@dataclass(frozen=True)
class Source:
    """One video to make: how to render it, and what the tables say about it."""

    id: str
    role: str  # blocklist | distractor
    kind: str  # real | ken_burns
    spec: dict[str, Any]
    package: str
    source_file: str
    license: str
    distractor_kind: str = ""
    similar_to: str = ""
    photos: tuple[str, ...] = field(default=())


def read_real(spec: dict[str, Any]) -> tuple[list[Frame], float]:
    """Seconds ``start``..``end`` of a sample video at ``fps`` (default: the stream's rate),
    optionally cropped (x0, y0, x1, y1), resized to ``size``.

    With ``fps`` given, frames are placed by their timestamps and each is held until the next,
    as a player shows it: tree.avi holds 68 frames over 29.5 s (the dev corpus plays them at
    15 fps, as 4.5 s). Otherwise by decoding order at the stream's rate: Megamind.avi's
    timestamps come out of order (B-frames in AVI)."""
    timed: list[tuple[float, Frame]] = []
    with av.open(str(OPENCV_DATA / spec["file"])) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or 25)
        fps = float(spec.get("fps") or rate)
        for i, decoded in enumerate(container.decode(stream)):
            t = float(decoded.time or 0.0) if "fps" in spec else i / rate
            if t >= spec["end"]:
                break
            frame: Frame = np.asarray(decoded.to_ndarray(format="rgb24"), dtype=np.uint8)
            if "crop" in spec:
                x0, y0, x1, y1 = spec["crop"]
                frame = frame[y0:y1, x0:x1]
            if t <= spec["start"] and timed:
                timed.clear()  # only the last frame at or before the start is shown
            timed.append((t, resize(frame, tuple(spec["size"]))))
    if not timed:
        raise SystemExit(f"error: no frames in {spec['file']} before {spec['end']} s")
    frames, k = [], 0
    for i in range(round((spec["end"] - spec["start"]) * fps)):
        t = spec["start"] + i / fps
        while k + 1 < len(timed) and timed[k + 1][0] <= t + 1e-6:
            k += 1
        frames.append(timed[k][1])
    return frames, fps


def ken_burns(
    photos: Sequence[Frame], spec: dict[str, Any], rng: random.Random
) -> tuple[list[Frame], list[dict[str, Any]]]:
    """Pan/zoom over each photo (``seconds_each``), cross-faded; ``shake`` adds hand-held jitter
    (pixels of the output), ``zoom`` bounds how far in each move starts or ends, ``pan`` moves
    across the photo at one zoom instead."""
    out_w, out_h = spec["size"]
    fps, aspect = spec["fps"], out_w / out_h
    n, fade = round(spec["seconds_each"] * fps), round(spec.get("fade_s", 0.5) * fps)
    lo, hi = spec.get("zoom", (1.1, 1.4))
    segments, moves = [], []
    for photo in photos:
        ph, pw = photo.shape[:2]
        base_w = min(pw, ph * aspect)  # the largest window of the output's aspect
        ends = []
        if spec.get("pan"):
            # A pan: the same zoom at both ends, from one side of the photo to the other.
            zoom = rng.uniform(lo, hi)
            zooms = (zoom, zoom)
            ww = base_w / zoom
            y = rng.uniform(0, ph - ww / aspect)
            xs = (0.0, pw - ww) if rng.random() < 0.5 else (pw - ww, 0.0)
            ends = [(ww, xs[0], y), (ww, xs[1], y + rng.uniform(-0.1, 0.1) * (ph - ww / aspect))]
        else:
            zooms = (1.0, rng.uniform(lo, hi))
            if rng.random() < 0.5:
                zooms = zooms[::-1]
            for zoom in zooms:
                ww = base_w / zoom
                ends.append((ww, rng.uniform(0, pw - ww), rng.uniform(0, ph - ww / aspect)))
        (wa, xa, ya), (wb, xb, yb) = ends
        moves.append({"zoom": [round(z, 3) for z in zooms], "from": [round(xa), round(ya)]})
        moves[-1]["to"] = [round(xb), round(yb)]
        frames = []
        for i in range(n):
            t = i / max(1, n - 1)
            t = t * t * (3 - 2 * t)  # ease in and out
            ww, x, y = wa + (wb - wa) * t, xa + (xb - xa) * t, ya + (yb - ya) * t
            scale = ww / out_w
            if spec.get("shake"):
                # Hand-held: a slow wander plus per-frame tremor, in output pixels.
                x += scale * spec["shake"] * (np.sin(i * 0.31) + 0.4 * rng.uniform(-1, 1))
                y += scale * spec["shake"] * (np.cos(i * 0.23) + 0.4 * rng.uniform(-1, 1))
            matrix = np.array([[scale, 0, x], [0, scale, y]], dtype=np.float64)
            warped = cv2.warpAffine(
                photo,
                matrix,
                (out_w, out_h),
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_REFLECT,
            )
            frames.append(np.asarray(warped, dtype=np.uint8))
        segments.append(frames)
    video = list(segments[0])
    for segment in segments[1:]:
        for k in range(min(fade, len(video), len(segment))):
            a = (k + 1) / (fade + 1)
            mixed = cv2.addWeighted(video[-fade + k], 1 - a, segment[k], a, 0)
            video[-fade + k] = np.asarray(mixed, dtype=np.uint8)
        video.extend(segment[fade:])
    return video, moves


def read_photo(root: Path, photo_id: str) -> Frame:
    folder = "originals" if photo_id.startswith("d0") else "distractors"
    with Image.open(root / folder / f"{photo_id}.jpg") as image:
        return np.asarray(image.convert("RGB"))


def render(source: Source, root: Path, seed: int) -> tuple[list[Frame], float, dict[str, Any]]:
    if source.kind == "real":
        frames, fps = read_real(source.spec)
        return frames, fps, {}
    photos = [read_photo(root, p) for p in source.photos]
    frames, moves = ken_burns(photos, source.spec, rng_for(seed, source.id, "moves"))
    return frames, float(source.spec["fps"]), {"moves": moves}
