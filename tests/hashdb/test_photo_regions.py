"""Finding the picture's own rectangle inside a re-framed photo (``hashdb.photo_regions``).

Every image is made here: a textured photo-like picture (``tests/media.py``), put inside a
border, a blurred fill, a meme caption bar, a phone screenshot's interface or a grid, then
JPEG-encoded and decoded as an upload would be.
"""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from hashdb.photo import decode_image, hash_image
from hashdb.photo_regions import MAX_REGIONS, MIN_SIDE_PX, Region, find_regions
from tests.media import photo, textured

Box = tuple[int, int, int, int]


def _jpeg(image: Image.Image, quality: int = 85) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return decode_image(buffer.getvalue())


def _grey(image: Image.Image) -> npt.NDArray[np.uint8]:
    return np.asarray(image.convert("L"))


def _near(region: Region, box: Box, tolerance: int = 4) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(region.box, box, strict=True))


def _found(image: Image.Image, box: Box, tolerance: int = 4) -> Region:
    regions = find_regions(_grey(image))
    match = next((r for r in regions if _near(r, box, tolerance)), None)
    assert match is not None, f"no region near {box}; found {[r.box for r in regions]}"
    return match


def _picture(seed: int = 3, size: tuple[int, int] = (640, 480)) -> Image.Image:
    return textured(seed).resize(size, Image.Resampling.LANCZOS)


def test_plain_photos_have_no_region() -> None:
    for seed in range(4):
        assert find_regions(_grey(_jpeg(_picture(seed)))) == ()
        assert find_regions(_grey(_jpeg(photo(seed)))) == ()


@pytest.mark.parametrize(
    "colour", [(255, 255, 255), (0, 0, 0), (60, 120, 200), (200, 30, 90), (128, 128, 128)]
)
def test_border_is_trimmed(colour: tuple[int, int, int]) -> None:
    bordered = _jpeg(ImageOps.expand(_picture(), border=40, fill=colour))
    region = _found(bordered, (40, 40, 680, 520))
    assert region.kind == "border"


def test_letterbox_padding_is_trimmed() -> None:
    canvas = Image.new("RGB", (640, 640), (0, 0, 0))
    canvas.paste(_picture(), (0, 80))
    assert _found(_jpeg(canvas), (0, 80, 640, 560)).kind == "border"


def test_blurred_fill_is_trimmed() -> None:
    picture = _picture(5)
    back = ImageOps.fit(picture, (640, 640)).filter(ImageFilter.GaussianBlur(24))
    back.paste(picture, (0, 80))
    assert _found(_jpeg(back), (0, 80, 640, 560)).kind == "blur_fill"


def test_meme_caption_bar_is_trimmed() -> None:
    canvas = Image.new("RGB", (640, 580), (255, 255, 255))
    canvas.paste(_picture(7), (0, 100))
    draw = ImageDraw.Draw(canvas)
    for x in range(30, 560, 60):  # glyph-like strokes of a caption line
        draw.rectangle((x, 35, x + 36, 65), fill=(0, 0, 0))
        draw.rectangle((x + 10, 42, x + 26, 58), fill=(255, 255, 255))
    assert _found(_jpeg(canvas), (0, 100, 640, 580)).kind in ("chrome", "mixed")


def _phone_screenshot(picture: Image.Image) -> tuple[Image.Image, Box]:
    """A phone app's screen: status bar, header with avatar and name, the picture, caption
    lines and a navigation bar with icons."""
    canvas = Image.new("RGB", (720, 1560), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, 720, 48), fill=(0, 0, 0))
    draw.rectangle((24, 14, 90, 34), fill=(255, 255, 255))
    draw.ellipse((24, 70, 94, 140), fill=(90, 160, 120))
    draw.rectangle((112, 90, 300, 120), fill=(20, 20, 20))
    shown = picture.resize((720, 540), Image.Resampling.LANCZOS)
    canvas.paste(shown, (0, 300))
    for i in range(3):
        draw.rectangle((24, 1280 + i * 44, 560 - 80 * i, 1304 + i * 44), fill=(215, 215, 215))
    draw.rectangle((0, 1440, 720, 1560), fill=(215, 215, 215))
    for i in range(5):
        x = 72 + i * 144
        draw.ellipse((x - 18, 1482, x + 18, 1518), outline=(20, 20, 20), width=3)
    return canvas, (0, 300, 720, 840)


def test_screenshot_interface_is_trimmed() -> None:
    shot, box = _phone_screenshot(_picture(9))
    assert _found(_jpeg(shot), box).kind in ("chrome", "mixed")


def _grid(pictures: list[Image.Image], cells: int, cell: int, gap: int) -> Image.Image:
    total = cells * cell + (cells + 1) * gap
    canvas = Image.new("RGB", (total, total), (255, 255, 255))
    for number, picture in enumerate(pictures):
        row, column = divmod(number, cells)
        canvas.paste(
            picture.resize((cell, cell), Image.Resampling.LANCZOS),
            (gap + column * (cell + gap), gap + row * (cell + gap)),
        )
    return canvas


@pytest.mark.parametrize(("cells", "gap"), [(2, 0), (2, 8), (3, 0), (3, 6)])
def test_grid_cells_are_found(cells: int, gap: int) -> None:
    cell = 960 // cells
    # ``photo`` pictures: as smooth at the finder's scale as most camera photos (cells of
    # fine noise-like texture, as ``textured`` makes, step as much inside as at a seam).
    pictures = [photo(20 + i) for i in range(cells * cells)]
    grid = _jpeg(_grid(pictures, cells, cell, gap))
    regions = find_regions(_grey(grid))
    assert len(regions) <= MAX_REGIONS
    for number in range(cells * cells):
        row, column = divmod(number, cells)
        left, top = gap + column * (cell + gap), gap + row * (cell + gap)
        box = (left, top, left + cell, top + cell)
        assert any(_near(r, box, 6) for r in regions), f"cell {number} not found"


def test_side_by_side_photos_are_cut_apart() -> None:
    left, right = photo(31, (480, 600)), photo(32, (640, 600))
    canvas = Image.new("RGB", (1120, 600))
    canvas.paste(left, (0, 0))
    canvas.paste(right, (480, 0))
    regions = find_regions(_grey(_jpeg(canvas)))
    assert any(_near(r, (0, 0, 480, 600), 6) for r in regions)
    assert any(_near(r, (480, 0, 1120, 600), 6) for r in regions)


def test_regions_are_bounded_and_never_tiny() -> None:
    rng = np.random.default_rng(1)
    # Many flat stripes with straight edges: a pattern built to produce many cuts.
    stripes = np.repeat(rng.integers(0, 256, size=(40, 1), dtype=np.uint8), 24, axis=0)
    image = np.repeat(stripes, 960, axis=1)
    for candidate in (image, image.T.copy(), rng.integers(0, 256, (700, 500), dtype=np.uint8)):
        regions = find_regions(candidate)
        assert len(regions) <= MAX_REGIONS
        height, width = candidate.shape
        for region in regions:
            assert min(region.width, region.height) >= MIN_SIDE_PX
            assert 0 <= region.left < region.right <= width
            assert 0 <= region.top < region.bottom <= height
    assert find_regions(np.zeros((30, 30), dtype=np.uint8)) == ()
    assert find_regions(_grey(_picture()), max_regions=0) == ()


def test_bad_input_is_refused_with_what_is_accepted() -> None:
    with pytest.raises(ValueError, match="expected a grey HxW uint8 array"):
        find_regions(np.zeros((64, 64, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="expected 0 or more"):
        find_regions(np.zeros((64, 64), dtype=np.uint8), max_regions=-1)


def test_region_probes_meet_the_whole_photos_hash() -> None:
    picture = _picture(11)
    stored = hash_image(picture, for_block=True, local=False).stored[0]
    bordered = _jpeg(ImageOps.expand(picture, border=50, fill=(240, 240, 240)))
    checked = hash_image(bordered, local=False, quick=True, regions=True)
    assert min(p.distance(stored) for p in checked.probes if p.signal == "pdq") > 31
    assert checked.regions
    best = min(p.distance(stored) for region in checked.regions for p in region.probes)
    assert best <= 16
    assert hash_image(bordered, local=False, quick=True).regions == ()
    with pytest.raises(ValueError, match="region probes are for checks"):
        hash_image(picture, for_block=True, regions=True)
