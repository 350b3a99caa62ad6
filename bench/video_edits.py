"""Build an "unseen edits" video corpus: new blocked videos and new edits, for ``bench/video.py``.

The dev corpus (``../shared/corpus/make_corpus.py``) has 7 blocked videos and 12 video edits,
and the matcher is tuned on it; this set measures it on videos and edits it has not seen. It
writes the dev corpus's layout and columns (``originals/dvu001.mp4``, ``distractors/``,
``variants/vid_<edit>/``, ``manifest.csv``, ``originals.csv``, ``corpus_info.json``), so

    python bench/video_edits.py OUT --from /work/corpus_dev  # ~7 CPU min, 2 workers; ~180 MB
    python bench/video.py --corpus OUT --skip-throughput     # ~2.5 min

measures it unchanged. Nothing is downloaded and no media is committed. Sources, read-only:
OpenCV's sample videos (``/usr/share/doc/opencv-doc/examples/data``: the ``vtest.avi``
segments the dev corpus leaves out, 20-38 s and 65-79.5 s; ``Megamind.avi`` cropped to
portrait, left half of the first 6.5 s and right half of the rest; ``tree.avi`` at its true
timestamps, 6-22 s and 23-29.6 s: the dev corpus plays all its 68 frames at 15 fps, so these
frames are not new there, only their timing), and pan/zoom/slideshow clips made
from the dev corpus's photos (``--from``): blocklisted photos its slideshows do not use, and
its distractor photos. Ten blocked originals, 3-60 s, portrait and landscape, 360p-720p,
static camera, hand-held, animation, slow and fast pans; ten distractor videos, half of them
hard negatives (other segments or crops of the same footage, another pan over the same photo,
a slideshow of look-alike photos of the same monuments).

Every original gets every edit in ``EDITS`` (``bench/video_reposts.py``; reposting styles:
letterbox, pillarbox, blurred 9:16 or 16:9 fill, caption bars, mirror and crops,
picture-in-picture, speed changes, a low bit-rate 480p re-encode, Telegram's video note, video
sticker and GIF shapes, a trimmed middle, rotation, brightness/contrast); distractors get
``DISTRACTOR_EDITS`` too, so a re-framed distractor that matches shows. Parameters are drawn
from a generator seeded by (seed, video, edit) and written to ``params`` with the true content
box where there is one. The same seed gives the same sources and parameters (``manifest.csv``
repeats), but not the same files bit for bit, nor always pixel for pixel: a second build's
encodes of some videos (the distractor dvux005, a few edits of dvu003) decoded up to 20 levels
apart from the first's, the cause not found (encoding the same frames twice in one process
gives identical bytes).

Baseline, the matcher of 2026-12-07 (``bench/video.py`` at 39218cb, production rule: query or
compared >= 50%, >= 2 frames): 78/220 variants detected, 0 of 2,380 false pairs accepted.
All 10 of each: brightness_contrast, gif, reencode_h264_low, speed_0.75, speed_2.0,
sticker_webm; 9/10: speed_1.5, trim_middle; none of the re-framings (letterbox, pillarbox,
blur fills, captions, crops, mirror, pip, video_note, rotate_90). Closest false pair: the
other tree.avi segment (hard negative), compared 94% on 1 matched frame.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import resource
import shutil
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import av  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import PIL  # noqa: E402

from bench.video_reposts import (  # noqa: E402
    DISTRACTOR_EDITS,
    EDITS,
    Context,
    Frame,
)
from bench.video_sources import (  # noqa: E402
    OPENCV_DATA,
    Source,
    ken_burns,
    read_photo,
    render,
    rng_for,
)
from tests.media import encode_video  # noqa: E402

OPENCV_LICENSE = "BSD-3-Clause / Apache-2.0 (opencv-doc debian/copyright)"
#: Photos the dev corpus's video slideshows, distractor videos and filler already show.
DEV_VIDEO_PHOTOS = frozenset(
    {"d0058", "d0089", "d0133", "d0129", "d0076", "d0062", "d0019", "d0109", "d0044", "d0095"}
    | {"d0123", "dx0001", "dx0002", "dx0003", "dx0004", "dx0047", "dx0028", "dx0010", "dx0033"}
    | {"dx0022"}
)


# --- the plan: which videos, from what ----------------------------------------------------------


def plan(root: Path, seed: int) -> tuple[list[Source], tuple[str, ...]]:
    """The sources, and the photos of the pip background; photos drawn from the dev corpus."""
    with (root / "originals.csv").open(newline="") as file:
        rows = [r for r in csv.DictReader(file) if r["media"] == "image"]
    packages = {r["id"]: r["source_package"] for r in rows}
    sizes = {r["id"]: min(int(r["width"]), int(r["height"])) for r in rows}
    with (root / "manifest.csv").open(newline="") as file:
        look_alike = {
            r["base_id"]: r["similar_to"]
            for r in csv.DictReader(file)
            if r["media"] == "image" and r["distractor_kind"] == "hard_negative"
        }
    rng = rng_for(seed, "plan")
    # Places a distractor photo also shows: a slideshow of those look-alikes is the hard
    # negative of the blocked slideshow that has the blocklisted photos of the same places.
    pairs = sorted((d, b) for d, b in look_alike.items() if d not in DEV_VIDEO_PHOTOS)
    twins = [p for p in pairs if sizes[p[1]] >= 480][:2]
    unused = [r for r in rows if r["id"] not in DEV_VIDEO_PHOTOS and r["id"] not in look_alike]
    twin_ids = {b for _, b in twins}
    blocked = [r["id"] for r in unused if r["role"] == "blocklist" and r["id"] not in twin_ids]
    spare = [r["id"] for r in unused if r["role"] == "distractor"]
    rng.shuffle(blocked)
    rng.shuffle(spare)

    def take(pool: list[str], n: int, min_side: int = 0) -> tuple[str, ...]:
        picked = [p for p in pool if sizes[p] >= min_side][:n]
        if len(picked) < n:
            raise SystemExit(f"error: fewer than {n} unused photos of >= {min_side} px in {root}")
        for p in picked:
            pool.remove(p)
        return tuple(picked)

    def kinds(id_: str, like: str) -> tuple[str, str]:
        if not id_.startswith("dvux"):
            return "blocklist", ""
        return "distractor", "hard_negative" if like else "random"

    def kb(
        id_: str, photos: tuple[str, ...], size: tuple[int, int], fps: float, each: float,
        like: str = "", **spec: Any,
    ) -> Source:  # fmt: skip
        role, kind = kinds(id_, like)
        spec.update(size=list(size), fps=fps, seconds_each=each)
        package = "+".join(sorted({packages[p] for p in photos}))
        made = "ken_burns:" + "+".join(photos)
        return Source(id_, role, "ken_burns", spec, package, made, "as the photos named", kind,
                      like, photos)  # fmt: skip

    def real(
        id_: str, file: str, start: float, end: float, size: tuple[int, int], like: str = "",
        crop: list[int] | None = None, fps: float | None = None,
    ) -> Source:  # fmt: skip
        role, kind = kinds(id_, like)
        spec: dict[str, Any] = {"file": file, "start": start, "end": end, "size": list(size)}
        span = f"{OPENCV_DATA / file} [{start:g}s-{end:g}s]"
        if fps:
            spec["fps"] = fps
        if crop:
            spec["crop"] = crop
            span += f" crop {crop}"
        return Source(id_, role, "real", spec, "opencv-doc", span, OPENCV_LICENSE, kind, like)

    # Sizes and rates keep the build to a few minutes on 2 cores (every frame is encoded about
    # 23 times), while lengths run 3-60 s and sizes 360p-720p, portrait and landscape.
    one = take(blocked, 1, 600)
    twin_photos = tuple(b for _, b in twins) + take(blocked, 1, 480)
    sources = [
        real("dvu001", "vtest.avi", 20.0, 38.0, (768, 576)),  # static camera, people walking
        real("dvu002", "Megamind.avi", 0.0, 6.5, (360, 640), crop=[60, 0, 357, 528]),  # cuts
        kb("dvu003", one, (640, 360), 30, 3, zoom=[1.2, 1.5]),
        kb("dvu004", take(blocked, 12), (640, 360), 10, 5.5),  # a 60 s slideshow
        kb("dvu005", take(blocked, 2, 700), (720, 1280), 24, 2.25),
        kb("dvu006", take(blocked, 1, 700), (1280, 720), 24, 5, pan=True, zoom=[1.3, 1.6]),
        kb("dvu007", twin_photos, (854, 480), 20, 3.5),
        kb("dvu008", take(blocked, 2, 480), (480, 854), 25, 4.25, zoom=[1.6, 2.2]),  # fast zoom
        real("dvu009", "tree.avi", 6.0, 22.0, (480, 360), fps=15),  # hand-held, ~2 frames/s
        kb("dvu010", take(blocked, 4, 480), (540, 720), 15, 4.4, shake=6),  # hand-held
        # Hard negatives: the same footage elsewhere, the same photo panned differently,
        # look-alike photos of the same places.
        real("dvux001", "vtest.avi", 65.0, 79.5, (768, 576), like="dvu001"),
        real("dvux002", "Megamind.avi", 6.5, 11.3, (360, 640), "dvu002", [400, 0, 697, 528]),
        kb("dvux003", one, (640, 360), 30, 4, "dvu003", zoom=[1.3, 1.7]),
        kb("dvux004", tuple(d for d, _ in twins), (854, 480), 25, 4.25, "dvu007"),
        real("dvux005", "tree.avi", 23.0, 29.6, (480, 360), like="dvu009", fps=15),
        kb("dvux006", take(spare, 3), (640, 360), 25, 5.5),
        kb("dvux007", take(spare, 2), (360, 640), 30, 4.25),
        kb("dvux008", take(spare, 1, 700), (720, 1280), 24, 4),
        kb("dvux009", take(spare, 1, 700), (1280, 720), 25, 6, pan=True, zoom=[1.3, 1.6]),
        kb("dvux010", take(spare, 1), (480, 480), 30, 3),
    ]
    return sources, take(spare, 2, 480)


# --- building ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    source: Source
    edits: tuple[str, ...]
    root: Path
    out: Path
    seed: int
    background_photos: tuple[str, ...]


@dataclass(frozen=True)
class Done:
    source: Source
    original: dict[str, Any]
    rows: list[dict[str, Any]]
    seconds: float


def write_video(path: Path, frames: Iterable[Frame], fps: float, **encoding: Any) -> int:
    counted = 0

    def count() -> Iterator[Frame]:
        nonlocal counted
        for frame in frames:
            counted += 1
            yield frame

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_video(count(), fps=fps, **encoding))
    return counted


def build(job: Job) -> Done:
    started = time.perf_counter()
    cv2.setNumThreads(1)
    source, out = job.source, job.out
    frames, fps, extra = render(source, job.root, job.seed)
    blocked = source.role == "blocklist"
    path = out / ("originals" if blocked else "distractors") / f"{source.id}.mp4"
    write_video(path, frames, fps, crf=20)
    h, w = frames[0].shape[:2]
    original = {
        "id": source.id,
        "media": "video",
        "role": source.role,
        "path": path.relative_to(out).as_posix(),
        "source_package": source.package,
        "source_file": source.source_file,
        "license": source.license,
        "width": w,
        "height": h,
        "frames": len(frames),
        "fps": round(fps, 3),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    rows = []
    if not blocked:
        rows.append(manifest_row(path, out, source, "none", extra))
    backgrounds: dict[tuple[int, int, float], list[Frame]] = {}

    def background(w: int, h: int, fps: float, n: int) -> list[Frame]:
        key = (w, h, fps)
        if key not in backgrounds:
            photos = [read_photo(job.root, p) for p in job.background_photos]
            spec = {"size": [w, h], "fps": fps, "seconds_each": 4}
            backgrounds[key], _ = ken_burns(photos, spec, rng_for(job.seed, "background"))
        loop = backgrounds[key]
        loop = loop + loop[::-1]  # back and forth, no jump at the seam
        return [loop[i % len(loop)] for i in range(n)]

    ctx = Context(background)
    for name in job.edits:
        rng = rng_for(job.seed, source.id, name)
        edited = EDITS[name](frames, fps, rng, ctx)
        ext = {"gif": "gif", "webm": "webm"}.get(edited.fmt, "mp4")
        if blocked:
            vpath = out / "variants" / name / f"{source.id}.{ext}"
        else:
            vpath = out / "distractors" / f"{source.id}__{name}.{ext}"
        crf = edited.crf
        if crf is None and edited.bit_rate is None and edited.codec == "libx264":
            crf = rng.randint(21, 28)
        count = write_video(
            vpath,
            edited.frames,
            edited.fps,
            codec=edited.codec,
            fmt=edited.fmt,
            crf=crf,
            bit_rate=edited.bit_rate,
        )
        params = {
            **edited.params,
            "codec": edited.codec,
            "frames": count,
            "fps": round(edited.fps, 3),
        }
        if crf is not None and edited.codec != "gif":
            params["crf"] = crf
        rows.append(manifest_row(vpath, out, source, name, params))
    return Done(source, original, rows, time.perf_counter() - started)


def manifest_row(
    path: Path, out: Path, source: Source, transform: str, params: dict[str, Any]
) -> dict[str, Any]:
    blocked = source.role == "blocklist"
    return {
        "variant_path": path.relative_to(out).as_posix(),
        "original_id": source.id if blocked else "",
        "transform": transform,
        "params": json.dumps(params, sort_keys=True, separators=(",", ":")),
        "media": "video",
        "role": "variant" if blocked else "distractor",
        "base_id": source.id,
        "distractor_kind": source.distractor_kind,
        "similar_to": source.similar_to,
    }


MANIFEST_COLUMNS = [
    "variant_path",
    "original_id",
    "transform",
    "params",
    "media",
    "role",
    "base_id",
    "distractor_kind",
    "similar_to",
]
ORIGINALS_COLUMNS = [
    "id",
    "media",
    "role",
    "path",
    "source_package",
    "source_file",
    "license",
    "width",
    "height",
    "frames",
    "fps",
    "sha256",
]
#: What the output folder holds; only these are removed by --overwrite.
OUTPUTS = (
    "originals",
    "distractors",
    "variants",
    "manifest.csv",
    "originals.csv",
    "corpus_info.json",
)


def prepare(out: Path, overwrite: bool) -> None:
    present = [name for name in OUTPUTS if (out / name).exists()]
    if present and not overwrite:
        raise SystemExit(
            f"error: {out} already has {', '.join(present)}; pass --overwrite to replace them"
        )
    for name in present:
        target = out / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    out.mkdir(parents=True, exist_ok=True)


def check_sources(root: Path) -> None:
    missing = [
        f for f in ("vtest.avi", "Megamind.avi", "tree.avi") if not (OPENCV_DATA / f).is_file()
    ]
    if missing:
        raise SystemExit(
            f"error: {', '.join(missing)} not in {OPENCV_DATA}; apt-get install opencv-doc"
        )
    for name in ("originals.csv", "manifest.csv", "originals"):
        if not (root / name).exists():
            raise SystemExit(
                f"error: --from {root} has no {name}; expected a dev corpus built by "
                "../shared/corpus/make_corpus.py"
            )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path, help="folder to write (created; see --overwrite)")
    parser.add_argument(
        "--from",
        dest="root",
        type=Path,
        required=True,
        help="the dev corpus folder, for its photos",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier build in OUT")
    args = parser.parse_args(argv)
    check_sources(args.root)
    prepare(args.out, args.overwrite)
    started = time.perf_counter()
    sources, background = plan(args.root, args.seed)
    jobs = [
        Job(
            s,
            tuple(EDITS) if s.role == "blocklist" else DISTRACTOR_EDITS,
            args.root,
            args.out,
            args.seed,
            background,
        )
        for s in sources
    ]
    # Longest first, so the last job to finish is a short one.
    jobs.sort(key=lambda j: -cost(j.source))
    done: dict[str, Done] = {}
    with Pool(args.jobs) as pool:
        for result in pool.imap_unordered(build, jobs):
            done[result.source.id] = result
            o = result.original
            print(
                f"{o['id']:8} {o['role']:10} {o['width']}x{o['height']}, "
                f"{len(result.rows)} files in {result.seconds:.0f} s",
                flush=True,
            )
    ordered = [done[s.id] for s in sources]
    with (args.out / "originals.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, ORIGINALS_COLUMNS)
        writer.writeheader()
        writer.writerows(d.original for d in ordered)
    rows = [r for d in ordered for r in d.rows]
    with (args.out / "manifest.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    info = summary(args, ordered, rows, time.perf_counter() - started)
    (args.out / "corpus_info.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")


def cost(source: Source) -> float:
    w, h = source.spec["size"]
    if source.kind == "real":
        seconds = source.spec["end"] - source.spec["start"]
        fps = 10 if source.spec["file"] == "vtest.avi" else 24
    else:
        seconds, fps = source.spec["seconds_each"] * len(source.photos), source.spec["fps"]
    return float(w * h * seconds * fps)


def summary(
    args: argparse.Namespace, done: list[Done], rows: list[dict[str, Any]], seconds: float
) -> dict[str, Any]:
    """Prints what was made; returns it for corpus_info.json."""
    by_edit: dict[str, int] = {}
    for r in rows:
        if r["role"] == "variant":
            by_edit[r["transform"]] = by_edit.get(r["transform"], 0) + 1
    print(f"\n{'id':8} {'size':>9} {'seconds':>7} {'fps':>6}  source")
    for d in done:
        o, like = d.original, d.source.similar_to
        what = f"{d.source.distractor_kind} ~{like}: " if like else ""
        print(
            f"{o['id']:8} {o['width']:4}x{o['height']:<4} {o['frames'] / o['fps']:7.1f} "
            f"{o['fps']:6g}  {what}{o['source_file']}"
        )
    distractor_rows = [r for r in rows if r["role"] == "distractor"]
    blocked = [d for d in done if d.source.role == "blocklist"]
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    usage = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu = sum(u.ru_utime + u.ru_stime for u in usage)
    print(f"edits ({len(by_edit)}, one variant per original each): {', '.join(by_edit)}")
    print(
        f"{len(blocked)} blocked originals, {sum(by_edit.values())} variants; "
        f"{len(done) - len(blocked)} distractor videos, {len(distractor_rows)} distractor rows "
        f"with their edits; {size / 1e6:.0f} MB in {args.out}; {seconds:.0f} s "
        f"({cpu:.0f} CPU s) with {args.jobs} workers"
    )
    return {
        "script": "bench/video_edits.py",
        "seed": args.seed,
        "from": str(args.root),
        "jobs": args.jobs,
        "video_transforms": list(EDITS),
        "distractor_transforms": list(DISTRACTOR_EDITS),
        "counts": {
            "video_blocklist": len(blocked),
            "video_distractor": len(done) - len(blocked),
            "video_variant_rows": sum(by_edit.values()),
            "video_distractor_rows": len(distractor_rows),
        },
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu, 1),
        "bytes": size,
        "versions": {
            "python": sys.version.split()[0],
            "pyav": av.__version__,
            "libavcodec": ".".join(map(str, av.library_versions["libavcodec"])),
            "numpy": np.__version__,
            "opencv": cv2.__version__,
            "pillow": PIL.__version__,
        },
    }


if __name__ == "__main__":
    main()
