"""Region probes on hash-only lists: re-framed copies and grid cells found, false matches, cost.

Makes its own edited copies (the dev corpus has no grids, blurred fills or meme bars) of two
sets of photos, each listed as ``hashguard hash`` lists them (PDQ and pHash, no local
features) and checked as ``hashguard match --list`` checks a file (``bot.scan.hash_file``
with region probes, ``best_match``):

- *corpus*: the dev corpus's blocklisted originals; grid neighbours and negatives are its
  distractors;
- *unseen*: photos of the same packages that the corpus does not use (OpenCV's samples),
  and phone-sized synthetic photos (1280-2000 px, as ``tests/media.py`` makes them);
  neighbours and negatives are the corpus's distractors too.

Edits: a coloured border, a "fit to square" blurred fill, a meme bar above (and below) the
photo, a phone or desktop screenshot (the corpus's own generator), the photo as one cell of
a 2x2 or 3x3 grid (with or without gutters) and beside another photo; each saved as JPEG
quality 85. Negatives: the same edits of photos that are not listed (grids of unrelated
photos). The same photos are also put in a bank as ``/block`` keeps them (local features
too) and checked as ``hashguard match --bank`` checks, without and with region probes.
Prints, per edit and set, copies found each way, false matches, and the time to find and
hash the regions (p50, p90) per upload.

    python bench/photo_regions.py /path/to/corpus_dev [--limit 60]
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from PIL import Image, ImageDraw, ImageFilter, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from bot.config import load_config
from bot.matcher import Matcher
from bot.scan import ListIndex, best_match, hash_file
from hashdb.lists import ListItem, parse_list, text_lines
from hashdb.local_format import pack_moments
from hashdb.photo import decode_image, hash_photo, region_probes
from hashdb.store import Entry
from hashdb.video import VideoBudget

MAKE_CORPUS = Path("/work/shared/corpus/make_corpus.py")
#: OpenCV samples the corpus does not use (chessboards and stereo twins of used ones left out).
UNSEEN_OPENCV = [
    "alphamat/input_images/plant.jpg",
    "data/Blender_Suzanne1.jpg",
    "data/left.jpg",
    "data/starry_night.jpg",
    "data/text_motion.jpg",
    "data/ellipses.jpg",
]
OPENCV_DIR = Path("/usr/share/doc/opencv-doc/examples")

Edit = Callable[[Image.Image, list[Image.Image], random.Random], Image.Image]


def _corpus_module() -> ModuleType | None:
    """The corpus generator, for its screenshot edit and font (imported by path)."""
    if not MAKE_CORPUS.is_file():
        return None
    spec = importlib.util.spec_from_file_location("make_corpus", MAKE_CORPUS)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_corpus"] = module
    spec.loader.exec_module(module)
    return module


CORPUS = _corpus_module()


def border(img: Image.Image, others: list[Image.Image], rng: random.Random) -> Image.Image:
    colour = tuple(rng.randint(0, 255) for _ in range(3))
    pad = round(rng.uniform(0.03, 0.08) * max(img.size))
    return ImageOps.expand(img, border=pad, fill=colour)


def blur_fill(img: Image.Image, others: list[Image.Image], rng: random.Random) -> Image.Image:
    """Fit to a square over an enlarged, blurred copy of itself, as "no crop" apps do."""
    side = max(img.size)
    back = ImageOps.fit(img, (side, side)).filter(ImageFilter.GaussianBlur(side / 30))
    back.paste(img, ((side - img.width) // 2, (side - img.height) // 2))
    return back


def meme(img: Image.Image, others: list[Image.Image], rng: random.Random) -> Image.Image:
    """A white bar with black text above the photo, and sometimes one below."""
    w, h = img.size
    bar = round(h * rng.uniform(0.12, 0.22))
    below = rng.random() < 0.5
    canvas = Image.new("RGB", (w, h + bar * (2 if below else 1)), (255, 255, 255))
    canvas.paste(img, (0, bar))
    draw = ImageDraw.Draw(canvas)
    size = bar * 0.45
    font = CORPUS.font(round(size)) if CORPUS is not None else None
    draw.text((w * 0.05, bar * 0.25), "when the bench runs at 2am", fill=(0, 0, 0), font=font)
    if below:
        draw.text((w * 0.05, h + bar * 1.25), "and it passes", fill=(0, 0, 0), font=font)
    return canvas


def screenshot(img: Image.Image, others: list[Image.Image], rng: random.Random) -> Image.Image:
    if CORPUS is None:
        return img
    shot: Image.Image = CORPUS.t_screenshot(img, rng)[0]
    return shot


def _grid(cells: int, gutter: bool) -> Edit:
    def edit(img: Image.Image, others: list[Image.Image], rng: random.Random) -> Image.Image:
        side = 480 if cells == 2 else 360
        gap = rng.choice([4, 8, 12]) if gutter else 0
        pictures = [rng.choice(others) for _ in range(cells * cells)]
        pictures[rng.randrange(cells * cells)] = img
        total = cells * side + (cells + 1) * gap
        canvas = Image.new("RGB", (total, total), (255, 255, 255))
        for number, picture in enumerate(pictures):
            row, column = divmod(number, cells)
            cell = ImageOps.fit(picture, (side, side)) if picture is not img else None
            if cell is None:
                # The listed photo keeps its whole picture: squeezed into the cell, as
                # collage apps that do not crop show it.
                cell = picture.resize((side, side), Image.Resampling.LANCZOS)
            canvas.paste(cell, (gap + column * (side + gap), gap + row * (side + gap)))
        return canvas

    return edit


def side_by_side(img: Image.Image, others: list[Image.Image], rng: random.Random) -> Image.Image:
    other = rng.choice(others)
    height = 600
    left = img.resize((round(img.width * height / img.height), height), Image.Resampling.LANCZOS)
    right = other.resize(
        (round(other.width * height / other.height), height), Image.Resampling.LANCZOS
    )
    pair = [left, right] if rng.random() < 0.5 else [right, left]
    canvas = Image.new("RGB", (pair[0].width + pair[1].width, height))
    canvas.paste(pair[0], (0, 0))
    canvas.paste(pair[1], (pair[0].width, 0))
    return canvas


EDITS: dict[str, Edit] = {
    "border": border,
    "blur_fill": blur_fill,
    "meme": meme,
    "screenshot": screenshot,
    "grid2x2": _grid(2, gutter=False),
    "grid2x2_gutter": _grid(2, gutter=True),
    "grid3x3": _grid(3, gutter=False),
    "grid3x3_gutter": _grid(3, gutter=True),
    "side_by_side": side_by_side,
}


def _phone_photo(seed: int) -> Image.Image:
    """A phone-sized synthetic photo (``tests/media.py``'s textured picture, enlarged;
    portrait or landscape)."""
    from media import textured

    rng = random.Random(seed)
    long_side = rng.randint(1280, 2000)
    small = textured(seed)
    if rng.random() < 0.4:
        small = small.transpose(Image.Transpose.ROTATE_90)
    scale = long_side / max(small.size)
    return small.resize(
        (round(small.width * scale), round(small.height * scale)), Image.Resampling.BICUBIC
    )


def _load(path: Path) -> Image.Image:
    with Image.open(path) as opened:
        return opened.convert("RGB")


def _jpeg(img: Image.Image, folder: Path, name: str) -> Path:
    path = folder / f"{name}.jpg"
    img.save(path, "JPEG", quality=85)
    return path


def _run_set(
    name: str,
    listed: list[Image.Image],
    fillers: list[Image.Image],
    negatives: list[Image.Image],
    folder: Path,
) -> None:
    config = load_config(None, environ={}, require_token=False)
    matcher = Matcher(config.matching, config.video)
    items = []
    entries: list[Entry] = []
    features: list[tuple[int, int, bytes]] = []
    for number, img in enumerate(listed):
        buffer = io.BytesIO()
        img.save(buffer, "PNG")
        blocked = hash_photo(buffer.getvalue(), for_block=True)
        items.append(ListItem(blocked.stored, label=f"{name}{number}"))
        # The same photos in a bank, as /block keeps them (local features and the mirror's).
        entries.append(
            Entry(number + 1, 0, blocked.stored, None, 0.0, f"{name}{number}", "bench", bank_id=1)
        )
        if blocked.local is not None and blocked.local_mirror is not None:
            features.append((number + 1, 1, pack_moments((blocked.local, blocked.local_mirror))))
    lists = ListIndex.of_items(parse_list(list(text_lines(items))).items, matcher)
    bank = ListIndex.of_entries(entries, matcher, features)
    budget = VideoBudget(seconds_per_sample=1.0, max_frames=1, max_seconds=1.0)
    limit = config.media.max_image_pixels
    found: Counter[tuple[str, str]] = Counter()
    totals: Counter[str] = Counter()
    seconds: list[float] = []
    kinds: Counter[str] = Counter()
    for edit_name, edit in EDITS.items():
        rng = random.Random(f"{name}:{edit_name}")
        for role, images in (("copy", listed), ("negative", negatives)):
            for number, img in enumerate(images):
                query = edit(img, fillers, rng)
                path = _jpeg(query, folder, f"{name}-{edit_name}-{role}{number}")
                with_regions = hash_file(path, budget, limit, "check", regions=True).fingerprints
                whole = hash_file(path, budget, limit, "check").fingerprints
                # The cost the bot adds per upload: regions found and hashed from the
                # quick decode of a check.
                decoded = decode_image(path.read_bytes(), draft_side=512)
                started = time.perf_counter()
                region_probes(decoded)
                seconds.append(time.perf_counter() - started)
                key = f"{edit_name}:{role}"
                totals[key] += 1
                for mode, index, fingerprints in (
                    ("regions", lists, with_regions),
                    ("whole", lists, whole),
                    ("bank", bank, whole),
                    ("bank+regions", bank, with_regions),
                ):
                    match = (
                        best_match(index, matcher, fingerprints, config) if fingerprints else None
                    )
                    label = None
                    if match is not None:
                        label = (
                            lists.names.get(match.entry_id)
                            if index is lists
                            else f"{name}{match.entry_id - 1}"
                        )
                    if role == "copy" and label == f"{name}{number}":
                        found[key, mode] += 1
                        if mode == "regions" and match is not None:
                            kinds[match.region or "whole"] += 1
                    elif role == "negative" and label is not None:
                        found[key, mode] += 1
    print(f"\n{name}: {len(listed)} listed photos, {len(negatives)} negatives per edit")
    modes = ("regions", "whole", "bank", "bank+regions")
    print("list: hash-only list with / without region probes; bank: local features too")
    print(f"{'edit':<16}" + "".join(f" {'list ' + m if 'bank' not in m else m:>18}" for m in modes)
          + f" {'false (list, bank+regions)':>27}")  # fmt: skip
    for edit_name in EDITS:
        copies, negs = f"{edit_name}:copy", f"{edit_name}:negative"
        cells = "".join(
            f" {found[copies, m]:>9}/{totals[copies]:<3}"
            f"{100 * found[copies, m] / totals[copies]:5.1f}%"
            for m in modes
        )
        print(
            f"{edit_name:<16}{cells} {found[negs, 'regions']:>13}/{totals[negs]:<3}"
            f" {found[negs, 'bank+regions']:>4}/{totals[negs]:<3}"
        )
    print("matched by: " + ", ".join(f"{k} {v}" for k, v in kinds.most_common()))
    ms = sorted(1000 * s for s in seconds)
    print(
        f"regions found + hashed per upload: p50 {statistics.median(ms):.2f} ms, "
        f"p90 {ms[int(0.9 * (len(ms) - 1))]:.2f} ms ({len(ms)} uploads)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path, help="folder make_corpus.py wrote")
    parser.add_argument("--limit", type=int, default=40, help="listed photos per set")
    args = parser.parse_args()
    if not (args.corpus / "originals.csv").is_file():
        parser.error(f"{args.corpus} has no originals.csv; build it with make_corpus.py")
    rows = list(csv.DictReader((args.corpus / "originals.csv").open()))
    originals = [
        _load(args.corpus / r["path"])
        for r in rows
        if r["media"] == "image" and r["role"] == "blocklist"
    ]
    distractors = [
        _load(args.corpus / r["path"])
        for r in rows
        if r["media"] == "image" and r["role"] == "distractor"
    ]
    rng = random.Random(17)
    rng.shuffle(originals)
    half = len(distractors) // 2
    fillers, negatives = distractors[:half], distractors[half:]
    unseen = [_load(OPENCV_DIR / rel) for rel in UNSEEN_OPENCV if (OPENCV_DIR / rel).is_file()]
    unseen += [_phone_photo(seed) for seed in range(1000, 1000 + max(0, args.limit - len(unseen)))]
    with tempfile.TemporaryDirectory() as folder:
        _run_set("corpus", originals[: args.limit], fillers, negatives, Path(folder))
        _run_set("unseen", unseen[: args.limit], fillers, negatives, Path(folder))


if __name__ == "__main__":
    main()
