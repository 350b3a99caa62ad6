"""Build an "unseen edits" photo set: grids, collages and photos of a screen, for
``bench/photo_unseen.py``.

The dev corpus (``../shared/corpus/make_corpus.py``) has no grids and no photos of a screen,
and the matcher is tuned on its 133 photos; this set measures both kinds of copy, on some of
the corpus's originals and on photos it has not seen:

    python bench/photo_edits.py /work/corpus_dev OUT   # ~2 CPU min, ~270 MB
    python bench/photo_unseen.py OUT --workers 1       # ~1.5 min

Blocked originals (``originals/``): every third of the corpus's blocklisted photos
(``source`` corpus); paintings, planets and scenes from the same Debian packages that the
corpus does not use (``unseen``: gcompris-qt-data's ``details``, ``babyshapes`` and
``solar_system`` resources, opencv-doc samples); and phone-sized pictures made here
(``synthetic``: 1/f colour fields with textured shapes and sensor grain, 1280-2000 px).
Unrelated photos for the other cells, and for the distractors, are the corpus's distractor
photos, a third of GCompris's word drawings (``lang.rcc``) and 12 more synthetic pictures;
none is blocked.

Edits (``variants/<edit>/``), each original once: ``grid2``/``grid3`` (2x2, 3x3, cells
cropped to square as collage apps do, no gutter), ``grid2_gutter``/``grid3_gutter`` (white,
black or coloured gutters and margins), ``side_by_side`` and ``stacked`` (beside or above 1-2
other photos at a common height or width, aspect kept), ``screen_mild`` and
``screen_strong`` (a phone photo of a monitor showing the picture: perspective of the
monitor's plane, moire from the camera sampling the screen's RGB sub-pixel grid, glare,
reflected ambient light, defocus, sensor noise, JPEG, the bezel and a blurred room behind;
mild: tilt up to 8 degrees, strong: 12-20). Distractors (``distractors/``) are the same
layouts built only from unrelated photos. Parameters come from a generator seeded by (seed,
photo, edit) and are written to ``params``; the same seed gives the same files.

Nothing is downloaded and no media is committed; the corpus's files are read, not changed.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.util
import io
import json
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.photo_layouts import grid, screen_photo, strip, synthetic_photo

#: The corpus builder sits in ``shared/corpus`` beside the checkout (or a folder above it).
MAKE_CORPUS = next(
    (
        found
        for folder in Path(__file__).resolve().parents
        if (found := folder / "shared" / "corpus" / "make_corpus.py").is_file()
    ),
    Path("../shared/corpus/make_corpus.py"),
)
OPENCV_EXAMPLES = Path("/usr/share/doc/opencv-doc/examples")
GCOMPRIS_RCC = Path("/usr/share/gcompris-qt/rcc")

#: Photos from the corpus's packages that the corpus does not use (compared by hand with
#: ``source_file`` in its originals.csv): whole paintings and scenes, none a crop or a twin
#: of a corpus photo (the opencv stereo twins, consecutive frames and the ELA copy are left
#: out, so are pictures with holes cut in them and near-flat renders).
UNSEEN_GCOMPRIS = {
    "details": [
        "VincentVanGogh0019_background",
        "Gogh4_background",
        "VincentVanGogh0013_background",
        "VincentVanGogh0012_background",
        "VincentVanGoghBridge_background",
        "Eglise_dAuvers-sur-Oise_background",
        "Van_Gogh_The_Night_Cafe_background",
        "PortraitOfPereTanguy_background",
    ],
    "babyshapes": ["Pieter_Bruegel_service", "Van_Gogh_0011_5"],
    "solar_system": ["earth", "venus", "sun", "jupiter", "mercury", "mars"],
}
UNSEEN_OPENCV = [
    "alphamat/input_images/plant.jpg",
    "data/starry_night.jpg",
    "fuzzy/input.png",
    "data/left.jpg",
    "data/Blender_Suzanne1.jpg",
    "data/cards.png",
]
SYNTHETIC_BLOCKED = 20
SYNTHETIC_FILLERS = 12
#: Every n-th of the corpus's blocklisted photos is blocked here too.
CORPUS_STEP = 3
#: Distractor layouts per edit and pool (corpus distractors; unseen fillers).
DISTRACTORS_PER_EDIT = 12

EDITS = (
    "grid2",
    "grid2_gutter",
    "grid3",
    "grid3_gutter",
    "side_by_side",
    "stacked",
    "screen_mild",
    "screen_strong",
)

MANIFEST_FIELDS = [
    "variant_path",
    "original_id",
    "transform",
    "params",
    "media",
    "role",
    "base_id",
    "distractor_kind",
    "similar_to",
    "source",
]
ORIGINAL_FIELDS = [
    "id",
    "media",
    "role",
    "path",
    "source_package",
    "source_file",
    "license",
    "width",
    "height",
    "source",
]


def rng_for(seed: int, *parts: object) -> random.Random:
    """An independent generator per (seed, photo, edit), the same in any process."""
    digest = hashlib.sha256(":".join(map(str, (seed, *parts))).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _make_corpus() -> ModuleType:
    """The corpus builder, for its package readers (imported by path, never copied)."""
    spec = importlib.util.spec_from_file_location("make_corpus", MAKE_CORPUS)
    if spec is None or spec.loader is None:
        raise SystemExit(f"error: cannot import {MAKE_CORPUS}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_corpus"] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Photo:
    id: str
    image: Image.Image
    source: str  # corpus | unseen | synthetic | drawing
    package: str
    source_file: str
    license: str


# --------------------------------------------------------------------------- synthetic photos


# ------------------------------------------------------------------------------- the set


def _others(pool: list[Photo], count: int, rng: random.Random) -> list[Photo]:
    return rng.sample(pool, count)


def make_edit(
    edit: str, target: Photo | None, pool: list[Photo], rng: random.Random
) -> tuple[Image.Image, dict[str, Any], list[str]]:
    """One layout: ``target`` (None for a distractor) among photos of ``pool``. Returns the
    image, its parameters and the ids of every photo in it."""
    if edit.startswith("grid"):
        n = 2 if edit.startswith("grid2") else 3
        cells = _others(pool, n * n, rng)
        at = rng.randrange(n * n)
        if target is not None:
            cells[at] = target
        image, params = grid([p.image for p in cells], n, rng, gutter=edit.endswith("gutter"))
        params["position"] = at
    elif edit in ("side_by_side", "stacked"):
        count = rng.choice([2, 3])
        photos = _others(pool, count, rng)
        at = rng.randrange(count)
        if target is not None:
            photos[at] = target
        image, params = strip([p.image for p in photos], rng, vertical=edit == "stacked")
        params["position"] = at
        cells = photos
    else:
        shown = target if target is not None else _others(pool, 1, rng)[0]
        backdrop = _others([p for p in pool if p is not shown], 1, rng)[0]
        image, params = screen_photo(shown.image, backdrop.image, rng, edit.removeprefix("screen_"))
        params["backdrop"] = backdrop.id
        cells = [shown]
    return image, params, [p.id for p in cells]


def _gcompris(mc: ModuleType) -> list[Photo]:
    photos = []
    for activity, names in UNSEEN_GCOMPRIS.items():
        rcc = GCOMPRIS_RCC / f"{activity}.rcc"
        members = mc.read_rcc(rcc)
        for name in names:
            member = next(
                (m for m in members if m.rsplit("/", 1)[-1].rsplit(".", 1)[0] == name), None
            )
            if member is None:
                raise SystemExit(f"error: {rcc} has no image named {name!r}")
            photos.append(
                Photo(
                    "",
                    mc.to_rgb(mc.open_image_bytes(members[member])),
                    "unseen",
                    "gcompris-qt-data",
                    f"{rcc}:{member.rsplit('/', 1)[-1]}",
                    mc.GCOMPRIS_LICENSE,
                )
            )
    return photos


def _drawings(mc: ModuleType) -> list[Photo]:
    rcc = GCOMPRIS_RCC / "lang.rcc"
    members = mc.read_rcc(rcc)
    photos = []
    for member in sorted(m for m in members if m.endswith(".webp") and "/words_sample/" in m):
        image = mc.to_rgb(mc.open_image_bytes(members[member]))
        if min(image.size) >= 300:
            photos.append(
                Photo(
                    "",
                    image,
                    "drawing",
                    "gcompris-qt-data",
                    f"{rcc}:{member.rsplit('/', 1)[-1]}",
                    mc.GCOMPRIS_LICENSE,
                )
            )
    return photos


def collect(corpus: Path, seed: int) -> tuple[list[Photo], list[Photo], list[Photo]]:
    """Blocked photos, unrelated photos from the corpus (its distractors), and unrelated
    photos from elsewhere (drawings, synthetic pictures)."""
    mc = _make_corpus()
    rows = list(csv.DictReader((corpus / "originals.csv").open()))
    used = {row["source_file"] for row in rows}
    blocked: list[Photo] = []
    for row in sorted(rows, key=lambda r: r["id"]):
        if row["media"] == "image" and row["role"] == "blocklist":
            blocked.append(
                Photo(
                    row["id"],
                    Image.open(corpus / row["path"]).convert("RGB"),
                    "corpus",
                    row["source_package"],
                    row["source_file"],
                    row["license"],
                )
            )
    blocked = blocked[::CORPUS_STEP]
    unseen = _gcompris(mc)
    for rel in UNSEEN_OPENCV:
        path = OPENCV_EXAMPLES / rel
        unseen.append(
            Photo(
                "",
                mc.to_rgb(mc.open_image_path(path)),
                "unseen",
                "opencv-doc",
                str(path),
                mc.OPENCV_LICENSE,
            )
        )
    for number, photo in enumerate(unseen, 1):
        if photo.source_file in used:
            raise SystemExit(f"error: {photo.source_file} is in the corpus; it is not unseen")
        photo.id = f"u{number:03d}"
    synthetic = [
        Photo(
            f"s{number:03d}",
            synthetic_photo(seed * 1000 + number),
            "synthetic",
            "",
            f"photo_layouts.synthetic_photo(seed={seed * 1000 + number})",
            "generated",
        )
        for number in range(1, SYNTHETIC_BLOCKED + SYNTHETIC_FILLERS + 1)
    ]
    blocked += unseen + synthetic[:SYNTHETIC_BLOCKED]
    corpus_fillers = [
        Photo(
            row["id"],
            Image.open(corpus / row["path"]).convert("RGB"),
            "corpus",
            row["source_package"],
            row["source_file"],
            row["license"],
        )
        for row in rows
        if row["media"] == "image" and row["role"] == "distractor"
    ]
    # Every third drawing, so photos (synthetic ones) fill a fair share of the cells.
    drawings = _drawings(mc)[::3]
    for number, photo in enumerate(drawings, 1):
        photo.id = f"w{number:03d}"
    other_fillers = drawings + synthetic[SYNTHETIC_BLOCKED:]
    return blocked, corpus_fillers, other_fillers


def _save(image: Image.Image, path: Path, quality: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    path.write_bytes(buffer.getvalue())


def build(corpus: Path, out: Path, seed: int) -> dict[str, int]:
    blocked, corpus_fillers, other_fillers = collect(corpus, seed)
    if out.exists():
        shutil.rmtree(out)
    (out / "originals").mkdir(parents=True)
    originals: list[dict[str, Any]] = []
    for photo in blocked:
        path = f"originals/{photo.id}.jpg"
        # Blocked as a sharp JPEG, as the corpus keeps its originals (q95).
        _save(photo.image, out / path, 95)
        originals.append(
            {
                "id": photo.id,
                "media": "image",
                "role": "blocklist",
                "path": path,
                "source_package": photo.package,
                "source_file": photo.source_file,
                "license": photo.license,
                "width": photo.image.width,
                "height": photo.image.height,
                "source": photo.source,
            }
        )
    # Cells beside a corpus photo are corpus distractors; beside an unseen one, photos the
    # corpus does not have, so each group is measured on its own material.
    manifest: list[dict[str, Any]] = []
    for photo in blocked:
        pool = corpus_fillers if photo.source == "corpus" else other_fillers
        for edit in EDITS:
            rng = rng_for(seed, photo.id, edit)
            image, params, shown = make_edit(edit, photo, pool, rng)
            quality = int(params.get("quality", rng.choice([82, 87, 92])))
            params["quality"] = quality
            params["photos"] = shown
            path = f"variants/{edit}/{photo.id}.jpg"
            _save(image, out / path, quality)
            manifest.append(
                {
                    "variant_path": path,
                    "original_id": photo.id,
                    "transform": edit,
                    "params": json.dumps(params, separators=(",", ":")),
                    "media": "image",
                    "role": "variant",
                    "base_id": photo.id,
                    "distractor_kind": "",
                    "similar_to": "",
                    "source": photo.source,
                }
            )
    for source, pool in (("corpus", corpus_fillers), ("unseen", other_fillers)):
        for edit in EDITS:
            for number in range(1, DISTRACTORS_PER_EDIT + 1):
                rng = rng_for(seed, "distractor", source, edit, number)
                image, params, shown = make_edit(edit, None, pool, rng)
                quality = int(params.get("quality", rng.choice([82, 87, 92])))
                params["quality"] = quality
                params["photos"] = shown
                name = f"{source}_{edit}_{number:02d}"
                path = f"distractors/{name}.jpg"
                _save(image, out / path, quality)
                manifest.append(
                    {
                        "variant_path": path,
                        "original_id": "",
                        "transform": edit,
                        "params": json.dumps(params, separators=(",", ":")),
                        "media": "image",
                        "role": "distractor",
                        "base_id": name,
                        "distractor_kind": edit,
                        "similar_to": "",
                        "source": source,
                    }
                )
    fillers = {p.id: p for p in corpus_fillers + other_fillers}
    used_fillers = sorted(
        {i for row in manifest for i in json.loads(row["params"])["photos"] if i in fillers}
    )
    for filler_id in used_fillers:
        photo = fillers[filler_id]
        originals.append(
            {
                "id": photo.id,
                "media": "image",
                "role": "distractor",
                "path": "",
                "source_package": photo.package,
                "source_file": photo.source_file,
                "license": photo.license,
                "width": photo.image.width,
                "height": photo.image.height,
                "source": photo.source,
            }
        )
    _write(out / "originals.csv", ORIGINAL_FIELDS, originals)
    _write(out / "manifest.csv", MANIFEST_FIELDS, manifest)
    counts = {
        "blocked": len(blocked),
        "variants": sum(row["role"] == "variant" for row in manifest),
        "distractors": sum(row["role"] == "distractor" for row in manifest),
    }
    (out / "corpus_info.json").write_text(
        json.dumps({"seed": seed, "from": str(corpus), "edits": list(EDITS), **counts}, indent=1)
    )
    return counts


def _write(path: Path, fields: list[str], rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path, help="dev corpus folder (make_corpus.py output)")
    parser.add_argument("out", type=Path, help="folder to write (replaced if it exists)")
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args(argv)
    if not (args.corpus / "originals.csv").is_file():
        parser.error(f"{args.corpus} has no originals.csv; build it with make_corpus.py")
    started = time.perf_counter()
    counts = build(args.corpus, args.out, args.seed)
    print(
        f"{counts['blocked']} blocked photos, {counts['variants']} variants, "
        f"{counts['distractors']} distractors in {time.perf_counter() - started:.0f} s -> "
        f"{args.out}"
    )


if __name__ == "__main__":
    main()
