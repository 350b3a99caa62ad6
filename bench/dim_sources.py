"""The pictures ``bench/photo_dim.py`` measures: low-detail versions (dark, night, blurred,
heavily blurred, flat) of the dev corpus's photos, of photos the corpus has not seen and of
phone-sized synthetic scenes; their re-encodes and resizes; and flat pictures."""

from __future__ import annotations

import csv
import functools
import importlib.util
import io
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
from PIL import Image, ImageFilter

from hashdb.photo import hash_photo
from hashdb.signals import PHASH
from tests.media import textured

MAKE_CORPUS = Path("/work/shared/corpus/make_corpus.py")
RCC_DIR = Path("/usr/share/gcompris-qt/rcc")
#: Resource files holding photographs the corpus does not use (``lang``'s are drawings,
#: several of them one drawing recoloured).
RCC_FILES = ("categorization", "leftright", "louis-braille", "babyshapes")
OPENCV_DIR = Path("/usr/share/doc/opencv-doc/examples")
OPENCV_PHOTOS = (
    "alphamat/input_images/plant.jpg",
    "data/aloeR.jpg",
    "data/basketball2.png",
    "data/Blender_Suzanne1.jpg",
    "data/ela_modified.jpg",
    "data/left.jpg",
    "data/rubberwhale2.png",
    "data/starry_night.jpg",
    "data/text_motion.jpg",
    *(f"text/scenetext_segmented_word0{n}.jpg" for n in range(1, 6)),
    "ximgproc/stanford.png",
)
#: Same rig, other poses: the first is blocked, the rest are hard negatives.
FAMILY = tuple(f"data/left{n:02d}.jpg" for n in (3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14))


# -- making low-detail pictures ------------------------------------------------------------


def jpeg_bytes(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def dark(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A night shot: little light, shot and read noise, the phone's tone curve."""
    linear = (np.asarray(image.convert("RGB"), dtype=np.float64) / 255) ** 2.2
    linear *= rng.uniform(0.1, 0.25)
    shot = np.sqrt(linear * rng.uniform(0.0005, 0.002))
    linear += rng.normal(0, 1, linear.shape) * shot + rng.normal(0, rng.uniform(0.001, 0.004))
    toned = np.clip(linear, 0, 1) ** (1 / rng.uniform(1.0, 1.8))
    return Image.fromarray((toned * 255 + 0.5).astype(np.uint8))


def blur(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(max(image.size) * rng.uniform(0.01, 0.03)))


def heavy_blur(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(max(image.size) * rng.uniform(0.03, 0.05)))


def night(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A night shot taken with a shaking hand: dark, then blurred a little."""
    return dark(
        image.filter(ImageFilter.GaussianBlur(max(image.size) * rng.uniform(0.005, 0.015))), rng
    )


def flat(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
    mean = pixels.mean()
    low = mean * rng.uniform(0.6, 1.3) + (pixels - mean) * rng.uniform(0.08, 0.25)
    low += rng.normal(0, 1.0, low.shape)
    picture = Image.fromarray(np.clip(low + 0.5, 0, 255).astype(np.uint8))
    return picture.filter(ImageFilter.GaussianBlur(rng.uniform(0, 2)))


KINDS: dict[str, Callable[[Image.Image, np.random.Generator], Image.Image]] = {
    "dark": dark,
    "blur": blur,
    "heavy_blur": heavy_blur,
    "flat": flat,
    "night": night,
}


def edit(data: bytes, name: str) -> bytes:
    """An upload of ``data`` after one edit of ``EDITS``."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    if name.startswith("jpeg_q"):
        return jpeg_bytes(image, int(name.removeprefix("jpeg_q")))
    if name == "webp":
        out = io.BytesIO()
        image.save(out, "WEBP", quality=75)
        return out.getvalue()
    factor = float(name.removeprefix("scale_"))
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return jpeg_bytes(image.resize(size, Image.Resampling.LANCZOS), 85)


def flat_picture(seed: int) -> Image.Image:
    """A picture with almost nothing in it, of one of seven kinds (``seed % 7``)."""
    rng = np.random.default_rng([seed, 7])
    width, height = ((640, 480), (1280, 960), (1080, 1920), (512, 512), (800, 600))[seed % 5]
    ys, xs = np.mgrid[0:height, 0:width] / max(width, height)
    one, two = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    kind = seed % 7
    if kind == 0:  # a solid colour
        pixels = np.ones((height, width, 1)) * one
    elif kind == 1:  # a linear gradient
        angle = rng.uniform(0, 2 * np.pi)
        ramp = np.cos(angle) * xs + np.sin(angle) * ys
        ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-9)
        pixels = one + ramp[..., None] * (two - one)
    elif kind == 2:  # a vignette
        cx, cy = rng.uniform(0.2, 0.8, 2)
        radius = np.hypot(
            xs - cx * width / max(width, height), ys - cy * height / max(width, height)
        )
        pixels = one + np.clip(radius / rng.uniform(0.3, 1), 0, 1)[..., None] * (two - one)
    elif kind == 3:  # a black frame with sensor noise
        pixels = rng.uniform(0, 20) + rng.normal(0, rng.uniform(1, 6), (height, width, 3))
    elif kind == 4:  # a lamp in the dark
        cx, cy = rng.uniform(0.1, 0.9, 2)
        radius = np.hypot(
            xs - cx * width / max(width, height), ys - cy * height / max(width, height)
        )
        glow = np.exp(-((radius / rng.uniform(0.02, 0.2)) ** 2))[..., None] * np.ones(3)
        pixels = rng.uniform(0, 15) + rng.uniform(60, 255) * glow
        pixels = pixels + rng.normal(0, 2, (height, width, 3))
    elif kind == 5:  # two dim tones
        split = xs > rng.uniform(0.2, 0.8) if rng.random() < 0.5 else ys > rng.uniform(0.2, 0.8)
        pixels = one * 0.2 + split.astype(float)[..., None] * (two - one) * 0.2
    else:  # a night sky: a dark gradient with noise
        pixels = one * 0.15 * (1 - ys / ys.max())[..., None]
        pixels = pixels + rng.normal(0, 2, (height, width, 3))
    return Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8))


def phone_photo(seed: int) -> Image.Image:
    """A phone-sized photo-like scene: a textured picture upscaled to 1280-2000 px."""
    rng = np.random.default_rng([seed, 11])
    side = int(rng.integers(1280, 2001))
    picture = textured(10_000 + seed)
    if rng.random() < 0.5:
        picture = picture.transpose(Image.Transpose.ROTATE_90)
    scale = side / max(picture.size)
    size = (round(picture.width * scale), round(picture.height * scale))
    return picture.resize(size, Image.Resampling.BICUBIC)


# -- sources -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    key: str
    group: str  # corpus, unseen, synthetic, family
    role: str  # blocked or distractor
    #: Where the photo is: "path:<file>", "rcc:<resource file>:<member>" or "synthetic:<n>"
    #: (a name, not a function, so that it travels to the worker processes).
    ref: str

    def load(self) -> Image.Image:
        how, _, where = self.ref.partition(":")
        if how == "path":
            return _open_path(Path(where))
        if how == "rcc":
            rcc, _, member = where.partition(":")
            return _open_bytes(_rcc(rcc)[member])
        return phone_photo(int(where))


@functools.cache
def _rcc(path: str) -> dict[str, bytes]:
    members: dict[str, bytes] = _make_corpus().read_rcc(Path(path))
    return members


@functools.cache
def _make_corpus() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_corpus", MAKE_CORPUS)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {MAKE_CORPUS}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_corpus"] = module
    spec.loader.exec_module(module)
    return module


def _open_bytes(blob: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(blob))
    image.load()
    return image.convert("RGB")


def _open_path(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def corpus_sources(corpus: Path) -> list[Source]:
    sources = []
    for row in csv.DictReader((corpus / "originals.csv").open()):
        if row["media"] != "image":
            continue
        role = "blocked" if row["role"] == "blocklist" else "distractor"
        sources.append(Source(row["id"], "corpus", role, f"path:{corpus / row['path']}"))
    return sources


def unseen_candidates(corpus: Path) -> list[tuple[str, str]]:
    """``(key, ref)`` of the two packages' photographs that the corpus's originals.csv does
    not name."""
    used = {row["source_file"] for row in csv.DictReader((corpus / "originals.csv").open())}
    found: list[tuple[str, str]] = []
    if RCC_DIR.is_dir():
        for name in RCC_FILES:
            rcc = RCC_DIR / f"{name}.rcc"
            if not rcc.is_file():
                continue
            for member in sorted(_rcc(str(rcc))):
                base = member.rsplit("/", 1)[-1]
                if not base.lower().endswith((".jpg", ".jpeg", ".webp")):
                    continue
                if f"{rcc}:{base}" in used or (name == "babyshapes" and "dog" not in base):
                    continue  # babyshapes' other pictures are paintings
                found.append((f"{name}:{base}", f"rcc:{rcc}:{member}"))
    for rel in OPENCV_PHOTOS:
        path = OPENCV_DIR / rel
        if path.is_file() and str(path) not in used:
            found.append((f"opencv:{rel}", f"path:{path}"))
    return found


def _pdq_phash(image: Image.Image) -> tuple[int, int, int]:
    fingerprints = hash_photo(jpeg_bytes(image, 95), local=False)
    pdq = fingerprints.stored[0]
    phash = next(f for f in fingerprints.stored if f.signal == PHASH.name)
    return pdq.value, phash.value, pdq.quality or 0


def _distinct(
    candidates: list[tuple[str, str]], known: list[tuple[int, int]]
) -> list[tuple[str, str]]:
    """Candidates at least 46 PDQ and 9 pHash bits from every photo kept before them (and
    the corpus's), and detailed enough for their low-detail copies to be made from a photo."""
    kept = []
    seen = list(known)
    for key, ref in candidates:
        image = Source(key, "", "", ref).load()
        if min(image.size) < 200:
            continue
        pdq, phash, quality = _pdq_phash(image)
        if quality < 50:
            continue
        if any((pdq ^ p).bit_count() <= 45 or (phash ^ h).bit_count() <= 8 for p, h in seen):
            continue
        seen.append((pdq, phash))
        kept.append((key, ref))
    return kept


def unseen_sources(corpus: Path, count: int, synthetic: int) -> list[Source]:
    known = [_pdq_phash(s.load())[:2] for s in corpus_sources(corpus)]
    photos = _distinct(unseen_candidates(corpus), known)[:count]
    # Every other photo blocked: the two halves come from the same packages and activities.
    sources = [
        Source(key, "unseen", "blocked" if n % 2 == 0 else "distractor", ref)
        for n, (key, ref) in enumerate(photos)
    ]
    sources += [
        Source(f"synthetic:{n}", "synthetic", "blocked", f"synthetic:{n}") for n in range(synthetic)
    ]
    family = [rel for rel in FAMILY if (OPENCV_DIR / rel).is_file()]
    sources += [
        Source(
            f"family:{rel}",
            "family",
            "blocked" if n == 0 else "distractor",
            f"path:{OPENCV_DIR / rel}",
        )
        for n, rel in enumerate(family)
    ]
    return sources
