"""The pictures ``bench/photo_edits.py`` builds its set from: synthetic phone-sized
photos, collages (square cells in a grid, photos side by side or stacked) and phone photos
of a monitor (perspective, moire from the screen's pixel grid, glare, reflected light,
blur, grain, JPEG)."""

from __future__ import annotations

import math
import random
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFilter

Pixels = npt.NDArray[np.uint8]


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
