"""Test media made on the fly: photo-like images and their edited copies, as file bytes.

Images are smooth random fields with a few shapes, so PDQ sees photo-like structure (high
quality) and different seeds give unrelated hashes.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps


def photo(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    rng = np.random.default_rng(seed)
    width, height = size
    coarse = rng.integers(0, 256, size=(height // 40 + 2, width // 40 + 2, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, width - 60)), int(rng.integers(0, height - 60))
        x1, y1 = x0 + int(rng.integers(30, width // 2)), y0 + int(rng.integers(30, height // 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        else:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
    return image.filter(ImageFilter.GaussianBlur(1.5))


def encode(image: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        params.setdefault("quality", 90)
        image = image.convert("RGB")
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def edited_copy(image: Image.Image) -> Image.Image:
    """A typical re-upload: mirrored, shrunk and re-encoded at lower quality."""
    small = ImageOps.mirror(image).resize((image.width * 3 // 4, image.height * 3 // 4))
    return Image.open(io.BytesIO(encode(small, quality=60)))
