"""Video benchmark, second half: blocked videos' frames checked as photos.

Used by ``bench/video.py --corpus``: whether the originals' frame hashes, used as photo
hashes, hit corpus images (false positives), and whether a frame grab of each video (a
screenshot, JPEG q80) matches its original's frames.
"""

from __future__ import annotations

import csv
import io
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import numpy as np
import numpy.typing as npt
from PIL import Image

from hashdb.fingerprint import MediaDecodeError
from hashdb.photo import hash_photo
from hashdb.signals import PDQ

if TYPE_CHECKING:
    from bench.video import Blocked, Pipeline, Query


def slideshow_sources(root: Path) -> dict[str, set[str]]:
    """Original video -> ids of the photos its Ken Burns slideshow was made from."""
    sources: dict[str, set[str]] = {}
    with (root / "originals.csv").open(newline="") as file:
        for row in csv.DictReader(file):
            if row["media"] == "video" and row["source_file"].startswith("ken_burns:"):
                sources[row["id"]] = set(row["source_file"].removeprefix("ken_burns:").split("+"))
    return sources


def packed(values: Sequence[int]) -> npt.NDArray[np.uint64]:
    """256-bit hashes as rows of four words, for vectorised Hamming distances."""
    raw = b"".join(v.to_bytes(32, "little") for v in values)
    return np.frombuffer(raw, dtype="<u8").reshape(len(values), 4)


def pdq_probes(data: bytes, min_quality: int) -> npt.NDArray[np.uint64]:
    # The bot checks a photo's PDQ orientations against video frames only when usable.
    return packed(
        [
            f.value
            for f in hash_photo(data).probes
            if f.signal == PDQ.name and (f.quality or 0) >= min_quality
        ]
    )


def nearest(probes: npt.NDArray[np.uint64], frames: npt.NDArray[np.uint64]) -> int:
    if not len(probes) or not len(frames):
        return 256
    return int(np.bitwise_count(probes[:, None, :] ^ frames[None, :, :]).sum(axis=2).min())


#: The originals' frames checked as photo hashes: production, then the 1 frame/s baseline.
FRAME_SETS = ("block budget", "before 1 fr/s")


def frame_arrays(blocked: list[Blocked]) -> dict[str, dict[str, npt.NDArray[np.uint64]]]:
    return {
        FRAME_SETS[0]: {b.name: packed([f.value for f in b.hashes]) for b in blocked},
        FRAME_SETS[1]: {b.name: packed([f.value for f in b.before]) for b in blocked},
    }


def frames_as_images(
    root: Path, blocked: list[Blocked], rows: list[dict[str, str]], pipeline: Pipeline
) -> dict[str, Any]:
    """Do the originals' frame hashes, checked as photo hashes, hit corpus images?"""
    radius = pipeline.max_distance
    sources = slideshow_sources(root)
    frame_sets = frame_arrays(blocked)
    images: list[tuple[Path, str]] = [
        (p, p.stem) for p in sorted((root / "originals").glob("d*.jpg"))
    ]
    for row in rows:
        if row["media"] == "image":
            images.append((root / row["variant_path"], row["original_id"] or row["base_id"]))
    counts: dict[str, Any] = {}
    for name in frame_sets:
        counts[name] = {
            "frames": sum(len(v) for v in frame_sets[name].values()),
            "images": 0,
            "unrelated_hits": 0,
            "related_hits": 0,
            "related_images": 0,
            "unrelated_min_distance": 256,
            "examples": [],
        }
    started = time.perf_counter()
    for path, base in images:
        try:
            probes = pdq_probes(path.read_bytes(), pipeline.min_quality)
        except MediaDecodeError:
            continue
        for name, frames in frame_sets.items():
            c = counts[name]
            c["images"] += 1
            for video, values in frames.items():
                related = base in sources.get(video, set())
                distance = nearest(probes, values)
                if related:
                    c["related_images"] += 1
                    c["related_hits"] += distance <= radius
                else:
                    c["unrelated_min_distance"] = min(c["unrelated_min_distance"], distance)
                    if distance <= radius:
                        c["unrelated_hits"] += 1
                        if len(c["examples"]) < 5:
                            c["examples"].append(f"{path.relative_to(root)}~{video}:{distance}")
    elapsed = time.perf_counter() - started

    print(
        f"\n== Frames as images: each original's frame hashes used as photo hashes, against "
        f"{counts[FRAME_SETS[0]]['images']} corpus images (originals, variants, distractors; "
        f"8 dihedral PDQ probes each, hit = distance <= {radius}); {elapsed:.0f} s =="
    )
    print(
        f"{'frames stored':14} {'frames':>6} {'unrelated pairs':>15} {'false hits':>10} "
        f"{'min dist':>8} {'slideshow-source hits':>22}"
    )
    for name, c in counts.items():
        pairs = c["images"] * len(blocked) - c["related_images"]
        c["unrelated_pairs"] = pairs
        print(
            f"{name:14} {c['frames']:6} {pairs:15} {c['unrelated_hits']:10} "
            f"{c['unrelated_min_distance']:8} {c['related_hits']:>10}/{c['related_images']:<11}"
        )
        for example in c["examples"]:
            print(f"    false hit: {example}")
    print(
        "  (slideshow-source hits: photos a slideshow original was made from, and their edited "
        "copies; a hit there is a true relation, not a false positive)"
    )
    return counts


def frame_grab(data: bytes, at: float = 0.4) -> bytes:
    """A JPEG (q80) of the frame at ``at`` of the video's length, as a screenshot would be."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    buffer = io.BytesIO()
    Image.fromarray(frames[int(at * (len(frames) - 1))]).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def frame_grabs(
    root: Path, blocked: list[Blocked], queries: list[Query], pipeline: Pipeline
) -> dict[str, Any]:
    """Does a frame grab of a video (JPEG q80, at 40% of its length) match its original?"""
    radius = pipeline.max_distance
    frame_sets = frame_arrays(blocked)
    items: list[tuple[Path, str, str | None]] = [
        (root / "originals" / f"{b.name}.mp4", "original", b.name) for b in blocked
    ]
    items += [(q.path, q.transform, q.original) for q in queries]
    results: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"n": 0, "hit": 0, "hit_before": 0, "distances": []}
    )
    false_hits = dict.fromkeys(FRAME_SETS, 0)
    false_pairs = 0
    for path, transform, original in items:
        probes = pdq_probes(frame_grab(path.read_bytes()), pipeline.min_quality)
        for b in blocked:
            now, was = (nearest(probes, frame_sets[name][b.name]) for name in FRAME_SETS)
            if b.name == original:
                r = results[transform]
                r["n"] += 1
                r["hit"] += now <= radius
                r["hit_before"] += was <= radius
                r["distances"].append(now)
            else:
                false_pairs += 1
                false_hits[FRAME_SETS[0]] += now <= radius
                false_hits[FRAME_SETS[1]] += was <= radius
    print(
        "\n== Frame grabs (JPEG q80 at 40% of each video) checked as photos against the "
        "originals' frames (block budget; before: 1 frame/s) =="
    )
    print(f"{'video':22} {'n':>3} {'hit':>8} {'before':>8}  distances (block budget)")
    for transform, r in sorted(results.items()):
        print(
            f"{transform:22} {r['n']:3} {r['hit']:4}/{r['n']:<3} "
            f"{r['hit_before']:4}/{r['n']:<3}  {sorted(r['distances'])}"
        )
    print(
        f"false hits (grab vs other originals, distractor grabs vs all): block budget "
        f"{false_hits[FRAME_SETS[0]]}/{false_pairs}, before "
        f"{false_hits[FRAME_SETS[1]]}/{false_pairs}"
    )
    return {"per_video": dict(results), "false_hits": false_hits, "false_pairs": false_pairs}
