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
import math
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFilter

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

Pixels = npt.NDArray[np.uint8]


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


def _pink(rng: np.random.Generator, height: int, width: int, exponent: float) -> Any:
    """Noise whose amplitude falls as 1/f**exponent: detail at every scale, as in photos."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    radius = np.hypot(fx, fy)
    radius[0, 0] = 1.0
    spectrum = (rng.normal(size=radius.shape) + 1j * rng.normal(size=radius.shape)) / (
        radius**exponent
    )
    spectrum[0, 0] = 0
    field = np.fft.irfft2(spectrum, s=(height, width))
    return (field - field.mean()) / (field.std() + 1e-9)


def synthetic_photo(seed: int) -> Image.Image:
    """A phone-sized picture (1280-2000 px on its longer side) with detail everywhere:
    a 1/f colour field, textured shapes, a lighting gradient and sensor grain."""
    rng = np.random.default_rng(seed)
    long_side = int(rng.choice([1280, 1600, 2000]))
    width, height = (long_side, long_side * 3 // 4)
    if rng.random() < 0.3:
        width, height = height, width
    small = (height // 2, width // 2)
    base = np.stack([_pink(rng, *small, 1.6) for _ in range(3)], axis=-1)
    colours = rng.uniform(60, 200, size=3) + base * rng.uniform(25, 45, size=3)
    canvas = Image.fromarray(np.clip(colours, 0, 255).astype(np.uint8)).resize(
        (width, height), Image.Resampling.BICUBIC
    )
    for _ in range(int(rng.integers(10, 22))):
        w = int(rng.integers(width // 12, width // 3))
        h = int(rng.integers(height // 12, height // 3))
        texture = _pink(rng, h, w, float(rng.uniform(0.9, 1.5)))
        tint = rng.uniform(20, 235, size=3)
        patch = np.clip(tint + texture[..., None] * rng.uniform(15, 50), 0, 255).astype(np.uint8)
        mask = Image.new("L", (w, h), 0)
        draw = ImageDraw.Draw(mask)
        if rng.random() < 0.5:
            draw.ellipse((0, 0, w - 1, h - 1), fill=255)
        else:
            points = [(float(rng.uniform(0, w)), float(rng.uniform(0, h))) for _ in range(5)]
            draw.polygon(points, fill=255)
        x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
        canvas.paste(Image.fromarray(patch), (x, y), mask.filter(ImageFilter.GaussianBlur(1)))
    pixels = np.asarray(canvas, dtype=np.float32)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    light = 1 + 0.25 * (
        (xs / width - 0.5) * math.cos(angle) + (ys / height - 0.5) * math.sin(angle)
    )
    pixels = pixels * light[..., None] + rng.normal(0, 3, size=pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


# --------------------------------------------------------------------------------- layouts


def square(image: Image.Image, side: int, rng: random.Random) -> Image.Image:
    """A collage cell: the largest square of the photo (a little off centre, as a user
    drags it), scaled to ``side``."""
    w, h = image.size
    edge = min(w, h)
    x = round((w - edge) * rng.uniform(0.3, 0.7))
    y = round((h - edge) * rng.uniform(0.3, 0.7))
    return image.crop((x, y, x + edge, y + edge)).resize((side, side), Image.Resampling.LANCZOS)


def grid(
    cells: list[Image.Image], n: int, rng: random.Random, gutter: bool
) -> tuple[Image.Image, dict[str, Any]]:
    """``cells`` (n*n photos) cropped to squares in an n x n grid, 1080-1600 px wide."""
    total = rng.choice([1080, 1200, 1440, 1600])
    space = rng.randint(6, 24) if gutter else 0
    colour = rng.choice([(255, 255, 255), (0, 0, 0), (236, 232, 224), (40, 44, 52)])
    side = (total - space * (n + 1)) // n if gutter else total // n
    size = side * n + (space * (n + 1) if gutter else 0)
    canvas = Image.new("RGB", (size, size), colour)
    for k, cell in enumerate(cells):
        row, column = divmod(k, n)
        offset = space if gutter else 0
        canvas.paste(
            square(cell, side, rng),
            (offset + column * (side + space), offset + row * (side + space)),
        )
    return canvas, {"size": size, "cell": side, "gutter": space, "gutter_colour": colour}


def strip(
    photos: list[Image.Image], rng: random.Random, vertical: bool
) -> tuple[Image.Image, dict[str, Any]]:
    """Photos side by side at one height (or stacked at one width), aspect kept."""
    common = rng.choice([540, 640, 720, 800])
    space = rng.choice([0, 0, 8, 16])
    colour = rng.choice([(255, 255, 255), (0, 0, 0)])
    scaled = []
    for photo in photos:
        w, h = photo.size
        size = (
            (common, max(1, round(h * common / w)))
            if vertical
            else (
                max(1, round(w * common / h)),
                common,
            )
        )
        scaled.append(photo.resize(size, Image.Resampling.LANCZOS))
    if vertical:
        canvas = Image.new(
            "RGB", (common, sum(p.height for p in scaled) + space * (len(scaled) - 1)), colour
        )
    else:
        canvas = Image.new(
            "RGB", (sum(p.width for p in scaled) + space * (len(scaled) - 1), common), colour
        )
    at = 0
    for photo in scaled:
        canvas.paste(photo, (0, at) if vertical else (at, 0))
        at += (photo.height if vertical else photo.width) + space
    return canvas, {"common": common, "gutter": space, "photos": len(photos)}


# --------------------------------------------------------------------------- screen photos

#: Per level: tilt of the monitor's plane (degrees, both axes together), share of the frame
#: the screen spans, camera pixels per screen pixel (below ~1.5 the sub-pixel grid aliases
#: into strong moire), glare amplitude, ambient light on the screen, defocus sigma, sensor
#: noise sigma, JPEG quality.
SCREEN_LEVELS: dict[str, dict[str, tuple[float, float]]] = {
    "mild": {
        "tilt": (2, 8),
        "fill": (0.6, 0.8),
        "pitch": (1.3, 2.2),
        "glare": (0.1, 0.25),
        "ambient": (0.03, 0.1),
        "blur": (0.4, 0.8),
        "noise": (1.5, 3),
        "quality": (84, 92),
        "roll": (-2, 2),
    },
    "strong": {
        "tilt": (12, 20),
        "fill": (0.45, 0.65),
        "pitch": (0.9, 1.4),
        "glare": (0.3, 0.55),
        "ambient": (0.1, 0.2),
        "blur": (0.9, 1.6),
        "noise": (3, 6),
        "quality": (68, 80),
        "roll": (-5, 5),
    },
}


def _draw(rng: random.Random, level: dict[str, tuple[float, float]], key: str) -> float:
    low, high = level[key]
    return rng.uniform(low, high)


def _subpixels(content: Pixels) -> Pixels:
    """The screen as the camera sees it up close: each pixel three columns (R, G, B
    stripes) with a dark line between rows, three times the content's size."""
    big = np.repeat(np.repeat(content, 3, axis=0), 3, axis=1).astype(np.float32)
    mask = np.full((3, 3, 3), 0.22, dtype=np.float32)
    for channel in range(3):
        mask[:, channel, channel] = 1.0
    mask[2, :, :] *= 0.55
    tiled = np.tile(mask, (content.shape[0], content.shape[1], 1))
    # The mask keeps about half the light; a screen is set bright enough to look normal.
    return np.asarray(np.clip(big * tiled * 1.9, 0, 255), dtype=np.uint8)


def _rotation(yaw: float, pitch: float, roll: float) -> Any:
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ rx @ ry


def screen_photo(
    photo: Image.Image, backdrop: Image.Image, rng: random.Random, strength: str
) -> tuple[Image.Image, dict[str, Any]]:
    """A phone photo of a monitor showing ``photo`` in a viewer, ``backdrop`` (blurred)
    behind the monitor."""
    level = SCREEN_LEVELS[strength]
    frame_w = rng.choice([1280, 1600, 2000])
    frame_h = frame_w * 3 // 4
    fill = _draw(rng, level, "fill")
    pitch_px = _draw(rng, level, "pitch")
    # The monitor: 16:9 or 16:10, its resolution set so one screen pixel spans pitch_px
    # camera pixels (before the tilt).
    aspect = rng.choice([16 / 9, 16 / 10])
    screen_w = round(frame_w * fill / pitch_px)
    screen_h = round(screen_w / aspect)
    viewer = rng.choice([(0, 0, 0), (30, 30, 30), (245, 245, 245)])
    content = Image.new("RGB", (screen_w, screen_h), viewer)
    shown = photo.copy()
    shown.thumbnail(
        (round(screen_w * rng.uniform(0.8, 0.97)), round(screen_h * rng.uniform(0.85, 0.97))),
        Image.Resampling.LANCZOS,
    )
    content.paste(shown, ((screen_w - shown.width) // 2, (screen_h - shown.height) // 2))
    sub = _subpixels(np.asarray(content))
    # Optics soften the grid a little before the sensor samples it (no anti-alias filter
    # strong enough to remove the moire, as in phones).
    sub = np.asarray(cv2.GaussianBlur(sub, (0, 0), 0.35 * 3 / pitch_px), dtype=np.uint8)

    tilt = math.radians(_draw(rng, level, "tilt"))
    share = rng.uniform(0.2, 0.8)
    yaw = tilt * math.sqrt(share) * rng.choice([-1, 1])
    pitch = tilt * math.sqrt(1 - share) * rng.choice([-1, 1])
    roll = math.radians(_draw(rng, level, "roll"))
    focal = frame_w / (2 * math.tan(math.radians(32)))
    # Physical units: the screen is 1 wide; the camera stands where it spans ``fill``.
    distance = focal / (fill * frame_w)
    rotation = _rotation(yaw, pitch, roll)
    centre = (
        frame_w / 2 + rng.uniform(-0.06, 0.06) * frame_w,
        frame_h / 2 + rng.uniform(-0.06, 0.06) * frame_h,
    )

    def project(u: float, v: float) -> tuple[float, float]:
        point = rotation @ np.array([u, v, 0.0]) + np.array([0.0, 0.0, distance])
        return (
            float(centre[0] + focal * point[0] / point[2]),
            float(centre[1] + focal * point[1] / point[2]),
        )

    half_w, half_h = 0.5, 0.5 / aspect
    corners = [(-half_w, -half_h), (half_w, -half_h), (half_w, half_h), (-half_w, half_h)]
    screen_quad = np.array([project(u, v) for u, v in corners], dtype=np.float32)
    bezel = 0.02 + rng.uniform(0, 0.02)
    stand = [(u * (1 + bezel * 2), v + math.copysign(bezel, v)) for u, v in corners]
    bezel_quad = np.array([project(u, v) for u, v in stand], dtype=np.float32)

    room = backdrop.convert("RGB").resize((frame_w, frame_h), Image.Resampling.BILINEAR)
    room_px = np.asarray(room.filter(ImageFilter.GaussianBlur(frame_w / 80)), dtype=np.float32)
    camera = room_px * rng.uniform(0.35, 0.7)
    grey = rng.uniform(15, 45)
    bezel_mask = np.zeros((frame_h, frame_w), dtype=np.uint8)
    cv2.fillConvexPoly(bezel_mask, np.round(bezel_quad).astype(np.int32), 255)
    camera[bezel_mask > 0] = grey

    source = np.array(
        [[0, 0], [sub.shape[1], 0], [sub.shape[1], sub.shape[0]], [0, sub.shape[0]]],
        dtype=np.float32,
    )
    homography = cv2.getPerspectiveTransform(source, screen_quad)
    warped = cv2.warpPerspective(sub, homography, (frame_w, frame_h), flags=cv2.INTER_LINEAR)
    inside = cv2.warpPerspective(
        np.full(sub.shape[:2], 255, dtype=np.uint8), homography, (frame_w, frame_h)
    )
    screen = warped.astype(np.float32)
    # Light of the room reflected by the panel (lifts the blacks), and a soft glare spot.
    ambient = _draw(rng, level, "ambient")
    screen = screen * (1 - ambient) + 255 * ambient
    glare = _draw(rng, level, "glare")
    gx = float(np.mean(screen_quad[:, 0])) + rng.uniform(-0.3, 0.3) * frame_w * fill
    gy = float(np.mean(screen_quad[:, 1])) + rng.uniform(-0.3, 0.3) * frame_h * fill
    spread = frame_w * fill * rng.uniform(0.12, 0.3)
    ys, xs = np.mgrid[0:frame_h, 0:frame_w].astype(np.float32)
    spot = glare * np.exp(-((xs - gx) ** 2 + ((ys - gy) * 1.4) ** 2) / (2 * spread**2))
    screen = screen + (255 - screen) * spot[..., None]
    alpha = (inside.astype(np.float32) / 255)[..., None]
    camera = camera * (1 - alpha) + screen * alpha
    # White balance of the phone, then defocus, grain and its JPEG.
    camera *= np.array([rng.uniform(0.92, 1.05), 1.0, rng.uniform(0.9, 1.08)], dtype=np.float32)
    blur = _draw(rng, level, "blur")
    camera = cv2.GaussianBlur(camera, (0, 0), blur)
    noise = _draw(rng, level, "noise")
    noisy = camera + np.random.default_rng(rng.getrandbits(32)).normal(0, noise, camera.shape)
    image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    params = {
        "frame": [frame_w, frame_h],
        "screen_px": [screen_w, screen_h],
        "tilt_deg": round(math.degrees(tilt), 1),
        "yaw_deg": round(math.degrees(yaw), 1),
        "pitch_deg": round(math.degrees(pitch), 1),
        "roll_deg": round(math.degrees(roll), 1),
        "camera_px_per_screen_px": round(pitch_px, 2),
        "glare": round(glare, 2),
        "ambient": round(ambient, 2),
        "blur": round(blur, 2),
        "noise": round(noise, 1),
        "quality": round(_draw(rng, level, "quality")),
        "screen_quad": np.round(screen_quad).astype(int).tolist(),
    }
    return image, params


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
            f"photo_edits.synthetic_photo(seed={seed * 1000 + number})",
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
